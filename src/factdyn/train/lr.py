"""Learning-rate schedules that can start in the middle (a checkpoint's own schedule position)."""

from __future__ import annotations

import math


def lr_at(
    position: int,
    *,
    peak: float,
    schedule: str,
    warmup: int,
    total: int,
    min_ratio: float,
) -> float:
    """LR at a schedule position: linear warmup, then constant, linear or cosine decay to
    ``min_ratio * peak`` at ``total`` (held there afterwards)."""
    if warmup and position < warmup:
        return peak * (position + 1) / warmup
    if schedule == "constant":
        return peak
    span = max(total - warmup, 1)
    frac = min(max(position - warmup, 0) / span, 1.0)
    decay = 1.0 - frac if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))
    return peak * (min_ratio + (1.0 - min_ratio) * decay)
