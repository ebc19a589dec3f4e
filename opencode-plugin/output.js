// A session's output through one connection: all that is kept, or new output until a
// regex matches, the session ends, the time is up, or the tool call is aborted. Both go on
// across a lost connection (the daemon upgrading in place closes every connection): they
// subscribe again from the offset they had reached.
import { Aborted, ConnectionLost, DaemonError } from "./wire.js";
import { LineDecoder } from "./text.js";
import { Matcher } from "./match.js";

export const READ_TIMEOUT = 30000;
const RECONNECT_EVERY = 200;
const RECONNECT_FOR = 30000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Follows `session`'s output from `since`: `onOutput(offset, data)` for each frame,
// `onSkipped(from, to)` for output the daemon dropped for this subscriber. Resolves to
// {outcome: "end", end} (the subscription's end event), {outcome: "timeout"}, or what
// `stop(value)` was given; rejects when aborted, or when the connection cannot be had again.
export class Follow {
  constructor(daemon, session, { since, follow = true, timeout, signal = null, what = "reading", onOutput, onSkipped = () => {} }) {
    this.daemon = daemon;
    this.session = session;
    this.next = since;
    this.follow = follow;
    this.timeout = timeout;
    this.signal = signal;
    this.what = what;
    this.onOutput = onOutput;
    this.onSkipped = onSkipped;
    this.start = null;
    this.truncated = false;
    this.resumed = 0;
    this.conn = null;
    this.sub = null;
    this.settled = false;
    this.done = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
  }

  stop(value) {
    if (this.settled) return;
    this.settled = true;
    this._resolve(value);
  }

  fail(err) {
    if (this.settled) return;
    this.settled = true;
    this._reject(err);
  }

  async run() {
    const deadline = Date.now() + this.timeout * 1000;
    const timer = setTimeout(() => this.stop({ outcome: "timeout" }), this.timeout * 1000);
    const onAbort = () => this.fail(new Aborted(`${this.what} was aborted`));
    if (this.signal?.aborted) onAbort();
    this.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      this._subscribe(deadline).catch((err) => this.fail(err));
      return await this.done;
    } finally {
      clearTimeout(timer);
      this.signal?.removeEventListener("abort", onAbort);
      this._leave();
    }
  }

  _leave() {
    const { conn, sub } = this;
    this.conn = this.sub = null;
    if (!conn || sub === null) return;
    conn.untrack(sub);
    if (!conn.closed) conn.request("unsubscribe", { sub }).catch(() => {});
  }

  async _subscribe(deadline, again = false) {
    const conn = again ? await this._reconnect(deadline) : await this.daemon.connection();
    if (this.settled || !conn) return;
    let result;
    try {
      result = await conn.request(
        "subscribe",
        { session: this.session, since: this.next, follow: this.follow },
        {
          signal: this.signal,
          timeout: this.daemon.requestTimeout ?? undefined,
          onResult: (res) => this._track(conn, res.sub, deadline),
        },
      );
    } catch (err) {
      // lost before the answer came: the same as after it
      if (err instanceof ConnectionLost && !this.settled) return this._subscribe(deadline, true);
      throw err;
    }
    if (this.start === null) {
      this.start = result.start;
      this.truncated = result.truncated;
    } else if (result.start > this.next) {
      this.onSkipped(this.next, result.start);
    }
    if (result.start > this.next) this.next = result.start;
  }

  _track(conn, sub, deadline) {
    this.conn = conn;
    this.sub = sub;
    conn.track(sub, {
      output: (offset, data) => {
        if (this.settled) return;
        if (offset > this.next) this.onSkipped(this.next, offset);
        this.next = offset + data.length;
        this.onOutput(offset, data);
      },
      event: (ev) => {
        if (ev.event === "skipped") {
          this.onSkipped(ev.from, ev.to);
          this.next = ev.to;
        } else if (ev.event === "end") {
          conn.untrack(sub);
          this.sub = null;
          this.stop({ outcome: "end", end: ev });
        }
      },
      lost: () => {
        this.conn = this.sub = null;
        if (!this.settled) this._subscribe(deadline, true).catch((err) => this.fail(err));
      },
    });
  }

  // A new connection, asked for until the deadline (and at most RECONNECT_FOR): the daemon
  // being replaced accepts connections meanwhile and greets once it is back.
  async _reconnect(deadline) {
    const until = Math.min(deadline, Date.now() + RECONNECT_FOR);
    let last = null;
    for (;;) {
      if (this.settled) return null;
      try {
        const conn = await this.daemon.connection({ autostart: false });
        this.resumed++;
        return conn;
      } catch (err) {
        last = err;
      }
      if (Date.now() + RECONNECT_EVERY > until) break;
      await sleep(RECONNECT_EVERY);
    }
    throw new ConnectionLost(`the connection to the daemon was lost while ${this.what} and could not be made again: ${last?.message}`);
  }
}

// Everything the daemon still keeps of a session's output, as bytes.
export async function readKept(daemon, session, { signal = null, timeout = (daemon.readTimeout ?? READ_TIMEOUT) / 1000 } = {}) {
  const chunks = [];
  let from = null;
  const follow = new Follow(daemon, session, {
    since: 0,
    follow: false,
    timeout,
    signal,
    what: "reading the output",
    onOutput: (offset, data) => {
      if (from === null) from = offset;
      chunks.push(data);
    },
    // output dropped for this reader, or gone from the scrollback while it connected again
    onSkipped: (gapFrom, gapTo) => {
      if (from === null) return;
      chunks.push(Buffer.from(`\r\n[… ${gapTo - gapFrom} bytes of output could not be read …]\r\n`));
    },
  });
  const outcome = await follow.run();
  if (outcome.outcome === "timeout") {
    throw new DaemonError("timeout", `the daemon did not send terminal ${session}'s output within ${timeout} s`);
  }
  const start = from ?? follow.start;
  return { bytes: Buffer.concat(chunks), start, end: follow.next, truncated: start > 0 };
}

// Where a match ends in the output: past the bytes of its last character (a match of
// nothing: the end of its line), so that a search from there finds what comes after it.
function matchEnd(line, found) {
  if (!found.length) return line.end;
  const last = Math.min(found.index + found.length - 1, line.ends.length - 1);
  return line.ends[last] ?? line.end;
}

// Waits for `regex` in the output from `since` on, line by line: each line is searched once
// when it is complete (and the line not yet ended each time it grew), in a worker with a
// deadline. `skipEcho`: the first line (the echo of a command line typed) is not searched.
export async function waitForPattern(daemon, session, regex, { since, timeout, signal = null, skipEcho = false, matcher = null }) {
  const decoder = new LineDecoder(since);
  const own = matcher ?? new Matcher(regex);
  let queue = [];
  let echo = skipEcho;
  let tested = null; // the text of the line not ended, as last searched
  let inflight = null;
  let matched = null;
  let follow;

  const take = (line) => {
    if (echo) echo = false;
    else queue.push(line);
  };
  // The lines to search now: those ended since, and the one not ended if it changed.
  const batch = () => {
    let partial = decoder.partial();
    if (partial && (echo || partial.text === tested)) partial = null;
    const lines = queue;
    queue = [];
    if (partial) {
      lines.push(partial);
      tested = partial.text;
    }
    return lines;
  };
  const search = async (lines) => {
    const found = await own.first(lines.map((l) => l.text));
    if (!found || matched) return;
    const line = lines[found.i];
    matched = { outcome: "matched", match: found, line: line.text, offset: matchEnd(line, found) };
    follow.stop(matched);
  };
  const pump = () => {
    if (inflight || follow.settled) return;
    const lines = batch();
    if (!lines.length) return;
    inflight = search(lines)
      .catch((err) => follow.fail(err))
      .finally(() => {
        inflight = null;
        if (queue.length || decoder.partial()) setImmediate(pump);
      });
  };

  follow = new Follow(daemon, session, {
    since,
    timeout,
    signal,
    what: "waiting for the pattern",
    onOutput: (_offset, data) => {
      decoder.feed(data, take);
      pump();
    },
    onSkipped: (_from, to) => {
      const rest = decoder.partial();
      if (rest) take(rest);
      decoder.restart(to);
    },
  });
  try {
    const outcome = await follow.run();
    if (outcome.outcome === "matched") return { ...outcome, ...about(follow) };
    // what came last may still be with the worker, or not searched yet
    await inflight;
    if (!matched) {
      const lines = batch();
      if (lines.length) await search(lines);
    }
    return { ...(matched ?? outcome), ...about(follow) };
  } finally {
    if (!matcher) own.close();
  }
}

function about(follow) {
  return { searched: follow.next, start: follow.start, truncated: follow.truncated, resumed: follow.resumed };
}
