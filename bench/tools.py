"""The table's columns: the ways a child can run under the user's terminal."""

from collections.abc import Sequence

from bench.sandbox import PTYSUP, Daemon, Sandbox

RAW = "raw"
DTACH = "dtach"
TMUX = "tmux"
ATTACH = "ptysup-attach"
RUN = "ptysup-run"

TITLES = {
    RAW: "raw PTY",
    DTACH: "dtach",
    TMUX: "tmux",
    ATTACH: "ptysup (attach)",
    RUN: "ptysup (run)",
}
ALL = (RAW, DTACH, TMUX, ATTACH, RUN)
INTERACTIVE = (RAW, DTACH, TMUX, ATTACH)
PTYSUP_TOOLS = (ATTACH, RUN)

# A status line would redraw on its own (a clock), which the echo benchmark would read as
# noise; the other two are tmux's defaults, stated so that the client exits with the child.
TMUX_CONF = "set -g status off\nset -g remain-on-exit off\nset -s exit-empty on\n"


def tmux_conf(box: Sandbox) -> str:
    path = box.root / "tmux.conf"
    if not path.exists():
        path.write_text(TMUX_CONF)
    return str(path)


def command(tool: str, box: Sandbox, daemon: Daemon | None, child: Sequence[str]) -> list[str]:
    """The command the user's terminal runs to have `child` run under `tool`."""
    if tool == RAW:
        return list(child)
    if tool == DTACH:
        return ["dtach", "-c", box.path("x"), "-E", "-z", "-r", "none", *child]
    if tool == TMUX:
        sock = box.path("t")
        box.tmux_sockets.append(sock)
        return ["tmux", "-S", sock, "-f", tmux_conf(box), "new-session", *child]
    assert daemon is not None
    verb = {ATTACH: "new", RUN: "run"}[tool]
    return [PTYSUP, "--socket", daemon.socket, "--no-start", verb, "--", *child]


def rotation(tools: Sequence[str], run: int) -> list[str]:
    """The order of the tools in run `run`: shifted by one each run, so that no tool
    always goes first or follows the same neighbour's aftermath."""
    shift = run % len(tools)
    return [*tools[shift:], *tools[:shift]]


def outer_cooked(tool: str) -> bool:
    """Whether the user's terminal adds a CR before each LF. None does: `ptysup run` turns
    output processing off on its terminal, since the child's terminal already did it."""
    return False
