"""The integrity harness (`python -m integrity`, issue 24) in the test run: a random schedule
of attaches, observers, slow and stopped readers, pastes, resizes and role changes against a
private daemon, on a fixed seed and on a random one (printed, so that a failure can be
replayed); and the fixed seed with an upgrade in the middle, which still fails at times
(marked so until issue 24's defect 3 is closed). About a minute in all. scripts/test runs
it on both byte paths: the daemon takes PTYSUP_NATIVE from the environment."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

SECONDS = 12
FIXED_SEED = 24
RANDOM_SEED = secrets.randbelow(2**31)


def run_harness(
    seed: int, output: Path, *, upgrade: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "integrity",
            "--seconds",
            str(SECONDS),
            "--seed",
            str(seed),
            "--json",
            str(output),
            "--quiet",
            *([] if upgrade else ["--no-upgrade"]),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


UPGRADE_STILL_LOSES = pytest.mark.xfail(
    strict=False,
    reason="issue 24, defect 3 is not closed in general: across an upgrade a lossless "
    "follower can still stop short of the end or be skipped (seed 24 about one run in two)",
)


@pytest.mark.timeout(480)
@pytest.mark.parametrize(
    ("seed", "upgrade"),
    [
        (FIXED_SEED, False),
        (RANDOM_SEED, False),
        pytest.param(FIXED_SEED, True, marks=UPGRADE_STILL_LOSES),
    ],
    ids=["fixed-seed", "random-seed", "fixed-seed-with-upgrade"],
)
def test_a_random_schedule_keeps_every_byte_and_key(
    seed: int, upgrade: bool, short_tmp: Path
) -> None:
    print(f"integrity harness: seed {seed}, PTYSUP_NATIVE={os.environ.get('PTYSUP_NATIVE')}")
    output = short_tmp / "integrity.json"
    proc = run_harness(seed, output, upgrade=upgrade)
    print(proc.stdout)
    assert output.exists(), f"the harness wrote no summary (seed {seed}): {proc.stderr[-3000:]}"
    summary = json.loads(output.read_text())
    assert proc.returncode == 0 and summary["ok"], summary["message"] or proc.stderr[-3000:]
    assert summary["seed"] == seed
    assert summary["checks"]["nothing left behind"]["checked"] == 1
