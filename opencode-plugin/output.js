// A session's output through one connection: all that is kept, or new output until a
// regex matches, the session ends, the time is up, or the tool call is aborted.
import { plainText } from "./text.js";

// Everything the daemon still keeps of a session's output, as a string.
export async function readKept(daemon, session) {
  const conn = await daemon.connection();
  const chunks = [];
  let finish;
  const ended = new Promise((resolve, reject) => {
    finish = { resolve, reject };
  });
  const result = await conn.request(
    "subscribe",
    { session, since: 0, follow: false },
    {
      onResult: (res) =>
        conn.track(res.sub, {
          output: (_offset, data) => chunks.push(data),
          event: (ev) => {
            if (ev.event === "end") {
              conn.untrack(res.sub);
              finish.resolve();
            }
          },
          lost: (err) => finish.reject(err),
        }),
    },
  );
  await ended;
  return { text: Buffer.concat(chunks).toString("utf8"), start: result.start, end: result.end, truncated: result.truncated };
}

// Waits for `regex` in the plain text of the output from `since` on.
export async function waitForPattern(daemon, session, regex, { since, timeout, signal }) {
  const conn = await daemon.connection();
  const chunks = [];
  let next = since;
  let sub = null;
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  const check = () => {
    const text = plainText(Buffer.concat(chunks).toString("utf8"));
    const match = regex.exec(text);
    if (match) settle.resolve({ outcome: "matched", match, text, offset: next });
  };
  const result = await conn.request(
    "subscribe",
    { session, since, follow: true },
    {
      onResult: (res) => {
        sub = res.sub;
        next = res.start;
        conn.track(res.sub, {
          output: (offset, data) => {
            chunks.push(data);
            next = offset + data.length;
            check();
          },
          event: (ev) => {
            if (ev.event === "skipped") next = ev.to;
            if (ev.event === "end") settle.resolve({ outcome: "ended", end: ev, offset: next });
          },
          lost: (err) => settle.reject(err),
        });
      },
    },
  );
  check();
  const timer = setTimeout(() => settle.resolve({ outcome: "timeout", offset: next }), timeout * 1000);
  const onAbort = () => settle.reject(new Error("pty_wait was aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const outcome = await done;
    return { ...outcome, truncated: result.truncated, start: result.start };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    conn.untrack(sub);
    if (!conn.closed) conn.request("unsubscribe", { sub }).catch(() => {});
  }
}
