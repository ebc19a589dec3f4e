// What each pty_* tool does, on a Daemon; arguments are checked here too, so a bad one is
// refused with its name whoever calls. Every answer is plain text for the model.
//
// The tools reach the terminals of the OpenCode project they run in (those pty_spawn
// labelled with this directory), unless the plugin's scope is "all" (PTYSUP_OPENCODE_SCOPE).
import path from "node:path";

import { Unreachable } from "./daemon.js";
import { Matcher, RunawayPattern } from "./match.js";
import { readKept, waitForPattern } from "./output.js";
import { clip, compileRegex, numbered, parseEscapes, plainLines, preview, shown, typedCommands, around } from "./text.js";
import { Aborted, ConnectionLost, DaemonError } from "./wire.js";

export const DEFAULT_LIMIT = 500;
export const DEFAULT_WAIT = 60;
export const MAX_WAIT = 3600;
// pty_write: at most this much in one call, sent in requests of WRITE_CHUNK bytes (each
// frame then stays far below the smallest PTYSUP_MAX_FRAME a daemon may have, 64 KiB).
export const MAX_WRITE = 1024 * 1024;
export const WRITE_CHUNK = 32 * 1024;
export const LABEL_SESSION = "opencode.session";
export const LABEL_DIRECTORY = "opencode.directory";
const MAX_LABEL = 1024;
const TAIL = 20;
const ALTERNATE_SCREEN = ["\x1b[?1049h", "\x1b[?1047h", "\x1b[?47h"].map((s) => Buffer.from(s));

function fail(tool, message) {
  throw new Error(`${tool}: ${message}`);
}

// The spellings of opencode-pty (and its forks) that models trained on it send: OpenCode
// 1.18 passes a plugin's arguments on unchecked, so they arrive here as they were written.
const ALIASES = {
  pty_wait: { timeoutSeconds: "timeout", timeout_seconds: "timeout", regex: "pattern" },
};

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

export function normalize(tool, args) {
  if (args === null || typeof args !== "object" || Array.isArray(args)) return args;
  const out = { ...args };
  for (const [alias, name] of Object.entries(ALIASES[tool] ?? {})) {
    if (out[alias] === undefined) continue;
    if (out[name] !== undefined && out[name] !== out[alias]) fail(tool, `'${alias}' and '${name}' say different things: give one of them`);
    out[name] = out[alias];
    delete out[alias];
  }
  if (tool === "pty_wait") {
    if (typeof out.literal === "string" && out.literal) {
      if (out.pattern !== undefined) fail(tool, "give 'pattern' or 'literal', not both");
      out.pattern = escapeRegex(out.literal);
      delete out.literal;
    }
    if (out.exit === true && out.pattern !== undefined) fail(tool, "'exit' waits for the command to end: leave out 'pattern'");
    if (typeof out.exit === "boolean") delete out.exit;
  }
  return out;
}

function check(tool, args, spec) {
  if (args === null || typeof args !== "object" || Array.isArray(args)) fail(tool, "the arguments must be an object");
  for (const key of Object.keys(args)) if (!(key in spec) && args[key] !== undefined) fail(tool, `unknown argument '${shown(key, 64)}'`);
  for (const [key, [type, required]] of Object.entries(spec)) {
    const value = args[key];
    if (value === undefined || value === null) {
      if (required) fail(tool, `'${key}' is required`);
      continue;
    }
    const ok = {
      string: typeof value === "string",
      text: typeof value === "string" && value.length > 0,
      boolean: typeof value === "boolean",
      count: Number.isInteger(value) && value >= 0,
      positive: Number.isInteger(value) && value >= 1,
      seconds: typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= MAX_WAIT,
      strings: Array.isArray(value) && value.every((v) => typeof v === "string"),
      record:
        typeof value === "object" && !Array.isArray(value) && Object.values(value).every((v) => typeof v === "string"),
    }[type];
    if (!ok) {
      const wanted = {
        string: "a string",
        text: "a non-empty string",
        boolean: "true or false",
        count: "a whole number from 0",
        positive: "a whole number from 1",
        seconds: `a number of seconds from 0 to ${MAX_WAIT}`,
        strings: "a list of strings",
        record: "an object of string values",
      }[type];
      fail(tool, `'${key}' must be ${wanted}, not ${shown(value, 80)}`);
    }
  }
  if (typeof args.id === "string" && !/^[A-Za-z0-9_.@:+-]{1,64}$/.test(args.id)) fail(tool, `'id' ${shown(JSON.stringify(args.id), 80)} is not a terminal id`);
}

const UNAVAILABLE =
  "The terminals themselves are not affected: try again in a moment, or ask the user to check the daemon with `ptysup status`.";

// An error of the daemon or of the way to it, as a tool error that says what went wrong.
function failFrom(tool, err, id = undefined) {
  if (err instanceof Aborted) fail(tool, "aborted");
  if (err instanceof RunawayPattern) fail(tool, err.message);
  if (err instanceof DaemonError && err.code === "not_found" && id !== undefined) {
    fail(tool, `no terminal '${shown(String(id), 64)}' (it may have been removed); pty_list shows this project's terminals`);
  }
  if (err instanceof Unreachable) fail(tool, `the pty-supervisor daemon is unavailable: ${shown(err.message, 600)}`);
  if (err instanceof ConnectionLost || (err instanceof DaemonError && err.code === "timeout")) {
    fail(tool, `the pty-supervisor daemon is unavailable: ${shown(err.message, 600)}. ${UNAVAILABLE}`);
  }
  fail(tool, shown(err.message, 1000));
}

// The daemon's answer, or a tool error that says which terminal and what went wrong.
async function call(tool, daemon, op, args, options = {}) {
  try {
    return await daemon.call(op, args, options);
  } catch (err) {
    failFrom(tool, err, args.session);
  }
}

// A terminal these tools may reach, or a tool error saying why not.
export async function reach(tool, daemon, id, ctx, scope = "project", signal = ctx?.abort) {
  const s = await call(tool, daemon, "info", { session: id }, { signal });
  if (scope === "all") return s;
  const dir = s.labels?.[LABEL_DIRECTORY];
  if (dir === ctx.directory) return s;
  const why =
    dir === undefined
      ? "it was not started by OpenCode's pty_spawn (a person or another program opened it)"
      : `it belongs to the OpenCode project in ${shown(dir, 300)}`;
  fail(tool, `terminal ${s.id} is not one of this project's terminals: ${why}. These tools reach only the terminals pty_spawn started in ${ctx.directory}; pty_list shows them.`);
}

function label(value) {
  return value.length > MAX_LABEL ? value.slice(0, MAX_LABEL - 1) + "…" : value;
}

function titleOf(s) {
  return s.labels?.["opencode.title"] || s.name || s.argv.join(" ");
}

function statusOf(s) {
  if (s.state === "running") return "running";
  if (s.signal_name) return `killed by ${s.signal_name}`;
  return s.exit_code === null ? "exited" : `exited with ${s.exit_code}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const quote = (word) => `'${word.replaceAll("'", "'\\''")}'`;

// A word as a POSIX shell reads it back: bare when plain, else in single quotes.
export function shellWord(word) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : quote(word);
}

// What pty_spawn asks the user to allow, written as the shell line that would run the same:
// every variable of env in front of the command (PATH, LD_PRELOAD, HOME, GIT_PAGER... each
// can choose what runs, and no list of the harmless ones can be trusted to be complete), so
// that a rule or an earlier "always" for `git *` does not cover `GIT_PAGER=x git log`.
// "Always" covers this program with exactly these variables and values, whatever the
// arguments; a wildcard character in them would widen it, so then only this run is allowed.
export function spawnPermission(command, args, env) {
  const program = command.includes("=") ? quote(command) : shellWord(command);
  const head = [...Object.keys(env).sort().map((key) => `${key}=${shellWord(env[key])}`), program].join(" ");
  return {
    pattern: [head, ...args.map(shellWord)].join(" "),
    always: /[*?]/.test(head) ? [] : [`${head} *`],
  };
}

export async function spawn(daemon, args, ctx) {
  check("pty_spawn", args, {
    command: ["text", true],
    args: ["strings", false],
    workdir: ["text", false],
    env: ["record", false],
    title: ["string", false],
    description: ["string", false],
    notifyOnExit: ["boolean", false],
  });
  const argv = [args.command, ...(args.args ?? [])];
  const commandLine = argv.join(" ");
  for (const key of Object.keys(args.env ?? {})) {
    if (!ENV_NAME.test(key)) fail("pty_spawn", `'env' has ${shown(JSON.stringify(key), 80)}, which is not a variable name (letters, digits and _, not starting with a digit)`);
  }
  const asked = spawnPermission(args.command, args.args ?? [], args.env ?? {});
  await ctx.ask({
    permission: "bash",
    patterns: [asked.pattern],
    always: asked.always,
    metadata: { command: asked.pattern, description: args.description ?? "", env: args.env ?? {} },
  });
  const cwd = args.workdir ? path.resolve(ctx.directory, args.workdir) : ctx.directory;
  const title = args.title || args.description || commandLine;
  const labels = {
    [LABEL_SESSION]: ctx.sessionID,
    [LABEL_DIRECTORY]: ctx.directory,
    "opencode.title": label(title),
  };
  if (args.description) labels["opencode.description"] = label(args.description);
  const env = { ...process.env, ...(args.env ?? {}) };
  const s = await call("pty_spawn", daemon, "spawn", { argv, cwd, env, project: ctx.directory, labels, cols: 120, rows: 40 }, { signal: ctx.abort });
  return {
    session: s,
    text: [
      "<pty_spawned>",
      `ID: ${s.id}`,
      `Title: ${clip(title, 300)}`,
      `Command: ${clip(commandLine, 500)}`,
      `Workdir: ${s.cwd}`,
      `Project: ${s.context?.directory} (${s.context?.project_id})`,
      `PID: ${s.pid}`,
      `Status: ${statusOf(s)}`,
      `Watch it live: ptysup attach ${s.id}`,
      "</pty_spawned>",
    ].join("\n"),
  };
}

// "Always" for a typed line covers its program whatever the arguments, only where the first
// word is a plain program name: `GIT_PAGER=x git log` or `* foo` would otherwise be allowed
// for every command after them.
export function writeAlways(command) {
  const head = command.trim().split(/\s+/)[0];
  return /^[A-Za-z0-9_@%+:,./-]+$/.test(head) ? [`${head} *`] : [];
}

// Types `args.data`. `typed` (a Map) learns, per terminal, where the output stood when this
// input began and whether it ended with Enter, for pty_wait (the daemon says the same of the
// last input of any process; this is for a daemon that does not).
export async function write(daemon, args, ctx, typed = new Map(), scope = "project") {
  check("pty_write", args, { id: ["text", true], data: ["string", true] });
  if (args.data.length > MAX_WRITE) {
    fail("pty_write", `'data' is ${args.data.length} characters; at most ${MAX_WRITE} go in one pty_write (split it, or write it to a file and have the program read that)`);
  }
  const bytes = parseEscapes(args.data);
  if (bytes.length === 0) fail("pty_write", "'data' is empty: nothing to type");
  if (bytes.length > MAX_WRITE) fail("pty_write", `'data' is ${bytes.length} bytes; at most ${MAX_WRITE} go in one pty_write`);
  const s = await reach("pty_write", daemon, args.id, ctx, scope);
  if (s.state !== "running") fail("pty_write", `terminal ${s.id} has ${statusOf(s)}; it takes no input`);
  const commands = typedCommands(bytes);
  for (const command of commands) {
    await ctx.ask({ permission: "bash", patterns: [command], always: writeAlways(command), metadata: { command } });
  }
  let written = 0;
  let offset = null;
  for (let at = 0; at < bytes.length; at += WRITE_CHUNK) {
    const chunk = bytes.subarray(at, at + WRITE_CHUNK);
    let res;
    try {
      res = await daemon.call("write", { session: s.id, data_b64: chunk.toString("base64") }, { timeout: 30000 });
    } catch (err) {
      if (written) fail("pty_write", `${written} of ${bytes.length} bytes were typed into terminal ${s.id}, then: ${shown(err.message, 600)}`);
      failFrom("pty_write", err, s.id);
    }
    if (offset === null) offset = res.offset ?? null;
    written += res.written;
  }
  const last = bytes[bytes.length - 1];
  if (offset !== null) typed.set(s.id, { offset, enter: last === 0x0a || last === 0x0d });
  return `Sent ${written} bytes to terminal ${s.id}: "${preview(bytes)}"${offset !== null ? ` (the output stood at byte ${offset}; pty_wait searches from there)` : ""}`;
}

// The kept output of a terminal as lines; a tool error when it cannot be had.
async function keptLines(tool, daemon, s, signal) {
  try {
    const kept = await readKept(daemon, s.id, { signal });
    return { ...kept, lines: plainLines(kept.bytes) };
  } catch (err) {
    failFrom(tool, err, s.id);
  }
}

// What a full-screen program shows now, when one holds the alternate screen; else null.
async function fullScreen(daemon, s, bytes, signal) {
  if (!ALTERNATE_SCREEN.some((seq) => bytes.includes(seq))) return null;
  const sc = await daemon.call("screen", { session: s.id }, { signal }).catch(() => null);
  if (!sc?.alternate) return null;
  const rows = [...sc.lines];
  while (rows.length && rows[rows.length - 1] === "") rows.pop();
  return rows.map((row) => plainLines(row).join(""));
}

export async function read(daemon, args, ctx, scope = "project") {
  check("pty_read", args, {
    id: ["text", true],
    offset: ["count", false],
    limit: ["positive", false],
    pattern: ["text", false],
    ignoreCase: ["boolean", false],
  });
  const regex = args.pattern ? compileRegex(args.pattern, args.ignoreCase, "pty_read: 'pattern'") : null;
  const s = await reach("pty_read", daemon, args.id, ctx, scope);
  const kept = await keptLines("pty_read", daemon, s, ctx?.abort);
  const lines = kept.lines;
  const offset = args.offset ?? 0;
  const limit = args.limit ?? DEFAULT_LIMIT;
  const head = `<pty_output id="${s.id}" status="${statusOf(s)}"${regex ? ` pattern="${shown(args.pattern)}"` : ""}>`;
  const out = [head];
  if (kept.truncated) out.push(`(the first ${kept.start} bytes of output are no longer kept; line numbers count from what is)`);
  if (regex) {
    const matcher = new Matcher(regex);
    let found;
    try {
      found = await matcher.all(lines);
    } catch (err) {
      failFrom("pty_read", err);
    } finally {
      matcher.close();
    }
    const shownMatches = found.slice(offset, offset + limit);
    if (!found.length) out.push(`No lines matched the pattern '${shown(args.pattern)}'.`, `Total lines: ${lines.length}`);
    else {
      out.push(...shownMatches.map((m) => numbered(m.i + 1, lines[m.i], m)), "");
      if (offset + shownMatches.length < found.length) {
        out.push(`(${shownMatches.length} of ${found.length} matches shown. Use offset=${offset + shownMatches.length} to see more.)`);
      } else if (offset >= found.length) out.push(`(offset=${offset} is past the last of ${found.length} matches)`);
      else out.push(`(${found.length} match${found.length === 1 ? "" : "es"} from ${lines.length} total lines)`);
    }
  } else {
    const screen = await fullScreen(daemon, s, kept.bytes, ctx?.abort);
    if (screen) {
      out.push(
        "(A full-screen program holds the terminal: what it shows now comes first; its output as lines, redraws and all, follows.)",
        "--- screen ---",
        ...screen.map((row) => clip(row)),
        "--- lines ---",
      );
    }
    if (!lines.length) out.push("(No output yet)");
    else if (offset >= lines.length) out.push(`(offset=${offset} is past the end: there are ${lines.length} lines)`);
    else {
      const page = lines.slice(offset, offset + limit);
      out.push(...page.map((text, i) => numbered(offset + i + 1, text)), "");
      if (offset + page.length < lines.length) {
        out.push(`(More lines follow. Use offset=${offset + page.length} to read beyond line ${offset + page.length}.)`);
      } else out.push(`(End of output - total ${lines.length} lines)`);
    }
  }
  out.push("</pty_output>");
  return out.join("\n");
}

export async function list(daemon, args, ctx, scope = "project") {
  check("pty_list", args ?? {}, {});
  const filter = scope === "all" ? {} : { labels: { [LABEL_DIRECTORY]: ctx.directory } };
  const sessions = await call("pty_list", daemon, "list", filter, { signal: ctx.abort });
  const rule =
    scope === "all"
      ? "(Every terminal of this user's pty-supervisor daemon is listed and reachable: PTYSUP_OPENCODE_SCOPE=all.)"
      : `(Only this project's terminals are listed, and only they can be read, written, waited for or killed: those pty_spawn started in ${ctx.directory}, from any OpenCode session.)`;
  if (!sessions.sessions.length) return `<pty_list>\nNo terminals in this project.\n${rule}\n</pty_list>`;
  const out = ["<pty_list>"];
  for (const s of sessions.sessions) {
    const mine = s.labels[LABEL_SESSION] === ctx.sessionID ? "this session" : s.labels[LABEL_SESSION] ?? "none (not started by OpenCode)";
    out.push(
      `[${s.id}] ${clip(titleOf(s), 300)}`,
      `  Command: ${clip(s.argv.join(" "), 500)}`,
      `  Status: ${statusOf(s)}`,
      `  PID: ${s.pid} | Output: ${s.end} bytes | Workdir: ${s.cwd}`,
      `  Created: ${s.created_at} | OpenCode session: ${mine}`,
    );
    if (scope === "all") out.push(`  Project: ${s.labels[LABEL_DIRECTORY] ?? s.context?.directory ?? "none"}`);
    out.push("");
  }
  out.push(`Total: ${sessions.sessions.length} terminal(s). Watch one live: ptysup attach ID`, rule, "</pty_list>");
  return out.join("\n");
}

// What pty_kill asks the user to allow: the ptysup command that would do the same.
export function killPermission(id, cleanup) {
  return { pattern: `ptysup ${cleanup ? "rm" : "kill"} ${id}`, always: [`ptysup ${cleanup ? "rm" : "kill"} *`] };
}

export async function kill(daemon, args, ctx, scope = "project") {
  check("pty_kill", args, { id: ["text", true], cleanup: ["boolean", false] });
  const before = await reach("pty_kill", daemon, args.id, ctx, scope);
  const asked = killPermission(before.id, args.cleanup);
  await ctx.ask({
    permission: "bash",
    patterns: [asked.pattern],
    always: asked.always,
    metadata: { command: asked.pattern, description: `end terminal ${before.id}: ${clip(titleOf(before), 200)}` },
  });
  let s = before;
  if (before.state === "running") s = await call("pty_kill", daemon, "kill", { session: before.id }, { timeout: 30000 });
  if (args.cleanup) s = (await call("pty_kill", daemon, "remove", { session: before.id }, { timeout: 30000 })).session;
  const action = before.state === "running" ? "Killed" : "Already ended";
  return [
    "<pty_killed>",
    `${action}: ${before.id}${args.cleanup ? " (removed; its output is gone)" : " (kept: pty_read still reads its output)"}`,
    `Title: ${clip(titleOf(before), 300)}`,
    `Command: ${clip(before.argv.join(" "), 500)}`,
    `Status: ${statusOf(s)}`,
    "</pty_killed>",
  ].join("\n");
}

async function tail(daemon, id, signal, removed) {
  let kept;
  try {
    const got = await readKept(daemon, id, { signal });
    kept = { lines: plainLines(got.bytes) };
  } catch (err) {
    if (err instanceof DaemonError && err.code === "not_found") fail("pty_wait", removed);
    failFrom("pty_wait", err, id);
  }
  const first = Math.max(0, kept.lines.length - TAIL);
  return kept.lines.slice(first).map((text, i) => numbered(first + i + 1, text));
}

// Where pty_wait starts searching, and how the answer says so: the offset given, else where
// the last input was typed (the daemon says, whoever typed it; else what this process
// typed), else the start of the output kept. When that input ended with Enter, the first
// line after it, its echo, is not searched.
function searchStart(s, args, typed) {
  if (args.since !== undefined) {
    const since = Math.min(Math.max(args.since, s.start), s.end);
    return { since, from: `from byte ${since}${since !== args.since ? ` (${args.since} was outside the output kept, ${s.start} to ${s.end})` : ""}`, echo: false };
  }
  const last = s.last_input ?? typed.get(s.id) ?? null;
  if (last === null) {
    return { since: s.start, from: `from byte ${s.start}, the start of the output kept (no input typed into this terminal is known)`, echo: false };
  }
  if (last.offset < s.start) {
    return { since: s.start, from: `from byte ${s.start}, the start of the output kept (the last input, at byte ${last.offset}, is older)`, echo: false };
  }
  const echo = Boolean(last.enter);
  return { since: last.offset, from: `from byte ${last.offset}, where the last input was typed${echo ? " (its echo, the first line, not counted)" : ""}`, echo };
}

export async function wait(daemon, args, ctx, typed = new Map(), scope = "project") {
  args = normalize("pty_wait", args);
  check("pty_wait", args, {
    id: ["text", true],
    pattern: ["text", false],
    timeout: ["seconds", false],
    ignoreCase: ["boolean", false],
    since: ["count", false],
  });
  const timeout = args.timeout ?? DEFAULT_WAIT;
  const signal = ctx?.abort;
  const regex = args.pattern ? compileRegex(args.pattern, args.ignoreCase, "pty_wait: 'pattern'") : null;
  const s = await reach("pty_wait", daemon, args.id, ctx, scope);
  if (!regex) {
    const res = await call("pty_wait", daemon, "wait", { session: s.id, timeout }, { timeout: (timeout + 30) * 1000, signal });
    if (res.timed_out) {
      return `<pty_wait_timeout>\nTerminal ${s.id} still runs after ${timeout} s. Use pty_read for its output, pty_kill to end it, or pty_wait again.\n</pty_wait_timeout>`;
    }
    const done = res.session;
    return ["<pty_waited>", `ID: ${done.id}`, `Status: ${statusOf(done)}`, `Exit code: ${done.exit_code ?? "none"}`, "", "Tail:", ...(await tail(daemon, done.id, signal, `terminal ${done.id} ended (${statusOf(done)}) and was removed meanwhile; its output is gone`)), "</pty_waited>"].join("\n");
  }
  const start = searchStart(s, args, typed);
  const pattern = shown(args.pattern);
  let res;
  try {
    res = await waitForPattern(daemon, s.id, regex, { since: start.since, timeout, signal, skipEcho: start.echo });
  } catch (err) {
    if (err instanceof DaemonError && err.code === "not_found") fail("pty_wait", `terminal ${s.id} was removed while waiting for '${pattern}'; pty_list shows this project's terminals`);
    failFrom("pty_wait", err, s.id);
  }
  const searched = `(output searched ${start.from}, to byte ${res.searched})`;
  if (res.outcome === "timeout") {
    return `<pty_wait_timeout>\nNo line matched '${pattern}' in terminal ${s.id} within ${timeout} s ${searched}. Use pty_read to look, or pty_wait again.\n</pty_wait_timeout>`;
  }
  if (res.outcome === "end") {
    if (res.end.reason === "removed") fail("pty_wait", `terminal ${s.id} was removed while waiting for '${pattern}' ${searched}`);
    const code = res.end.exit_code ?? (res.end.signal ? `signal ${res.end.signal}` : "none");
    return [`<pty_waited>`, `ID: ${s.id}`, `Terminal ended before '${pattern}' appeared. Exit code: ${code}`, `No line matched ${searched.slice(1, -1)}.`, "", "Tail:", ...(await tail(daemon, s.id, signal, `terminal ${s.id} was removed while waiting for '${pattern}'`)), "</pty_waited>"].join("\n");
  }
  const m = res.match;
  return [
    `<pty_matched id="${s.id}" pattern="${pattern}">`,
    `Matched: ${clip(m.text, 500)}`,
    `Line: ${around(res.line, m.index, m.index + m.length)}`,
    `Match ends at byte: ${res.offset} (pty_wait with since=${res.offset} searches what comes after it)`,
    `Searched ${start.from}.`,
    ...(res.resumed ? [`(The connection to the daemon was made again ${res.resumed} time(s) meanwhile; no output was missed.)`] : []),
    "</pty_matched>",
  ].join("\n");
}

export async function screen(daemon, args, ctx, scope = "project") {
  check("pty_screen", args, { id: ["text", true] });
  const s = await reach("pty_screen", daemon, args.id, ctx, scope);
  const sc = await call("pty_screen", daemon, "screen", { session: s.id }, { signal: ctx?.abort });
  const rows = [...sc.lines];
  while (rows.length && rows[rows.length - 1] === "") rows.pop();
  return [
    `<pty_screen id="${sc.session}" status="${statusOf(s)}" size="${sc.cols}x${sc.rows}" cursor="${sc.cursor.y + 1},${sc.cursor.x + 1}"${sc.title ? ` title="${shown(sc.title)}"` : ""}${sc.alternate ? ' alternate="yes"' : ""}>`,
    ...rows.map((row) => clip(plainLines(row).join(""))),
    "</pty_screen>",
  ].join("\n");
}
