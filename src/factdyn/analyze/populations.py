"""A run's log -> the paper's quantities per scenario × depth.

:func:`analyze_run` groups the probes into scenario × depth populations, corrects drift, and
wires the array functions of :mod:`factdyn.analyze.metrics` and :mod:`factdyn.analyze.fit`
over a :class:`~factdyn.rundir.Run` (a factdyn run directory, or the paper's published log
read by :mod:`factdyn.analyze.reference`). Two option sets exist: the paper's definitions as
written (default), and ``reference=True``, the choices of the published analysis code (IQR
factor 2.0, retainability in percent, only exactly-zero gains excluded, no drift correction),
so numbers from the original scripts can be checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import (
    LEVEL,
    Interval,
    default_resamples,
    mean_intervals,
    mean_replicates,
    median_interval,
    percentiles,
)
from factdyn.analyze.intervals import interval_curves
from factdyn.analyze.metrics import (
    NO_ROW,
    acquisition,
    exposure_levels,
    last_index,
    retainability,
)
from factdyn.analyze.options import AnalysisOptions
from factdyn.analyze.result import Analysis, RunInfo, Settings, ordered
from factdyn.analyze.summary import (
    EFF_COLUMNS,
    PROBE_COLUMNS,
    RET_COLUMNS,
    acquisition_table,
    log_gaps,
    long_table,
    population,
    series_table,
)
from factdyn.data.items import DEPTHS
from factdyn.errors import DataError
from factdyn.rundir import CONTROL, Run, load_run

IQR_PAPER = 1.5
IQR_REFERENCE = 2.0


def bootstrap_units(run: Run, probes: pd.DataFrame) -> np.ndarray:
    """(P,) the unit the bootstrap resamples for each probe: its item. Pooled seeds
    (:mod:`factdyn.analyze.pool`) hold the same items, so item ``i`` of every seed is one
    unit, drawn with all its copies: the seeds average out training noise, but the interval
    still reflects how few distinct items there are."""
    item = probes["item"].to_numpy(dtype=np.int64)
    per_run = run.meta.get("pooled_items")
    return item % per_run if per_run else item


def injection_matrix(run: Run) -> np.ndarray:
    """(P, N) injection steps of each probe's item, increasing, padded with -1."""
    probe_item = run.probes["item"].to_numpy(dtype=np.int64)
    inj = run.injections[["item", "step"]].drop_duplicates().sort_values(["item", "step"])
    n_items = int(max(probe_item.max(initial=-1), inj["item"].max() if len(inj) else -1)) + 1
    items = inj["item"].to_numpy(dtype=np.int64)
    rank = inj.groupby("item").cumcount().to_numpy()
    n = int(rank.max()) + 1 if len(rank) else 1
    table = np.full((n_items, n), -1, dtype=np.int64)
    table[items, rank] = inj["step"].to_numpy(dtype=np.int64)
    return table[probe_item] if len(probe_item) else np.zeros((0, n), np.int64)


def cohort_offsets(inj_steps: np.ndarray, scen: np.ndarray) -> np.ndarray:
    """(P,) steps from each probe's scenario's first injection to its item's own first
    injection: nonzero only for items injected in later cohorts (0 for never-injected)."""
    first = inj_steps[:, 0] if inj_steps.shape[1] else np.full(len(scen), -1)
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


def _codes(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Index of each value in ``names``."""
    index = {n: k for k, n in enumerate(names)}
    return np.array([index[v] for v in values.tolist()], dtype=np.int64)


def _block_means(
    x_t: np.ndarray, bounds: np.ndarray, has_nan: bool
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean over the row blocks of a probe-major (P, L) array starting at
    ``bounds``: (L, G) means and (L, G) counts, one pass over the log."""
    n_steps = x_t.shape[1]
    if len(bounds) == 0:
        return np.zeros((n_steps, 0)), np.zeros((n_steps, 0), dtype=np.int64)
    if has_nan:
        ok = ~np.isnan(x_t)
        total = np.add.reduceat(np.where(ok, x_t, 0.0), bounds, axis=0)
        n = np.add.reduceat(ok.astype(np.int64), bounds, axis=0)
    else:
        total = np.add.reduceat(x_t, bounds, axis=0)
        sizes = np.diff(np.append(bounds, x_t.shape[0]))
        n = np.broadcast_to(sizes[:, None], total.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return mean.T, np.ascontiguousarray(n.T)


def control_means(
    ell_t: np.ndarray, control: np.ndarray, d_code: np.ndarray, n_depths: int
) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) the control probes' mean ℓ per depth at every step, NaN where a depth has none
    scored, and their (L, D) counts: what the drift correction subtracts from every probe of
    that depth (the analysis, and the trackers' live curves, both take it from here)."""
    rows = np.flatnonzero(control)
    rows = rows[np.argsort(d_code[rows], kind="stable")]
    codes = d_code[rows]
    bounds = np.flatnonzero(np.diff(codes, prepend=-1)) if len(rows) else np.zeros(0, int)
    block, block_n = _block_means(ell_t[rows], bounds, bool(np.isnan(ell_t[rows]).any()))
    mean = np.full((ell_t.shape[1], n_depths), np.nan)
    n = np.zeros((ell_t.shape[1], n_depths), dtype=np.int64)
    mean[:, codes[bounds]], n[:, codes[bounds]] = block, block_n
    return mean, n


def _greedy_share(
    run: Run,
    order: np.ndarray,
    bounds: np.ndarray,
    group: dict[str, list[str]],
    offsets: np.ndarray,
) -> pd.DataFrame:
    """The share of each population's scored probes whose target is the greedy
    continuation, per logged step (the ``greedy`` table); empty without the statistic."""
    if run.has_stat("greedy"):
        flag_t = np.asarray(run.stat("greedy").T[order], dtype=np.float64)
        if offsets.any():
            flag_t = align(np.asarray(run.steps), flag_t, offsets)
        share, n = _block_means(flag_t, bounds, True)
    else:
        share = n = np.zeros((len(run.steps), 0))
        group = {k: [] for k in group}
    return series_table(
        run.steps, run.tokens_per_step, group, share, n, value="share", intervals=False
    )


def _resolve(run: Run, options: AnalysisOptions) -> tuple[int, float, bool]:
    """The window, IQR factor and drift correction ``options`` mean for this run."""
    window = int(options.window if options.window is not None else run.window)
    if window < 1:
        raise DataError(f"{run.path}: the run's window is {window}; give --window (≥ 1)")
    reference = options.reference
    iqr = float(
        options.iqr if options.iqr is not None else (IQR_REFERENCE if reference else IQR_PAPER)
    )
    has_controls = bool((run.probes["scenario"] == CONTROL).any())
    drift_correct = options.drift_correct
    if drift_correct is None:
        drift_correct = has_controls and not reference
    elif drift_correct and not has_controls:
        raise DataError(
            f"{run.path}: drift correction needs control probes (scenario '{CONTROL}'); this run has none"
        )
    return window, iqr, bool(drift_correct)


def control_numbers(
    steps: np.ndarray,
    ell_t: np.ndarray,
    depth_code: np.ndarray,
    items: np.ndarray,
    depths: list[str],
    resamples: int,
    seed: Sequence[int],
) -> dict[str, dict[str, tuple[float, Interval]]]:
    """What the control probes (rows of ``ell_t``, before any drift correction) say, per depth,
    each with its bootstrap interval over control items: ``noise`` the median |ℓ_{t+1} − ℓ_t|
    over logged steps one update apart (how far a probe moves by chance in one step; the
    drift over one step is negligible next to it), ``drift_last`` their mean Δℓ at the last
    step, ``drift_max`` the largest |mean Δℓ| at any logged step. Depths without controls
    are absent."""
    one = np.flatnonzero(np.diff(steps) == 1)
    out: dict[str, dict[str, tuple[float, Interval]]] = {
        "noise": {}, "drift_last": {}, "drift_max": {}
    }  # fmt: skip
    for k, d in enumerate(depths):
        rows = depth_code == k
        delta = ell_t[rows] - ell_t[rows][:, :1]
        if not rows.any() or np.isnan(delta).all():
            continue
        moves = np.abs(ell_t[rows][:, one + 1] - ell_t[rows][:, one])
        if np.isfinite(moves).any():
            out["noise"][d] = (
                float(np.nanmedian(moves)),
                median_interval(moves, items[rows], resamples, seed),
            )
        mean = np.nanmean(delta, axis=0)
        reps = (
            mean_replicates(delta, items[rows], resamples, seed)
            if resamples
            else np.full((1, len(steps)), np.nan)
        )
        with warnings.catch_warnings():  # undefined in a resample: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            largest = np.nanmax(np.abs(reps), axis=1)
        out["drift_last"][d] = (float(mean[-1]), tuple(map(float, percentiles(reps[:, -1]))))
        out["drift_max"][d] = (
            float(np.nanmax(np.abs(mean))),
            tuple(map(float, percentiles(largest))),
        )
    return out


def analyze_run(
    run_or_path: Run | str | Path, options: AnalysisOptions | None = None, **fields
) -> Analysis:
    """Analyse a run (or run directory) per scenario × depth, as ``options`` say (or the
    :class:`AnalysisOptions` ``fields`` name, e.g. ``resamples=0``).

    ``window`` defaults to the run's configured t_w (else 50); ``iqr`` to 1.5 (2.0 with
    ``reference``); ``drift_correct=None`` means: on when the run has control probes and
    ``reference`` is off. Every number gets a bootstrap interval over the scenario's items
    from ``resamples`` resamples (None: ``$FACTDYN_RESAMPLES`` or 1,000; 0: none), seeded
    by ``seed`` and the scenario's position, so that the depths of one scenario share their
    draws and scenarios are independent. The analysis keeps its options, the resamples
    resolved, so that it can be redone exactly.
    """
    options = replace(options or AnalysisOptions(), **fields)
    if options.resamples is None:
        options = replace(options, resamples=default_resamples())
    stat, reference, resamples, seed = (
        options.stat,
        options.reference,
        options.resamples,
        options.seed,
    )
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    window, iqr, drift = _resolve(run, options)
    steps = np.asarray(run.steps, dtype=np.int64)
    n_probes = len(run.probes)
    if run.logprobs.ndim != 3 or run.logprobs.shape[1] != n_probes:
        raise DataError(
            f"{run.path}: log has {run.logprobs.shape[1:2]} probes, table has {n_probes}"
        )
    if len(steps) == 0:
        raise DataError(f"{run.path}: no logged steps yet")
    # Probes are put in population order (scenario, then depth; stable), so that every
    # scenario × depth is a contiguous block of rows of the probe-major (P, L) log ``ell_t``:
    # per-population work then reads slices, never scattered columns. ``ell`` is its view.
    scen_all = run.probes["scenario"].astype(str).to_numpy()
    depth_all = run.probes["depth"].astype(str).to_numpy()
    scen_names = ordered(scen_all.tolist())
    depths = ordered(depth_all.tolist(), DEPTHS)
    s_code = _codes(scen_all, scen_names)
    d_code = _codes(depth_all, depths)
    order = np.lexsort((d_code, s_code))
    identity = bool((order == np.arange(n_probes)).all())
    probes = run.probes if identity else run.probes.iloc[order].reset_index(drop=True)
    scen, s_code, d_code = scen_all[order], s_code[order], d_code[order]
    raw = run.stat(stat).T
    ell_t = np.ascontiguousarray(raw, dtype=np.float64) if identity else raw[order].astype(float)
    has_nan = bool(np.isnan(ell_t).any())
    if n_probes and has_nan and np.isnan(ell_t).all():
        raise DataError(f"{run.path}: statistic '{stat}' was not logged")

    # mean ℓ of every scenario × depth block at every step, before any correction
    pair = s_code * len(depths) + d_code
    bounds = np.flatnonzero(np.diff(pair, prepend=-1)) if n_probes else np.zeros(0, int)
    pairs = [(scen_names[c // len(depths)], depths[c % len(depths)]) for c in pair[bounds]]
    block_mean, block_n = _block_means(ell_t, bounds, has_nan)  # (L, G)

    # drift: the control probes' mean ℓ per depth at every step (SPEC §8)
    control = scen == CONTROL
    item = bootstrap_units(run, probes)  # what the bootstrap resamples, per probe
    ctrl = control_numbers(
        steps,
        ell_t[control],
        d_code[control],
        item[control],
        depths,
        resamples,
        (seed, scen_names.index(CONTROL) if CONTROL in scen_names else len(scen_names)),
    )
    noise = {d: v for d, (v, _) in ctrl["noise"].items()}
    ctrl_mean, ctrl_n = control_means(ell_t, control, d_code, len(depths))
    corrected: list[str] = []
    shift = np.zeros((len(steps), len(depths)))
    if drift:
        has = ~np.isnan(ctrl_mean).all(axis=0)
        corrected = [d for d, h in zip(depths, has, strict=True) if h]
        shift[:, has] = ctrl_mean[:, has]
        ell_t = ell_t - shift.T[d_code]
    ell = ell_t.T

    inj_steps = injection_matrix(run)
    if not identity:
        inj_steps = inj_steps[order]
    acq = acquisition(steps, ell, inj_steps, window)
    cols = np.arange(n_probes)
    last = last_index(acq.valid)
    injected = last >= 0
    lam_last = np.where(injected, acq.lam_row[cols, np.maximum(last, 0)], NO_ROW)
    pre_row = np.where(injected, acq.base_row[:, 0], NO_ROW)  # t_pre = t_1 = min(T_k)
    exclude = "zero" if reference else "nonpositive"
    scale = 100.0 if reference else 1.0

    found = []
    unavailable: dict = {}  # probes whose retainability the log does not (yet) define
    eff_parts, ret_parts, probe_parts = [], [], []
    tps = run.tokens_per_step
    ends = np.append(bounds, n_probes)
    for g, (s, d) in enumerate(pairs):
        a, b = ends[g], ends[g + 1]
        member = a + np.flatnonzero(injected[a:b])
        if len(member) == 0:
            continue
        ell_m = ell_t[a:b].T if len(member) == b - a else ell_t[member].T  # a slice: no copy
        ret = retainability(steps, ell_m, lam_last[member], pre_row[member], exclude, True)
        pop, eff, rt, per_probe = population(
            *(s, d, member, item[member], acq, inj_steps, ret, scale, iqr, tps),
            resamples=resamples,
            seed=(seed, scen_names.index(s)),
            noise=noise.get(d, np.nan),
        )
        if np.isnan(ret.gain).any():
            unavailable.setdefault(s, {})[d] = int(np.isnan(ret.gain).sum())
        found.append(pop)
        eff_parts.append((s, d, eff))
        ret_parts.append((s, d, rt))
        ids = probes.iloc[member]
        per_probe.update(probe_id=ids["probe_id"].to_numpy(), item=ids["item"].to_numpy())
        probe_parts.append((s, d, per_probe))

    offsets = cohort_offsets(inj_steps, scen)
    if offsets.any():  # later cohorts read from their own first injection on
        aligned = align(steps, ell_t, offsets)
        probe_delta, has_nan = aligned - aligned[:, :1], True
    else:
        probe_delta = ell_t - ell_t[:, :1]
    if has_nan:  # a probe missing at some step: average the per-probe Δℓ
        delta, n = _block_means(probe_delta, bounds, True)
    else:  # mean of differences = difference of means (the correction is per block)
        delta = block_mean - shift[:, [depths.index(d) for _, d in pairs]]
        delta, n = delta - delta[:1], block_n
    group = {"scenario": [p[0] for p in pairs], "depth": [p[1] for p in pairs]}
    traj_ci = np.stack(
        [
            mean_intervals(probe_delta[a:b], item[a:b], resamples, (seed, scen_names.index(s)))
            for (s, _), a, b in zip(pairs, ends[:-1], ends[1:], strict=True)
        ],
        axis=1,
    ).reshape(len(steps), len(pairs), 2)
    kept = [k for k in range(len(depths)) if not np.isnan(ctrl_mean[:, k]).all()]
    drift_delta = (ctrl_mean - ctrl_mean[:1])[:, kept]
    incomplete, unlogged = log_gaps(probes, acq)
    pooled = run.meta.get("pooled_from")
    settings = Settings(
        source=" + ".join(pooled) + " (pooled)" if pooled else str(run.path),
        stat=stat,
        window=window,
        iqr_factor=iqr,
        reference=reference,
        drift_corrected=drift,
        drift_corrected_depths=tuple(corrected),
        resamples=resamples,
        confidence_level=LEVEL,
        tokens_per_step=tps,
        n_logged_steps=len(steps),
        first_step=int(steps[0]),
        last_step=int(steps[-1]),
        every_step_logged=bool(len(steps) == steps[-1] - steps[0] + 1),
        cohorts_aligned=bool(offsets.any()),
        status=run.meta.get("status"),
        incomplete_windows=incomplete,
        unlogged_injection_steps=unlogged,
        retainability_unavailable=unavailable,
        noise_floor=noise,
        noise_floor_ci={d: ci for d, (_, ci) in ctrl["noise"].items()},
        control_drift_max={d: v for d, (v, _) in ctrl["drift_max"].items()},
        control_drift_max_ci={d: ci for d, (_, ci) in ctrl["drift_max"].items()},
        control_drift_last={d: v for d, (v, _) in ctrl["drift_last"].items()},
        control_drift_last_ci={d: ci for d, (_, ci) in ctrl["drift_last"].items()},
    )
    analysis = Analysis(
        populations=tuple(found),
        settings=settings,
        trajectories=series_table(steps, tps, group, delta, n, traj_ci),
        control_drift=series_table(
            steps, tps, {"depth": [depths[k] for k in kept]}, drift_delta, ctrl_n[:, kept]
        ),
        effectivity=long_table(eff_parts, EFF_COLUMNS),
        acquisition=acquisition_table(
            probes, acq, inj_steps, exposure_levels(steps, ell, inj_steps, acq)
        ),
        retainability=long_table(ret_parts, RET_COLUMNS),
        per_probe=long_table(probe_parts, PROBE_COLUMNS),
        greedy=_greedy_share(run, order, bounds, group, offsets),
        config=dict(run.config),
        run_info=RunInfo.from_meta(run.meta),
        options=options,
        sources=tuple(str(Path(p).resolve()) for p in pooled or [run.path]),
    )
    # the interval experiment reads the acquisition table (its draws: the scenario's seeds)
    curves = interval_curves(analysis, resamples, seed, run.meta.get("pooled_items"))
    return replace(analysis, intervals=tuple(curves))


def analyze_reference_log(
    path: str | Path,
    options: AnalysisOptions | None = None,
    tokens_per_step: int | None = None,
    **fields,
) -> Analysis:
    """Analyse a log in the paper's published JSON format (see :mod:`.reference`)."""
    from factdyn.analyze.reference import TOKENS_PER_STEP, WINDOW, read_reference_log

    options = replace(options or AnalysisOptions(), **fields)
    run = read_reference_log(path, tokens_per_step or TOKENS_PER_STEP, options.window or WINDOW)
    return analyze_run(run, options)
