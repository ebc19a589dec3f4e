// Issue 23, item 2, for the plugin: it sends nothing to a socket another user could have
// placed. `nobody` (uid 65534) plays that user; needs root to become it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { Daemon } from "../daemon.js";
import { socketAddress } from "../wire.js";
import { PTYSUP, removeSandbox, sandbox, sleep, stopDaemon } from "./helpers.js";

const NOBODY = 65534;
const root = process.getuid() === 0;
const skip = root ? false : "becoming another user needs root";

// A daemon look-alike: greets every connection (with its real uid) and logs each
// connection and how many bytes it got.
const FAKE = `
const net = require("node:net");
const fs = require("node:fs");
const [dir, mode, sock, log] = process.argv.slice(1);
if (!fs.existsSync(dir)) {
  fs.mkdirSync(dir);
  fs.chmodSync(dir, parseInt(mode, 8));
}
const server = net.createServer((c) => {
  fs.appendFileSync(log, "connection\\n");
  const hello = Buffer.from(JSON.stringify({ type: "hello", protocol: 1, capabilities: [], server: "pty-supervisor", pid: process.pid, uid: process.getuid() }));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(hello.length);
  c.write(Buffer.concat([head, hello]));
  let n = 0;
  c.on("data", (d) => (n += d.length));
  c.on("error", () => {});
  c.on("close", () => fs.appendFileSync(log, "bytes " + n + "\\n"));
});
server.listen(sock, () => {
  fs.chmodSync(sock, 0o777);
  process.stdout.write("ready\\n");
});
`;

const boxes = [];
const fakes = [];
after(async () => {
  for (const fake of fakes) fake.kill("SIGKILL");
  for (const box of boxes) {
    await stopDaemon(box, null);
    removeSandbox(box);
  }
});

function newBox() {
  const box = sandbox();
  boxes.push(box);
  fs.chmodSync(box.root, 0o755);
  const world = path.join(box.root, "tmp");
  fs.mkdirSync(world);
  fs.chmodSync(world, 0o1777);
  return { box, world };
}

function fakeDaemon(dir, sock, log, mode = "755") {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", FAKE, dir, mode, sock, log], { uid: NOBODY, gid: NOBODY, stdio: ["ignore", "pipe", "pipe"] });
    fakes.push(child);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.once("data", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`the fake daemon exited with ${code}: ${err}`)));
  });
}

async function record(log) {
  await sleep(200);
  return fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
}

test("a directory another user made where the socket would be: refused, not even connected", { skip }, async () => {
  const { box, world } = newBox();
  const dir = path.join(world, `pty-supervisor-${process.getuid()}`);
  const sock = path.join(dir, "control.sock");
  const log = path.join(world, "nobody.log");
  await fakeDaemon(dir, sock, log);
  const daemon = new Daemon({ env: { ...box.env, PTYSUP_SOCKET: sock, OPENAI_API_KEY: "sk-secret" }, command: PTYSUP });
  await assert.rejects(daemon.call("status"), (err) => {
    assert.equal(err.name, "Unreachable");
    assert.match(err.message, new RegExp(`^refusing to connect to ${sock}, where another user could have put a socket of their own`));
    assert.match(err.message, new RegExp(`socket directory ${dir} belongs to uid ${NOBODY}, not to you \\(uid 0\\)`));
    assert.match(err.message, /its mode is 755/);
    return true;
  });
  daemon.close();
  assert.equal(await record(log), "");
  assert.deepEqual(fs.readdirSync(dir), ["control.sock"]);
});

test("a daemon of another user in a private directory of ours: the plugin never says hello", { skip }, async () => {
  const { box, world } = newBox();
  const theirs = path.join(world, "theirs");
  const log = path.join(theirs, "log");
  await fakeDaemon(theirs, path.join(theirs, "s.sock"), log);
  fs.mkdirSync(path.dirname(box.socket), { mode: 0o700 });
  fs.linkSync(path.join(theirs, "s.sock"), box.socket);
  const daemon = new Daemon({ env: box.env, autostart: false });
  await assert.rejects(daemon.call("status"), (err) => {
    assert.equal(err.name, "Unreachable");
    assert.match(err.message, new RegExp(`^refusing to talk to the daemon on ${box.socket}: it runs as uid ${NOBODY}, not as you \\(uid 0\\)`));
    return true;
  });
  daemon.close();
  fs.unlinkSync(box.socket);
  assert.equal(await record(log), "connection\nbytes 0\n");
});

test("our own directory open to others: refused, saying how to fix it", { skip: process.platform === "linux" ? false : "Linux paths" }, async () => {
  const box = sandbox();
  boxes.push(box);
  const dir = path.dirname(box.socket);
  const daemon = new Daemon({ env: box.env, command: PTYSUP });
  await daemon.call("status");
  daemon.close();
  fs.chmodSync(dir, 0o750);
  const again = new Daemon({ env: box.env, command: PTYSUP });
  await assert.rejects(again.call("status"), new RegExp(`socket directory ${dir} is open to other users \\(mode 750, owned by you\\); fix it with: chmod 700 ${dir}`));
  again.close();
  fs.chmodSync(dir, 0o700);
});

test("on Linux the socket is reached through the directory checked, held open", { skip: process.platform === "linux" ? false : "Linux only" }, () => {
  const box = sandbox();
  boxes.push(box);
  const dir = path.dirname(box.socket);
  fs.mkdirSync(dir, { mode: 0o700 });
  const target = socketAddress(box.socket);
  try {
    const fd = /^\/proc\/self\/fd\/(\d+)\/control\.sock$/.exec(target.address)[1];
    assert.equal(fs.readlinkSync(`/proc/self/fd/${fd}`), dir);
  } finally {
    target.release();
  }
  assert.throws(() => socketAddress(path.join(box.root, "missing", "s.sock")), { code: "ENOENT" });
});
