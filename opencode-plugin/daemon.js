// Finding the daemon, starting it on demand (as the ptysup CLI does), and one shared
// connection that is opened again after the daemon restarts or upgrades.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Connection, ConnectionLost, DaemonError, Untrusted } from "./wire.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT = 30000;
const READ_ONLY = new Set(["status", "list", "info", "context", "screen", "wait"]);

export class Unreachable extends Error {
  constructor(message) {
    super(message);
    this.name = "Unreachable";
  }
}

// The same path the CLI uses: $PTYSUP_SOCKET, else the private per-user directory.
export function socketPath(env = process.env) {
  if (env.PTYSUP_SOCKET) return path.resolve(env.PTYSUP_SOCKET.replace(/^~(?=$|\/)/, os.homedir()));
  let dir;
  if (process.platform === "darwin") dir = path.join(env.TMPDIR || os.tmpdir(), `pty-supervisor-${process.getuid()}`);
  else if (env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR)) dir = path.join(env.XDG_RUNTIME_DIR, "pty-supervisor");
  else dir = path.join("/tmp", `pty-supervisor-${process.getuid()}`);
  return path.join(dir, "control.sock");
}

// The `ptysup` command recorded by `ptysup opencode plugin install`, else `ptysup` on PATH.
export function ptysupCommand(env = process.env, installFile = path.join(HERE, "install.json")) {
  if (env.PTYSUP_BIN) return [env.PTYSUP_BIN];
  try {
    const recorded = JSON.parse(fs.readFileSync(installFile, "utf8"));
    if (Array.isArray(recorded.command) && recorded.command.length) return recorded.command;
  } catch {
    // not installed by ptysup (a checkout used as is): look on PATH
  }
  return ["ptysup"];
}

function runStatus(command, socket, env) {
  return new Promise((resolve) => {
    execFile(
      command[0],
      [...command.slice(1), "--socket", socket, "status", "--json"],
      { env, timeout: START_TIMEOUT, cwd: "/" },
      (error, stdout, stderr) => resolve({ error, stdout, stderr: String(stderr || "").trim() }),
    );
  });
}

function howToStart(socket) {
  return `start it with \`ptysup daemon --socket ${socket}\` (or any ptysup command), then try again`;
}

// One connection per plugin instance, opened on first use, started on demand.
export class Daemon {
  constructor({ env = process.env, socket = socketPath(env), autostart = true, command = null } = {}) {
    this.env = env;
    this.socket = socket;
    this.autostart = autostart;
    this.command = command ?? ptysupCommand(env);
    this.conn = null;
    this.opening = null;
    this.onReconnect = null;
  }

  async connection() {
    if (this.conn && !this.conn.closed) return this.conn;
    if (!this.opening) {
      this.opening = this._open().finally(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  async _open() {
    let conn;
    try {
      conn = await Connection.open(this.socket);
    } catch (err) {
      if (err instanceof Untrusted) throw new Unreachable(err.message);
      if (!["ENOENT", "ECONNREFUSED"].includes(err.code)) {
        throw new Unreachable(`cannot reach the pty-supervisor daemon on ${this.socket}: ${err.message}; ${howToStart(this.socket)}`);
      }
      if (!this.autostart) {
        throw new Unreachable(`no pty-supervisor daemon is running on ${this.socket}; ${howToStart(this.socket)}`);
      }
      await this._start();
      try {
        conn = await Connection.open(this.socket);
      } catch (again) {
        if (again instanceof Untrusted) throw new Unreachable(again.message);
        throw new Unreachable(`the pty-supervisor daemon on ${this.socket} does not answer (${again.message}); ${howToStart(this.socket)}`);
      }
    }
    const reopened = this.conn !== null;
    this.conn = conn;
    if (reopened) this.onReconnect?.(conn);
    return conn;
  }

  async _start() {
    const { error, stderr } = await runStatus(this.command, this.socket, this.env);
    if (!error) return;
    const why = error.code === "ENOENT" ? `\`${this.command[0]}\` is not installed or not on PATH` : stderr || error.message;
    throw new Unreachable(`the pty-supervisor daemon on ${this.socket} is not running and could not be started: ${why}; ${howToStart(this.socket)}`);
  }

  // A request. One that only reads is asked again once on a new connection when the
  // old one was lost (the daemon upgrading in place closes every connection).
  async call(op, args = {}, options = {}) {
    const conn = await this.connection();
    try {
      return await conn.request(op, args, options);
    } catch (err) {
      if (!(err instanceof ConnectionLost) || !READ_ONLY.has(op)) throw err;
      return (await this.connection()).request(op, args, options);
    }
  }

  close() {
    this.conn?.close();
    this.conn = null;
  }
}

export { ConnectionLost, DaemonError, Untrusted };
