// Regular expressions run in a worker thread with a deadline: a pattern that backtracks
// catastrophically (`(a+)+$` on a long line of a's) is stopped there, and OpenCode's own
// thread goes on. This module is also the worker's code.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

import { shown } from "./text.js";

export const MATCH_DEADLINE = 5000;

// The matcher's worker: {lines, all} → the first matching line, or every one with `all`.
if (!isMainThread && workerData?.ptysupMatcher) {
  const regex = new RegExp(workerData.pattern, workerData.flags);
  parentPort.on("message", ({ id, lines, all }) => {
    const found = [];
    for (let i = 0; i < lines.length; i++) {
      regex.lastIndex = 0;
      const m = regex.exec(lines[i]);
      if (!m) continue;
      found.push({ i, index: m.index, length: m[0].length, text: m[0].slice(0, 1000) });
      if (!all) break;
    }
    parentPort.postMessage({ id, found });
  });
}

export class RunawayPattern extends Error {
  constructor(message) {
    super(message);
    this.name = "RunawayPattern";
  }
}

// One pattern, tested against lines in a worker; each batch must be done within `deadline`
// milliseconds, else the worker is ended and the batch fails with RunawayPattern.
export class Matcher {
  constructor(regex, { deadline = MATCH_DEADLINE } = {}) {
    this.regex = regex;
    this.deadline = deadline;
    this.worker = null;
    this.nextId = 1;
    this.waiting = new Map();
    this.failed = null;
  }

  _start() {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { ptysupMatcher: true, pattern: this.regex.source, flags: this.regex.flags },
    });
    worker.unref();
    worker.on("message", ({ id, found }) => {
      const w = this.waiting.get(id);
      if (!w) return;
      this.waiting.delete(id);
      clearTimeout(w.timer);
      w.resolve(found);
    });
    const broken = (why) => {
      this.failed = this.failed ?? new Error(`the pattern could not be run: ${shown(why, 300)}`);
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(this.failed);
      }
      this.waiting.clear();
    };
    worker.on("error", (err) => broken(err.message));
    worker.on("exit", (code) => broken(`exit ${code}`));
    this.worker = worker;
    return worker;
  }

  // The first line of `lines` the pattern matches ({i, index, length, text}), or null.
  async first(lines) {
    return (await this._run(lines, false))[0] ?? null;
  }

  // Every line of `lines` the pattern matches.
  all(lines) {
    return this._run(lines, true);
  }

  _run(lines, all) {
    if (this.failed) return Promise.reject(this.failed);
    if (!lines.length) return Promise.resolve([]);
    const worker = this._start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.failed = new RunawayPattern(
          `the pattern '${shown(this.regex.source)}' took more than ${this.deadline / 1000} s over ${lines.length} line(s) ` +
            `(${lines.reduce((n, l) => n + l.length, 0)} characters) and was stopped: it backtracks too much ` +
            "(nested repetition such as (a+)+ or (.*)*); use a simpler pattern",
        );
        reject(this.failed);
        this.close();
      }, this.deadline);
      this.waiting.set(id, { resolve, reject, timer });
      worker.postMessage({ id, lines, all });
    });
  }

  close() {
    const worker = this.worker;
    this.worker = null;
    if (worker) worker.terminate().catch(() => {});
  }
}
