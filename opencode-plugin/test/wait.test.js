// Issue 25 against a real daemon: where pty_wait searches and what it says (item 1), output
// after a stray escape (item 2), runaway and costly patterns (item 5), a wait across an
// upgrade (item 6), and the small ones (item 7).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { Daemon } from "../daemon.js";
import { PtyPlugin } from "../plugin.js";
import { context, removeSandbox, sandbox, startDaemon, stopDaemon } from "./helpers.js";

let box;
let child;
const plugins = [];

function newPlugin() {
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, autostart: false }) });
  plugins.push(plugin);
  return plugin;
}

before(async () => {
  box = sandbox();
  child = await startDaemon(box);
});

after(async () => {
  for (const p of plugins) await p.close();
  await stopDaemon(box, child);
  removeSandbox(box);
});

const idOf = (text) => /^ID: (\S+)$/m.exec(text)[1];

async function shell(tools, ctx = context(box)) {
  return idOf(await tools.pty_spawn({ command: "bash", args: ["--norc", "--noprofile"] }, ctx));
}

test("item 1: a wait searches after the last input, says where its match ends, and goes on from there", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  await tools.pty_write({ id, data: "echo STEP-$((1)); echo STEP-$((1+1))\\n" }, ctx);
  const one = await tools.pty_wait({ id, pattern: "^STEP-1", timeout: 10 }, ctx);
  assert.match(one, /<pty_matched/);
  const two = await tools.pty_wait({ id, pattern: "^STEP-2", timeout: 5 }, ctx);
  assert.match(two, /<pty_matched/, "STEP-2 came after STEP-1: it is found too");
  const at = Number(/Match ends at byte: (\d+)/.exec(one)[1]);
  const after1 = await tools.pty_wait({ id, pattern: "^STEP-1", timeout: 0.5, since: at }, ctx);
  assert.match(after1, /<pty_wait_timeout>/, "from the end of the first match on, STEP-1 is not there again");
  assert.match(await tools.pty_wait({ id, pattern: "^STEP-2", since: at, timeout: 5 }, ctx), /<pty_matched/);
});

test("item 1: another OpenCode process waits for the answer to the last input, not for old output", async () => {
  const first = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(first, ctx);
  await first.pty_write({ id, data: "echo BUILD-1-OK\\n" }, ctx);
  assert.match(await first.pty_wait({ id, pattern: "BUILD-1-OK", timeout: 10 }, ctx), /<pty_matched/);
  await first.pty_write({ id, data: "sleep 2; echo BUILD-1-OK\\n" }, ctx);

  const second = newPlugin().handlers(); // a new `opencode run`: nothing in memory
  const started = Date.now();
  const early = await second.pty_wait({ id, pattern: "BUILD-1-OK", timeout: 1 }, ctx);
  assert.match(early, /<pty_wait_timeout>/, "neither the old build's line nor the echo of the command typed counts");
  const late = await second.pty_wait({ id, pattern: "BUILD-1-OK", timeout: 10 }, ctx);
  assert.match(late, /<pty_matched/);
  assert.ok(Date.now() - started > 1500, "the match is the new build's, after its sleep");
});

test("item 2: output after a stray ESC P and after random bytes reads and waits normally", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  await tools.pty_write({ id, data: "printf 'x\\\\033Py\\\\n'; echo AFTER-$((40+2))\\n" }, ctx);
  assert.match(await tools.pty_wait({ id, pattern: "^AFTER-42", timeout: 10 }, ctx), /<pty_matched/);
  assert.match(await tools.pty_read({ id, pattern: "^AFTER-42" }, ctx), /\| AFTER-42/);

  await tools.pty_write({ id, data: "head -c 3072 /dev/urandom; echo; seq -f 'N%g' 1 3000; echo DONE-$((1))\\n" }, ctx);
  assert.match(await tools.pty_wait({ id, pattern: "^DONE-1", timeout: 20 }, ctx), /<pty_matched/);
  const numbered = await tools.pty_read({ id, pattern: "^N[0-9]+$", limit: 5000 }, ctx);
  assert.match(numbered, /\(3000 matches from \d+ total lines\)/);
});

test("item 2: a full-screen program reads as its screen", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "sh", args: ["-c", "printf 'before\\n\\033[?1049h\\033[H\\033[2JTOP-ROW\\033[5;3HFIFTH-ROW'; sleep 30"] }, ctx));
  await tools.pty_wait({ id, pattern: "FIFTH-ROW", timeout: 10 }, ctx);
  const read = await tools.pty_read({ id }, ctx);
  assert.match(read, /--- screen ---\nTOP-ROW\n\n\n\n {2}FIFTH-ROW\n--- lines ---\n00001\| before\n/);
  await tools.pty_kill({ id, cleanup: true }, ctx);
});

test("item 5: a runaway pattern is stopped and said to be one; OpenCode's thread goes on", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  await tools.pty_write({ id, data: "for i in $(seq 60); do printf 'a%.0s' $(seq 25); echo '!'; done; echo FILLED-$((1))\\n" }, ctx);
  await tools.pty_wait({ id, pattern: "^FILLED-1", timeout: 20 }, ctx);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 50);
  const started = Date.now();
  try {
    await assert.rejects(tools.pty_read({ id, pattern: "(a+)+$" }, ctx), /took more than 5 s .* and was stopped: it backtracks too much/);
    await assert.rejects(tools.pty_wait({ id, pattern: "(a+)+$", since: 0, timeout: 30 }, ctx), /took more than 5 s/);
  } finally {
    clearInterval(ticker);
  }
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 15, `stopped after ${seconds} s`);
  assert.ok(ticks > seconds * 10, `the event loop ran meanwhile (${ticks} ticks in ${seconds} s)`);
});

test("item 5: waiting on a stream of many small frames searches each line once, at a bounded cost", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  const cpu = process.cpuUsage();
  const started = Date.now();
  // 800 bursts of 4 KB, each its own frame: 3.2 MB, searched as it comes
  await tools.pty_write({ id, data: "for i in $(seq 800); do printf '%4096s\\\\n' | tr ' ' x; sleep 0.005; done; echo END-$((7*6))\n" }, ctx);
  const res = await tools.pty_wait({ id, pattern: "^END-42$", timeout: 120 }, ctx);
  assert.match(res, /<pty_matched/);
  const used = process.cpuUsage(cpu);
  const seconds = (used.user + used.system) / 1e6;
  // decoding is linear; searching all the output since the start on every frame is not
  assert.ok(seconds < 3, `CPU ${seconds} s for ${(Date.now() - started) / 1000} s of waiting`);
});

test("item 6: a wait in flight goes on across `ptysup upgrade`", async () => {
  const plugin = newPlugin();
  const tools = plugin.handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  await tools.pty_write({ id, data: "sleep 3; echo UPGRADED-$((1))\\n" }, ctx);
  const waiting = tools.pty_wait({ id, pattern: "^UPGRADED-1", timeout: 40 }, ctx);
  await new Promise((r) => setTimeout(r, 500));
  const other = new Daemon({ env: box.env, autostart: false });
  await other.call("upgrade");
  other.close();
  const res = await waiting;
  assert.match(res, /<pty_matched/);
  assert.match(res, /made again 1 time/);
});

test("item 7: opencode-pty's spellings of pty_wait's arguments", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  await tools.pty_write({ id, data: "echo ALIAS-$((1)) a.b\\n" }, ctx);
  assert.match(await tools.pty_wait({ id, pattern: "^ALIAS-1", timeoutSeconds: 10 }, ctx), /<pty_matched/);
  assert.match(await tools.pty_wait({ id, regex: "^ALIAS-1", timeout_seconds: 10 }, ctx), /<pty_matched/);
  assert.match(await tools.pty_wait({ id, literal: "ALIAS-1 a.b", timeoutSeconds: 10 }, ctx), /<pty_matched/);
  assert.match(await tools.pty_wait({ id, literal: "ALIAS-1 aXb", timeoutSeconds: 0.3 }, ctx), /<pty_wait_timeout>/);
  await assert.rejects(tools.pty_wait({ id, pattern: "x", timeout: 1, timeoutSeconds: 2 }, ctx), /'timeoutSeconds' and 'timeout' say different things/);
  await tools.pty_write({ id, data: "exit 5\\n" }, ctx);
  assert.match(await tools.pty_wait({ id, exit: true, timeoutSeconds: 10 }, ctx), /Exit code: 5/);
});

test("item 7: limit 0 is refused, not answered with a loop", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "sh", args: ["-c", "seq 3"] }, ctx));
  await tools.pty_wait({ id, timeout: 10 }, ctx);
  await assert.rejects(tools.pty_read({ id, limit: 0 }, ctx), /pty_read: 'limit' must be a whole number from 1, not 0/);
  assert.match(await tools.pty_read({ id, offset: 7 }, ctx), /offset=7 is past the end: there are 3 lines/);
});

test("item 7: a 7 MB pty_write is refused with its size; the connection stays for other calls", async () => {
  const plugin = newPlugin();
  const tools = plugin.handlers();
  const ctx = context(box);
  const id = await shell(tools, ctx);
  const conn = await plugin.daemon.connection();
  await assert.rejects(tools.pty_write({ id, data: "x".repeat(7 * 1024 * 1024) }, ctx), /'data' is 7340032 characters; at most 1048576 go in one pty_write/);
  assert.match(await tools.pty_list({}, ctx), /<pty_list>/);
  assert.equal(await plugin.daemon.connection(), conn, "the same connection serves on");
  // what may be typed goes in pieces that each fit in a frame
  const big = `: ${"y".repeat(200 * 1024)}\\n`;
  assert.match(await tools.pty_write({ id, data: big }, ctx), /^Sent 204803 bytes/);
  assert.equal(await plugin.daemon.connection(), conn);
});

test("item 7: a wait on a terminal removed meanwhile says so, not `no session`", async () => {
  const plugin = newPlugin();
  const tools = plugin.handlers();
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "sleep", args: ["60"] }, ctx));
  const waiting = tools.pty_wait({ id, pattern: "never", timeout: 30 }, ctx);
  await new Promise((r) => setTimeout(r, 300));
  await plugin.daemon.call("remove", { session: id });
  const said = await waiting.then(
    (text) => text,
    (err) => err.message,
  );
  assert.match(said, new RegExp(`Terminal ended before 'never' appeared. Exit code: signal 1|^pty_wait: terminal ${id} was removed while waiting for 'never'`));
  assert.doesNotMatch(said, /no session/);
  await assert.rejects(tools.pty_wait({ id, timeout: 1 }, ctx), new RegExp(`pty_wait: no terminal '${id}' \\(it may have been removed\\)`));
});

test("item 7: workdir is relative to the project, and the child's $PWD says it", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  fs.mkdirSync(path.join(box.project, "sub"), { recursive: true });
  const id = idOf(await tools.pty_spawn({ command: "sh", args: ["-c", 'echo "PWD=$PWD"; pwd -P'], workdir: "sub" }, ctx));
  await tools.pty_wait({ id, timeout: 10 }, ctx);
  const out = await tools.pty_read({ id }, ctx);
  assert.ok(out.includes(`PWD=${path.join(box.project, "sub")}\n`), out);
});

test("item 7: a match past column 2,000 is shown, and a 90 KB argument is not echoed back whole", async () => {
  const tools = newPlugin().handlers();
  const ctx = context(box);
  const id = idOf(await tools.pty_spawn({ command: "sh", args: ["-c", "printf '%05000d' 0; echo NEEDLE-END"] }, ctx));
  await tools.pty_wait({ id, timeout: 10 }, ctx);
  const found = await tools.pty_read({ id, pattern: "NEEDLE" }, ctx);
  assert.match(found, /NEEDLE-END/);
  assert.ok(found.length < 3000, found.length);
  const waited = await tools.pty_wait({ id, pattern: "NEEDLE", since: 0, timeout: 5 }, ctx);
  assert.match(waited, /Line: .*NEEDLE-END/);

  const huge = "z".repeat(90 * 1024);
  for (const call of [
    () => tools.pty_spawn({ command: huge }, ctx),
    () => tools.pty_read({ id, pattern: `(${huge}` }, ctx),
    () => tools.pty_wait({ id, pattern: "x", timeout: huge }, ctx),
    () => tools.pty_read({ id: huge }, ctx),
  ]) {
    await assert.rejects(call(), (err) => {
      assert.ok(err.message.length < 2000, `${err.message.length} characters: ${err.message.slice(0, 200)}`);
      return true;
    });
  }
  const said = await tools.pty_read({ id, pattern: `${huge}|NEEDLE` }, ctx).catch((err) => err.message);
  assert.ok(said.length < 5000, said.length);
});
