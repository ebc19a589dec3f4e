// Issue 25, item 2: no stray escape hides the output after it, in the lines pty_read and
// pty_wait see (the same through a real terminal: wait.test.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { plainLines } from "../text.js";

test("an unterminated ESC P, X, ^, _ or ] hides at most the rest of its line", () => {
  assert.deepEqual(plainLines("x\x1bPy\nAFTER-42\n"), ["x", "AFTER-42"]);
  for (const intro of ["\x1bP", "\x1bX", "\x1b^", "\x1b_", "\x1b]"]) {
    assert.deepEqual(plainLines(`a${intro}hidden\r\nAFTER\r\nmore`), ["a", "AFTER", "more"], JSON.stringify(intro));
  }
  // ended as a terminal ends them: ST, BEL (OSC), CAN, SUB, another escape
  assert.deepEqual(plainLines("a\x1b]0;title\x07b\x1b]8;;http://x\x1b\\c\x1bPq#0\x18d\x1b_G\x1ae\x1bXs\x1b[1mf"), ["abcdef"]);
  // and never more than 8 KiB (MAX_STRING) of a line
  assert.deepEqual(plainLines(`a\x1b]0;${"t".repeat(8192 - 2)}VISIBLE\n`), ["aVISIBLE"]);
});

test("3 KB of random bytes hide none of the lines after them", () => {
  let seed = 25;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  for (let round = 0; round < 20; round++) {
    const noise = Buffer.from(Array.from({ length: 3072 }, random));
    const numbered = Array.from({ length: 3000 }, (_, i) => `line ${i + 1}\r\n`).join("");
    const lines = plainLines(Buffer.concat([noise, Buffer.from("\r\n" + numbered)]));
    assert.deepEqual(lines.slice(-3000), Array.from({ length: 3000 }, (_, i) => `line ${i + 1}`), `round ${round}`);
  }
});

