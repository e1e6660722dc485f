"""A run's log -> the paper's quantities per scenario × depth.

:func:`analyze_run` puts the probes in population order (:mod:`.layout`), corrects drift
(:mod:`.drift`), finds every injection's acquisition and every probe's retainability
(:mod:`.metrics`), computes each scenario × depth's numbers (:mod:`.summary`) and the series
over steps (:mod:`.series`), over a :class:`~factdyn.rundir.Run` (a factdyn run directory, or
the paper's published log read by :mod:`factdyn.analyze.reference`). Two option sets exist:
the paper's definitions as written (default), and ``reference=True``, the choices of the
published analysis code (IQR factor 2.0, retainability in percent, only exactly-zero gains
excluded, no drift correction), so numbers from the original scripts can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import LEVEL, default_resamples
from factdyn.analyze.drift import (
    ControlNumbers,
    DriftCorrection,
    ResidualDrift,
    control_numbers,
    drift_correction,
    residual_drift,
)
from factdyn.analyze.intervals import interval_curves
from factdyn.analyze.layout import Layout, block_means, layout_of, ordered_log
from factdyn.analyze.metrics import (
    FIRST,
    NO_ROW,
    Acquisition,
    acquisition,
    exposure_levels,
    last_index,
    retainability,
)
from factdyn.analyze.options import AnalysisOptions, Method, resolve
from factdyn.analyze.result import Analysis, Population, RunInfo, Settings
from factdyn.analyze.series import (
    cohort_offsets,
    control_drift,
    greedy_share,
    residual_drift_table,
    trajectories,
)
from factdyn.analyze.summary import log_gaps, population
from factdyn.analyze.tables import (
    EFF_COLUMNS,
    PROBE_COLUMNS,
    RET_COLUMNS,
    acquisition_table,
    long_table,
)
from factdyn.errors import DataError
from factdyn.rundir import CONTROL, Run, load_run


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


@dataclass
class _Found:
    """The populations of a run, with their rows of the long tables (column arrays)."""

    populations: list[Population] = field(default_factory=list)
    effectivity: list[tuple[str, str, dict]] = field(default_factory=list)
    retainability: list[tuple[str, str, dict]] = field(default_factory=list)
    per_probe: list[tuple[str, str, dict]] = field(default_factory=list)
    # scenario -> depth -> probes whose retainability the log does not (yet) define
    unavailable: dict[str, dict[str, int]] = field(default_factory=dict)


def _populations(
    run: Run,
    layout: Layout,
    ell_t: np.ndarray,
    acq: Acquisition,
    inj_steps: np.ndarray,
    items: np.ndarray,
    method: Method,
    noise: dict[str, float],
) -> _Found:
    """Every scenario × depth with an injected probe: each probe's retainability from its
    last injection's acquisition maximum, then the population's numbers."""
    steps = np.asarray(run.steps, dtype=np.int64)
    last = last_index(acq.valid)
    injected = last >= 0
    cols = np.arange(len(injected))
    lam_last = np.where(injected, acq.lam_row[cols, np.maximum(last, 0)], NO_ROW)
    pre_row = np.where(injected, acq.base_row[:, FIRST], NO_ROW)  # t_pre = t_1 = min(T_k)
    found = _Found()
    for block in layout.blocks:
        a, b = block.start, block.stop
        member = a + np.flatnonzero(injected[a:b])
        if len(member) == 0:
            continue
        ell_m = ell_t[a:b].T if len(member) == b - a else ell_t[member].T  # a slice: no copy
        ret = retainability(steps, ell_m, lam_last[member], pre_row[member], method.exclude, True)
        pop, eff, rt, per_probe = population(
            *(block, member, items[member], acq, inj_steps, ret, method, run.tokens_per_step),
            seed=layout.draw(method.seed, block.scenario),
            noise=noise.get(block.depth, np.nan),
        )
        s, d = block.scenario, block.depth
        if np.isnan(ret.gain).any():
            found.unavailable.setdefault(s, {})[d] = int(np.isnan(ret.gain).sum())
        found.populations.append(pop)
        found.effectivity.append((s, d, eff))
        found.retainability.append((s, d, rt))
        ids = layout.probes.iloc[member]
        per_probe.update(probe_id=ids["probe_id"].to_numpy(), item=ids["item"].to_numpy())
        found.per_probe.append((s, d, per_probe))
    return found


def _settings(
    run: Run,
    options: AnalysisOptions,
    method: Method,
    drift: DriftCorrection,
    ctrl: ControlNumbers,
    residual: ResidualDrift,
    gaps: tuple[dict[str, int], int],
    unavailable: dict[str, dict[str, int]],
    cohorts_aligned: bool,
) -> Settings:
    """How the numbers were computed, and what the log did not allow."""
    steps = np.asarray(run.steps, dtype=np.int64)
    pooled = run.meta.get("pooled_from")
    return Settings(
        source=" + ".join(pooled) + " (pooled)" if pooled else str(run.path),
        stat=options.stat,
        window=method.window,
        iqr_factor=method.iqr,
        reference=method.reference,
        drift_corrected=method.drift_correct,
        drift_corrected_depths=drift.corrected,
        resamples=method.resamples,
        confidence_level=LEVEL,
        tokens_per_step=run.tokens_per_step,
        n_logged_steps=len(steps),
        first_step=int(steps[0]),
        last_step=int(steps[-1]),
        every_step_logged=bool(len(steps) == steps[-1] - steps[0] + 1),
        cohorts_aligned=cohorts_aligned,
        status=run.meta.get("status"),
        incomplete_windows=gaps[0],
        unlogged_injection_steps=gaps[1],
        retainability_unavailable=unavailable,
        noise_floor=ctrl.noise_floor,
        noise_floor_ci=ctrl.noise_floor_ci,
        control_drift_max=ctrl.drift_max,
        control_drift_max_ci=ctrl.drift_max_ci,
        control_drift_last=ctrl.drift_last,
        control_drift_last_ci=ctrl.drift_last_ci,
        residual_drift_zero_share=residual.zero_share,
        residual_drift_zero_share_range=residual.zero_share_range,
        residual_drift_chance_share=residual.chance_share,
        residual_drift_mean_abs=residual.mean_abs,
        residual_drift_mean_abs_ci=residual.mean_abs_ci,
        residual_drift_undefined=residual.undefined,
    )


def _checked(run: Run) -> np.ndarray:
    """The run's logged steps, refused when the log does not fit its probe table or is
    empty."""
    n_probes = len(run.probes)
    if run.logprobs.ndim != 3 or run.logprobs.shape[1] != n_probes:
        raise DataError(
            f"{run.path}: log has {run.logprobs.shape[1:2]} probes, table has {n_probes}"
        )
    steps = np.asarray(run.steps, dtype=np.int64)
    if len(steps) == 0:
        raise DataError(f"{run.path}: no logged steps yet")
    return steps


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
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    method = resolve(run, options)
    steps = _checked(run)
    layout = layout_of(run)
    ell_t = ordered_log(run, layout, options.stat)  # probe-major (P, L), population order
    has_nan = bool(np.isnan(ell_t).any())
    # each population's mean ℓ at every step, before any correction
    raw_means = (*block_means(ell_t, layout.bounds, has_nan), has_nan)
    control = layout.scenario == CONTROL
    items = bootstrap_units(run, layout.probes)  # what the bootstrap resamples, per probe
    controls = (ell_t[control], layout.depth_code[control], items[control], layout.depths)
    ctrl_seed = layout.draw(method.seed, CONTROL)
    ctrl = control_numbers(steps, *controls, method.resamples, ctrl_seed)
    residual = residual_drift(*controls, method.resamples, ctrl_seed)
    drift = drift_correction(ell_t, control, layout.depth_code, layout.depths, method.drift_correct)
    ell_t = drift.applied(ell_t, layout.depth_code)
    inj_steps = injection_matrix(run)
    if not layout.identity:
        inj_steps = inj_steps[layout.order]
    acq = acquisition(steps, ell_t.T, inj_steps, method.window)
    found = _populations(run, layout, ell_t, acq, inj_steps, items, method, ctrl.noise_floor)
    offsets = cohort_offsets(inj_steps, layout.scenario)
    tps = run.tokens_per_step
    gaps = log_gaps(layout.probes, acq)
    pooled = run.meta.get("pooled_from")
    analysis = Analysis(
        populations=tuple(found.populations),
        settings=_settings(
            *(run, options, method, drift, ctrl, residual, gaps, found.unavailable),
            bool(offsets.any()),
        ),
        trajectories=trajectories(
            *(steps, tps, layout, ell_t, raw_means, drift, offsets, items),
            *(method.resamples, method.seed),
        ),
        control_drift=control_drift(steps, tps, drift, layout.depths),
        effectivity=long_table(found.effectivity, EFF_COLUMNS),
        acquisition=acquisition_table(
            layout.probes, acq, inj_steps, exposure_levels(steps, ell_t.T, inj_steps, acq)
        ),
        retainability=long_table(found.retainability, RET_COLUMNS),
        per_probe=long_table(found.per_probe, PROBE_COLUMNS),
        greedy=greedy_share(run, layout, offsets),
        residual_drift=residual_drift_table(steps, tps, residual, layout.depths),
        config=dict(run.config),
        run_info=RunInfo.from_meta(run.meta),
        options=options,
        sources=tuple(str(Path(p).resolve()) for p in pooled or [run.path]),
    )
    # the interval experiment reads the acquisition table (its draws: the scenario's seeds)
    curves = interval_curves(analysis, method.resamples, method.seed, run.meta.get("pooled_items"))
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
