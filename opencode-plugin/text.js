// Text for and from the terminal: the escapes of pty_write's data, and terminal output
// turned into plain lines (no escape sequences; carriage returns and backspaces applied).

// `\n \r \t \\ \xNN \uNNNN` in `data` become bytes; anything else stays as written.
export function parseEscapes(data) {
  const parts = [];
  let text = "";
  const flush = () => {
    if (text) parts.push(Buffer.from(text, "utf8"));
    text = "";
  };
  for (let i = 0; i < data.length; i++) {
    const ch = data[i];
    if (ch !== "\\" || i + 1 >= data.length) {
      text += ch;
      continue;
    }
    const next = data[i + 1];
    const simple = { n: "\n", r: "\r", t: "\t", "\\": "\\" }[next];
    if (simple !== undefined) {
      text += simple;
      i += 1;
    } else if (next === "x" && /^[0-9A-Fa-f]{2}$/.test(data.slice(i + 2, i + 4))) {
      flush();
      parts.push(Buffer.from([parseInt(data.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else if (next === "u" && /^[0-9A-Fa-f]{4}$/.test(data.slice(i + 2, i + 6))) {
      text += String.fromCharCode(parseInt(data.slice(i + 2, i + 6), 16));
      i += 5;
    } else {
      text += ch;
    }
  }
  flush();
  return Buffer.concat(parts);
}

// How typed data reads for a person: control characters named (^C, \n).
export function preview(bytes, max = 60) {
  let shown = "";
  for (const ch of bytes.toString("utf8")) {
    const code = ch.codePointAt(0);
    if (ch === "\n") shown += "\\n";
    else if (ch === "\r") shown += "\\r";
    else if (ch === "\t") shown += "\\t";
    else if (code === 0x1b) shown += "\\e";
    else if (code < 0x20) shown += "^" + String.fromCharCode(code + 64);
    else if (code === 0x7f) shown += "^?";
    else shown += ch;
  }
  return shown.length > max ? shown.slice(0, max) + "…" : shown;
}

// The command lines a write types (for permission), as the bash tool would see them.
export function typedCommands(bytes) {
  return bytes
    .toString("utf8")
    .split(/[\r\n]+/)
    .map((line) => line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "").trim())
    .filter(Boolean);
}

const SEQUENCE = new RegExp(
  [
    "\\x1b\\][\\s\\S]*?(?:\\x07|\\x1b\\\\|$)", // OSC, to BEL or ST
    "\\x1b[PX^_][\\s\\S]*?(?:\\x1b\\\\|$)", // DCS, SOS, PM, APC
    "\\x1b\\[[0-?]*[ -/]*[@-~]", // CSI
    "\\x9b[0-?]*[ -/]*[@-~]", // CSI, 8-bit
    "\\x1b[ -/]*[0-~]", // other escapes
    "\\x1b$",
  ].join("|"),
  "g",
);

// One terminal line as it would look: `\r` returns to the start, `\b` steps back.
function renderLine(raw) {
  if (!/[\r\b]/.test(raw)) return raw.trimEnd();
  const cells = [];
  let col = 0;
  for (const ch of raw) {
    if (ch === "\r") col = 0;
    else if (ch === "\b") col = Math.max(0, col - 1);
    else cells[col++] = ch;
  }
  return Array.from(cells, (c) => c ?? " ")
    .join("")
    .trimEnd();
}

export function plainText(text) {
  return text
    .replace(SEQUENCE, "")
    .replace(/[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]/g, "")
    .replace(/\r+\n/g, "\n");
}

// Terminal output as the lines a person reads; a last line without its newline counts.
export function plainLines(text) {
  const lines = plainText(text).split("\n").map(renderLine);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

export const MAX_LINE = 2000;

export function clip(line, max = MAX_LINE) {
  return line.length > max ? line.slice(0, max) + "…" : line;
}

export function numbered(lineNumber, text) {
  return `${String(lineNumber).padStart(5, "0")}| ${clip(text)}`;
}

// `^` and `$` match at each line's start and end.
export function compileRegex(pattern, ignoreCase, what = "pattern") {
  try {
    return new RegExp(pattern, ignoreCase ? "im" : "m");
  } catch (err) {
    throw new Error(`${what} '${pattern}' is not a valid regular expression: ${err.message}`);
  }
}
