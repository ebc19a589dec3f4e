"""Medians, percentiles and min-max summaries of repeated measurements."""

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100), interpolating between the nearest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and range of one figure over the runs, with every run's value."""
    return {
        "median": percentile(values, 50),
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }


def pairwise(values: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """Ratios run by run: each value over the baseline measured in the same run."""
    return summary([v / b for v, b in zip(values, baseline, strict=True)])


def short(text: str, limit: int = 100) -> str:
    """The first line of `text`, cut to `limit` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"
