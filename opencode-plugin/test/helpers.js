// A real daemon for one test file: its own HOME, XDG directories and socket, stopped after.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Daemon } from "../daemon.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const PYTHON = process.env.PTYSUP_PYTHON || path.join(ROOT, ".venv", "bin", "python");
export const PTYSUP = [PYTHON, "-m", "supervisor"];

export function sandbox() {
  const root = fs.mkdtempSync(path.join("/tmp", "pp-"));
  const dirs = {
    HOME: path.join(root, "home"),
    XDG_RUNTIME_DIR: path.join(root, "run"),
    XDG_CONFIG_HOME: path.join(root, "config"),
    XDG_DATA_HOME: path.join(root, "data"),
    XDG_STATE_HOME: path.join(root, "state"),
    XDG_CACHE_HOME: path.join(root, "cache"),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  const project = path.join(root, "project");
  fs.mkdirSync(project);
  const env = {
    PATH: process.env.PATH,
    LANG: "C.UTF-8",
    ...dirs,
    PTYSUP_SOCKET: path.join(dirs.XDG_RUNTIME_DIR, "pty-supervisor", "control.sock"),
    PTYSUP_KILL_GRACE: "0.3",
    PYTHONPATH: ROOT,
    PYTHONDONTWRITEBYTECODE: "1",
  };
  // scripts/test runs these tests on both byte paths
  if (process.env.PTYSUP_NATIVE) env.PTYSUP_NATIVE = process.env.PTYSUP_NATIVE;
  return { root, env, project, socket: env.PTYSUP_SOCKET };
}

// Starts `ptysup daemon` in the foreground of a child process; resolves once it listens.
export function startDaemon(box) {
  return new Promise((resolve, reject) => {
    fs.mkdirSync(path.dirname(box.socket), { recursive: true, mode: 0o700 });
    const child = spawn(PYTHON, ["-m", "supervisor", "daemon", "--socket", box.socket, "--ready-fd", "3"], {
      env: box.env,
      cwd: "/",
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdio[3].once("data", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`the daemon exited with ${code}: ${err}`)));
  });
}

export async function stopDaemon(box, child) {
  const d = new Daemon({ env: box.env, autostart: false });
  await d.call("stop").catch(() => {});
  d.close();
  if (child && child.exitCode === null) {
    await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export function removeSandbox(box) {
  fs.rmSync(box.root, { recursive: true, force: true });
}

export function context(box, over = {}) {
  const asked = [];
  return {
    sessionID: "ses_test1",
    messageID: "msg_1",
    agent: "build",
    directory: box.project,
    worktree: box.project,
    abort: new AbortController().signal,
    metadata() {},
    async ask(request) {
      asked.push(request);
    },
    asked,
    ...over,
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const tmp = os.tmpdir();
