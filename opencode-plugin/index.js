// The OpenCode plugin of pty-supervisor: OpenCode loads this module as it is.
import { tool } from "@opencode-ai/plugin";

import * as text from "./descriptions.js";
import { PtyPlugin, scopeFrom } from "./plugin.js";

const z = tool.schema;
const id = z.string().describe("The terminal ID from pty_spawn or pty_list (e.g. 3)");

const ARGS = {
  pty_spawn: {
    command: z.string().describe("The program to run (e.g. bash, npm, python3)"),
    args: z.array(z.string()).optional().describe("Arguments for the program"),
    workdir: z.string().optional().describe("Working directory, absolute or relative to the project (default: the project directory)"),
    env: z.record(z.string(), z.string()).optional().describe("Additional environment variables; the permission asked shows them before the command"),
    title: z.string().optional().describe("A short title for the terminal"),
    description: z.string().optional().describe("What this terminal is for, in 5-10 words"),
    notifyOnExit: z.boolean().optional().describe("Tell this session when the command ends (default: false)"),
  },
  pty_write: {
    id,
    data: z.string().describe("What to type; escapes: \\n \\r \\t \\\\ \\xNN \\uNNNN"),
  },
  pty_read: {
    id,
    offset: z.number().optional().describe("Line to start from, 0-based (default 0); with pattern, counts matches"),
    limit: z.number().optional().describe("Number of lines, from 1 (default 500); with pattern, counts matches"),
    pattern: z.string().optional().describe("Regular expression, matched against each line: only lines that match"),
    ignoreCase: z.boolean().optional().describe("Match the pattern without regard to case (default false)"),
  },
  pty_list: {},
  pty_kill: {
    id,
    cleanup: z.boolean().optional().describe("Also remove the terminal and its output (default false)"),
  },
  pty_wait: {
    id,
    pattern: z.string().optional().describe("Regular expression to wait for, matched against each line of new output; without it, wait for the command to end"),
    timeout: z.number().optional().describe("Seconds to wait at most (default 60, at most 3600)"),
    ignoreCase: z.boolean().optional().describe("Match the pattern without regard to case (default false)"),
    since: z.number().optional().describe("Byte offset of the output to search from (default: where the last input was typed); a match's answer gives the offset to continue from"),
  },
  pty_screen: { id },
};

const DESCRIPTIONS = {
  pty_spawn: text.SPAWN,
  pty_write: text.WRITE,
  pty_read: text.READ,
  pty_list: text.LIST,
  pty_kill: text.KILL,
  pty_wait: text.WAIT,
  pty_screen: text.SCREEN,
};

// What the model reads, for the plugin's scope.
function describe(name, scope) {
  const said = DESCRIPTIONS[name];
  if (scope !== "all") return said;
  return name === "pty_list" ? text.LIST_ALL : said.replace(text.REACH, text.REACH_ALL);
}

async function server(input) {
  const log = (level, message) =>
    input.client?.app?.log?.({ body: { service: "pty-supervisor", level, message } }).catch?.(() => {});
  const plugin = new PtyPlugin({ client: input.client, directory: input.directory, log, scope: scopeFrom() });
  const handlers = plugin.handlers();
  const tools = {};
  for (const [name, args] of Object.entries(ARGS)) {
    tools[name] = tool({ description: describe(name, plugin.scope), args, execute: (a, ctx) => handlers[name](a, ctx) });
  }
  return {
    tool: tools,
    "shell.env": (hookInput, output) => plugin.shellEnv(hookInput, output),
    event: async ({ event }) => {
      if (event?.type === "session.deleted" && event.properties?.info?.id) {
        await plugin.sessionDeleted(event.properties.info.id).catch((err) => log("warn", `ending the terminals of a deleted session: ${err.message}`));
      }
    },
    // OpenCode awaits this; it waits for the removals of a session deleted just before
    dispose: () => plugin.close(),
  };
}

export default { id: "pty-supervisor", server };
