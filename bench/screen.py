"""`python -m bench.screen`: the screen engines side by side on colored `ls` output.

Feed rate (MB/s, the output fed in 4 KiB reads as a PTY gives them), the mode scanner's own
rate, what snapshot, redraw and history cost after a 30 MB flood, whether the binding lets
other threads run while it parses, and what loading it costs.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine
from bench.stats import summary
from supervisor.screen import ModeScanner, available_engines, open_engine

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1e6
READ = 4096
COLS, ROWS = 120, 40
SLOW = {"pyte"}  # measured on a slice; a flood would take minutes


def payload(size: int) -> bytes:
    """`ls -la --color=always -R /usr` as a terminal shows it (CR LF), cut to `size` bytes."""
    out = subprocess.run(
        ["ls", "-la", "--color=always", "-R", "/usr"], capture_output=True, check=False
    ).stdout
    out = out.replace(b"\n", b"\r\n")
    while len(out) < size:
        out += out
    return out[:size]


def feed_all(feed: Callable[[bytes], None], data: bytes) -> float:
    started = time.perf_counter()
    for i in range(0, len(data), READ):
        feed(data[i : i + READ])
    return time.perf_counter() - started


def feed_rate(name: str, data: bytes, runs: int) -> dict[str, Any]:
    rates = []
    for _ in range(runs):
        engine = open_engine(COLS, ROWS, name=name)
        rates.append(len(data) / feed_all(engine.feed, data) / MB)
    return summary(rates) | {"bytes": len(data)}


def scanner_rate(data: bytes, runs: int) -> dict[str, Any]:
    rates = [len(data) / feed_all(ModeScanner(ROWS).feed, data) / MB for _ in range(runs)]
    return summary(rates) | {"bytes": len(data)}


def after_flood(name: str, data: bytes, flood: int, runs: int) -> dict[str, Any]:
    engine = open_engine(COLS, ROWS, name=name)
    fed = 0
    seconds = 0.0
    while fed < flood:
        seconds += feed_all(engine.feed, data)
        fed += len(data)
    timings: dict[str, list[float]] = {"snapshot_ms": [], "ansi_ms": [], "history_1000_ms": []}
    for _ in range(runs):
        for key, call in (
            ("snapshot_ms", engine.snapshot),
            ("ansi_ms", engine.ansi),
            ("history_1000_ms", lambda: engine.history(1000)),
        ):
            started = time.perf_counter()
            call()
            timings[key].append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {k: summary(v) for k, v in timings.items()}
    return result | {"flood_bytes": fed, "flood_mb_per_s": fed / seconds / MB}


def gil(name: str, data: bytes, size: int) -> dict[str, Any]:
    """One feed of `size` bytes while another thread notes how long it ever waited between
    two turns of its loop. A binding that holds the GIL stops that thread for the whole
    call; one that releases it leaves only the scheduler's gaps."""
    big = (data * (size // len(data) + 1))[:size]
    engine = open_engine(COLS, ROWS, name=name)
    stop, started = threading.Event(), threading.Event()
    longest = [0.0]

    def watch() -> None:
        last = time.perf_counter()
        started.set()
        while not stop.is_set():
            now = time.perf_counter()
            longest[0] = max(longest[0], now - last)
            last = now

    watcher = threading.Thread(target=watch)
    watcher.start()
    started.wait()
    time.sleep(0.05)
    longest[0] = 0.0
    begun = time.perf_counter()
    engine.feed(big)
    call = time.perf_counter() - begun
    stop.set()
    watcher.join()
    return {
        "feed_ms": call * 1000,
        "longest_wait_ms": longest[0] * 1000,
        "releases_gil": longest[0] < call / 2,
        "bytes": size,
    }


def import_seconds(name: str) -> float:
    """Loading the engine's module in a fresh interpreter (the daemon pays it once)."""
    code = (
        "import time; t = time.perf_counter(); "
        f"from supervisor.screen import engine_class; engine_class({name!r}); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = payload(args.bytes)
    engines = available_engines()
    out: dict[str, Any] = {"engines": {}, "payload_bytes": len(data)}
    for name in engines:
        print(f"{name}…", file=sys.stderr, flush=True)
        sample = data[: args.slow_bytes] if name in SLOW else data
        engine = open_engine(COLS, ROWS, name=name)
        row: dict[str, Any] = {"version": engine.version}
        row["import_s"] = summary([import_seconds(name) for _ in range(args.runs)])
        row["feed"] = feed_rate(name, sample, args.runs)
        if name not in SLOW:
            row["flood"] = after_flood(name, data, args.flood, args.runs)
        row["gil"] = gil(name, data, args.slow_bytes if name in SLOW else args.gil_bytes)
        out["engines"][name] = row
    out["scanner"] = scanner_rate(data, args.runs)
    return out


def render(results: dict[str, Any]) -> str:
    head = ["engine", "feed MB/s", "30 MB flood", "snapshot", "redraw", "history 1000", "GIL"]
    head.append("import")
    rows = [head]
    for name, row in results["workloads"]["screen"]["engines"].items():
        feed = row["feed"]
        flood = row.get("flood")
        cells = [f"{name} ({row['version']})", _range(feed, ".1f")]
        if flood:
            cells.append(f"{flood['flood_mb_per_s']:.0f} MB/s")
            cells += [_range(flood[k], ".2f", " ms") for k in ("snapshot_ms", "ansi_ms")]
            cells.append(_range(flood["history_1000_ms"], ".2f", " ms"))
        else:
            cells += ["\u2014"] * 4
        held = row["gil"]
        verdict = "released" if held["releases_gil"] else "held"
        verdict = "by turns (Python)" if name in SLOW else verdict
        cells.append(f"{verdict} ({held['longest_wait_ms']:.0f}/{held['feed_ms']:.0f} ms)")
        cells.append(f"{row['import_s']['median']:.2f} s")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    scanner = results["workloads"]["screen"]["scanner"]
    lines.append(f"mode scanner alone: {_range(scanner, '.0f')} MB/s")
    lines.append(
        "GIL: the longest another thread waited during one feed call / that call's duration"
    )
    return "\n".join(lines)


def _range(s: dict[str, Any], fmt: str, unit: str = "") -> str:
    return f"{s['median']:{fmt}}{unit} ({s['min']:{fmt}}\u2013{s['max']:{fmt}})"


def write(results: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(results["started_at_epoch"]))
    text = json.dumps(results, indent=2) + "\n"
    path = directory / f"screen-{stamp}.json"
    for target in (path, directory / "screen-latest.json"):
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return path


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.screen", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (a smoke test)")
    parser.add_argument("--runs", type=int, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help=f"where to write (default {RESULTS})"
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 5)
    args.bytes = 200_000 if args.quick else 3_000_000
    args.slow_bytes = 50_000 if args.quick else 500_000
    args.flood = 1_000_000 if args.quick else 30_000_000
    args.gil_bytes = 1_000_000 if args.quick else 8_000_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.time()
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "started_at_epoch": started,
        "options": {"runs": args.runs, "quick": args.quick},
        "machine": machine.describe(),
        "workloads": {"screen": run(args)},
    }
    results["duration_s"] = round(time.time() - started, 1)
    path = write(results, args.results_dir)
    print(render(results))
    print(f"\nresults: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
