// The daemon's wire protocol (docs/protocol.md) over a Unix socket: frames, hello,
// requests matched by id, subscriptions with their output frames and events.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const PROTOCOL = 1;
const MAX_FRAME = 64 * 1024 * 1024;
const OUTPUT = 0x00;
const CONTROL = 0x7b;

export class DaemonError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "DaemonError";
    this.code = code;
  }
}

export class ConnectionLost extends Error {
  constructor(message) {
    super(message);
    this.name = "ConnectionLost";
  }
}

// The socket's directory or the daemon may not be the user's own: nothing was sent.
export class Untrusted extends Error {
  constructor(message) {
    super(message);
    this.name = "Untrusted";
  }
}

// What is wrong with a socket directory (from lstat or fstat), as the daemon and the
// Python clients say it; null when it is a private directory of this user.
export function privacyProblem(dir, info, uid = process.getuid()) {
  const mode = (info.mode & 0o7777).toString(8);
  if (info.isSymbolicLink()) {
    let target = "?";
    try {
      target = fs.readlinkSync(dir);
    } catch {
      // gone meanwhile: the symlink is reason enough
    }
    return `socket directory ${dir} is a symlink (to ${target}, made by uid ${info.uid}); use the real directory`;
  }
  if (!info.isDirectory()) return `${dir} is not a directory (it belongs to uid ${info.uid})`;
  if (info.uid !== uid) {
    return (
      `socket directory ${dir} belongs to uid ${info.uid}, not to you (uid ${uid}); ` +
      `choose another socket with PTYSUP_SOCKET, or have uid ${info.uid} remove it (its mode is ${mode})`
    );
  }
  if (info.mode & 0o077) return `socket directory ${dir} is open to other users (mode ${mode}, owned by you); fix it with: chmod 700 ${dir}`;
  return null;
}

function missing(socketPath) {
  const err = new Error(`connect ENOENT ${socketPath}`);
  err.code = "ENOENT";
  return err;
}

function refuse(socketPath, problem) {
  return new Untrusted(`refusing to connect to ${socketPath}, where another user could have put a socket of their own: ${problem}`);
}

// Node cannot ask a Unix socket for its peer's uid. Instead the directory is checked, and
// on Linux it is held open while connecting through /proc/self/fd/N, so that the socket
// reached is the one in the directory checked (only its owner can put a socket in a
// private directory). Returns {address, release}. A missing directory throws ENOENT, as
// connecting would: nothing is connected to that was not checked.
export function socketAddress(socketPath) {
  const dir = path.dirname(socketPath);
  let info;
  try {
    info = fs.lstatSync(dir);
  } catch (err) {
    if (err.code === "ENOENT") throw missing(socketPath);
    throw new Untrusted(`refusing to connect to ${socketPath}: cannot check its directory: ${err.message}`);
  }
  const problem = privacyProblem(dir, info);
  if (problem) throw refuse(socketPath, problem);
  if (process.platform !== "linux" || !fs.existsSync("/proc/self/fd")) return { address: socketPath, release() {} };
  let fd;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    if (err.code === "ENOENT") throw missing(socketPath);
    throw refuse(socketPath, `cannot open ${dir}: ${err.message}`);
  }
  const held = fs.fstatSync(fd);
  const again = held.ino === info.ino && held.dev === info.dev ? null : `${dir} was replaced while it was checked`;
  if (again || privacyProblem(dir, held)) {
    fs.closeSync(fd);
    throw refuse(socketPath, again || privacyProblem(dir, held));
  }
  let open = true;
  return {
    address: `/proc/self/fd/${fd}/${path.basename(socketPath)}`,
    release() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

export function encodeControl(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

// Splits a byte stream into frame payloads; keeps what is incomplete for the next call.
export class FrameReader {
  constructor() {
    this.pending = Buffer.alloc(0);
  }

  feed(chunk) {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames = [];
    while (this.pending.length >= 4) {
      const size = this.pending.readUInt32BE(0);
      if (size > MAX_FRAME) throw new ConnectionLost(`the daemon sent a frame of ${size} bytes`);
      if (this.pending.length < 4 + size) break;
      frames.push(this.pending.subarray(4, 4 + size));
      this.pending = this.pending.subarray(4 + size);
    }
    return frames;
  }
}

export function decodePayload(payload) {
  if (payload.length === 0) throw new ConnectionLost("the daemon sent an empty frame");
  if (payload[0] === OUTPUT) {
    if (payload.length < 13) throw new ConnectionLost("the daemon sent a short output frame");
    return {
      kind: "output",
      sub: payload.readUInt32BE(1),
      offset: Number(payload.readBigUInt64BE(5)),
      data: payload.subarray(13),
    };
  }
  if (payload[0] === CONTROL) return { kind: "control", message: JSON.parse(payload.toString("utf8")) };
  throw new ConnectionLost(`the daemon sent a frame of unknown kind 0x${payload[0].toString(16)}`);
}

// One connection to the daemon. Requests run concurrently; each has its own timeout.
export class Connection {
  constructor(socket, path) {
    this.socket = socket;
    this.path = path;
    this.reader = new FrameReader();
    this.nextId = 1;
    this.pending = new Map();
    this.subs = new Map();
    this.hello = null;
    this.closed = false;
    this.closeReason = null;
    this.onEvent = null;
    this.onClose = null;
    socket.on("data", (chunk) => this._data(chunk));
    socket.on("error", (err) => this._close(`the connection to the daemon failed: ${err.message}`));
    socket.on("close", () => this._close("the daemon closed the connection"));
  }

  // Connects once the socket's directory is found private and the user's own, then waits
  // for the daemon's hello, which comes first, and says hello back only when the daemon
  // reports this user's uid (or none: a daemon from before it reported one).
  static open(path, { timeout = 10000, client = "ptysup-opencode-plugin" } = {}) {
    return new Promise((resolve, reject) => {
      let target;
      try {
        target = socketAddress(path);
      } catch (err) {
        reject(err);
        return;
      }
      const socket = net.createConnection({ path: target.address });
      const timer = setTimeout(() => {
        target.release();
        socket.destroy();
        reject(new ConnectionLost(`the daemon on ${path} did not greet within ${timeout / 1000} s`));
      }, timeout);
      let conn = null;
      const fail = (err) => {
        clearTimeout(timer);
        target.release();
        socket.destroy();
        if (err.syscall === "connect" && err.code) err.message = `connect ${err.code} ${path}`;
        reject(err);
      };
      socket.once("error", fail);
      socket.once("connect", () => {
        target.release();
        socket.removeListener("error", fail);
        conn = new Connection(socket, path);
        conn._greeted = (hello, error) => {
          conn._greeted = null;
          clearTimeout(timer);
          const uid = process.getuid();
          if (!error && typeof hello.uid === "number" && hello.uid !== uid) {
            error = new Untrusted(
              `refusing to talk to the daemon on ${path}: it runs as uid ${hello.uid}, not as you (uid ${uid}); ` +
                "stop whatever serves that socket, or choose another with PTYSUP_SOCKET",
            );
          }
          if (error) {
            conn.close();
            reject(error);
            return;
          }
          socket.write(encodeControl({ type: "hello", protocol: PROTOCOL, capabilities: [], client }));
          resolve(conn);
        };
      });
    });
  }

  // `onResult` runs as the result arrives, before any frame that follows it is read:
  // the place to `track` the subscription the request made.
  request(op, args = {}, { timeout = 30000, onResult = null } = {}) {
    if (this.closed) return Promise.reject(new ConnectionLost(this.closeReason));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer =
        timeout === null
          ? null
          : setTimeout(() => {
              this.pending.delete(id);
              reject(new DaemonError("timeout", `the daemon did not answer '${op}' within ${timeout / 1000} s`));
            }, timeout);
      this.pending.set(id, { resolve, reject, timer, op, onResult });
      this.socket.write(encodeControl({ ...args, id, op }));
    });
  }

  // Subscribes `handlers` ({output(offset, data), event(message)}) to what a request makes.
  track(sub, handlers) {
    this.subs.set(sub, handlers);
  }

  untrack(sub) {
    this.subs.delete(sub);
  }

  close() {
    this.socket.destroy();
    this._close("closed");
  }

  _data(chunk) {
    let frames;
    try {
      frames = this.reader.feed(chunk);
      for (const payload of frames) this._frame(decodePayload(payload));
    } catch (err) {
      this.socket.destroy();
      this._close(err.message);
    }
  }

  _frame(frame) {
    if (frame.kind === "output") {
      this.subs.get(frame.sub)?.output?.(frame.offset, frame.data);
      return;
    }
    const message = frame.message;
    if (message.type === "hello") {
      this.hello = message;
      if (message.protocol !== PROTOCOL) {
        this._greeted?.(null, new DaemonError("unsupported", `the daemon speaks protocol ${message.protocol}, not ${PROTOCOL}`));
      } else this._greeted?.(message, null);
      this._greeted = null;
      return;
    }
    if (message.type === "result" || (message.type === "error" && message.id !== null && message.id !== undefined)) {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (waiting.timer) clearTimeout(waiting.timer);
      if (message.type === "result") {
        waiting.onResult?.(message.result);
        waiting.resolve(message.result);
      }
      else waiting.reject(new DaemonError(message.code, message.message));
      return;
    }
    if (message.type === "error") {
      if (this._greeted) {
        this._greeted(null, new DaemonError(message.code, message.message));
        this._greeted = null;
      }
      return;
    }
    if (message.type === "event") {
      if (message.sub !== undefined) this.subs.get(message.sub)?.event?.(message);
      else this.onEvent?.(message);
    }
  }

  _close(reason) {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    const error = new ConnectionLost(reason);
    for (const waiting of this.pending.values()) {
      if (waiting.timer) clearTimeout(waiting.timer);
      waiting.reject(error);
    }
    this.pending.clear();
    for (const handlers of this.subs.values()) handlers.lost?.(error);
    this.subs.clear();
    this._greeted?.(null, error);
    this._greeted = null;
    this.onClose?.(reason);
  }
}
