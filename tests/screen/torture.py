"""Draws a screen that exercises a terminal: run on an 80x24 terminal; each line read from
stdin moves to the next stage (main screen, alternate screen, back)."""

import sys

ESC = "\x1b"


def csi(text: str) -> str:
    return f"{ESC}[{text}"


def main_screen() -> str:
    out = ["".join(f"row {i:02d} " + "abcdefghij" * 3 + "\r\n" for i in range(30))]
    out.append(csi("5;15r") + csi("15;1H") + "in the region\n\n\nscrolled\r\n")
    out.append(csi("6;1H") + csi("2L") + "inserted two lines")
    out.append(csi("10;1H") + csi("3M") + csi("12;5H") + csi("4@") + "ins" + csi("3P"))
    out.append(csi("5;1H") + f"{ESC}M{ESC}M" + "after reverse index")
    out.append(csi("r") + csi("3;1H") + csi("K") + "wide: \u4e2d\u6587\u5b57 and e\u0301 o\u0308")
    out.append(csi("4;1H") + csi("2K") + "tab\tstops\tat\t8\tcolumns|")
    out.append(csi("7;1H") + "x" * 80 + "wrapped onto the next row")
    out.append(csi("9;75H") + "\u4e2d\u6587\u5b57\u4e2d")
    out.append(csi("16;20H") + f"{ESC}7" + csi("1;1H") + "saved" + f"{ESC}8" + "restored")
    out.append(csi("17;1H") + csi("1;31m") + "red " + csi("44m") + "on blue" + csi("0m"))
    out.append(csi("18;10H") + csi("1K") + csi("19;1H") + csi("5X") + csi("20;1H") + csi("J"))
    out.append(csi("21;1H") + "last line" + csi("24;80H") + "Z")
    out.append(csi("22;1H") + csi("3;12r") + csi("?6h") + csi("2;2H") + "origin" + csi("?6l"))
    out.append(csi("r") + csi("23;1H") + "\u00e9\u00e8\u00ea ascii \u2500\u2502\u250c")
    out.append(f"{ESC}]2;torture title\x07" + csi("?2004h") + csi("?1000h") + csi("?1006h"))
    return "".join(out)


def alternate_screen() -> str:
    out = [csi("?1049h") + csi("H") + csi("2J") + "alternate screen"]
    out.append(csi("10;10H") + "middle" + csi("?1h") + f"{ESC}=" + csi("?25l"))
    out.append(csi("2;4r") + csi("4;1H") + "one\ntwo\nthree\nfour" + csi("r"))
    return "".join(out)


def leave() -> str:
    return csi("?1049l") + csi("?1l") + f"{ESC}>" + csi("?25h") + "back"


def main() -> None:
    for stage in (main_screen, alternate_screen, leave):
        sys.stdout.write(stage())
        sys.stdout.flush()
        sys.stdin.readline()
    sys.stdin.readline()


if __name__ == "__main__":
    main()
