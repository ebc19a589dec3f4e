// The daemon's wire protocol (docs/protocol.md) over a Unix socket: frames, hello,
// requests matched by id, subscriptions with their output frames and events.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const PROTOCOL = 1;
const MAX_FRAME = 64 * 1024 * 1024;
// The daemon closes a connection that sends a frame over its PTYSUP_MAX_FRAME (8 MiB by
// default): a request that large is refused here instead, and the connection stays.
export const MAX_REQUEST = 8 * 1024 * 1024;
export const REQUEST_TIMEOUT = 15000;
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

// The tool call was aborted (the user stopped the agent): nothing more is waited for.
export class Aborted extends Error {
  constructor(message = "aborted") {
    super(message);
    this.name = "Aborted";
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
// Chunks wait in a list until a whole frame is there: each byte is copied once at most, so
// a large frame that comes in small chunks costs no more than one that comes at once.
export class FrameReader {
  constructor() {
    this.chunks = [];
    this.buffered = 0;
    this.wanted = null; // the size of the frame being read, once its length is known
  }

  feed(chunk) {
    const frames = [];
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.wanted === null) {
        if (this.buffered < 4) break;
        const head = this._take(4);
        const size = head.readUInt32BE(0);
        if (size > MAX_FRAME) throw new ConnectionLost(`the daemon sent a frame of ${size} bytes`);
        this.wanted = size;
      }
      if (this.buffered < this.wanted) break;
      frames.push(this._take(this.wanted));
      this.wanted = null;
    }
    return frames;
  }

  // The next `n` buffered bytes, joined only when they span chunks.
  _take(n) {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0];
      const used = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, used);
      filled += used;
      if (used === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(used);
    }
    return out;
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
  static open(path, { timeout = 5000, client = "ptysup-opencode-plugin" } = {}) {
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
        reject(new ConnectionLost(`the daemon on ${path} accepted the connection but did not greet within ${timeout / 1000} s: it may be stopped (SIGSTOP) or stuck`));
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
  // the place to `track` the subscription the request made. `signal` (an AbortSignal)
  // gives up waiting: the request is then Aborted (the daemon may still carry it out).
  request(op, args = {}, { timeout = REQUEST_TIMEOUT, onResult = null, signal = null } = {}) {
    if (this.closed) return Promise.reject(new ConnectionLost(this.closeReason));
    if (signal?.aborted) return Promise.reject(new Aborted(`'${op}' was aborted`));
    const id = this.nextId++;
    const frame = encodeControl({ ...args, id, op });
    if (frame.length - 4 > MAX_REQUEST) {
      return Promise.reject(new DaemonError("too_large", `the request '${op}' would be ${frame.length - 4} bytes, over the ${MAX_REQUEST} the daemon takes`));
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(id);
      };
      const onAbort = () => {
        done();
        reject(new Aborted(`'${op}' was aborted`));
      };
      const timer =
        timeout === null
          ? null
          : setTimeout(() => {
              done();
              reject(new DaemonError("timeout", `the daemon did not answer '${op}' within ${timeout / 1000} s`));
            }, timeout);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        op,
        onResult,
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      this.socket.write(frame);
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
      if (message.type === "result") {
        waiting.onResult?.(message.result);
        waiting.resolve(message.result);
      } else waiting.reject(new DaemonError(message.code, message.message));
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
    for (const waiting of [...this.pending.values()]) waiting.reject(error);
    this.pending.clear();
    for (const handlers of this.subs.values()) handlers.lost?.(error);
    this.subs.clear();
    this._greeted?.(null, error);
    this._greeted = null;
    this.onClose?.(reason);
  }
}
