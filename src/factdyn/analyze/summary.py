"""From the per-probe arrays of :mod:`factdyn.analyze.populations` to the results: one
:class:`~factdyn.analyze.result.Population` per scenario × depth, with its rows of the long
tables (:mod:`factdyn.analyze.tables`), and the log's gaps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import HIGH, LOW, bootstrap_population
from factdyn.analyze.estimators import alternative_fits
from factdyn.analyze.fit import fit_power_law, step_weights
from factdyn.analyze.layout import Block
from factdyn.analyze.metrics import Acquisition, Retention, iqr_keep, kept_mean
from factdyn.analyze.options import Method
from factdyn.analyze.result import Population, ordered


class _Effectivity(NamedTuple):
    """One population's per-injection effectivities (over the injections ``used``)."""

    gains: np.ndarray  # (Pg, Ni) each probe's gain per injection
    keep: np.ndarray  # (Ni, Pg) the gains the IQR filter kept
    mean: np.ndarray  # (Ni,) the IQR-filtered mean gain of each injection
    rows: dict  # its rows of the effectivity table, without intervals


class _Retainability(NamedTuple):
    """One population's R̄(t) over the t where some included probe has an R."""

    t: np.ndarray  # (U,)
    mean: np.ndarray  # (U,) R̄(t), in the unit it is reported in
    r: np.ndarray  # (U, Pg) each probe's R (NaN: none, or excluded), in that unit
    observed: np.ndarray  # (U, Pi) which included probe has an R at which t
    n_outliers: np.ndarray  # (Pg,) each probe's R values the IQR filter removed
    rows: dict  # its rows of the retainability table, without intervals


def _effectivity(
    member: np.ndarray, acq: Acquisition, inj_steps: np.ndarray, iqr: float
) -> _Effectivity:
    """The IQR-filtered mean gain of each injection the population's probes had."""
    valid = acq.valid[member]  # (Pg, N)
    used = valid.any(axis=0)
    gains = acq.gain[member][:, used]  # (Pg, Ni)
    keep = iqr_keep(gains.T, iqr)  # (Ni, Pg)
    mean, n, out = kept_mean(gains.T, keep)
    missing = (valid[:, used] & np.isnan(gains)).sum(axis=0)
    steps_i = np.where(valid, inj_steps[member], np.iinfo(np.int64).max)[:, used].min(axis=0)
    complete = (acq.window_complete[member] | ~valid)[:, used].all(axis=0)
    rows = {
        "injection": np.arange(1, int(used.sum()) + 1),
        "step": steps_i,
        "effectivity": mean,
        "n": n,
        "n_outliers": out,
        "n_missing": missing,
        "window_complete": complete,
    }
    return _Effectivity(gains, keep, mean, rows)


def _retainability(ret: Retention, scale: float, iqr: float) -> _Retainability:
    """R̄(t), the IQR-filtered mean of the included probes' R at each t, in the unit
    ``scale`` makes it (100: percent)."""
    block = ret.r.T[~ret.excluded].T  # (U, Pg): excluded probes have no R at all
    block = block * scale if scale != 1 else block
    keep = iqr_keep(block, iqr)
    mean, n, out = kept_mean(block, keep)
    have = n > 0
    t, mean = ret.t[have], mean[have]
    rows = {"t": t, "retainability": mean, "n": n[have], "n_outliers": out[have]}
    r = ret.r[have] * scale if scale != 1 else ret.r[have]  # excluded probes: NaN
    n_outliers = np.zeros(len(ret.excluded), dtype=np.int64)
    n_outliers[~ret.excluded] = (~keep & ~np.isnan(block))[have].sum(axis=0)
    return _Retainability(t, mean, r, ~np.isnan(block[have]), n_outliers, rows)


def _fit_weights(rt: _Retainability, fitted: np.ndarray) -> np.ndarray | None:
    """The weights of the fit's points: None (ordinary least squares, as the paper) when every
    t of every probe was observed; on a sparse log, the (step, probe) pairs each stands for."""
    t = rt.t
    if rt.observed.all() and (len(t) == 0 or t[-1] - t[0] == len(t) - 1):
        return None
    return step_weights(t, rt.observed)[fitted]


def population(
    block: Block,
    member: np.ndarray,
    items: np.ndarray,
    acq: Acquisition,
    inj_steps: np.ndarray,
    ret: Retention,
    method: Method,
    tokens_per_step: int,
    seed: Sequence[int],
    noise: float,
) -> tuple[Population, dict, dict, dict]:
    """The numbers of one scenario × depth with their bootstrap intervals (over ``items``,
    the item of each member probe; draws seeded by ``seed``) and its signal-to-noise ratio
    against the depth's ``noise`` floor, and its rows of the effectivity, retainability and
    per-probe tables (column arrays; the per-probe rows without their labels, in ``member``
    order).

    ``ret`` holds R only for t ≤ the last logged step minus the latest t_LAM(q, N) of the
    included probes: past it fewer and fewer probes remain, the population changes with t
    and the tail of R̄ would no longer be an average over the scenario × depth.
    """
    iqr, resamples = method.iqr, method.resamples
    eff = _effectivity(member, acq, inj_steps, iqr)
    rt = _retainability(ret, method.scale, iqr)
    t = rt.t
    fitted = np.isfinite(rt.mean) & (t >= 1)
    weights = _fit_weights(rt, fitted)
    fit = fit_power_law(t[fitted], rt.mean[fitted], weights)
    r_last, t_last = _last_observed(t, rt.r)
    probe = {
        "excluded": ret.excluded,
        "retainability": r_last,
        "retainability_t": t_last,
        "n_retainability": (~np.isnan(rt.r)).sum(axis=0),
        "n_gain_outliers": (~eff.keep & ~np.isnan(eff.gains.T)).sum(axis=0),
        "n_retainability_outliers": rt.n_outliers,
    }
    ci = bootstrap_population(
        items, eff.gains, t, rt.r, iqr, tokens_per_step, weights is None, resamples, seed
    )
    eff.rows["ci_low"], eff.rows["ci_high"] = _bounds(ci.effectivity_per_injection)
    rt.rows["ci_low"], rt.rows["ci_high"] = _bounds(ci.retainability)
    finite = eff.mean[np.isfinite(eff.mean)]
    effectivity = float(finite.mean()) if len(finite) else math.nan
    result = Population(
        scenario=block.scenario,
        depth=block.depth,
        effectivity=effectivity,
        effectivity_ci=ci.effectivity,
        snr=effectivity / noise if noise > 0 else math.nan,
        snr_ci=tuple(v / noise if noise > 0 else math.nan for v in ci.effectivity),
        effectivity_per_injection=tuple(eff.mean.tolist()),
        effectivity_per_injection_ci=ci.effectivity_per_injection,
        retainability=tuple(rt.mean.tolist()),
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
        n_outliers=int(rt.rows["n_outliers"].sum()),
        alternatives=alternative_fits(
            items, ret.gain, t, rt.r, noise, iqr, weights is None, resamples, seed
        ),
        replicates=ci.replicates,
    )
    return result, eff.rows, rt.rows, probe


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
    return pairs[:, LOW], pairs[:, HIGH]


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
