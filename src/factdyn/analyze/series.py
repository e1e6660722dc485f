"""Each population's mean at every logged step: its trajectory Δℓ, the share of its probes
the model continues greedily, and the control probes' drift (the long tables over steps).

Items injected in later cohorts are read from their own first injection on (:func:`align`),
so that a population's trajectory shows one staircase, not a smear of shifted ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import mean_intervals
from factdyn.analyze.drift import DriftCorrection, ResidualDrift
from factdyn.analyze.layout import Layout, block_means
from factdyn.analyze.metrics import FIRST
from factdyn.analyze.tables import series_table
from factdyn.rundir import Run


def cohort_offsets(inj_steps: np.ndarray, scen: np.ndarray) -> np.ndarray:
    """(P,) steps from each probe's scenario's first injection to its item's own first
    injection: nonzero only for items injected in later cohorts (0 for never-injected)."""
    first = inj_steps[:, FIRST] if inj_steps.shape[1] else np.full(len(scen), -1)
    out = np.zeros(len(scen), dtype=np.int64)
    for s in np.unique(scen):
        member = (scen == s) & (first >= 0)
        if member.any():
            out[member] = first[member] - first[member].min()
    return out


def align(steps: np.ndarray, x_t: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Probe-major ``x_t`` (P, L) with row p read ``offsets[p]`` steps later: column j holds
    the value logged at ``steps[j] + offsets[p]`` (NaN where that step was not logged, and
    after the step where the latest cohort's log ends, so that every step of an aligned mean
    stands for all its cohorts)."""
    want = steps[None, :] + offsets[:, None]
    j = np.minimum(np.searchsorted(steps, want), len(steps) - 1)
    hit = (steps[j] == want) & (steps <= steps[-1] - offsets.max())[None, :]
    return np.where(hit, np.take_along_axis(x_t, j, axis=1), np.nan)


def trajectories(
    steps: np.ndarray,
    tokens_per_step: int,
    layout: Layout,
    ell_t: np.ndarray,
    raw_means: tuple[np.ndarray, np.ndarray, bool],
    drift: DriftCorrection,
    offsets: np.ndarray,
    items: np.ndarray,
    resamples: int,
    seed: int,
) -> pd.DataFrame:
    """Each population's mean Δℓ = ℓ_t − ℓ_0 at every step, with its interval over items,
    from the (drift-corrected) probe-major log ``ell_t``; ``raw_means`` are the populations'
    (L, G) means and counts of the log before the correction and whether it has NaN."""
    block_mean, block_n, has_nan = raw_means
    if offsets.any():  # later cohorts read from their own first injection on
        aligned = align(steps, ell_t, offsets)
        probe_delta, has_nan = aligned - aligned[:, :1], True
    else:
        probe_delta = ell_t - ell_t[:, :1]
    if has_nan:  # a probe missing at some step: average the per-probe Δℓ
        delta, n = block_means(probe_delta, layout.bounds, True)
    else:  # mean of differences = difference of means (the correction is per block)
        delta = block_mean - drift.shift[:, [layout.depths.index(b.depth) for b in layout.blocks]]
        delta, n = delta - delta[:1], block_n
    ci = np.stack(
        [
            mean_intervals(
                probe_delta[b.start : b.stop],
                items[b.start : b.stop],
                resamples,
                layout.draw(seed, b.scenario),
            )
            for b in layout.blocks
        ],
        axis=1,
    ).reshape(len(steps), len(layout.blocks), 2)
    return series_table(steps, tokens_per_step, layout.labels(), delta, n, ci)


def greedy_share(run: Run, layout: Layout, offsets: np.ndarray) -> pd.DataFrame:
    """The share of each population's scored probes whose target is the greedy
    continuation, per logged step (the ``greedy`` table); empty without the statistic."""
    group = layout.labels()
    if run.has_stat("greedy"):
        flag_t = np.asarray(run.stat("greedy").T[layout.order], dtype=np.float64)
        if offsets.any():
            flag_t = align(np.asarray(run.steps), flag_t, offsets)
        share, n = block_means(flag_t, layout.bounds, True)
    else:
        share = n = np.zeros((len(run.steps), 0))
        group = {k: [] for k in group}
    return series_table(
        run.steps, run.tokens_per_step, group, share, n, value="share", intervals=False
    )


def control_drift(
    steps: np.ndarray, tokens_per_step: int, drift: DriftCorrection, depths: Sequence[str]
) -> pd.DataFrame:
    """The control probes' mean Δℓ per depth at every step (depths with controls only)."""
    kept = [k for k in range(len(depths)) if not np.isnan(drift.mean[:, k]).all()]
    delta = (drift.mean - drift.mean[:1])[:, kept]
    labels = {"depth": [depths[k] for k in kept]}
    return series_table(steps, tokens_per_step, labels, delta, drift.n[:, kept])


def residual_drift_table(
    steps: np.ndarray, tokens_per_step: int, res: ResidualDrift, depths: Sequence[str]
) -> pd.DataFrame:
    """The residual drift per depth at every step, with its interval (depths with one)."""
    kept = [k for k in range(len(depths)) if not np.isnan(res.residual[:, k]).all()]
    labels = {"depth": [depths[k] for k in kept]}
    return series_table(
        *(steps, tokens_per_step, labels, res.residual[:, kept], res.n[:, kept]),
        ci=res.ci[:, kept],
        value="residual",
    )
