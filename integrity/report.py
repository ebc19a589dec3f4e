"""The summary: a table of invariants and results for people, the same as JSON for the record,
and the one-line message a failing run ends with (seed and step included, for a replay)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from integrity.invariants import ORDER, SHORT

WIDTH = 28


def _row(name: str, check: dict[str, Any], indent: str = "  ") -> str:
    mark = "pass" if check["ok"] else "FAIL"
    if check["ok"] and not check["checked"]:
        mark = "-"
    return f"{indent}{name:<{WIDTH}} {mark:<5} {check['detail']}"


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"integrity: {summary['what']} on the {summary['byte_path']} byte path "
        f"(seed {summary['seed']}), {summary['duration_s']:.1f} s"
    ]
    if summary.get("checks"):
        lines.append(f"  {'invariant':<{WIDTH}} {'result':<5} detail")
        for name in ORDER:
            if SHORT[name] in summary["checks"]:
                lines.append(_row(SHORT[name], summary["checks"][SHORT[name]]))
    if summary.get("rss"):
        rss = summary["rss"]
        lines.append(
            f"  daemon RSS: start {rss['start_mib']:.0f} MiB, peak {rss['peak_mib']:.0f} MiB, "
            f"end {rss['end_mib']:.0f} MiB; bound {rss['bound_mib']:.0f} MiB "
            f"({rss['bound_rule']})"
        )
    for case in summary.get("cases", []):
        state = "pass" if case["ok"] else "FAIL"
        lines.append(
            f"  case {case['name']} [{state}, {case['duration_s']:.1f} s]: defect {case['defect']}"
        )
        for name, check in case["checks"].items():
            lines.append(_row(name, check, "      "))
    lines.append("PASS" if summary["ok"] else f"FAIL\n{summary['message']}")
    return "\n".join(lines)


def write(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)
