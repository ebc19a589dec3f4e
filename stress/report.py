"""The summary: a table for people, the same figures as JSON for the record."""

import json
import os
from pathlib import Path
from typing import Any


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"stress: {summary['cases']} cases in {summary['duration_s']:.1f} s "
        f"over {summary['connections']} connections (seed {summary['seed']}, "
        f"{summary['lanes']} lanes)",
        "",
        f"{'kind':<16}{'cases':>9}{'errors':>9}{'closes':>9}",
    ]
    kinds = summary["kinds"]
    for kind in sorted(kinds, key=lambda k: -kinds[k]["cases"]):
        entry = kinds[kind]
        lines.append(f"{kind:<16}{entry['cases']:>9}{entry['errors']:>9}{entry['closes']:>9}")
    totals = summary["totals"]
    lines.append(f"{'total':<16}{totals['cases']:>9}{totals['errors']:>9}{totals['closes']:>9}")
    lines.append(
        f"valid requests answered among them: {summary['valid_answered']}; "
        f"closes that were resets: {summary['resets']}"
    )
    lines.append("")
    latency = summary["latency_ms"]
    canary = summary["canary"]
    lines.append(
        f"canary: {canary['sessions']} sessions, {sum(canary['lines'])} counter lines, "
        f"{'no gap' if canary['intact'] else 'DAMAGED'}; {latency['count']} round trips: "
        f"p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms, "
        f"max {latency['max']:.1f} ms ({latency['slowest']})"
    )
    rss, fds = summary["rss_kib"], summary["fds"]
    lines.append(
        f"daemon pid {summary['daemon']['pid']}: RSS start {rss['start'] / 1024:.1f} MiB, "
        f"peak {rss['peak'] / 1024:.1f} MiB, end {rss['end'] / 1024:.1f} MiB; "
        f"fds start {fds['start']}, peak {fds['peak']}, end {fds['end']}"
    )
    lines.append("")
    for name, check in summary["checks"].items():
        mark = "ok  " if check["ok"] else "FAIL"
        lines.append(f"  {mark} {name}: {check['detail']}")
    if summary["failure_count"]:
        lines.append("")
        lines.append("failures, alike ones together (the JSON keeps the bytes of each):")
        for signature, count in summary["failure_signatures"].items():
            lines.append(f"  {count:>6}  {signature}")
        first = summary["failures"][0]
        lines.append(f"  first: [{first['kind']}] {first['reason']}")
        lines.append(f"         sent (hex): {first['sample'][:200]}")
    lines.append("PASS" if summary["ok"] else "FAIL")
    return "\n".join(lines)


def write(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)
