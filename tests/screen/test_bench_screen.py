"""The engines' benchmark runs end to end with tiny sizes; no figure is asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.screen import available_engines

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_screen_bench(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.screen", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "feed MB/s" in proc.stdout
    results = json.loads((tmp_path / "screen-latest.json").read_text())
    engines = results["workloads"]["screen"]["engines"]
    assert list(engines) == available_engines()
    for name, row in engines.items():
        assert row["feed"]["median"] > 0
        assert isinstance(row["gil"]["releases_gil"], bool)
        assert ("flood" in row) == (name != "pyte")
