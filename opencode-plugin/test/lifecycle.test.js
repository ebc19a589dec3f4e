// Issue 25, item 6: exit notices across `ptysup upgrade`, and the terminals of a deleted
// OpenCode session removed even though OpenCode disposes the plugin right after the event.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Daemon } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { context, removeSandbox, sandbox, sleep, startDaemon, stopDaemon } from "./helpers.js";

let box;
let child;

before(async () => {
  box = sandbox();
  child = await startDaemon(box);
});

after(async () => {
  await stopDaemon(box, child);
  removeSandbox(box);
});

const idOf = (text) => /^ID: (\S+)$/m.exec(text)[1];

test("an exit notice is not lost across `ptysup upgrade`, with no tool call after it", async () => {
  const prompts = [];
  const client = { session: { promptAsync: async (request) => prompts.push(request) } };
  const plugin = new PtyPlugin({ client, directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  try {
    const ctx = context(box, { sessionID: "ses_upgrade" });
    const id = idOf(await plugin.handlers().pty_spawn({ command: "sh", args: ["-c", "sleep 3; echo bye; exit 4"], description: "outlives an upgrade", notifyOnExit: true }, ctx));
    const other = new Daemon({ env: box.env, autostart: false });
    await other.call("upgrade");
    other.close();
    for (let i = 0; i < 200 && !prompts.length; i++) await sleep(50);
    assert.equal(prompts.length, 1, "the notice came");
    assert.match(prompts[0].body.parts[0].text, new RegExp(`ID: ${id}\\nDescription: outlives an upgrade\\nExit code: 4\\nLast line: bye`));
  } finally {
    await plugin.close();
  }
});

test("dispose right after session.deleted: the session's terminals are removed all the same", async () => {
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  const tools = plugin.handlers();
  const ctx = context(box, { sessionID: "ses_deleted" });
  const ids = [];
  // a shell that ignores SIGHUP takes the daemon a grace period (PTYSUP_KILL_GRACE) to end
  for (let i = 0; i < 3; i++) ids.push(idOf(await tools.pty_spawn({ command: "sh", args: ["-c", "trap '' HUP; sleep 600"] }, ctx)));
  const kept = idOf(await tools.pty_spawn({ command: "sleep", args: ["600"] }, context(box, { sessionID: "ses_kept" })));
  // what OpenCode does: the event (not awaited), and dispose 6 ms later
  plugin.sessionDeleted("ses_deleted");
  await sleep(6);
  await plugin.close();
  const look = new Daemon({ env: box.env, autostart: false });
  try {
    for (const id of ids) await assert.rejects(look.call("info", { session: id }), /no session/, `terminal ${id}`);
    assert.equal((await look.call("info", { session: kept })).state, "running");
    await look.call("remove", { session: kept });
  } finally {
    look.close();
  }
});

test("a removal the daemon has begun is finished even if the client goes away", async () => {
  const d = new Daemon({ env: box.env, autostart: false });
  const s = await d.call("spawn", { argv: ["sh", "-c", "trap '' HUP; sleep 600"] });
  const conn = await d.connection();
  conn.request("remove", { session: s.id }).catch(() => {});
  await sleep(50);
  d.close();
  await sleep(1500); // past the kill grace (0.3 s here) and SIGTERM's
  const look = new Daemon({ env: box.env, autostart: false });
  try {
    await assert.rejects(look.call("info", { session: s.id }), /no session/);
  } finally {
    look.close();
  }
});
