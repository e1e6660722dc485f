"""The long tables of an analysis: one row per step, population, injection or probe, with
categorical labels (cheap to build and to store, unlike columns of strings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import HIGH, LOW
from factdyn.analyze.metrics import Acquisition, Levels

EFF_COLUMNS = [
    *("scenario", "depth", "injection", "step", "effectivity", "ci_low", "ci_high"),
    *("n", "n_outliers", "n_missing", "window_complete"),
]
RET_COLUMNS = [*("scenario", "depth", "t", "retainability", "ci_low", "ci_high", "n", "n_outliers")]
PROBE_COLUMNS = [
    *("scenario", "depth", "probe_id", "item", "excluded", "retainability", "retainability_t"),
    *("n_retainability", "n_gain_outliers", "n_retainability_outliers"),
]


def labels(values: Sequence[str]) -> pd.Categorical:
    """A categorical column (cheap to build and to store, unlike a column of strings)."""
    cats = list(dict.fromkeys(values))
    index = {c: k for k, c in enumerate(cats)}
    codes = np.array([index[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=cats)


def long_table(parts: list[tuple[str, str, dict]], columns: list[str]) -> pd.DataFrame:
    """One long table from per-population column arrays, with categorical labels."""
    sizes = np.array([len(next(iter(cols.values()))) for _, _, cols in parts], dtype=np.int64)
    if not parts:
        return pd.DataFrame(columns=columns)
    codes = np.repeat(np.arange(len(parts)), sizes)
    out = {
        "scenario": labels([s for s, _, _ in parts])[codes],
        "depth": labels([d for _, d, _ in parts])[codes],
    }
    for c in columns[2:]:
        out[c] = np.concatenate([cols[c] for _, _, cols in parts])
    return pd.DataFrame(out, columns=columns)


def series_table(
    steps: np.ndarray,
    tokens_per_step: int,
    group_labels: dict[str, list[str]],
    delta: np.ndarray,
    n: np.ndarray,
    ci: np.ndarray | None = None,
    value: str = "delta",
    intervals: bool = True,
) -> pd.DataFrame:
    """(L, G) per-group series as a long table: step, tokens, the group's label columns
    (G labels each), ``value`` (``delta``), its interval ``ci`` (L, G, 2: bounds at
    :data:`~factdyn.analyze.bootstrap.LOW`, ``HIGH``; NaN when None;
    no columns unless ``intervals``), n; only where the group had probes scored (n > 0), so
    that a sparse log's per-item gaps are absent rows rather than NaN."""
    g = delta.shape[1]
    ci = np.full((*delta.shape, 2), np.nan) if ci is None else ci
    have = n.reshape(-1) > 0
    codes = np.tile(np.arange(g), len(steps))[have]
    columns = {
        "step": np.repeat(steps, g)[have],
        "tokens": np.repeat(steps * tokens_per_step, g)[have],
        **{k: labels(v)[codes] if g else [] for k, v in group_labels.items()},
        value: delta.reshape(-1)[have],
        **(
            {"ci_low": ci[..., LOW].reshape(-1)[have], "ci_high": ci[..., HIGH].reshape(-1)[have]}
            if intervals
            else {}
        ),
        "n": n.reshape(-1)[have],
    }
    return pd.DataFrame(columns, columns=list(columns))


def acquisition_table(
    probes: pd.DataFrame, acq: Acquisition, inj_steps: np.ndarray, levels: Levels
) -> pd.DataFrame:
    """One row per (probe, injection): the local acquisition maximum and the gain, and ℓ
    relative to the first injection's at t_i, at t_LAM and one interval later."""
    p, i = np.nonzero(acq.valid)
    ids = probes["probe_id"].to_numpy()
    by_id = np.lexsort((i, ids[p]))
    p, i = p[by_id], i[by_id]
    scen = probes["scenario"].astype(str).tolist()
    depth = probes["depth"].astype(str).tolist()
    return pd.DataFrame(
        {
            "probe_id": ids[p],
            "item": probes["item"].to_numpy()[p],
            "scenario": labels(scen)[p],
            "depth": labels(depth)[p],
            "injection": i + 1,
            "step": np.where(acq.valid[p, i], np.asarray(inj_steps)[p, i], -1),
            "lam_step": acq.lam_step[p, i],
            "gain": acq.gain[p, i],
            "window_complete": acq.window_complete[p, i],
            "level_before": levels.before[p, i],
            "level_peak": levels.peak[p, i],
            "level_next": levels.next[p, i],
        }
    )
