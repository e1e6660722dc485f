"""The one way numbers are shown in text, figures and the HTML page.

Undefined values (None, NaN) are shown as :data:`MISSING`, infinite ones as ∞ / −∞, so
that a reader sees the same mark for the same thing everywhere. (HTML escaping is done
where the page is put together, for every cell alike.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

MISSING = "–"


def fmt(v: float | None, spec: str = ".3g") -> str:
    """``format(v, spec)``, or the mark for an undefined or infinite ``v``."""
    if v is None or math.isnan(v := float(v)):
        return MISSING
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return format(v, spec)


def fmt_estimate(v: float | None, interval: tuple[float, float], spec: str = ".3g") -> str:
    """``v [lo, hi]``: a number with its interval (the interval left out when undefined)."""
    ci = fmt_interval(interval)
    return fmt(v, spec) if ci == MISSING else f"{fmt(v, spec)} {ci}"


def fmt_per_depth(
    values: Mapping[str, float], intervals: Mapping[str, tuple[float, float]], spec: str
) -> str:
    """``depth value [lo, hi], …`` for per-depth numbers with their intervals."""
    return ", ".join(f"{d} {fmt_estimate(v, intervals[d], spec)}" for d, v in values.items())


def fmt_interval(interval: tuple[float, float], spec: str = ".3g") -> str:
    """``[lo, hi]`` with :func:`fmt`'s marks; a bare mark when neither bound is defined."""
    lo, hi = (fmt(v, spec) for v in interval)
    return MISSING if lo == hi == MISSING else f"[{lo}, {hi}]"


def run_labels(n: int, labels: Sequence[str] | None = None) -> list[str]:
    """The runs' names on a page: the ones given, else "run 1", "run 2", …"""
    return list(labels) if labels is not None else [f"run {k + 1}" for k in range(n)]
