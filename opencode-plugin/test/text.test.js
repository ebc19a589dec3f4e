import assert from "node:assert/strict";
import { test } from "node:test";

import { LineDecoder, MAX_CELLS, around, numbered, parseEscapes, plainLines, preview, typedCommands } from "../text.js";

test("pty_write escapes become bytes", () => {
  assert.deepEqual([...parseEscapes("a\\nb\\r\\t\\\\")], [...Buffer.from("a\nb\r\t\\")]);
  assert.deepEqual([...parseEscapes("\\x03\\x1b[A\\xff")], [3, 0x1b, 0x5b, 0x41, 0xff]);
  assert.equal(parseEscapes("\\u00e9\\u2603").toString("utf8"), "é☃");
  assert.equal(parseEscapes("\\q \\x4 \\u12 end\\").toString("utf8"), "\\q \\x4 \\u12 end\\");
});

test("terminal output becomes the plain lines a person sees", () => {
  const out = "\x1b[1;31mred\x1b[0m text\r\n\x1b]0;title\x07prompt$ \r\n50%\r100%\x1b[K\r\nab\bc\r\nlast";
  assert.deepEqual(plainLines(out), ["red text", "prompt$", "100%", "ac", "last"]);
  assert.deepEqual(plainLines("one\r\n\r\n"), ["one", ""]);
  assert.deepEqual(plainLines("\x1bPq#0;2;0;0;0\x1b\\x\x1b(By"), ["xy"]);
});

test("previews and typed commands name control characters", () => {
  assert.equal(preview(Buffer.from("ls\n\x03\x1b")), "ls\\n^C\\e");
  assert.deepEqual(typedCommands(Buffer.from("cd ~\nopencode run hi\r\x03")), ["cd ~", "opencode run hi"]);
});

test("each character knows the offset past its bytes; a line past MAX_CELLS is broken", () => {
  const decoder = new LineDecoder(100);
  const lines = [];
  decoder.feed(Buffer.from("é\x1b[1mab\r\nxy"), (l) => lines.push(l));
  assert.deepEqual(lines.map((l) => [l.text, l.start, l.end, l.ends]), [["éab", 100, 110, [102, 107, 108]]]);
  assert.deepEqual(decoder.partial(), { text: "xy", start: 110, end: 112, ends: [111, 112] });
  assert.equal(plainLines("x".repeat(MAX_CELLS + 5)).length, 2);
  assert.deepEqual(plainLines("50%\r100%\x1b[K\r\nab\x1b[2Kc"), ["100%", "  c"]);
});

test("a match past column 2,000 is shown, with where its window starts", () => {
  const line = "x".repeat(5000) + "NEEDLE" + "y".repeat(5000);
  const out = numbered(7, line, { index: 5000, length: 6 });
  assert.match(out, /^00007\| …\(from column \d+\) x+NEEDLEy+…$/);
  assert.ok(out.length < 2100, out.length);
  assert.equal(around("short NEEDLE", 6, 12), "short NEEDLE");
});
