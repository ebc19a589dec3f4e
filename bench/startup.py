"""`python -m bench.startup`: what every `ptysup` call pays before it does anything, and
the upgrade-in-place pause, which is mostly the new image's start-up.

Each CLI figure is the wall time of one `ptysup list` / `ptysup status` (with a running
daemon holding a few sessions, bytecode compiled), beside a bare `python -c pass`.
Goals: ≤ 50 ms median for the CLI, ≤ 300 ms for the pause.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import upgrade
from bench.sandbox import PTYSUP, Daemon, Sandbox
from bench.stats import summary

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"list": 50.0, "status": 50.0, "upgrade_pause": 300.0}


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    subprocess.run(argv, env=env, capture_output=True, check=False)  # warm the caches
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def measure(box: Sandbox, runs: int, upgrades: int) -> dict[str, Any]:
    env = {k: v for k, v in box.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    source = Path(__file__).resolve().parent.parent / "supervisor"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(source)], check=False)
    daemon = Daemon(box, box.path("startup"))
    daemon.start()
    try:
        for _ in range(3):
            daemon.cli("spawn", "--", "sleep", "600")
        base = [PTYSUP, "--socket", daemon.socket, "--no-start"]
        figures = {
            "python": summary(timed([sys.executable, "-c", "pass"], env, runs)),
            "list": summary(timed([*base, "list"], env, runs)),
            "status": summary(timed([*base, "status"], env, runs)),
        }
    finally:
        daemon.stop()
    pauses = []
    for i in range(upgrades):
        up = Daemon(box, box.path(f"startup-up{i}"))
        up.start()
        try:
            pauses.append(upgrade.measure(up)["pause_ms"])
        finally:
            up.stop()
    figures["upgrade_pause"] = summary(pauses)
    return figures


def table(figures: dict[str, Any]) -> str:
    rows = [f"{'what':16} {'median ms':>10} {'min':>8} {'max':>8} {'goal':>8}"]
    for name, figure in figures.items():
        goal = GOALS.get(name)
        rows.append(
            f"{name:16} {figure['median']:10.1f} {figure['min']:8.1f} {figure['max']:8.1f} "
            + (f"{'≤ ' + format(goal, '.0f'):>8}" if goal else f"{'-':>8}")
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=40, help="CLI calls per figure (default 40)")
    parser.add_argument("--upgrades", type=int, default=5, help="upgrades measured (default 5)")
    parser.add_argument("--quick", action="store_true", help="5 calls and 1 upgrade")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.upgrades = 5, 1
    with Sandbox() as box:
        figures = measure(box, args.runs, args.upgrades)
    print(table(figures))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    text = json.dumps({"when": stamp, "runs": args.runs, "figures": figures}, indent=2)
    (args.results_dir / f"startup-{stamp}.json").write_text(text + "\n")
    (args.results_dir / "startup-latest.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
