// Issue 25, item 3: the tools reach only the terminals of the OpenCode project they run in,
// and pty_kill asks the user as the bash tool does.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { Daemon } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { context, removeSandbox, sandbox, startDaemon, stopDaemon } from "./helpers.js";

let box;
let child;
let plugin;
let tools;
let theirs; // a terminal a person opened by hand (`ptysup spawn`)
let other; // a terminal of another OpenCode project
let otherDir;

before(async () => {
  box = sandbox();
  child = await startDaemon(box);
  plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  tools = plugin.handlers();
  theirs = (await plugin.daemon.call("spawn", { argv: ["sh", "-c", "echo SECRET-TOKEN=abc123; exec sleep 600"], cwd: box.root })).id;
  otherDir = path.join(box.root, "other-project");
  fs.mkdirSync(otherDir);
  other = /^ID: (\S+)$/m.exec(await tools.pty_spawn({ command: "sleep", args: ["600"] }, context(box, { directory: otherDir })))[1];
});

after(async () => {
  await plugin?.close();
  await stopDaemon(box, child);
  removeSandbox(box);
});

test("a terminal opened by hand is out of reach: read, write, wait, screen and kill are refused, saying why", async () => {
  const ctx = context(box);
  const calls = {
    pty_read: { id: theirs },
    pty_write: { id: theirs, data: "echo hi\\n" },
    pty_wait: { id: theirs, pattern: "SECRET", timeout: 1 },
    pty_screen: { id: theirs },
    pty_kill: { id: theirs, cleanup: true },
  };
  for (const [name, args] of Object.entries(calls)) {
    await assert.rejects(tools[name](args, ctx), (err) => {
      assert.match(err.message, new RegExp(`^${name}: terminal ${theirs} is not one of this project's terminals: it was not started by OpenCode's pty_spawn`));
      assert.doesNotMatch(err.message, /SECRET/);
      return true;
    });
  }
  assert.equal(ctx.asked.length, 0, "nothing was asked for a terminal out of reach");
  const still = await plugin.daemon.call("info", { session: theirs });
  assert.equal(still.state, "running");
});

test("a terminal of another project is refused, naming that project", async () => {
  const ctx = context(box);
  await assert.rejects(tools.pty_read({ id: other }, ctx), new RegExp(`terminal ${other} is not one of this project's terminals: it belongs to the OpenCode project in ${otherDir}`));
  await assert.rejects(tools.pty_kill({ id: other }, ctx), /not one of this project's terminals/);
  assert.equal((await plugin.daemon.call("info", { session: other })).state, "running");
});

test("pty_list shows only this project's and says so", async () => {
  const ctx = context(box);
  const mine = /^ID: (\S+)$/m.exec(await tools.pty_spawn({ command: "sleep", args: ["600"], description: "mine" }, ctx))[1];
  const listed = await tools.pty_list({}, ctx);
  assert.match(listed, new RegExp(`\\[${mine}\\] mine`));
  assert.doesNotMatch(listed, new RegExp(`\\[(${theirs}|${other})\\]`));
  assert.match(listed, /Only this project's terminals are listed, and only they can be read, written, waited for or killed/);
  await tools.pty_kill({ id: mine, cleanup: true }, ctx);
});

test("pty_kill asks permission as the bash tool does; refused, nothing is killed", async () => {
  const mine = /^ID: (\S+)$/m.exec(await tools.pty_spawn({ command: "sleep", args: ["600"], description: "to end" }, context(box)))[1];
  const refusing = context(box, {
    async ask(request) {
      refusing.asked.push(request);
      throw new Error("the user rejected permission to use this specific tool call");
    },
  });
  await assert.rejects(tools.pty_kill({ id: mine, cleanup: true }, refusing), /rejected/);
  assert.deepEqual(refusing.asked[0].permission, "bash");
  assert.deepEqual(refusing.asked[0].patterns, [`ptysup rm ${mine}`]);
  assert.deepEqual(refusing.asked[0].always, ["ptysup rm *"]);
  assert.equal((await plugin.daemon.call("info", { session: mine })).state, "running");

  const ctx = context(box);
  assert.match(await tools.pty_kill({ id: mine }, ctx), /Killed/);
  assert.deepEqual(ctx.asked.at(-1).patterns, [`ptysup kill ${mine}`]);
  await tools.pty_kill({ id: mine, cleanup: true }, ctx);
});

test("with PTYSUP_OPENCODE_SCOPE=all every terminal is in reach, and the list says so", async () => {
  const all = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }), scope: "all" });
  try {
    const ctx = context(box);
    assert.match(await all.handlers().pty_read({ id: theirs }, ctx), /SECRET-TOKEN=abc123/);
    const listed = await all.handlers().pty_list({}, ctx);
    assert.match(listed, new RegExp(`\\[${theirs}\\]`));
    assert.match(listed, /PTYSUP_OPENCODE_SCOPE=all/);
  } finally {
    await all.close();
  }
});
