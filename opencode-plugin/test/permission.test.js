// pty_spawn's permission covers what will run: env variables are part of the command asked
// for, so a rule or an "always" for the bare command does not let `env` choose the program.
import assert from "node:assert/strict";
import { test } from "node:test";

import { spawn, spawnPermission, writeAlways } from "../tools.js";

// OpenCode's matching of a permission pattern against a rule (Wildcard.match): anchored,
// `*` any text, `?` one character, a trailing " *" also matches nothing.
function matches(text, rule) {
  let re = rule.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  if (re.endsWith(" .*")) re = re.slice(0, -3) + "( .*)?";
  return new RegExp(`^${re}$`, "s").test(text);
}

// A user who allows `git *` and is asked about everything else; asked requests are refused
// unless `reply` says "always", which adds the request's "always" patterns as OpenCode does.
function user(rules, reply = () => "reject") {
  const approved = [];
  const asked = [];
  const allowed = (pattern) => {
    const rule = [...rules, ...approved].findLast((r) => matches(pattern, r.pattern));
    return rule?.action === "allow";
  };
  return {
    asked,
    directory: "/tmp",
    sessionID: "ses_perm",
    async ask(request) {
      if (request.patterns.every(allowed)) return;
      asked.push(request);
      const answer = reply(request);
      if (answer === "always") for (const pattern of request.always) approved.push({ pattern, action: "allow" });
      else if (answer !== "once") throw new Error("the user rejected permission to use this specific tool call");
    },
  };
}

const daemon = () => {
  const calls = [];
  return { calls, call: async (op, args) => (calls.push([op, args]), { id: "1", cwd: "/tmp", argv: args.argv, state: "running" }) };
};

const RULES = [
  { pattern: "*", action: "ask" },
  { pattern: "git *", action: "allow" },
];

test("GIT_PAGER in env is not covered by an allow rule for `git *`: the user is asked, and a refusal runs nothing", async () => {
  const ctx = user(RULES);
  const d = daemon();
  await spawn(d, { command: "git", args: ["log"] }, ctx);
  assert.equal(ctx.asked.length, 0, "plain `git log` is allowed by the rule");
  assert.equal(d.calls.length, 1);

  const attack = { command: "git", args: ["log"], env: { GIT_PAGER: "sh -c 'id > /tmp/owned'" } };
  await assert.rejects(spawn(d, attack, ctx), /rejected/);
  assert.equal(d.calls.length, 1, "nothing was spawned");
  assert.deepEqual(ctx.asked[0].patterns, [`GIT_PAGER='sh -c '\\''id > /tmp/owned'\\''' git log`]);
  assert.equal(ctx.asked[0].metadata.command, ctx.asked[0].patterns[0]);
  assert.deepEqual(ctx.asked[0].metadata.env, attack.env);
});

test("each variable that can choose a program is shown before the command", async () => {
  for (const [key, value] of [
    ["PATH", "/tmp/evil:/usr/bin"],
    ["LD_PRELOAD", "/tmp/evil.so"],
    ["HOME", "/tmp/evil-home"],
    ["PAGER", "/tmp/evil"],
    ["BASH_ENV", "/tmp/evil.sh"],
    ["NODE_OPTIONS", "--require /tmp/evil.js"],
  ]) {
    const ctx = user(RULES);
    const d = daemon();
    await assert.rejects(spawn(d, { command: "git", args: ["status"], env: { [key]: value } }, ctx), /rejected/, key);
    assert.ok(ctx.asked[0].patterns[0].startsWith(`${key}=`), ctx.asked[0].patterns[0]);
    assert.equal(d.calls.length, 0, key);
  }
});

test("an earlier \"always\" covers the same program with the same variables, and no other", async () => {
  const ctx = user(RULES, () => "always");
  const d = daemon();
  await spawn(d, { command: "git", args: ["log"], env: { GIT_PAGER: "cat" } }, ctx);
  assert.deepEqual(ctx.asked[0].always, ["GIT_PAGER=cat git *"]);
  await spawn(d, { command: "git", args: ["log", "-p"], env: { GIT_PAGER: "cat" } }, ctx);
  assert.equal(ctx.asked.length, 1, "the same variables again: covered by the always");
  await spawn(d, { command: "git", args: ["log"], env: { GIT_PAGER: "/tmp/evil" } }, ctx);
  await spawn(d, { command: "git", args: ["log"], env: { GIT_PAGER: "cat", PATH: "/tmp/evil" } }, ctx);
  assert.equal(ctx.asked.length, 3, "another value, or another variable, is asked again");
});

test("a wildcard in the variables or the program gets no \"always\", which would cover more", () => {
  assert.deepEqual(spawnPermission("git", ["log"], { GIT_PAGER: "*" }).always, []);
  assert.deepEqual(spawnPermission("?", [], {}).always, []);
  assert.deepEqual(spawnPermission("git", ["log", "*.c"], {}), { pattern: "git log '*.c'", always: ["git *"] });
  assert.equal(spawnPermission("A=1", ["git"], {}).pattern, "'A=1' git", "a program named like an assignment is quoted");
  assert.equal(spawnPermission("sh", ["-c", "echo hi; id"], { B: "2", A: "1" }).pattern, "A=1 B=2 sh -c 'echo hi; id'");
});

test("a variable name that is not one is refused before anything is asked", async () => {
  const ctx = user(RULES, () => "once");
  const d = daemon();
  for (const key of ["X git", "A=B", "1A", ""]) {
    await assert.rejects(spawn(d, { command: "git", env: { [key]: "x" } }, ctx), /pty_spawn: 'env' has .* which is not a variable name/);
  }
  assert.equal(ctx.asked.length, 0);
  assert.equal(d.calls.length, 0);
});

test("pty_write offers an always only for a plain program name", () => {
  assert.deepEqual(writeAlways("git log --oneline"), ["git *"]);
  assert.deepEqual(writeAlways("  ls"), ["ls *"]);
  assert.deepEqual(writeAlways("GIT_PAGER=x git log"), []);
  assert.deepEqual(writeAlways("* foo"), []);
  assert.deepEqual(writeAlways("g?t status"), []);
});
