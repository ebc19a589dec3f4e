// The plugin's hooks without OpenCode's tool schemas: tools backed by the daemon, the
// context for the bash tool, terminals ended with their session, exit notices.
import path from "node:path";

import { Daemon } from "./daemon.js";
import { readKept } from "./output.js";
import * as tools from "./tools.js";
import { plainLines } from "./text.js";

export const LABEL_SESSION = tools.LABEL_SESSION;

// shell.env runs before every command of the bash tool: it waits at most SHELL_BUDGET ms
// for the daemon, and after a failure asks again only SHELL_RETRY ms later.
export const SHELL_BUDGET = 500;
export const SHELL_RETRY = 30000;
// OpenCode waits for dispose; the removals a deleted session started get this long to end.
export const DISPOSE_WAIT = 10000;
const WATCH_RETRY = [200, 500, 1000, 2000, 5000];

function pathWithShim(shimDir, current) {
  const rest = (current ?? "").split(path.delimiter).filter((p) => p && p !== shimDir);
  return [shimDir, ...rest].join(path.delimiter);
}

function within(promise, ms) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ late: true }), ms);
  });
  return Promise.race([promise.then((value) => ({ value })), late]).finally(() => clearTimeout(timer));
}

// "project" (the default): the tools reach only this project's terminals; "all": every one.
export function scopeFrom(env = process.env) {
  return env.PTYSUP_OPENCODE_SCOPE === "all" ? "all" : "project";
}

export class PtyPlugin {
  constructor({ client = null, directory, daemon = new Daemon(), log = () => {}, scope = scopeFrom() }) {
    this.client = client;
    this.directory = directory;
    this.daemon = daemon;
    this.log = log;
    this.scope = scope;
    this.typed = new Map();
    this.notify = new Map();
    this.eventsConn = null;
    this.watching = null;
    this.keeping = null;
    this.shellRetryAt = 0;
    this.shellFailure = null;
    this.removals = new Set();
    this.closing = false;
    this.daemon.onReconnect = () => this._keepWatching();
    // After `ptysup upgrade` the daemon closes every connection and serves again from the
    // same socket: the exit notices are subscribed to again at once, not at the next call.
    this.daemon.onLost = (_conn, restarting) => {
      if (restarting) this._keepWatching(true);
    };
  }

  // The tool handlers, by name, as `execute(args, ctx)`.
  handlers() {
    const d = this.daemon;
    const scope = this.scope;
    return {
      pty_spawn: async (args, ctx) => {
        const { session, text } = await tools.spawn(d, args, ctx);
        if (!args.notifyOnExit) return text;
        this.notify.set(session.id, { sessionID: ctx.sessionID, agent: ctx.agent, title: args.description || args.title || args.command });
        try {
          await this._watchExits();
        } catch (err) {
          this.log("warn", `exit notices: ${err.message}`);
          this._keepWatching();
          return `${text}\n(The exit notice could not be set up yet: ${err.message}. It is tried again; pty_wait without a pattern also tells when the command ends.)`;
        }
        return text;
      },
      pty_write: (args, ctx) => tools.write(d, args, ctx, this.typed, scope),
      pty_read: (args, ctx) => tools.read(d, args, ctx, scope),
      pty_list: (args, ctx) => tools.list(d, args, ctx, scope),
      pty_kill: (args, ctx) => tools.kill(d, args, ctx, scope),
      pty_wait: (args, ctx) => tools.wait(d, args, ctx, this.typed, scope),
      pty_screen: (args, ctx) => tools.screen(d, args, ctx, scope),
    };
  }

  // The environment of the bash tool's commands: the project's context, as a spawn gets it.
  // Never holds a command up for more than SHELL_BUDGET ms; an unavailable daemon is asked
  // again only SHELL_RETRY ms later (the command runs without the context meanwhile).
  async shellEnv(input, output) {
    const now = Date.now();
    if (now < this.shellRetryAt) return;
    const asked = this.daemon
      .connection()
      .then((conn) => conn.request("context", { project: this.directory, cwd: path.resolve(this.directory, input?.cwd ?? ".") }, { timeout: SHELL_BUDGET }));
    // Settled after the budget, it still tells: a daemon that answers now is asked at once
    // next time (one being started on demand is often up a second later).
    asked.then(
      () => {
        this.shellRetryAt = 0;
      },
      () => {},
    );
    let context;
    try {
      const got = await within(asked, SHELL_BUDGET);
      if (got.late) throw new Error(`the daemon did not answer within ${SHELL_BUDGET} ms`);
      context = got.value;
    } catch (err) {
      this.shellRetryAt = Date.now() + SHELL_RETRY;
      if (this.shellFailure !== err.message) this.log("warn", `no project context for the shell (asked again in ${SHELL_RETRY / 1000} s): ${err.message}`);
      this.shellFailure = err.message;
      return;
    }
    this.shellFailure = null;
    Object.assign(output.env, context.env);
    if (context.shim_dir) output.env.PATH = pathWithShim(context.shim_dir, output.env.PATH ?? process.env.PATH);
  }

  // Ends the terminals an OpenCode session started, when that session is deleted. OpenCode
  // does not wait for the event, and disposes the plugin right after it: dispose waits for
  // this (and the daemon finishes a removal it has begun even if the connection closes).
  sessionDeleted(sessionID) {
    const removal = this._removeSession(sessionID);
    this.removals.add(removal);
    removal.catch(() => {}).finally(() => this.removals.delete(removal));
    return removal;
  }

  async _removeSession(sessionID) {
    const { sessions } = await this.daemon.call("list", { labels: { [LABEL_SESSION]: sessionID } });
    await Promise.all(
      sessions.map(async (s) => {
        await this.daemon.call("remove", { session: s.id }, { timeout: 30000 }).catch((err) => this.log("warn", `removing terminal ${s.id}: ${err.message}`));
        this.notify.delete(s.id);
        this.typed.delete(s.id);
      }),
    );
    return sessions.length;
  }

  // Subscribes to the daemon's events on the current connection, once; concurrent callers
  // share the one attempt, and a failed one is tried again by the next.
  async _watchExits() {
    const conn = await this.daemon.connection();
    if (this.eventsConn === conn && !conn.closed) return;
    if (this.watching?.conn === conn) return this.watching.done;
    const done = (async () => {
      await conn.request("events", {}, {
        onResult: (res) => conn.track(res.sub, { event: (ev) => ev.event === "exited" && this._exited(ev) }),
      });
      this.eventsConn = conn;
      // what ended while no one listened
      for (const id of [...this.notify.keys()]) {
        const s = await this.daemon.call("info", { session: id }).catch(() => null);
        if (s?.state === "exited") this._exited({ session: id, exit_code: s.exit_code, signal: s.signal });
        else if (s === null) this.notify.delete(id);
      }
    })();
    this.watching = { conn, done };
    try {
      await done;
    } finally {
      if (this.watching?.done === done) this.watching = null;
    }
  }

  // Keeps the exit notices subscribed while any is wanted: again and again, a little
  // later each time, until it holds. `reconnect`: the daemon is being replaced (an upgrade):
  // open a new connection without starting a daemon.
  _keepWatching(reconnect = false) {
    if (!this.notify.size || this.closing || this.keeping) return;
    this.keeping = (async () => {
      for (let attempt = 0; this.notify.size && !this.closing; attempt++) {
        try {
          if (reconnect) await this.daemon.connection({ autostart: false });
          await this._watchExits();
          return;
        } catch (err) {
          if (attempt === 0) this.log("warn", `exit notices: ${err.message}; trying again`);
          await new Promise((r) => setTimeout(r, WATCH_RETRY[Math.min(attempt, WATCH_RETRY.length - 1)]));
        }
      }
    })().finally(() => {
      this.keeping = null;
    });
  }

  async _exited(ev) {
    const wanted = this.notify.get(ev.session);
    if (!wanted) return;
    this.notify.delete(ev.session);
    let last = "";
    try {
      const { bytes } = await readKept(this.daemon, ev.session, { timeout: 10 });
      last = plainLines(bytes).filter((l) => l.trim()).pop() ?? "";
    } catch {
      // the terminal may be gone already; the notice goes out without its last line
    }
    const code = ev.exit_code ?? (ev.signal ? `killed by signal ${ev.signal}` : "unknown");
    const text = [
      "<pty_exited>",
      `ID: ${ev.session}`,
      `Description: ${wanted.title}`,
      `Exit code: ${code}`,
      `Last line: ${last.slice(0, 250)}`,
      "</pty_exited>",
      "",
      ev.exit_code === 0 ? "Use pty_read to check the full output." : "It failed: use pty_read with a pattern to find the errors.",
    ].join("\n");
    try {
      await this.client?.session?.promptAsync({
        path: { id: wanted.sessionID },
        body: { parts: [{ type: "text", text }], ...(wanted.agent ? { agent: wanted.agent } : {}) },
      });
    } catch (err) {
      this.log("warn", `could not tell session ${wanted.sessionID} that terminal ${ev.session} ended: ${err.message}`);
    }
  }

  // Waits (at most DISPOSE_WAIT ms) for the removals of deleted sessions, then closes.
  async close() {
    this.closing = true;
    if (this.removals.size) await within(Promise.allSettled([...this.removals]), DISPOSE_WAIT);
    this.daemon.close();
  }
}
