// What each pty_* tool does, on a Daemon; arguments are checked here too, so a bad one is
// refused with its name whoever calls. Every answer is plain text for the model.
import path from "node:path";

import { readKept, waitForPattern } from "./output.js";
import { clip, compileRegex, numbered, parseEscapes, plainLines, preview, typedCommands } from "./text.js";
import { DaemonError } from "./wire.js";

export const DEFAULT_LIMIT = 500;
export const DEFAULT_WAIT = 60;
export const MAX_WAIT = 3600;
const MAX_LABEL = 1024;
const TAIL = 20;

function fail(tool, message) {
  throw new Error(`${tool}: ${message}`);
}

function check(tool, args, spec) {
  if (args === null || typeof args !== "object" || Array.isArray(args)) fail(tool, "the arguments must be an object");
  for (const key of Object.keys(args)) if (!(key in spec) && args[key] !== undefined) fail(tool, `unknown argument '${key}'`);
  for (const [key, [type, required]] of Object.entries(spec)) {
    const value = args[key];
    if (value === undefined || value === null) {
      if (required) fail(tool, `'${key}' is required`);
      continue;
    }
    const ok = {
      string: typeof value === "string",
      text: typeof value === "string" && value.length > 0,
      boolean: typeof value === "boolean",
      count: Number.isInteger(value) && value >= 0,
      seconds: typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= MAX_WAIT,
      strings: Array.isArray(value) && value.every((v) => typeof v === "string"),
      record:
        typeof value === "object" && !Array.isArray(value) && Object.values(value).every((v) => typeof v === "string"),
    }[type];
    if (!ok) {
      const wanted = {
        string: "a string",
        text: "a non-empty string",
        boolean: "true or false",
        count: "a whole number from 0",
        seconds: `a number of seconds from 0 to ${MAX_WAIT}`,
        strings: "a list of strings",
        record: "an object of string values",
      }[type];
      fail(tool, `'${key}' must be ${wanted}, not ${JSON.stringify(value)}`);
    }
  }
  if (typeof args.id === "string" && !/^[A-Za-z0-9_.@:+-]{1,64}$/.test(args.id)) fail(tool, `'id' ${JSON.stringify(args.id)} is not a terminal id`);
}

// The daemon's answer, or a tool error that says which terminal and what went wrong.
async function call(tool, daemon, op, args, options) {
  try {
    return await daemon.call(op, args, options);
  } catch (err) {
    if (err instanceof DaemonError && err.code === "not_found" && args.session !== undefined) {
      fail(tool, `no terminal '${args.session}'; pty_list shows the terminals`);
    }
    fail(tool, err.message);
  }
}

function label(value) {
  return value.length > MAX_LABEL ? value.slice(0, MAX_LABEL - 1) + "…" : value;
}

function titleOf(s) {
  return s.labels?.["opencode.title"] || s.name || s.argv.join(" ");
}

function statusOf(s) {
  if (s.state === "running") return "running";
  if (s.signal_name) return `killed by ${s.signal_name}`;
  return s.exit_code === null ? "exited" : `exited with ${s.exit_code}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const quote = (word) => `'${word.replaceAll("'", "'\\''")}'`;

// A word as a POSIX shell reads it back: bare when plain, else in single quotes.
export function shellWord(word) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : quote(word);
}

// What pty_spawn asks the user to allow, written as the shell line that would run the same:
// every variable of env in front of the command (PATH, LD_PRELOAD, HOME, GIT_PAGER... each
// can choose what runs, and no list of the harmless ones can be trusted to be complete), so
// that a rule or an earlier "always" for `git *` does not cover `GIT_PAGER=x git log`.
// "Always" covers this program with exactly these variables and values, whatever the
// arguments; a wildcard character in them would widen it, so then only this run is allowed.
export function spawnPermission(command, args, env) {
  const program = command.includes("=") ? quote(command) : shellWord(command);
  const head = [...Object.keys(env).sort().map((key) => `${key}=${shellWord(env[key])}`), program].join(" ");
  return {
    pattern: [head, ...args.map(shellWord)].join(" "),
    always: /[*?]/.test(head) ? [] : [`${head} *`],
  };
}

export async function spawn(daemon, args, ctx) {
  check("pty_spawn", args, {
    command: ["text", true],
    args: ["strings", false],
    workdir: ["text", false],
    env: ["record", false],
    title: ["string", false],
    description: ["string", false],
    notifyOnExit: ["boolean", false],
  });
  const argv = [args.command, ...(args.args ?? [])];
  const commandLine = argv.join(" ");
  for (const key of Object.keys(args.env ?? {})) {
    if (!ENV_NAME.test(key)) fail("pty_spawn", `'env' has ${JSON.stringify(key)}, which is not a variable name (letters, digits and _, not starting with a digit)`);
  }
  const asked = spawnPermission(args.command, args.args ?? [], args.env ?? {});
  await ctx.ask({
    permission: "bash",
    patterns: [asked.pattern],
    always: asked.always,
    metadata: { command: asked.pattern, description: args.description ?? "", env: args.env ?? {} },
  });
  const cwd = args.workdir ? path.resolve(ctx.directory, args.workdir) : ctx.directory;
  const title = args.title || args.description || commandLine;
  const labels = {
    "opencode.session": ctx.sessionID,
    "opencode.directory": ctx.directory,
    "opencode.title": label(title),
  };
  if (args.description) labels["opencode.description"] = label(args.description);
  const env = { ...process.env, ...(args.env ?? {}) };
  const s = await call("pty_spawn", daemon, "spawn", { argv, cwd, env, project: ctx.directory, labels, cols: 120, rows: 40 });
  return {
    session: s,
    text: [
      "<pty_spawned>",
      `ID: ${s.id}`,
      `Title: ${title}`,
      `Command: ${commandLine}`,
      `Workdir: ${s.cwd}`,
      `Project: ${s.context?.directory} (${s.context?.project_id})`,
      `PID: ${s.pid}`,
      `Status: ${statusOf(s)}`,
      `Watch it live: ptysup attach ${s.id}`,
      "</pty_spawned>",
    ].join("\n"),
  };
}

// "Always" for a typed line covers its program whatever the arguments, only where the first
// word is a plain program name: `GIT_PAGER=x git log` or `* foo` would otherwise be allowed
// for every command after them.
export function writeAlways(command) {
  const head = command.trim().split(/\s+/)[0];
  return /^[A-Za-z0-9_@%+:,./-]+$/.test(head) ? [`${head} *`] : [];
}

export async function write(daemon, args, ctx, marks) {
  check("pty_write", args, { id: ["text", true], data: ["string", true] });
  const bytes = parseEscapes(args.data);
  if (bytes.length === 0) fail("pty_write", "'data' is empty: nothing to type");
  const s = await call("pty_write", daemon, "info", { session: args.id });
  if (s.state !== "running") fail("pty_write", `terminal ${s.id} has ${statusOf(s)}; it takes no input`);
  for (const command of typedCommands(bytes)) {
    await ctx.ask({ permission: "bash", patterns: [command], always: writeAlways(command), metadata: { command } });
  }
  marks.set(s.id, s.end);
  const { written } = await call("pty_write", daemon, "write", { session: s.id, data_b64: bytes.toString("base64") });
  return `Sent ${written} bytes to terminal ${s.id}: "${preview(bytes)}"`;
}

export async function read(daemon, args) {
  check("pty_read", args, {
    id: ["text", true],
    offset: ["count", false],
    limit: ["count", false],
    pattern: ["text", false],
    ignoreCase: ["boolean", false],
  });
  const regex = args.pattern ? compileRegex(args.pattern, args.ignoreCase, "pty_read: 'pattern'") : null;
  const s = await call("pty_read", daemon, "info", { session: args.id });
  let kept;
  try {
    kept = await readKept(daemon, s.id);
  } catch (err) {
    fail("pty_read", err.message);
  }
  const lines = plainLines(kept.text);
  const offset = args.offset ?? 0;
  const limit = args.limit ?? DEFAULT_LIMIT;
  const head = `<pty_output id="${s.id}" status="${statusOf(s)}"${regex ? ` pattern="${args.pattern}"` : ""}>`;
  const out = [head];
  if (kept.truncated) out.push(`(the first ${kept.start} bytes of output are no longer kept; line numbers count from what is)`);
  if (regex) {
    const matches = [];
    lines.forEach((text, i) => regex.test(text) && matches.push(numbered(i + 1, text)));
    const shown = matches.slice(offset, offset + limit);
    if (!matches.length) out.push(`No lines matched the pattern '${args.pattern}'.`, `Total lines: ${lines.length}`);
    else {
      out.push(...shown, "");
      if (offset + shown.length < matches.length) {
        out.push(`(${shown.length} of ${matches.length} matches shown. Use offset=${offset + shown.length} to see more.)`);
      } else out.push(`(${matches.length} match${matches.length === 1 ? "" : "es"} from ${lines.length} total lines)`);
    }
  } else if (!lines.length) {
    out.push("(No output yet)");
  } else {
    const shown = lines.slice(offset, offset + limit);
    out.push(...shown.map((text, i) => numbered(offset + i + 1, text)), "");
    if (offset + shown.length < lines.length) {
      out.push(`(More lines follow. Use offset=${offset + shown.length} to read beyond line ${offset + shown.length}.)`);
    } else out.push(`(End of output - total ${lines.length} lines)`);
  }
  out.push("</pty_output>");
  return out.join("\n");
}

export async function list(daemon, args, ctx) {
  check("pty_list", args ?? {}, {});
  const sessions = await call("pty_list", daemon, "list", { labels: { "opencode.directory": ctx.directory } });
  if (!sessions.sessions.length) return "<pty_list>\nNo terminals in this project.\n</pty_list>";
  const out = ["<pty_list>"];
  for (const s of sessions.sessions) {
    const mine = s.labels["opencode.session"] === ctx.sessionID ? "this session" : s.labels["opencode.session"];
    out.push(
      `[${s.id}] ${titleOf(s)}`,
      `  Command: ${s.argv.join(" ")}`,
      `  Status: ${statusOf(s)}`,
      `  PID: ${s.pid} | Output: ${s.end} bytes | Workdir: ${s.cwd}`,
      `  Created: ${s.created_at} | OpenCode session: ${mine}`,
      "",
    );
  }
  out.push(`Total: ${sessions.sessions.length} terminal(s). Watch one live: ptysup attach ID`, "</pty_list>");
  return out.join("\n");
}

export async function kill(daemon, args) {
  check("pty_kill", args, { id: ["text", true], cleanup: ["boolean", false] });
  const before = await call("pty_kill", daemon, "info", { session: args.id });
  let s = before;
  if (before.state === "running") s = await call("pty_kill", daemon, "kill", { session: before.id }, { timeout: 30000 });
  if (args.cleanup) s = (await call("pty_kill", daemon, "remove", { session: before.id }, { timeout: 30000 })).session;
  const action = before.state === "running" ? "Killed" : "Already ended";
  return [
    "<pty_killed>",
    `${action}: ${before.id}${args.cleanup ? " (removed; its output is gone)" : " (kept: pty_read still reads its output)"}`,
    `Title: ${titleOf(before)}`,
    `Command: ${before.argv.join(" ")}`,
    `Status: ${statusOf(s)}`,
    "</pty_killed>",
  ].join("\n");
}

async function tail(daemon, id) {
  const lines = plainLines((await readKept(daemon, id)).text);
  const first = Math.max(0, lines.length - TAIL);
  return lines.slice(first).map((text, i) => numbered(first + i + 1, text));
}

export async function wait(daemon, args, ctx, marks) {
  check("pty_wait", args, { id: ["text", true], pattern: ["text", false], timeout: ["seconds", false], ignoreCase: ["boolean", false] });
  const timeout = args.timeout ?? DEFAULT_WAIT;
  const regex = args.pattern ? compileRegex(args.pattern, args.ignoreCase, "pty_wait: 'pattern'") : null;
  const s = await call("pty_wait", daemon, "info", { session: args.id });
  if (!regex) {
    const res = await call("pty_wait", daemon, "wait", { session: s.id, timeout }, { timeout: (timeout + 30) * 1000 });
    if (res.timed_out) {
      return `<pty_wait_timeout>\nTerminal ${s.id} still runs after ${timeout} s. Use pty_read for its output, pty_kill to end it, or pty_wait again.\n</pty_wait_timeout>`;
    }
    const done = res.session;
    return ["<pty_waited>", `ID: ${done.id}`, `Status: ${statusOf(done)}`, `Exit code: ${done.exit_code ?? "none"}`, "", "Tail:", ...(await tail(daemon, done.id)), "</pty_waited>"].join("\n");
  }
  const since = Math.max(marks.get(s.id) ?? 0, s.start);
  let res;
  try {
    res = await waitForPattern(daemon, s.id, regex, { since, timeout, signal: ctx.abort });
  } catch (err) {
    fail("pty_wait", err.message);
  }
  if (res.outcome === "timeout") {
    return `<pty_wait_timeout>\nNo match for '${args.pattern}' in terminal ${s.id} within ${timeout} s (output searched from byte ${since}).\n</pty_wait_timeout>`;
  }
  if (res.outcome === "ended") {
    const code = res.end.exit_code ?? (res.end.signal ? `signal ${res.end.signal}` : "none");
    return [`<pty_waited>`, `ID: ${s.id}`, `Terminal ended before '${args.pattern}' appeared. Exit code: ${code}`, "", "Tail:", ...(await tail(daemon, s.id)), "</pty_waited>"].join("\n");
  }
  marks.set(s.id, res.offset);
  const before = res.text.slice(0, res.match.index);
  const lineStart = before.lastIndexOf("\n") + 1;
  const lineEnd = res.text.indexOf("\n", res.match.index + res.match[0].length);
  const matchedLine = plainLines(res.text.slice(lineStart, lineEnd === -1 ? undefined : lineEnd)).join(" | ");
  return [`<pty_matched id="${s.id}" pattern="${args.pattern}">`, `Matched: ${clip(res.match[0], 500)}`, `Line: ${clip(matchedLine)}`, "</pty_matched>"].join("\n");
}

export async function screen(daemon, args) {
  check("pty_screen", args, { id: ["text", true] });
  const sc = await call("pty_screen", daemon, "screen", { session: args.id });
  const s = await call("pty_screen", daemon, "info", { session: sc.session });
  const rows = [...sc.lines];
  while (rows.length && rows[rows.length - 1] === "") rows.pop();
  return [
    `<pty_screen id="${sc.session}" status="${statusOf(s)}" size="${sc.cols}x${sc.rows}" cursor="${sc.cursor.y + 1},${sc.cursor.x + 1}"${sc.title ? ` title="${sc.title}"` : ""}${sc.alternate ? ' alternate="yes"' : ""}>`,
    ...rows.map((row) => plainLines(row).join("")),
    "</pty_screen>",
  ].join("\n");
}
