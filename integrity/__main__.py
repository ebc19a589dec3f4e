"""`python -m integrity`: the integrity harness. Without `--case`, a random schedule of
`--seconds` from `--seed` (printed, so that it can be replayed); with `--case NAME` (or `all`),
the focused reproductions of issue 24. Prints a table of invariants and results, writes it as
JSON with `--json`, and exits 1 when an invariant fails, naming the seed and the step."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from integrity import invariants as inv
from integrity import report
from integrity.cases import CASES, Context, run_case
from integrity.daemon import PrivateDaemon
from integrity.run import ScheduleRun, rss_bound_mib
from integrity.schedule import make

RSS_RULE = "150 MiB + per session (ring + 8 MiB) + per lossless subscriber max(backlog, ring)"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m integrity", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="schedule length (default 20)")
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    parser.add_argument(
        "--native",
        choices=["0", "1"],
        help="PTYSUP_NATIVE for the daemon: 0 the pure-Python byte path, 1 the compiled one "
        "(default: as in the environment)",
    )
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument(
        "--case",
        action="append",
        choices=[*CASES, "all"],
        help="run this focused case instead of a schedule (repeatable; `all` for every one)",
    )
    parser.add_argument(
        "--paste-mb", type=int, default=50, help="paste-rss: MiB pasted (default 50)"
    )
    parser.add_argument(
        "--stuck-seconds",
        type=float,
        default=20.0,
        help="stuck-observer: seconds the observer stays stopped (default 20)",
    )
    parser.add_argument(
        "--no-upgrade", action="store_true", help="a schedule without `ptysup upgrade`"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the steps as they run")
    parser.add_argument("--keep-log", type=Path, help="copy the daemon's log here")
    args = parser.parse_args(argv)
    if args.seconds < 2:
        parser.error("--seconds must be at least 2")
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    return args


def settings(args: argparse.Namespace) -> dict[str, str]:
    native = args.native if args.native is not None else os.environ.get("PTYSUP_NATIVE")
    extra = {"PTYSUP_KILL_GRACE": "0.5"}
    if native is not None:
        extra["PTYSUP_NATIVE"] = native
    return extra


def _log(quiet: bool) -> Any:
    def log(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    return log


def run_schedule(args: argparse.Namespace) -> dict[str, Any]:
    schedule = make(args.seed, args.seconds, upgrades=not args.no_upgrade)
    log = _log(args.quiet)
    replay = f"python -m integrity --seconds {args.seconds:g} --seed {args.seed}"
    if args.no_upgrade:
        replay += " --no-upgrade"
    native = settings(args).get("PTYSUP_NATIVE")
    if native is not None:
        replay += f" --native {native}"
    print(f"integrity: replay with `{replay}`", file=sys.stderr, flush=True)
    log(schedule.text())
    daemon = PrivateDaemon(
        {
            **settings(args),
            "PTYSUP_RING_SIZE": str(schedule.ring_size),
            "PTYSUP_SUBSCRIBER_BACKLOG": str(schedule.backlog),
        }
    )
    begun = time.monotonic()
    summary: dict[str, Any] = {
        "what": f"a schedule of {args.seconds:g} s",
        "seed": args.seed,
        "seconds": args.seconds,
        "native": native,
        "replay": replay,
        "schedule": schedule.as_json(),
    }
    run = None
    try:
        daemon.start()
        summary["byte_path"] = daemon.byte_path()
        log(f"daemon pid {daemon.pid}, {daemon.byte_path()} byte path, socket {daemon.socket}")
        run = ScheduleRun(schedule, daemon, log)
        run.execute()
    except Exception as exc:
        log(traceback.format_exc())
        summary.setdefault("byte_path", daemon.byte_path())
        if run is None:
            run = ScheduleRun(schedule, daemon, log)
        run.checks[inv.BEHAVES].fail(f"the run broke: {type(exc).__name__}: {exc}")
    finally:
        left = daemon.stop(keep_log=args.keep_log)
    checks = run.checks
    checks[inv.LEFT].checked += 1
    if left:
        checks[inv.LEFT].fail(f"killed {len(left)} processes left behind: {left}")
    memory = run.memory
    summary.update(
        {
            "duration_s": time.monotonic() - begun,
            "checks": checks.as_json(),
            "rss": {
                "start_mib": memory.first_kib / 1024,
                "peak_mib": memory.peak_kib / 1024,
                "end_mib": memory.last_kib / 1024,
                "bound_mib": rss_bound_mib(schedule, run.subscriptions),
                "bound_rule": RSS_RULE,
            },
            "ring_checks": run.ring_checks,
            "upgrades": run.upgrades,
            "ok": checks.ok,
        }
    )
    first = checks.first_failure()
    summary["message"] = ""
    if first is not None:
        check, finding = first
        where = f" at step {finding.step}" if finding.step else ""
        summary["message"] = (
            f"integrity: FAIL (seed {args.seed}, {summary['byte_path']} byte path): "
            f"{inv.SHORT.get(check.name, check.name)}{where}: {finding.detail}\n"
            f"replay: {replay}"
        )
    return summary


def run_cases(args: argparse.Namespace) -> dict[str, Any]:
    names = list(CASES) if "all" in args.case else list(dict.fromkeys(args.case))
    log = _log(args.quiet)
    ctx = Context(settings(args), log, args.paste_mb, args.stuck_seconds)
    begun = time.monotonic()
    results = []
    for name in names:
        log(f"integrity: case {name}")
        result = run_case(name, ctx)
        log(f"  {'pass' if result.ok else 'FAIL'} in {result.duration_s:.1f} s")
        results.append(result)
    failed = [r for r in results if not r.ok]
    message = ""
    if failed:
        parts = []
        for r in failed:
            first = r.checks.first_failure()
            if first is not None:
                check, finding = first
                parts.append(f"case {r.name}: {inv.SHORT.get(check.name)}: {finding.detail}")
        message = "integrity: FAIL\n" + "\n".join(parts)
    return {
        "what": f"cases {', '.join(names)}",
        "seed": args.seed,
        "native": settings(args).get("PTYSUP_NATIVE"),
        "byte_path": ", ".join(sorted({r.byte_path for r in results})),
        "duration_s": time.monotonic() - begun,
        "cases": [r.as_json() for r in results],
        "ok": not failed,
        "message": message,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    summary = run_cases(args) if args.case else run_schedule(args)
    print(report.table(summary))
    if args.json is not None:
        report.write(summary, args.json)
        print(f"summary written to {args.json}")
    if not summary["ok"]:
        print(summary["message"], file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
