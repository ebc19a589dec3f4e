"""`python -m stress`: hostile input against a live daemon while canaries check that nothing
else is touched; prints a summary and keeps it as JSON."""

import argparse
import secrets
import sys
from pathlib import Path

import trio

from stress import report
from stress.daemon import PrivateDaemon
from stress.run import Options, run

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
KEEP_LOG_LINES = 2000


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000, help="cases to run (default 100000)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="spread the cases over at least this long (default: as fast as they go)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    parser.add_argument(
        "--socket", help="fuzz the daemon already serving this socket instead of starting one"
    )
    parser.add_argument("--lanes", type=int, default=6, help="cases in flight at once (default 6)")
    parser.add_argument("--canaries", type=int, default=3, help="canary sessions (default 3)")
    parser.add_argument(
        "--max-latency",
        type=float,
        default=2.0,
        help="longest a canary round trip may take, in seconds (default 2)",
    )
    parser.add_argument(
        "--max-rss-growth",
        type=float,
        default=128.0,
        help="how far the daemon's RSS may rise over its start, in MiB (default 128)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"the JSON summary (default {RESULTS})"
    )
    args = parser.parse_args(argv)
    if args.cases < 1 or args.lanes < 1 or args.canaries < 1 or args.seconds < 0:
        parser.error("--cases, --lanes and --canaries must be positive, --seconds not negative")
    if args.seed is None:
        args.seed = secrets.randbelow(2**32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options = Options(
        cases=args.cases,
        seconds=args.seconds,
        seed=args.seed,
        lanes=args.lanes,
        canaries=args.canaries,
        max_latency=args.max_latency,
        max_rss_growth_mib=args.max_rss_growth,
    )
    daemon = None
    socket = args.socket
    if socket is None:
        daemon = PrivateDaemon()
        try:
            daemon.start()
        except RuntimeError as exc:
            daemon.stop()
            print(f"stress: {exc}", file=sys.stderr)
            return 2
        socket = daemon.socket
    print(f"stress: seed {args.seed}, {args.cases} cases against {socket}", file=sys.stderr)
    summary = None
    try:
        summary = trio.run(run, socket, options, daemon is not None)
    finally:
        if daemon is not None and (summary is None or not summary["ok"]):
            keep = args.output.with_suffix(".daemon.log")
            keep.parent.mkdir(parents=True, exist_ok=True)
            lines = daemon.log.read_bytes().splitlines(keepends=True)
            keep.write_bytes(b"".join(lines[-KEEP_LOG_LINES:]))
            print(f"stress: the end of the daemon's log is kept in {keep}", file=sys.stderr)
        left = daemon.stop() if daemon is not None else []
    if left:
        summary["checks"]["nothing left behind"] = {"ok": False, "detail": f"killed {left}"}
        summary["ok"] = False
    elif daemon is not None:
        summary["checks"]["nothing left behind"] = {"ok": True, "detail": "no process left"}
    report.write(summary, args.output)
    print(report.table(summary))
    print(f"summary written to {args.output}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
