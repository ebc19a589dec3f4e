// What the shell.env hook costs each command of OpenCode's bash tool, with the daemon
// healthy, stopped (started on demand), frozen (SIGSTOP) and greeting but never answering.
// Prints the table of opencode-plugin/README.md. Run from the repository root:
//   PTYSUP_PYTHON=$PWD/.venv/bin/python node opencode-plugin/bench/hook-cost.js [PLUGIN_DIR]
// PLUGIN_DIR: another copy of the plugin to measure (default: this one).
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { PTYSUP, removeSandbox, sandbox, sleep, startDaemon, stopDaemon } from "../test/helpers.js";

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = path.resolve(process.argv[2] ?? here);
// another copy (the plugin as it was): the first two calls only, each may take long
const quick = dir !== here;
const { PtyPlugin } = await import(pathToFileURL(path.join(dir, "plugin.js")));
const { Daemon } = await import(pathToFileURL(path.join(dir, "daemon.js")));
const { encodeControl } = await import(pathToFileURL(path.join(here, "wire.js")));

async function hook(plugin, box) {
  const output = { env: {} };
  const started = process.hrtime.bigint();
  await plugin.shellEnv({ cwd: box.project, sessionID: "ses_bench" }, output);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, context: Boolean(output.env.OPENCODE_DIRECTORY) };
}

const fmt = ({ ms, context }) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms${context ? "" : " (no context)"}`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// first call; the next one at once; one after the retry period (`later` ms on, or forced)
async function measure(plugin, box, { later = 0 } = {}) {
  const first = await hook(plugin, box);
  const next = [];
  for (let i = 0; i < (quick ? 1 : 10); i++) next.push(await hook(plugin, box));
  if (quick) return [fmt(first), fmt(next[0]), "(not measured)"];
  if (later) await sleep(later);
  else plugin.shellRetryAt = 0; // as if the retry period (30 s) were over
  const after = await hook(plugin, box);
  const nextMs = median(next.map((n) => n.ms));
  return [fmt(first), fmt({ ms: nextMs, context: next[5].context }), fmt(after)];
}

function greetingOnly(socket) {
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  const server = net.createServer((c) => {
    c.write(encodeControl({ type: "hello", protocol: 1, capabilities: [], server: "fake", pid: process.pid, uid: process.getuid() }));
    c.on("error", () => {});
  });
  return new Promise((resolve) => server.listen(socket, () => resolve(server)));
}

const rows = [];
const withTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => ["> " + ms / 1000 + " s", "", ""])]);

{
  const box = sandbox();
  const child = await startDaemon(box);
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: PTYSUP }) });
  rows.push(["healthy", ...(await measure(plugin, box))]);
  process.kill(child.pid, "SIGSTOP");
  const frozen = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: PTYSUP }) });
  rows.push(["frozen (SIGSTOP)", ...(await withTimeout(measure(frozen, box), 120000))]);
  process.kill(child.pid, "SIGCONT");
  plugin.close();
  frozen.close();
  await stopDaemon(box, child);
  removeSandbox(box);
}
{
  const box = sandbox();
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: PTYSUP }) });
  rows.push(["stopped (started on demand)", ...(await withTimeout(measure(plugin, box, { later: 3000 }), 120000))]);
  plugin.close();
  await stopDaemon(box, null);
  removeSandbox(box);
}
{
  const box = sandbox();
  const server = await greetingOnly(box.socket);
  const plugin = new PtyPlugin({ directory: box.project, daemon: new Daemon({ env: box.env, command: PTYSUP }) });
  rows.push(["greets, never answers", ...(await withTimeout(measure(plugin, box), 200000))]);
  plugin.close();
  server.close();
  removeSandbox(box);
}

console.log(`plugin: ${dir}`);
console.log("| daemon | first bash call | next calls (median) | a call after the retry period |");
console.log("| --- | --- | --- | --- |");
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
process.exit(0);
