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
    if (shown.length > max) break;
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

// Terminal output as lines. A byte-level state machine after the VT500 parser's (escape,
// CSI, and the strings OSC, DCS, SOS, PM and APC), that keeps what a terminal would put on
// the line and, for each character, the offset just past the bytes that wrote it.
//
// A string ends as in a terminal, at ST (ESC \), at BEL for OSC, at CAN or SUB, or at an
// ESC that starts another sequence; and also at a line feed and after MAX_STRING bytes,
// where a terminal would keep swallowing: a stray `ESC P` hides at most the rest of its own
// line (and never more than MAX_STRING bytes of it). A line longer than MAX_CELLS
// characters is broken there.
export const MAX_STRING = 8192;
export const MAX_CELLS = 65536;
const MAX_CSI = 256;

const GROUND = 0;
const ESCAPE = 1;
const ESCAPE_INTERMEDIATE = 2;
const CSI = 3;
const STRING = 4;
const STRING_ESCAPE = 5;

const OSC = 0x5d;
const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const REPLACEMENT = 0xfffd;

export class LineDecoder {
  // `offset`: the output offset of the first byte fed.
  constructor(offset = 0) {
    this.offset = offset;
    this.state = GROUND;
    this.cells = [];
    this.ends = [];
    this.col = 0;
    this.lineStart = offset;
    this.need = 0; // UTF-8 continuation bytes still to come
    this.cp = 0;
    this.least = 0; // the smallest code point the sequence begun may encode
    this.stringKind = 0;
    this.stringBytes = 0;
    this.csiParams = "";
    this.csiBytes = 0;
  }

  // Feeds `bytes`; `onLine(line)` gets each line completed: {text, start, end, ends}, where
  // `end` is the offset past its line feed and `ends[i]` the offset past the bytes of the
  // character at `text[i]` (a UTF-16 index).
  feed(bytes, onLine) {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const end = this.offset + i + 1;
      if (this.need) {
        if ((b & 0xc0) === 0x80) {
          this.cp = (this.cp << 6) | (b & 0x3f);
          if (--this.need === 0) {
            const cp = this.cp;
            const valid = cp >= this.least && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
            this._code(valid ? cp : REPLACEMENT, end, onLine);
          }
          continue;
        }
        this.need = 0;
        this._code(REPLACEMENT, end - 1, onLine);
      }
      if (b < 0x80) this._code(b, end, onLine);
      else if (b >= 0xc2 && b <= 0xdf) {
        this.need = 1;
        this.cp = b & 0x1f;
        this.least = 0x80;
      } else if (b >= 0xe0 && b <= 0xef) {
        this.need = 2;
        this.cp = b & 0x0f;
        this.least = 0x800;
      } else if (b >= 0xf0 && b <= 0xf4) {
        this.need = 3;
        this.cp = b & 0x07;
        this.least = 0x10000;
      } else this._code(REPLACEMENT, end, onLine);
    }
    this.offset += bytes.length;
  }

  // Goes on at `offset` after a gap: the line so far is dropped.
  restart(offset) {
    this.offset = this.lineStart = offset;
    this.cells = [];
    this.ends = [];
    this.col = 0;
    this.need = 0;
    this.state = GROUND;
  }

  // The line not ended yet, as feed's lines are; null when it holds nothing.
  partial() {
    if (!this.cells.length) return null;
    return this._line(this.offset);
  }

  _line(end) {
    const text = [];
    const ends = [];
    let last = this.lineStart;
    for (let i = 0; i < this.cells.length; i++) {
      const ch = this.cells[i] ?? " ";
      if (this.ends[i] !== undefined) last = this.ends[i];
      text.push(ch);
      ends.push(last);
      if (ch.length === 2) ends.push(last);
    }
    let joined = text.join("");
    const trimmed = joined.trimEnd();
    if (trimmed.length !== joined.length) {
      joined = trimmed;
      ends.length = joined.length;
    }
    return { text: joined, start: this.lineStart, end, ends };
  }

  _newline(end, onLine) {
    onLine(this._line(end));
    this.cells = [];
    this.ends = [];
    this.col = 0;
    this.lineStart = end;
  }

  _put(ch, end, onLine) {
    if (this.col >= MAX_CELLS) this._newline(this.ends[this.cells.length - 1] ?? end, onLine);
    this.cells[this.col] = ch;
    this.ends[this.col] = end;
    this.col++;
  }

  // What a C0 control does on the line, in any state that executes it.
  _control(c, end, onLine) {
    if (c === 0x0a) this._newline(end, onLine);
    else if (c === 0x0d) this.col = 0;
    else if (c === 0x08) this.col = Math.max(0, this.col - 1);
    else if (c === 0x09) this._put("\t", end, onLine);
  }

  _code(c, end, onLine) {
    switch (this.state) {
      case GROUND:
        return this._ground(c, end, onLine);
      case ESCAPE:
        return this._escape(c, end, onLine);
      case ESCAPE_INTERMEDIATE:
        if (c >= 0x20 && c <= 0x2f) return;
        if (c >= 0x30 && c <= 0x7e) this.state = GROUND;
        else this._elsewhere(c, end, onLine);
        return;
      case CSI:
        return this._csi(c, end, onLine);
      case STRING:
        return this._string(c, end, onLine);
      case STRING_ESCAPE:
        if (c === 0x5c) {
          this.state = GROUND; // ST
          return;
        }
        this.state = ESCAPE; // that ESC begins another sequence
        return this._escape(c, end, onLine);
    }
  }

  // A code that ends an escape or a CSI: controls act, ESC starts over, CAN and SUB cancel,
  // anything else ends the sequence and is read as text.
  _elsewhere(c, end, onLine) {
    if (c === ESC) this.state = ESCAPE;
    else if (c === CAN || c === SUB) this.state = GROUND;
    else if (c < 0x20) this._control(c, end, onLine);
    else if (c === 0x7f) return;
    else {
      this.state = GROUND;
      this._ground(c, end, onLine);
    }
  }

  _ground(c, end, onLine) {
    if (c === ESC) this.state = ESCAPE;
    else if (c < 0x20) this._control(c, end, onLine);
    else if (c === 0x7f) return;
    else if (c >= 0x80 && c <= 0x9f) {
      // C1 controls as characters (from UTF-8): CSI and the strings begin, others do nothing
      if (c === 0x9b) this._beginCsi();
      else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) this._beginString(c === 0x9d ? OSC : 0x50);
    } else this._put(String.fromCodePoint(c), end, onLine);
  }

  _escape(c, end, onLine) {
    if (c === 0x5b) this._beginCsi();
    else if (c === OSC || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) this._beginString(c);
    else if (c >= 0x20 && c <= 0x2f) this.state = ESCAPE_INTERMEDIATE;
    else if (c >= 0x30 && c <= 0x7e) this.state = GROUND;
    else this._elsewhere(c, end, onLine);
  }

  _beginCsi() {
    this.state = CSI;
    this.csiParams = "";
    this.csiBytes = 0;
  }

  _beginString(kind) {
    this.state = STRING;
    this.stringKind = kind;
    this.stringBytes = 0;
  }

  _csi(c, end, onLine) {
    if (++this.csiBytes > MAX_CSI) {
      this.state = GROUND;
      return this._ground(c, end, onLine);
    }
    if (c >= 0x30 && c <= 0x3f) this.csiParams += String.fromCharCode(c);
    else if (c >= 0x20 && c <= 0x2f) return;
    else if (c >= 0x40 && c <= 0x7e) {
      this.state = GROUND;
      this._csiDispatch(String.fromCharCode(c));
    } else this._elsewhere(c, end, onLine);
  }

  _csiDispatch(final) {
    if (this.csiParams && !/^[0-9;]*$/.test(this.csiParams)) return; // private: ?25h …
    const n = parseInt(this.csiParams, 10);
    if (final === "K") {
      if (!n) {
        this.cells.length = Math.min(this.cells.length, this.col);
        this.ends.length = Math.min(this.ends.length, this.col);
      } else if (n === 1) for (let i = 0; i < Math.min(this.col + 1, this.cells.length); i++) this.cells[i] = " ";
      else if (n === 2) {
        this.cells = [];
        this.ends = [];
      }
    } else if (final === "G") this.col = Math.min(MAX_CELLS, Math.max(0, (n || 1) - 1));
    else if (final === "C") this.col = Math.min(MAX_CELLS, this.col + (n || 1));
    else if (final === "D") this.col = Math.max(0, this.col - (n || 1));
  }

  _string(c, end, onLine) {
    if (c === ESC) this.state = STRING_ESCAPE;
    else if ((c === BEL && this.stringKind === OSC) || c === CAN || c === SUB || c === 0x9c) this.state = GROUND;
    else if (c === 0x0a) {
      this.state = GROUND;
      this._newline(end, onLine);
    } else {
      this.stringBytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (this.stringBytes > MAX_STRING) {
        this.state = GROUND;
        this._ground(c, end, onLine);
      }
    }
  }
}

// Terminal output (bytes or a string) as the lines a person reads; a last line without its
// newline counts.
export function plainLines(output) {
  const bytes = typeof output === "string" ? Buffer.from(output, "utf8") : output;
  const decoder = new LineDecoder();
  const lines = [];
  decoder.feed(bytes, (line) => lines.push(line.text));
  const rest = decoder.partial();
  if (rest) lines.push(rest.text);
  return lines;
}

export const MAX_LINE = 2000;

export function clip(line, max = MAX_LINE) {
  return line.length > max ? line.slice(0, max) + "…" : line;
}

// A long line cut to `max` characters around [from, to) (a match), saying where it starts.
export function around(line, from, to, max = MAX_LINE) {
  if (line.length <= max) return line;
  if (to <= max) return line.slice(0, max) + "…";
  const width = Math.max(to - from, 0);
  const start = Math.max(0, Math.min(from - Math.floor((max - Math.min(width, max)) / 2), line.length - max));
  const end = Math.min(line.length, start + max);
  return `…(from column ${start + 1}) ${line.slice(start, end)}${end < line.length ? "…" : ""}`;
}

export function numbered(lineNumber, text, match = null) {
  const shown = match ? around(text, match.index, match.index + match.length) : clip(text);
  return `${String(lineNumber).padStart(5, "0")}| ${shown}`;
}

// A value echoed back to the model: at most `max` characters of it.
export function shown(value, max = 200) {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

// `^` and `$` match at each line's start and end.
export function compileRegex(pattern, ignoreCase, what = "pattern") {
  try {
    return new RegExp(pattern, ignoreCase ? "im" : "m");
  } catch (err) {
    throw new Error(`${what} '${shown(pattern)}' is not a valid regular expression: ${shown(err.message, 300)}`);
  }
}
