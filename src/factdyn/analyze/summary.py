"""From the per-probe arrays of :mod:`factdyn.analyze.populations` to the results: one
:class:`~factdyn.analyze.result.Population` per scenario × depth, the log's gaps, and the
long tables (with categorical labels, cheap to build and to store)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import bootstrap_population
from factdyn.analyze.estimators import alternative_fits
from factdyn.analyze.fit import fit_power_law, step_weights
from factdyn.analyze.metrics import Acquisition, Levels, Retention, iqr_keep, kept_mean
from factdyn.analyze.result import Population, ordered

EFF_COLUMNS = [
    *("scenario", "depth", "injection", "step", "effectivity", "ci_low", "ci_high"),
    *("n", "n_outliers", "n_missing", "window_complete"),
]
RET_COLUMNS = [*("scenario", "depth", "t", "retainability", "ci_low", "ci_high", "n", "n_outliers")]
PROBE_COLUMNS = [
    *("scenario", "depth", "probe_id", "item", "excluded", "retainability", "retainability_t"),
    *("n_retainability", "n_gain_outliers", "n_retainability_outliers"),
]


def population(
    scenario: str,
    depth: str,
    member: np.ndarray,
    items: np.ndarray,
    acq: Acquisition,
    inj_steps: np.ndarray,
    ret: Retention,
    scale: float,
    iqr: float,
    tokens_per_step: int,
    resamples: int,
    seed: Sequence[int],
    noise: float,
) -> tuple[Population, dict, dict, dict]:
    """The numbers of one scenario × depth with their bootstrap intervals (over ``items``,
    the item of each member probe; ``resamples`` draws seeded by ``seed``) and its
    signal-to-noise ratio against the depth's ``noise`` floor, and its rows of the
    effectivity, retainability and per-probe tables (column arrays; the per-probe rows
    without their labels, in ``member`` order).

    ``ret`` holds R only for t ≤ the last logged step minus the latest t_LAM(q, N) of the
    included probes: past it fewer and fewer probes remain, the population changes with t
    and the tail of R̄ would no longer be an average over the scenario × depth.
    """
    valid = acq.valid[member]  # (Pg, N)
    used = valid.any(axis=0)
    gains = acq.gain[member][:, used]  # (Pg, Ni)
    e_keep = iqr_keep(gains.T, iqr)  # (Ni, Pg)
    e_mean, e_n, e_out = kept_mean(gains.T, e_keep)
    missing = (valid[:, used] & np.isnan(gains)).sum(axis=0)
    steps_i = np.where(valid, inj_steps[member], np.iinfo(np.int64).max)[:, used].min(axis=0)
    complete = (acq.window_complete[member] | ~valid)[:, used].all(axis=0)
    eff = {
        "injection": np.arange(1, int(used.sum()) + 1),
        "step": steps_i,
        "effectivity": e_mean,
        "n": e_n,
        "n_outliers": e_out,
        "n_missing": missing,
        "window_complete": complete,
    }
    block = ret.r.T[~ret.excluded].T  # (U, Pg): excluded probes have no R at all
    block = block * scale if scale != 1 else block
    r_keep = iqr_keep(block, iqr)
    r_mean, r_n, r_out = kept_mean(block, r_keep)
    have = r_n > 0
    t, r_mean = ret.t[have], r_mean[have]
    rt = {
        "t": t,
        "retainability": r_mean,
        "n": r_n[have],
        "n_outliers": r_out[have],
    }
    fitted = np.isfinite(r_mean) & (t >= 1)
    observed = ~np.isnan(block[have])
    if observed.all() and (len(t) == 0 or t[-1] - t[0] == len(t) - 1):
        weights = None  # every t of every probe: ordinary least squares, as the paper
    else:  # a sparse log: each point weighted by the (step, probe) pairs it stands for
        weights = step_weights(t, observed)[fitted]
    fit = fit_power_law(t[fitted], r_mean[fitted], weights)
    r_all = ret.r[have] * scale if scale != 1 else ret.r[have]  # excluded probes: NaN
    r_outliers = np.zeros(len(member), dtype=np.int64)
    r_outliers[~ret.excluded] = (~r_keep & ~np.isnan(block))[have].sum(axis=0)
    r_last, t_last = _last_observed(t, r_all)
    probe = {
        "excluded": ret.excluded,
        "retainability": r_last,
        "retainability_t": t_last,
        "n_retainability": (~np.isnan(r_all)).sum(axis=0),
        "n_gain_outliers": (~e_keep & ~np.isnan(gains.T)).sum(axis=0),
        "n_retainability_outliers": r_outliers,
    }
    ci = bootstrap_population(
        items, gains, t, r_all, iqr, tokens_per_step, weights is None, resamples, seed
    )
    eff["ci_low"], eff["ci_high"] = _bounds(ci.effectivity_per_injection)
    rt["ci_low"], rt["ci_high"] = _bounds(ci.retainability)
    finite = e_mean[np.isfinite(e_mean)]
    effectivity = float(finite.mean()) if len(finite) else math.nan
    result = Population(
        scenario=scenario,
        depth=depth,
        effectivity=effectivity,
        effectivity_ci=ci.effectivity,
        snr=effectivity / noise if noise > 0 else math.nan,
        snr_ci=tuple(v / noise if noise > 0 else math.nan for v in ci.effectivity),
        effectivity_per_injection=tuple(e_mean.tolist()),
        effectivity_per_injection_ci=ci.effectivity_per_injection,
        retainability=tuple(r_mean.tolist()),
        retainability_ci=ci.retainability,
        retainability_steps=tuple(t.tolist()),
        decay_constant=fit.a,
        decay_constant_ci=ci.decay_constant,
        intercept=fit.b,
        intercept_ci=ci.intercept,
        r2=fit.r2,
        r2_ci=ci.r2,
        decay_constant_se=fit.se_a,
        x_intercept_steps=fit.x_intercept_steps,
        x_intercept_steps_ci=ci.x_intercept_steps,
        x_intercept_tokens=fit.x_intercept_steps * tokens_per_step,
        x_intercept_tokens_ci=ci.x_intercept_tokens,
        n_probes=len(member),
        n_excluded=int(ret.excluded.sum()),
        n_outliers=int(r_out[have].sum()),
        alternatives=alternative_fits(
            items, ret.gain, t, r_all, noise, iqr, weights is None, resamples, seed
        ),
        replicates=ci.replicates,
    )
    return result, eff, rt, probe


def _last_observed(t: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each probe's (column's) R at the last t of ``r`` (U, P) where it has one, and that t:
    how much of its gain it kept at the end of its population's range (NaN, -1: none)."""
    if not len(t):
        return np.full(r.shape[1], np.nan), np.full(r.shape[1], -1, dtype=np.int64)
    seen = ~np.isnan(r)
    row = len(t) - 1 - seen[::-1].argmax(axis=0)
    found = seen.any(axis=0)
    return np.where(found, r[row, np.arange(r.shape[1])], np.nan), np.where(found, t[row], -1)


def _bounds(intervals: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds as two columns."""
    pairs = np.array(intervals, dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def log_gaps(probes: pd.DataFrame, acq: Acquisition) -> tuple[dict[str, int], int]:
    """Items per scenario whose last window runs past the end of the log, and injections
    whose step was not logged (item-level counts: one probe per item)."""
    _, first = np.unique(probes["item"].to_numpy(), return_index=True)
    valid = acq.valid[first]
    scen = probes["scenario"].astype(str).to_numpy()[first]
    incomplete = valid & ~acq.window_complete[first]
    unlogged = valid & (acq.base_row[first] < 0)
    by_scenario = {
        s: int(incomplete[scen == s].sum()) for s in ordered(scen) if incomplete[scen == s].any()
    }
    return by_scenario, int(unlogged.sum())


def labels(values: Sequence[str]) -> pd.Categorical:
    """A categorical column (cheap to build and to store, unlike a column of strings)."""
    cats = list(dict.fromkeys(values))
    index = {c: k for k, c in enumerate(cats)}
    codes = np.array([index[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=cats)


def long_table(parts: list[tuple[str, str, dict]], columns: list[str]) -> pd.DataFrame:
    """One long table from per-population column arrays, with categorical labels."""
    sizes = np.array([len(next(iter(cols.values()))) for _, _, cols in parts], dtype=np.int64)
    names = [(s, d) for s, d, _ in parts]
    if not parts:
        return pd.DataFrame(columns=columns)
    codes = np.repeat(np.arange(len(parts)), sizes)
    out = {
        "scenario": labels([n[0] for n in names])[codes],
        "depth": labels([n[1] for n in names])[codes],
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
    (G labels each), ``value`` (``delta``), its interval ``ci`` (L, G, 2; NaN when None;
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
            {"ci_low": ci[..., 0].reshape(-1)[have], "ci_high": ci[..., 1].reshape(-1)[have]}
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
