"""The table's columns: the ways a child can run under the user's terminal."""

from collections.abc import Sequence

from bench.baseline import Build
from bench.sandbox import Daemon, Sandbox

RAW = "raw"
DTACH = "dtach"
TMUX = "tmux"
ATTACH = "ptysup-attach"
RUN = "ptysup-run"
BEFORE_ATTACH = "before-attach"
BEFORE_RUN = "before-run"

TITLES = {
    RAW: "raw PTY",
    DTACH: "dtach",
    TMUX: "tmux",
    ATTACH: "ptysup (attach)",
    RUN: "ptysup (run)",
    BEFORE_ATTACH: "ptysup before (attach)",
    BEFORE_RUN: "ptysup before (run)",
}
ALL = (RAW, DTACH, TMUX, ATTACH, RUN)
INTERACTIVE = (RAW, DTACH, TMUX, ATTACH)
# The baseline build's column beside each of this build's (`--baseline`).
BEFORE = {ATTACH: BEFORE_ATTACH, RUN: BEFORE_RUN}
PTYSUP_TOOLS = (ATTACH, RUN, BEFORE_ATTACH, BEFORE_RUN)

# A status line would redraw on its own (a clock), which the echo benchmark would read as
# noise; the other two are tmux's defaults, stated so that the client exits with the child.
TMUX_CONF = "set -g status off\nset -g remain-on-exit off\nset -s exit-empty on\n"


def tmux_conf(box: Sandbox) -> str:
    path = box.root / "tmux.conf"
    if not path.exists():
        path.write_text(TMUX_CONF)
    return str(path)


def command(
    tool: str,
    box: Sandbox,
    daemon: Daemon | None,
    child: Sequence[str],
    tmux_socket: str | None = None,
) -> list[str]:
    """The command the user's terminal runs to have `child` run under `tool`. tmux starts
    a new server, or a session in the server of `tmux_socket` when given."""
    if tool == RAW:
        return list(child)
    if tool == DTACH:
        return ["dtach", "-c", box.path("x"), "-E", "-z", "-r", "none", *child]
    if tool == TMUX:
        sock = tmux_socket or box.path("t")
        if sock not in box.tmux_sockets:
            box.tmux_sockets.append(sock)
        return ["tmux", "-S", sock, "-f", tmux_conf(box), "new-session", *child]
    assert daemon is not None
    verb = {ATTACH: "new", RUN: "run", BEFORE_ATTACH: "new", BEFORE_RUN: "run"}[tool]
    return [daemon.ptysup, "--socket", daemon.socket, "--no-start", verb, "--", *child]


def env(tool: str, box: Sandbox, daemon: Daemon | None) -> dict[str, str]:
    """The environment of the command on the user's terminal: a ptysup client runs with
    its daemon's build's (its bin/ on PATH, nothing of the other build's)."""
    return daemon.env if tool in PTYSUP_TOOLS and daemon is not None else box.env


def with_baseline(tools: Sequence[str], baseline: bool) -> tuple[str, ...]:
    """`tools`, with the baseline's column before each ptysup one when there is one."""
    if not baseline:
        return tuple(tools)
    return tuple(t for tool in tools for t in ((BEFORE[tool], tool) if tool in BEFORE else (tool,)))


class Daemons:
    """The daemons a workload's columns run against: this build's and the baseline's."""

    def __init__(self, box: Sandbox, baseline: Build | None) -> None:
        self.current = box.daemon()
        self.before = box.daemon(baseline) if baseline is not None else None

    def of(self, tool: str) -> Daemon:
        if tool in (BEFORE_ATTACH, BEFORE_RUN):
            assert self.before is not None
            return self.before
        return self.current

    def stop(self) -> None:
        for daemon in (self.current, self.before):
            if daemon is not None:
                daemon.stop()


def rotation(tools: Sequence[str], run: int) -> list[str]:
    """The order of the tools in run `run`: shifted by one each run, so that no tool
    always goes first or follows the same neighbour's aftermath."""
    shift = run % len(tools)
    return [*tools[shift:], *tools[:shift]]


def outer_cooked(tool: str) -> bool:
    """Whether the user's terminal adds a CR before each LF. None does: `ptysup run` turns
    output processing off on its terminal, since the child's terminal already did it."""
    return False
