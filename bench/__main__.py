"""`python -m bench`: run every benchmark, print the table, keep the results as JSON."""

import argparse
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    baseline,
    busy,
    latency,
    machine,
    observer,
    payloads,
    report,
    scale,
    stuck,
    throughput,
    upgrade,
)
from bench.baseline import Build
from bench.payloads import MiB
from bench.sandbox import Sandbox

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS = ("lines", "binary", "echo", "busy", "scale", "observer", "stuck", "upgrade")

FULL = {
    "lines": 64 * MiB,
    "binary": 128 * MiB,
    "echo": 2000,
    "busy": 1000,
    "spawns": 200,
    "sessions": 1000,
    "cli_sessions": 300,
    "idle_window": 5.0,
    "observer": 60 * MiB,
    "stuck": 144 * MiB,
}
QUICK = {
    "lines": 2 * MiB,
    "binary": 4 * MiB,
    "echo": 200,
    "busy": 200,
    "spawns": 20,
    "sessions": 100,
    "cli_sessions": 10,
    "idle_window": 1.0,
    "observer": 4 * MiB,
    "stuck": 16 * MiB,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument(
        "--runs", type=int, help="repetitions of each workload (default 5; 1 with --quick)"
    )
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="run only this one")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help=f"where to write (default {RESULTS})"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="another checkout with its own .venv: measure its ptysup beside this one's "
        "(lines, binary, echo, busy)",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if why := baseline.problem(args.baseline):
            parser.error(f"--baseline: {why}")
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _workload(
    name: str, box: Sandbox, sizes: dict[str, Any], runs: int, before: Build | None
) -> dict[str, Any]:
    if name == "lines":
        payload = payloads.lines(box, sizes["lines"])
        return throughput.run(box, payload, runs, "lines", progress, before)
    if name == "binary":
        payload = payloads.binary(box, sizes["binary"])
        return throughput.run(box, payload, runs, "binary", progress, before)
    if name == "echo":
        return latency.run(box, sizes["echo"], runs, progress, before)
    if name == "busy":
        return busy.run(box, sizes["busy"], runs, progress, before)
    if name == "scale":
        return scale.run(
            box,
            sessions=sizes["sessions"],
            spawns=sizes["spawns"],
            cli_sessions=sizes["cli_sessions"],
            window=sizes["idle_window"],
            runs=runs,
            progress=progress,
        )
    if name == "upgrade":
        return upgrade.run(box, runs, progress)
    if name == "stuck":
        return stuck.run(box, payloads.lines(box, sizes["stuck"]), runs, progress)
    return observer.run(box, payloads.lines(box, sizes["observer"]), runs, progress)


def _missing_tools() -> list[str]:
    return [tool for tool in ("tmux", "dtach", "stty") if shutil.which(tool) is None]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if missing := _missing_tools():
        print(
            f"bench: missing {', '.join(missing)}; `scripts/setup --tests` installs them",
            file=sys.stderr,
        )
        return 1
    sizes = QUICK if args.quick else FULL
    selected = [w for w in WORKLOADS if not args.only or w in args.only]
    before = Build(args.baseline) if args.baseline is not None else None
    started = time.time()
    options = {"runs": args.runs, "quick": args.quick, "only": args.only, "sizes": sizes}
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "started_at_epoch": started,
        "options": options,
        "machine": machine.describe(),
        "workloads": {},
    }
    if before is not None:
        options["baseline"] = str(before.root)
        with Sandbox() as box:
            try:
                results["baseline"] = baseline.describe(before, box.env)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                print(f"bench: --baseline: {exc}", file=sys.stderr)
                return 1
    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for name in selected:
            print(f"{name}…", file=sys.stderr, flush=True)
            with Sandbox() as box:
                try:
                    results["workloads"][name] = _workload(name, box, sizes, args.runs, before)
                except Exception as exc:
                    traceback.print_exc()
                    results["workloads"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been ended", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    results["duration_s"] = round(time.time() - started, 1)
    results["goals"] = report.evaluate(results["workloads"])
    path = report.write(results, args.results_dir)
    print(report.render(results))
    print(f"\nresults: {path}", file=sys.stderr)
    return 1 if any("error" in w for w in results["workloads"].values()) else 0


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
