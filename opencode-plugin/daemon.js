// Finding the daemon, starting it on demand (as the ptysup CLI does), and one shared
// connection that is opened again after the daemon restarts or upgrades.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Aborted, Connection, ConnectionLost, DaemonError, REQUEST_TIMEOUT, Untrusted } from "./wire.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT = 30000;
const READ_ONLY = new Set(["status", "list", "info", "context", "screen", "wait"]);

export class Unreachable extends Error {
  constructor(message) {
    super(message);
    this.name = "Unreachable";
  }
}

const DIR_NAME = "pty-supervisor";
const SOCKET_NAME = "control.sock";
const MAX_SOCKET_PATH = process.platform === "darwin" ? 104 : 108;

// The path supervisor/paths.py's resolve_socket gives: $PTYSUP_SOCKET (`~` expanded, made
// absolute), else control.sock in $XDG_RUNTIME_DIR/pty-supervisor (an absolute one; not on
// macOS), else in pty-supervisor-<uid> under $TMPDIR (macOS) or /tmp. Whether a socket there
// may be trusted is wire.js's socketAddress to say, before anything is sent.
export function socketPath(env = process.env) {
  if (env.PTYSUP_SOCKET) return path.resolve(env.PTYSUP_SOCKET.replace(/^~(?=$|\/)/, os.homedir()));
  let dir;
  if (env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR) && process.platform !== "darwin") {
    dir = path.join(env.XDG_RUNTIME_DIR, DIR_NAME);
  } else {
    const base = process.platform === "darwin" ? env.TMPDIR || os.tmpdir() : "/tmp";
    dir = path.join(base, `${DIR_NAME}-${process.getuid()}`);
  }
  return path.resolve(dir, SOCKET_NAME);
}

// paths.py's check_socket_path: a message when the path cannot be a Unix socket's address
// (the daemon could not listen there), else null.
export function socketPathProblem(socket) {
  const size = Buffer.byteLength(socket, "utf8");
  return size >= MAX_SOCKET_PATH ? `socket path is ${size} bytes long, over the limit of ${MAX_SOCKET_PATH - 1}: ${socket}` : null;
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
  // `greeting`: how long a new connection waits for the daemon's hello; `requestTimeout`:
  // for an answer to a request that sets none; `readTimeout`: for all of a terminal's output.
  constructor({ env = process.env, socket = socketPath(env), autostart = true, command = null, greeting = 5000, requestTimeout = REQUEST_TIMEOUT, readTimeout = 30000 } = {}) {
    this.env = env;
    this.requestTimeout = requestTimeout;
    this.readTimeout = readTimeout;
    this.socket = socket;
    this.autostart = autostart;
    this.command = command ?? ptysupCommand(env);
    this.greeting = greeting;
    this.conn = null;
    this.opening = null;
    this.closed = false;
    this.onReconnect = null; // (conn) after a connection is opened again
    this.onEvent = null; // (event) for the events that belong to no subscription
    this.onLost = null; // (conn, restarting) when the connection closes by itself
  }

  // The connection, opened (and the daemon started, with `autostart`) when there is none.
  async connection({ autostart = this.autostart } = {}) {
    if (this.conn && !this.conn.closed) return this.conn;
    if (this.closed) throw new Unreachable("the plugin is closing; nothing more is asked of the daemon");
    if (!this.opening) {
      this.opening = this._open(autostart).finally(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  async _open(autostart) {
    const problem = socketPathProblem(this.socket);
    if (problem) throw new Unreachable(`cannot reach the pty-supervisor daemon: ${problem}; choose a shorter one with PTYSUP_SOCKET`);
    let conn;
    try {
      conn = await Connection.open(this.socket, { timeout: this.greeting });
    } catch (err) {
      if (err instanceof Untrusted) throw new Unreachable(err.message);
      if (!["ENOENT", "ECONNREFUSED"].includes(err.code)) {
        throw new Unreachable(`cannot reach the pty-supervisor daemon: ${err.message}; check it with \`ptysup status\``);
      }
      if (!autostart) {
        throw new Unreachable(`no pty-supervisor daemon is running on ${this.socket}; ${howToStart(this.socket)}`);
      }
      await this._start();
      try {
        conn = await Connection.open(this.socket, { timeout: this.greeting });
      } catch (again) {
        if (again instanceof Untrusted) throw new Unreachable(again.message);
        throw new Unreachable(`the pty-supervisor daemon on ${this.socket} does not answer (${again.message}); ${howToStart(this.socket)}`);
      }
    }
    if (this.closed) {
      conn.close();
      throw new Unreachable("the plugin is closing; nothing more is asked of the daemon");
    }
    const reopened = this.conn !== null;
    this.conn = conn;
    let restarting = false;
    conn.onEvent = (event) => {
      if (event.event === "restarting") restarting = true;
      this.onEvent?.(event);
    };
    conn.onClose = () => {
      if (this.conn === conn && !this.closed) this.onLost?.(conn, restarting);
    };
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
    if (options.timeout === undefined) options = { ...options, timeout: this.requestTimeout };
    const conn = await this.connection();
    const started = Date.now();
    try {
      return await conn.request(op, args, options);
    } catch (err) {
      if (!(err instanceof ConnectionLost) || !READ_ONLY.has(op)) throw err;
      if (op === "wait" && typeof args.timeout === "number") {
        args = { ...args, timeout: Math.max(0, args.timeout - (Date.now() - started) / 1000) };
      }
      return (await this.connection()).request(op, args, options);
    }
  }

  close() {
    this.closed = true;
    this.conn?.close();
  }
}

export { Aborted, ConnectionLost, DaemonError, Untrusted };
