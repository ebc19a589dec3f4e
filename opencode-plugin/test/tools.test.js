import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { Daemon } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { context, removeSandbox, sandbox, sleep, startDaemon, stopDaemon } from "./helpers.js";

let box;
let child;
let plugin;
let tools;

before(async () => {
  box = sandbox();
  child = await startDaemon(box);
  plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  tools = plugin.handlers();
});

after(async () => {
  plugin?.close();
  await stopDaemon(box, child);
  removeSandbox(box);
});

function idOf(text) {
  return /^ID: (\S+)$/m.exec(text)[1];
}

test("spawn, write, wait for a pattern, read, screen, kill", async () => {
  const ctx = context(box);
  const spawned = await tools.pty_spawn({ command: "bash", args: ["--norc", "--noprofile"], description: "a shell for the test" }, ctx);
  const id = idOf(spawned);
  assert.match(spawned, /Watch it live: ptysup attach \d+/);
  assert.match(spawned, new RegExp(`Workdir: ${fs.realpathSync(box.project)}`));
  assert.deepEqual(ctx.asked[0].permission, "bash");
  assert.deepEqual(ctx.asked[0].patterns, ["bash --norc --noprofile"]);

  const info = await plugin.daemon.call("info", { session: id });
  assert.equal(info.labels["opencode.session"], "ses_test1");
  assert.equal(info.labels["opencode.directory"], box.project);
  assert.equal(info.context.source, "explicit");
  assert.equal(info.context.directory, fs.realpathSync(box.project));

  const sent = await tools.pty_write({ id, data: "printf '\\\\033[31mred\\\\033[0m %s\\\\n' $OPENCODE_DIRECTORY; seq 1 30\\n" }, ctx);
  assert.match(sent, /^Sent \d+ bytes to terminal \d+/);
  assert.equal(ctx.asked.at(-1).patterns[0], "printf '\\033[31mred\\033[0m %s\\n' $OPENCODE_DIRECTORY; seq 1 30");
  const waited = await tools.pty_wait({ id, pattern: "^30$", timeout: 10 }, ctx);
  assert.match(waited, /<pty_matched/);
  assert.match(waited, /Line: 30/);

  const all = await tools.pty_read({ id }, ctx);
  assert.ok(all.includes(`red ${fs.realpathSync(box.project)}`), all);
  assert.doesNotMatch(all, /\x1b/);
  const page = await tools.pty_read({ id, offset: 2, limit: 3, pattern: "^[0-9]+$" }, ctx);
  assert.match(page, /\| 3\n\d+\| 4\n\d+\| 5\n/);
  assert.match(page, /3 of 30 matches shown. Use offset=5/);
  const none = await tools.pty_read({ id, pattern: "NOPE", ignoreCase: true }, ctx);
  assert.match(none, /No lines matched the pattern 'NOPE'/);

  const screen = await tools.pty_screen({ id }, ctx);
  assert.match(screen, /<pty_screen id="\d+" status="running" size="120x40"/);
  assert.match(screen, /\n30\n/);

  const listed = await tools.pty_list({}, ctx);
  assert.match(listed, new RegExp(`\\[${id}\\] a shell for the test`));
  assert.match(listed, /OpenCode session: this session/);

  const killed = await tools.pty_kill({ id }, ctx);
  assert.match(killed, /Killed: \d+ \(kept/);
  const again = await tools.pty_read({ id }, ctx);
  assert.match(again, /status="killed by SIGHUP"|status="exited/);
  const removed = await tools.pty_kill({ id, cleanup: true }, ctx);
  assert.match(removed, /Already ended: \d+ \(removed/);
  await assert.rejects(tools.pty_read({ id }, ctx), /pty_read: no terminal '\d+' \(it may have been removed\); pty_list shows this project's terminals/);
});

test("pty_wait without a pattern returns the exit code; a pattern that never comes times out", async () => {
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "sh", args: ["-c", "sleep 0.3; echo done; exit 3"] }, ctx));
  const pending = await tools.pty_wait({ id, pattern: "never", timeout: 0.2 }, ctx);
  assert.match(pending, /<pty_wait_timeout>/);
  const done = await tools.pty_wait({ id, timeout: 10 }, ctx);
  assert.match(done, /Exit code: 3/);
  assert.match(done, /\| done/);
  const late = await tools.pty_wait({ id, pattern: "never", timeout: 5 }, ctx);
  assert.match(late, /Terminal ended before 'never' appeared. Exit code: 3/);
});

test("every bad argument is refused with its name", async () => {
  const ctx = context(box);
  const cases = [
    ["pty_spawn", {}, /pty_spawn: 'command' is required/],
    ["pty_spawn", { command: "" }, /'command' must be a non-empty string/],
    ["pty_spawn", { command: "sh", args: "x" }, /'args' must be a list of strings/],
    ["pty_spawn", { command: "sh", env: { A: 1 } }, /'env' must be an object of string values/],
    ["pty_spawn", { command: "sh", bogus: 1 }, /unknown argument 'bogus'/],
    ["pty_spawn", { command: "no-such-program-here" }, /pty_spawn: .*no-such-program-here/],
    ["pty_spawn", { command: "sh", workdir: "/no/such/dir" }, /pty_spawn: .*\/no\/such\/dir/],
    ["pty_write", { id: "1" }, /pty_write: 'data' is required/],
    ["pty_write", { id: "99999", data: "x" }, /pty_write: no terminal '99999'/],
    ["pty_write", { id: "a b", data: "x" }, /pty_write: 'id' "a b" is not a terminal id/],
    ["pty_read", { id: "1", offset: -1 }, /'offset' must be a whole number from 0/],
    ["pty_read", { id: "1", limit: 1.5 }, /'limit' must be a whole number from 1/],
    ["pty_read", { id: "1", pattern: "(" }, /pty_read: 'pattern' '\(' is not a valid regular expression/],
    ["pty_wait", { id: "1", timeout: -1 }, /'timeout' must be a number of seconds from 0 to 3600/],
    ["pty_wait", { id: "1", pattern: "[" }, /pty_wait: 'pattern' '\[' is not a valid regular expression/],
    ["pty_kill", { id: "1", cleanup: "yes" }, /'cleanup' must be true or false/],
    ["pty_screen", {}, /pty_screen: 'id' is required/],
    ["pty_list", { x: 1 }, /pty_list: unknown argument 'x'/],
  ];
  for (const [name, args, expected] of cases) {
    await assert.rejects(tools[name](args, ctx), expected, `${name} ${JSON.stringify(args)}`);
  }
});

test("a write to an ended terminal says so", async () => {
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "true" }, ctx));
  await tools.pty_wait({ id }, ctx);
  await assert.rejects(tools.pty_write({ id, data: "x" }, ctx), /pty_write: terminal \d+ has exited with 0; it takes no input/);
});

test("shell.env gives the bash tool the project's context", async () => {
  const output = { env: {} };
  await plugin.shellEnv({ cwd: box.project, sessionID: "ses_test1" }, output);
  assert.equal(output.env.OPENCODE_DIRECTORY, fs.realpathSync(box.project));
  assert.equal(output.env.OPENCODE_PROJECT_ID, "global");
  assert.equal(output.env.PTYSUP_SOCKET, box.socket);
  assert.equal(output.env.PATH.split(":")[0], path.join(path.dirname(box.socket), "shim"));
});

test("deleting the OpenCode session ends its terminals, and only those", async () => {
  const mine = idOf(await tools.pty_spawn({ command: "sleep", args: ["60"] }, context(box, { sessionID: "ses_gone" })));
  const other = idOf(await tools.pty_spawn({ command: "sleep", args: ["60"] }, context(box, { sessionID: "ses_kept" })));
  assert.equal(await plugin.sessionDeleted("ses_gone"), 1);
  await assert.rejects(plugin.daemon.call("info", { session: mine }), /no session/);
  assert.equal((await plugin.daemon.call("info", { session: other })).state, "running");
  await plugin.sessionDeleted("ses_kept");
});

test("notifyOnExit tells the session that started the terminal", async () => {
  const prompts = [];
  const client = { session: { promptAsync: async (request) => prompts.push(request) } };
  const notifying = new PtyPlugin({ client, directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  try {
    const ctx = context(box, { sessionID: "ses_notify" });
    const id = idOf(await notifying.handlers().pty_spawn({ command: "sh", args: ["-c", "echo bye; exit 4"], description: "short job", notifyOnExit: true }, ctx));
    for (let i = 0; i < 100 && !prompts.length; i++) await sleep(50);
    assert.equal(prompts.length, 1);
    assert.equal(prompts[0].path.id, "ses_notify");
    assert.equal(prompts[0].body.agent, "build");
    const said = prompts[0].body.parts[0].text;
    assert.match(said, new RegExp(`ID: ${id}\\nDescription: short job\\nExit code: 4\\nLast line: bye`));
  } finally {
    notifying.close();
  }
});
