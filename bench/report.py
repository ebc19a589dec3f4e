"""The results as a table for people and as JSON for the record, with the issue's goals."""

import json
import operator
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import busy, stuck, tools
from bench.stats import short

Getter = Callable[[dict[str, Any]], dict[str, Any]]
X = "\u00d7"  # multiplication sign
DASH = "\u2013"
CELL = 23
LABEL = 30


class Goal:
    """A figure's median against a limit: a number, or another column's median in the same
    run (`dtach`'s, say)."""

    def __init__(
        self,
        what: str,
        workload: str,
        get: Getter,
        limit: float | Getter,
        unit: str,
        below: bool = True,
    ) -> None:
        self.what = what
        self.workload = workload
        self.get = get
        self.limit = limit
        self.unit = unit
        self.compare = operator.le if below else operator.ge

    def check(self, workloads: dict[str, Any]) -> dict[str, Any] | None:
        data = workloads.get(self.workload)
        if data is None:
            return None
        value, limit = _median(self.get, data), self.limit
        if callable(limit):
            limit = _median(limit, data)
        return {
            "what": self.what,
            "median": value,
            "limit": limit,
            "unit": self.unit,
            "met": value is not None and limit is not None and bool(self.compare(value, limit)),
        }


def _median(get: Getter, data: dict[str, Any]) -> float | None:
    try:
        value: float = get(data)["median"]
    except (KeyError, TypeError):
        return None
    return value


def _col(tool: str, key: str) -> Getter:
    return lambda data: data["columns"][tool][key]


def _case(case: str, key: str) -> Getter:
    return lambda data: data["cases"][case][key]


SPEED = (stuck.SPEED_GOAL, X)
THROUGHPUT_GOALS = {"lines": 1.15, "binary": None}
"""Each ptysup column's ratio to raw: at most this, where there is a number, and below
dtach's in the same run."""
ECHO_GOALS = {"p50_us": 100.0, "p99_us": 300.0}
DTACH_RATIO = _col(tools.DTACH, "ratio")
BUSY_P99_US = busy.GOAL_P99_US
ATTACH_P50, ATTACH_P99 = _col(tools.ATTACH, "p50_us"), _col(tools.ATTACH, "p99_us")
HOLD = (stuck.PATIENCE_S + stuck.NOISE_S, " s")
GOALS = [
    *(
        Goal(f"{name}, {tools.TITLES[tool]} / raw", name, _col(tool, "ratio"), limit, X)
        for name, limit in THROUGHPUT_GOALS.items()
        if limit is not None
        for tool in (tools.ATTACH, tools.RUN)
    ),
    *(
        Goal(
            f"{name}, {tools.TITLES[tool]} / raw, below dtach's",
            name,
            _col(tool, "ratio"),
            DTACH_RATIO,
            X,
        )
        for name in THROUGHPUT_GOALS
        for tool in (tools.ATTACH, tools.RUN)
    ),
    Goal("echo p50, ptysup (attach)", "echo", ATTACH_P50, ECHO_GOALS["p50_us"], "µs"),
    Goal("echo p99, ptysup (attach)", "echo", ATTACH_P99, ECHO_GOALS["p99_us"], "µs"),
    Goal("busy echo p99, ptysup (attach)", "busy", ATTACH_P99, BUSY_P99_US, "µs"),
    Goal("spawn p50", "scale", lambda d: d["library"]["spawn_p50_ms"], 3, "ms"),
    Goal("idle sessions, daemon RSS", "scale", lambda d: d["library"]["rss_mb"], 60, "MB"),
    Goal("idle CPU", "scale", lambda d: d["library"]["idle_cpu_pct"], 1, "%"),
    Goal(
        "CLI sessions extrapolated, RSS",
        "scale",
        lambda d: {"median": d["cli"]["extrapolated_rss_mb"]},
        60,
        "MB",
    ),
    Goal("CLI sessions, idle CPU", "scale", lambda d: {"median": d["cli"]["idle_cpu_pct"]}, 1, "%"),
    Goal("stuck observer / none", "observer", lambda d: d["ratio"], 1.05, X),
    Goal("stuck, (b) read-only / none", "stuck", _case(stuck.READ_ONLY, "ratio"), *SPEED),
    Goal("stuck, (c) read-only relay / none", "stuck", _case(stuck.RELAY, "ratio"), *SPEED),
    Goal("stuck, (e) stuck controller, beyond none", "stuck", _case(stuck.STUCK, "extra_s"), *HOLD),
    Goal("upgrade in place: pause", "upgrade", lambda d: d["pause_ms"], 300, " ms"),
]


def evaluate(workloads: dict[str, Any]) -> list[dict[str, Any]]:
    return [result for goal in GOALS if (result := goal.check(workloads)) is not None]


# -- cells ----------------------------------------------------------------------------


def _range(s: dict[str, Any], fmt: str, unit: str = "") -> str:
    median, low, high = (format(s[k], fmt) for k in ("median", "min", "max"))
    return f"{median}{unit}" if low == high else f"{median}{unit} ({low}{DASH}{high})"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def _delivered(s: dict[str, Any] | None) -> str:
    if s is None or s["min"] >= 0.9999:
        return "screen" if s is None else "all"
    return f"{s['median'] * 100:.1f}% (min {s['min'] * 100:.1f})"


def _row(label: str, cells: list[str], goal: str = "") -> str:
    return label.ljust(LABEL) + "".join(c.ljust(CELL - 1) + " " for c in cells) + goal


# -- tables ---------------------------------------------------------------------------


def _failed(column: dict[str, Any]) -> bool:
    return "error" in column


def _order(workloads: dict[str, Any]) -> tuple[str, ...]:
    """The table's columns: with the baseline's where any workload measured them."""
    before = any(
        tools.BEFORE_ATTACH in data.get("columns", {})
        for name, data in workloads.items()
        if name in ("lines", "binary", "echo", "busy")
    )
    return tools.with_baseline(tools.ALL, before)


def _vs_before(cols: dict[str, Any], order: tuple[str, ...], key: str) -> list[str]:
    """Under this build's ptysup columns, their figure over the baseline's, run by run."""
    cells = []
    for tool in order:
        ratio = cols.get(tool, {}).get(key)
        cells.append("" if ratio is None else _range(ratio, ".2f", X))
    return cells


def _meets(ratio: float, limit: float | None, cols: dict[str, Any]) -> bool:
    dtach = cols.get(tools.DTACH, {}).get("ratio")
    below = dtach is None or ratio <= dtach["median"]
    return below and (limit is None or ratio <= limit)


def _throughput_rows(
    data: dict[str, Any], limit: float | None, order: tuple[str, ...]
) -> list[str]:
    cols = data["columns"]
    size = round(data["bytes"] / 2**20)
    mode = "raw mode" if data["raw_mode"] else "cooked"
    times, rates, delivered, cpu = [], [], [], []
    for tool in order:
        col = cols[tool]
        if _failed(col):
            times.append("failed")
            rates.append("")
            delivered.append("")
            cpu.append("")
            continue
        if tool == tools.RAW:
            times.append(_range(col["seconds"], ".2f", " s"))
        elif col["ratio"] is None:
            times.append("no pair")
        else:
            ok = _meets(col["ratio"]["median"], limit, cols) if tool in tools.BEFORE else None
            times.append(_range(col["ratio"], ".2f", X) + _mark(ok))
        if col.get("failures"):
            times[-1] += f" *{len(col['failures'])}"
        rates.append(f"{col['mb_per_s']['median']:.0f}")
        lost = col.get("delivered") is not None and col["delivered"]["min"] < 0.9999
        delivered.append(_delivered(col.get("delivered")) + (" ✗" if lost else ""))
        daemon = f" + {col['daemon_cpu_s']['median']:.2f}" if "daemon_cpu_s" in col else ""
        cpu.append(f"{col['client_cpu_s']['median']:.2f}{daemon}")
    goal = "below dtach" if limit is None else f"≤ {limit:.2f}{X}, below dtach"
    rows = [_row(f"{size:g} MiB, {mode}", times, goal)]
    if tools.BEFORE_ATTACH in cols:
        rows.append(_row("  time, now / before", _vs_before(cols, order, "vs_before")))
    return [
        *rows,
        _row("  MB/s", rates),
        _row("  bytes on the terminal", delivered),
        _row("  CPU s: client + daemon", cpu),
    ]


def _echo_rows(
    data: dict[str, Any], order: tuple[str, ...], name: str, goals: dict[str, float]
) -> list[str]:
    """p50 and p99 per column; ptysup (attach) marked against `goals` (by key)."""
    rows = []
    for key in ("p50_us", "p99_us"):
        goal = goals.get(key)
        cells = []
        for tool in order:
            col = data["columns"].get(tool)
            if col is None:
                cells.append("\u2014")
            elif _failed(col):
                cells.append("failed")
            else:
                ok = col[key]["median"] <= goal if tool == tools.ATTACH and goal else None
                failed = f" *{len(col['failures'])}" if col.get("failures") else ""
                cells.append(_range(col[key], ".0f") + _mark(ok) + failed)
        label = f"{name} {key[:3]}, µs ({data['samples']})"
        rows.append(_row(label, cells, f"≤ {goal:.0f} µs" if goal else ""))
        if tools.BEFORE_ATTACH in data["columns"]:
            ratios = _vs_before(data["columns"], order, f"{key[:3]}_vs_before")
            rows.append(_row(f"  {key[:3]}, now / before", ratios))
    return rows


def _flood_rows(data: dict[str, Any], order: tuple[str, ...]) -> list[str]:
    """busy: the flood carried to the flooders' terminals and written by their children;
    ptysup's daemon's CPU meanwhile."""
    rows = []
    labels = {
        "flood_mb_per_s": "  flood MB/s, on terminals",
        "written_mb_per_s": "  flood MB/s, written",
        "daemon_cpu_pct": "  daemon CPU %",
    }
    for key, label in labels.items():
        cells = []
        for tool in order:
            col = data["columns"].get(tool)
            figure = None if col is None or _failed(col) else col.get(key)
            cells.append("" if figure is None else _range(figure, ".0f"))
        rows.append(_row(label, cells))
    return rows


def failure_notes(workloads: dict[str, Any]) -> list[str]:
    """One line per failed measurement (the cells marked *N), and per failed workload."""
    notes = []
    for name, data in workloads.items():
        if "error" in data:
            notes.append(f"{name}: {short(data['error'])}")
            continue
        for tool, col in data.get("columns", {}).items():
            title = tools.TITLES[tool]
            notes += [f"{name}, {title}, {short(f, 160)}" for f in col.get("failures", ())]
    return notes


def side_by_side(workloads: dict[str, Any]) -> str:
    order = _order(workloads)
    lines = [_row("workload", [tools.TITLES[t] for t in order], "goal")]
    lines.append("-" * len(lines[0]))
    for name, limit in THROUGHPUT_GOALS.items():
        data = workloads.get(name)
        if data is None:
            continue
        if "error" in data:
            lines.append(_row(name, ["failed"]))
            continue
        lines += _throughput_rows(data, limit, order)
    data = workloads.get("echo")
    if data is not None:
        failed = [_row("echo", ["failed"])]
        lines += failed if "error" in data else _echo_rows(data, order, "echo", ECHO_GOALS)
    data = workloads.get("busy")
    if data is not None and "error" in data:
        lines.append(_row(f"busy, {busy.FLOODERS} flooding", ["failed"]))
    elif data is not None:
        goals = {"p99_us": BUSY_P99_US}
        lines += _echo_rows(data, order, "busy echo", goals) + _flood_rows(data, order)
    return "\n".join(lines)


def _line(label: str, value: str, goal: str = "", ok: bool | None = None) -> str:
    return label.ljust(44) + value.ljust(34) + goal + _mark(ok)


def ptysup_alone(workloads: dict[str, Any]) -> str:
    lines = [_line("ptysup alone", f"median (min{DASH}max)", "goal"), "-" * 90]
    data = workloads.get("scale")
    if data is not None and "error" in data:
        lines.append(_line("scale", "failed"))
    elif data is not None:
        lib, cli, n = data["library"], data["cli"], data["sessions"]
        p50 = lib["spawn_p50_ms"]
        lines += [
            _line(
                f"spawn via the socket, p50 ({data['spawns']})",
                _range(p50, ".2f", " ms"),
                "≤ 3 ms",
                p50["median"] <= 3,
            ),
            _line("spawn via the socket, p99", _range(lib["spawn_p99_ms"], ".2f", " ms")),
            _line(f"{n} idle sessions: time to spawn", _range(lib["seconds"], ".2f", " s")),
            _line(
                "  daemon RSS",
                _range(lib["rss_mb"], ".1f", " MB"),
                "≤ 60 MB",
                lib["rss_mb"]["median"] <= 60,
            ),
            _line("  daemon RSS before", _range(lib["base_rss_mb"], ".1f", " MB")),
            _line("  RSS per session", _range(lib["per_session_kib"], ".1f", " KiB")),
            _line(
                f"  idle CPU over {data['idle_window_s']:g} s",
                _range(lib["idle_cpu_pct"], ".2f", " %"),
                "< 1 %",
                lib["idle_cpu_pct"]["median"] < 1,
            ),
            _line(
                f"{cli['sessions']} sessions via `ptysup spawn`: RSS",
                f"{cli['rss_mb']:.1f} MB ({cli['per_session_kib']:.1f} KiB each)",
            ),
            _line(
                f"  extrapolated to {cli['extrapolated_sessions']}",
                f"{cli['extrapolated_rss_mb']:.1f} MB",
                "≤ 60 MB",
                cli["extrapolated_rss_mb"] <= 60,
            ),
            _line("  idle CPU", f"{cli['idle_cpu_pct']:.2f} %", "< 1 %", cli["idle_cpu_pct"] < 1),
            _line("  time for the spawns", f"{cli['seconds']:.1f} s"),
            _line("  time to stop the daemon, sessions running", f"{cli['stop_seconds']:.1f} s"),
        ]
    data = workloads.get("observer")
    if data is not None and "error" in data:
        lines.append(_line("observer", "failed"))
    elif data is not None:
        size = round(data["bytes"] / 2**20)
        lines += [
            _line(
                f"stuck observer, {size:g} MiB writer",
                _range(data["ratio"], ".2f", X),
                f"≤ 1.05{X}",
                data["ratio"]["median"] <= 1.05,
            ),
            _line("  writer alone", _range(data["without"]["seconds"], ".2f", " s")),
            _line("  daemon CPU, with / without", _range(data["cpu_ratio"], ".2f", X)),
            _line(
                "  daemon peak RSS, with observer",
                _range(data["with"]["peak_rss_mb"], ".1f", " MB"),
            ),
            _line(
                "  daemon peak RSS, without", _range(data["without"]["peak_rss_mb"], ".1f", " MB")
            ),
        ]
    data = workloads.get("upgrade")
    if data is not None and "error" in data:
        lines.append(_line("upgrade in place", "failed"))
    elif data is not None:
        lines += [
            _line(
                "upgrade in place: longest output pause",
                _range(data["pause_ms"], ".0f", " ms"),
                "≤ 300 ms",
                data["pause_ms"]["median"] <= 300,
            ),
            _line(
                "  counter lines lost (gaps)",
                f"{data['gaps']} in {data['lines']}",
                "0",
                data["gaps"] == 0,
            ),
            _line("  `ptysup upgrade` takes", _range(data["command_s"], ".2f", " s")),
        ]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    load = " ".join(str(x) for x in machine["load_average"])
    return (
        f"{machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}, tmux {machine['tmux']}, dtach {machine['dtach']}, "
        f"ptysup {machine['ptysup']} ({machine['commit']}), load at start {load}"
    )


def render(results: dict[str, Any]) -> str:
    workloads = results["workloads"]
    parts = [machine_line(results["machine"])]
    if before := results.get("baseline"):
        dirty = "+dirty" if before["dirty"] else ""
        parts.append(
            f'baseline ("ptysup before"): {before["dir"]}, ptysup {before["ptysup"]} '
            f"({(before['commit'] or '?')[:7]}{dirty})"
        )
    parts.append(f"runs: {results['options']['runs']}")
    if any(k in workloads for k in ("lines", "binary", "echo", "busy")):
        parts += ["", side_by_side(workloads)]
    if any(k in workloads for k in ("scale", "observer", "upgrade")):
        parts += ["", ptysup_alone(workloads)]
    if "stuck" in workloads:
        data = workloads["stuck"]
        parts += ["", "stuck: failed" if "error" in data else stuck.table(data)]
    if notes := failure_notes(workloads):
        parts += ["", "failures:", *(f"  {n}" for n in notes)]
    missed = [g["what"] for g in results["goals"] if not g["met"]]
    parts += ["", "goals missed:" if missed else "every goal met", *(f"  {m}" for m in missed)]
    return "\n".join(parts)


def write(results: dict[str, Any], directory: Path) -> Path:
    """Write `latest.json` and a timestamped copy, each atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, ensure_ascii=False) + "\n"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(results["started_at_epoch"]))
    paths = [directory / f"{stamp}.json", directory / "latest.json"]
    for path in paths:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths[-1]
