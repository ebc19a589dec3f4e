// The plugin's hooks without OpenCode's tool schemas: tools backed by the daemon, the
// context for the bash tool, terminals ended with their session, exit notices.
import path from "node:path";

import { Daemon } from "./daemon.js";
import { readKept } from "./output.js";
import * as tools from "./tools.js";
import { plainLines } from "./text.js";

export const LABEL_SESSION = "opencode.session";

function pathWithShim(shimDir, current) {
  const rest = (current ?? "").split(path.delimiter).filter((p) => p && p !== shimDir);
  return [shimDir, ...rest].join(path.delimiter);
}

export class PtyPlugin {
  constructor({ client = null, directory, daemon = new Daemon(), log = () => {} }) {
    this.client = client;
    this.directory = directory;
    this.daemon = daemon;
    this.log = log;
    this.marks = new Map();
    this.notify = new Map();
    this.eventsConn = null;
    this.daemon.onReconnect = () => {
      if (this.notify.size) this._watchExits().catch((err) => this.log("warn", `exit notices: ${err.message}`));
    };
  }

  // The tool handlers, by name, as `execute(args, ctx)`.
  handlers() {
    const d = this.daemon;
    return {
      pty_spawn: async (args, ctx) => {
        const { session, text } = await tools.spawn(d, args, ctx);
        if (args.notifyOnExit) {
          this.notify.set(session.id, { sessionID: ctx.sessionID, agent: ctx.agent, title: args.description || args.title || args.command });
          await this._watchExits();
        }
        return text;
      },
      pty_write: (args, ctx) => tools.write(d, args, ctx, this.marks),
      pty_read: (args) => tools.read(d, args),
      pty_list: (args, ctx) => tools.list(d, args, ctx),
      pty_kill: (args) => tools.kill(d, args),
      pty_wait: (args, ctx) => tools.wait(d, args, ctx, this.marks),
      pty_screen: (args) => tools.screen(d, args),
    };
  }

  // The environment of the bash tool's commands: the project's context, as a spawn gets it.
  async shellEnv(input, output) {
    let context;
    try {
      context = await this.daemon.call("context", { project: this.directory, cwd: path.resolve(this.directory, input?.cwd ?? ".") });
    } catch (err) {
      this.log("warn", `no project context for the shell: ${err.message}`);
      return;
    }
    Object.assign(output.env, context.env);
    if (context.shim_dir) output.env.PATH = pathWithShim(context.shim_dir, output.env.PATH ?? process.env.PATH);
  }

  // Ends the terminals an OpenCode session started, when that session is deleted.
  async sessionDeleted(sessionID) {
    const { sessions } = await this.daemon.call("list", { labels: { [LABEL_SESSION]: sessionID } });
    for (const s of sessions) {
      await this.daemon.call("remove", { session: s.id }, { timeout: 30000 }).catch((err) => this.log("warn", `removing terminal ${s.id}: ${err.message}`));
      this.notify.delete(s.id);
      this.marks.delete(s.id);
    }
    return sessions.length;
  }

  async _watchExits() {
    const conn = await this.daemon.connection();
    if (this.eventsConn === conn) return;
    this.eventsConn = conn;
    await conn.request("events", {}, {
      onResult: (res) => conn.track(res.sub, { event: (ev) => ev.event === "exited" && this._exited(ev) }),
    });
    for (const id of this.notify.keys()) {
      const s = await this.daemon.call("info", { session: id }).catch(() => null);
      if (s?.state === "exited") this._exited({ session: id, exit_code: s.exit_code, signal: s.signal });
    }
  }

  async _exited(ev) {
    const wanted = this.notify.get(ev.session);
    if (!wanted) return;
    this.notify.delete(ev.session);
    let last = "";
    try {
      const { text } = await readKept(this.daemon, ev.session);
      last = plainLines(text).filter((l) => l.trim()).pop() ?? "";
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

  close() {
    this.daemon.close();
  }
}
