// Issue 25, items 4, 6 and 7, against daemons that misbehave: one that greets and never
// answers, one frozen with SIGSTOP, none at all, one whose subscription never ends, one
// whose `events` fails; and the plumbing under them (frames, the socket path).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, test } from "node:test";

import { Daemon, socketPath } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { FrameReader, encodeControl } from "../wire.js";
import { PYTHON, context, removeSandbox, sandbox, sleep, startDaemon, stopDaemon } from "./helpers.js";

const boxes = [];
const servers = [];
after(async () => {
  for (const server of servers) server.close();
  for (const box of boxes) {
    await stopDaemon(box, null);
    removeSandbox(box);
  }
});

function newBox() {
  const box = sandbox();
  boxes.push(box);
  fs.mkdirSync(path.dirname(box.socket), { recursive: true, mode: 0o700 });
  return box;
}

// A daemon look-alike on `socket`: greets, then gives each request to `handle(message,
// send)`, which answers with send(...) or not at all.
function fakeDaemon(socket, handle) {
  const server = net.createServer((c) => {
    const reader = new FrameReader();
    const send = (message) => c.writable && c.write(encodeControl(message));
    send({ type: "hello", protocol: 1, capabilities: [], server: "fake", pid: process.pid, uid: process.getuid() });
    c.on("data", (d) => {
      for (const payload of reader.feed(d)) {
        const message = JSON.parse(payload.toString("utf8"));
        if (message.type !== "hello") handle(message, send, c);
      }
    });
    c.on("error", () => {});
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(socket, () => resolve(server)));
}

const result = (request, value) => ({ type: "result", id: request.id, result: value });

function session(box, over = {}) {
  return {
    id: "1",
    name: null,
    argv: ["sh"],
    cwd: box.project,
    pid: 1,
    state: "running",
    exit_code: null,
    signal: null,
    signal_name: null,
    start: 0,
    end: 10,
    labels: { "opencode.directory": box.project, "opencode.session": "ses_test1" },
    context: { directory: box.project, project_id: "global" },
    ...over,
  };
}

async function timed(promise) {
  const started = Date.now();
  const value = await promise;
  return [value, Date.now() - started];
}

test("item 4: shell.env with a daemon that greets and never answers: a few hundred ms, then not asked again for a while", { timeout: 60000 }, async () => {
  const box = newBox();
  await fakeDaemon(box.socket, () => {});
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false, requestTimeout: 500 }) });
  try {
    const out = { env: {} };
    const [, first] = await timed(plugin.shellEnv({ cwd: box.project }, out));
    assert.ok(first < 900, `first call: ${first} ms`);
    assert.deepEqual(out.env, {});
    const [, second] = await timed(plugin.shellEnv({ cwd: box.project }, out));
    assert.ok(second < 50, `remembered: ${second} ms`);
    const [said, took] = await timed(plugin.handlers().pty_list({}, context(box)).catch((err) => err.message));
    assert.match(said, /^pty_list: the pty-supervisor daemon is unavailable: the daemon did not answer 'list' within 0.5 s\. The terminals themselves are not affected/);
    assert.ok(took < 2000, `${took} ms`);
  } finally {
    await plugin.close();
  }
});

test("item 4: shell.env with no daemon, or one that is slow to start: within the budget, remembered, tried again later", { timeout: 60000 }, async () => {
  const box = newBox();
  const none = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  const starting = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: ["sh", "-c", "sleep 3"] }) });
  try {
    for (const plugin of [none, starting]) {
      let asked = 0;
      const connection = plugin.daemon.connection.bind(plugin.daemon);
      plugin.daemon.connection = (...a) => (asked++, connection(...a));
      const [, first] = await timed(plugin.shellEnv({ cwd: box.project }, { env: {} }));
      assert.ok(first < 900, `first call: ${first} ms`);
      const [, second] = await timed(plugin.shellEnv({ cwd: box.project }, { env: {} }));
      assert.ok(second < 50, `second call: ${second} ms`);
      assert.equal(asked, 1, "the failure is remembered");
      plugin.shellRetryAt = Date.now() - 1; // the retry period is over
      await plugin.shellEnv({ cwd: box.project }, { env: {} });
      assert.ok(asked >= 2, "asked again after the retry period");
    }
  } finally {
    await none.close();
    await starting.close();
  }
});

test("item 4: a frozen daemon (SIGSTOP): shell.env within the budget; a tool says the daemon is unavailable", { timeout: 60000 }, async () => {
  const box = newBox();
  const daemon = await startDaemon(box);
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false, greeting: 1000 }) });
  process.kill(daemon.pid, "SIGSTOP");
  try {
    const [, first] = await timed(plugin.shellEnv({ cwd: box.project }, { env: {} }));
    assert.ok(first < 900, `${first} ms`);
    const [said, took] = await timed(plugin.handlers().pty_list({}, context(box)).catch((err) => err.message));
    assert.match(said, /^pty_list: the pty-supervisor daemon is unavailable: cannot reach the pty-supervisor daemon: .* accepted the connection but did not greet within 1 s: it may be stopped \(SIGSTOP\) or stuck/);
    assert.ok(took < 3000, `${took} ms`);
  } finally {
    process.kill(daemon.pid, "SIGCONT");
    await plugin.close();
    await stopDaemon(box, daemon);
  }
});

test("item 4: a subscription that never ends: pty_read honours the abort signal, and gives up in time", { timeout: 20000 }, async () => {
  const box = newBox();
  await fakeDaemon(box.socket, (m, send) => {
    if (m.op === "info") send(result(m, session(box)));
    else if (m.op === "subscribe") send(result(m, { sub: 1, start: 0, end: 10, truncated: false }));
    else if (m.op === "unsubscribe") send(result(m, { sub: m.sub }));
    // `wait` is never answered
  });
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false, readTimeout: 500 }) });
  const tools = plugin.handlers();
  try {
    for (const call of [() => tools.pty_read, () => tools.pty_wait]) {
      const abort = new AbortController();
      const ctx = context(box, { abort: abort.signal });
      setTimeout(() => abort.abort(), 300);
      const args = call() === tools.pty_wait ? { id: "1", timeout: 600 } : { id: "1" };
      const [said, took] = await timed(call()(args, ctx).catch((err) => err.message));
      assert.match(said, /^pty_(read|wait): aborted$/);
      assert.ok(took < 1500, `${took} ms`);
    }
    const [said, took] = await timed(tools.pty_read({ id: "1" }, context(box)).catch((err) => err.message));
    assert.match(said, /^pty_read: the pty-supervisor daemon is unavailable: the daemon did not send terminal 1's output within 0.5 s/);
    assert.ok(took < 2000, `${took} ms`);
  } finally {
    await plugin.close();
  }
});

test("item 7: when `events` fails, pty_spawn with notifyOnExit still returns the terminal, and the notices come once it works", { timeout: 20000 }, async () => {
  const box = newBox();
  let events = 0;
  let tell = null;
  await fakeDaemon(box.socket, (m, send) => {
    if (m.op === "spawn") send(result(m, session(box, { id: "7" })));
    else if (m.op === "info") send(result(m, session(box, { id: "7" })));
    else if (m.op === "events") {
      events++;
      if (events === 1) send({ type: "error", id: m.id, code: "internal", message: "events: broken for a while" });
      else {
        send(result(m, { sub: 3 }));
        tell = () => send({ type: "event", event: "exited", sub: 3, session: "7", exit_code: 0, signal: null, end: 10 });
      }
    } else if (m.op === "subscribe") {
      send(result(m, { sub: 4, start: 0, end: 3, truncated: false }));
      send({ type: "event", event: "end", sub: 4, reason: "complete", offset: 3 });
    } else if (m.op === "unsubscribe") send(result(m, { sub: m.sub }));
  });
  const prompts = [];
  const client = { session: { promptAsync: async (request) => prompts.push(request) } };
  const plugin = new PtyPlugin({ client, directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  try {
    const text = await plugin.handlers().pty_spawn({ command: "sh", notifyOnExit: true }, context(box));
    assert.match(text, /^<pty_spawned>\nID: 7\n/);
    assert.match(text, /The exit notice could not be set up yet: events: broken for a while/);
    for (let i = 0; i < 100 && !tell; i++) await sleep(50);
    assert.ok(tell, "events was asked for again");
    tell();
    for (let i = 0; i < 100 && !prompts.length; i++) await sleep(50);
    assert.equal(prompts.length, 1);
    assert.match(prompts[0].body.parts[0].text, /ID: 7\nDescription: sh\nExit code: 0/);
  } finally {
    await plugin.close();
  }
});

test("item 7: the frame reader copies each byte once, whatever the chunks", { timeout: 120000 }, () => {
  const payload = Buffer.alloc(1024 * 1024, 0x61);
  payload[0] = 0x7b;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length);
  const stream = Buffer.concat([head, payload, head, payload]);
  // count the bytes every concat and copy makes while the reader works
  let copied = 0;
  const { concat } = Buffer;
  const { copy } = Buffer.prototype;
  Buffer.concat = (list, ...rest) => {
    const out = concat.call(Buffer, list, ...rest);
    copied += out.length;
    return out;
  };
  Buffer.prototype.copy = function (target, start = 0, from = 0, to = this.length) {
    const n = copy.call(this, target, start, from, to);
    copied += n;
    return n;
  };
  const frames = [];
  try {
    const reader = new FrameReader();
    for (let at = 0; at < stream.length; at += 64) frames.push(...reader.feed(stream.subarray(at, at + 64)));
  } finally {
    Buffer.concat = concat;
    Buffer.prototype.copy = copy;
  }
  assert.equal(frames.length, 2);
  assert.ok(frames.every((f) => f.equals(payload)));
  assert.ok(copied <= 2 * stream.length, `${copied} bytes copied for a stream of ${stream.length}`);
});

test("item 7: the socket path is supervisor/paths.py's, and a path too long for a socket is refused as there", async () => {
  const cases = [
    { PTYSUP_SOCKET: "/x//y/../s.sock" },
    { PTYSUP_SOCKET: "~/s.sock", HOME: process.env.HOME },
    { PTYSUP_SOCKET: "relative/s.sock" },
    { XDG_RUNTIME_DIR: "/run/user/7" },
    { XDG_RUNTIME_DIR: "relative/run" },
    { XDG_RUNTIME_DIR: "" },
    {},
  ];
  for (const env of cases) {
    const python = execFileSync(PYTHON, ["-c", "import json,sys; from supervisor.paths import resolve_socket; print(resolve_socket(None, json.loads(sys.argv[1])))", JSON.stringify(env)], {
      env: { ...process.env, PYTHONPATH: path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "..", "..") },
    })
      .toString()
      .trim();
    assert.equal(socketPath(env), python, JSON.stringify(env));
  }
  const box = newBox();
  const long = path.join(box.root, "d".repeat(120), "control.sock");
  const daemon = new Daemon({ env: { ...box.env, PTYSUP_SOCKET: long }, autostart: false });
  await assert.rejects(daemon.call("status"), new RegExp(`socket path is ${Buffer.byteLength(long)} bytes long, over the limit of 107: `));
  daemon.close();
});
