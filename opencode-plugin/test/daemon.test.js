import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { Daemon, socketPath } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { PTYSUP, context, removeSandbox, sandbox, stopDaemon } from "./helpers.js";

const boxes = [];
after(async () => {
  for (const box of boxes) {
    await stopDaemon(box, null);
    removeSandbox(box);
  }
});

test("the socket path is the CLI's", () => {
  assert.equal(socketPath({ PTYSUP_SOCKET: "/x/s.sock" }), "/x/s.sock");
  assert.equal(socketPath({ XDG_RUNTIME_DIR: "/run/user/7" }), "/run/user/7/pty-supervisor/control.sock");
  assert.equal(socketPath({}), `/tmp/pty-supervisor-${process.getuid()}/control.sock`);
});

test("no daemon and no start: the tool error says how to start one", async () => {
  const box = sandbox();
  boxes.push(box);
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  await assert.rejects(plugin.handlers().pty_list({}, context(box)), (err) => {
    assert.match(err.message, /^pty_list: the pty-supervisor daemon is unavailable: no pty-supervisor daemon is running on .*control\.sock; start it with `ptysup daemon --socket /);
    return true;
  });
});

test("a ptysup that cannot be run: the error names it", async () => {
  const box = sandbox();
  boxes.push(box);
  const daemon = new Daemon({ env: box.env, command: ["/no/such/ptysup"] });
  const plugin = new PtyPlugin({ directory: box.project, daemon });
  await assert.rejects(plugin.handlers().pty_list({}, context(box)), /is not running and could not be started: `\/no\/such\/ptysup` is not installed/);
});

test("the daemon is started on demand with the recorded ptysup", async () => {
  const box = sandbox();
  boxes.push(box);
  const daemon = new Daemon({ env: box.env, command: PTYSUP });
  const plugin = new PtyPlugin({ directory: box.project, daemon });
  try {
    const listed = await plugin.handlers().pty_list({}, context(box));
    assert.match(listed, /No terminals in this project/);
    assert.ok(fs.existsSync(box.socket));
    assert.ok(fs.existsSync(path.join(path.dirname(box.socket), "control.sock.lock")));
  } finally {
    plugin.close();
  }
});

test("a daemon restarted under the plugin is reached again", async () => {
  const box = sandbox();
  boxes.push(box);
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: PTYSUP }) });
  try {
    const tools = plugin.handlers();
    await tools.pty_list({}, context(box));
    await plugin.daemon.call("stop");
    for (let i = 0; i < 100 && fs.existsSync(box.socket); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(await tools.pty_list({}, context(box)), /No terminals/);
  } finally {
    plugin.close();
  }
});
