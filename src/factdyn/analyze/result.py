"""What ``factdyn analyze`` computes for one run, as typed values.

Consumers read named fields (``analysis.get("duplicate", "semantic").decay_constant``), never
string keys; the string-keyed shape exists only where it is written out
(:attr:`Analysis.summary`, the body of ``summary.json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from factdyn.analyze.bootstrap import Interval, Replicates
from factdyn.analyze.options import AnalysisOptions
from factdyn.data.items import DEPTHS


def ordered(names: Sequence[str], preferred: Sequence[str] = ()) -> list[str]:
    """Distinct names, ``preferred`` ones first in that order, the rest by first appearance."""
    seen = list(dict.fromkeys(names))
    return [n for n in preferred if n in seen] + [n for n in seen if n not in preferred]


@dataclass(frozen=True)
class AlternativeFit:
    """R̄(t) = b − a·log10 t under one estimator of :mod:`factdyn.analyze.estimators`, with
    95% bootstrap intervals."""

    decay_constant: float
    decay_constant_ci: Interval
    intercept: float
    intercept_ci: Interval
    r2: float
    r2_ci: Interval
    n_probes: int  # probes behind the curve

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Population:
    """The paper's numbers for one scenario × depth (docs/method.md); NaN where undefined."""

    scenario: str
    depth: str
    effectivity: float  # mean over injections of the per-injection effectivity
    effectivity_ci: Interval  # each *_ci: the bootstrap interval over items (bootstrap.py)
    snr: float  # effectivity ÷ the depth's noise floor (Settings.noise_floor); NaN: no controls
    snr_ci: Interval  # effectivity_ci ÷ the noise floor (the floor taken as known)
    effectivity_per_injection: tuple[float, ...]
    effectivity_per_injection_ci: tuple[Interval, ...]
    retainability: tuple[float, ...]  # R̄(t) at each t of retainability_steps
    retainability_ci: tuple[Interval, ...]
    retainability_steps: tuple[int, ...]
    decay_constant: float  # a of R̄(t) = b − a·log10 t
    decay_constant_ci: Interval
    intercept: float  # b
    intercept_ci: Interval
    r2: float
    r2_ci: Interval
    decay_constant_se: float
    x_intercept_steps: float  # τ = 10^(b/a)
    x_intercept_steps_ci: Interval
    x_intercept_tokens: float  # τ × tokens_per_step
    x_intercept_tokens_ci: Interval
    n_probes: int
    n_excluded: int  # probes without acquisition (no retainability)
    n_outliers: int  # retainability values removed by the IQR rule, summed over t
    # the same fit under the estimators of analyze/estimators.py, by name: beside the paper's
    alternatives: Mapping[str, AlternativeFit] = field(default_factory=dict)
    replicates: Replicates | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """The fields after scenario and depth, by name: one entry of ``summary.json``
        (the bootstrap replicates stay in memory)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[2:-1]}
        out["alternatives"] = {k: v.as_dict() for k, v in self.alternatives.items()}
        return out


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How the numbers were computed, and what the log did not allow (``"_settings"`` in
    ``summary.json``, ``settings.csv``); the field order is the order written."""

    source: str
    stat: str
    window: int
    iqr_factor: float
    reference: bool  # the published code's choices (percent, zero-gain exclusion, IQR 2.0)
    drift_corrected: bool
    drift_corrected_depths: tuple[str, ...]
    resamples: int  # bootstrap resamples behind every *_ci (0: no intervals)
    confidence_level: float
    bootstrap: str = field(
        init=False,
        default="percentile intervals over resamples of each scenario's items (with "
        "replacement); each resample recomputes the IQR filter, the effectivities, R̄(t), "
        "the fit weights and the fit; the drift correction is held at its estimate",
    )
    retainability_unit: str = field(init=False)
    excluded_when: str = field(init=False)
    n_outliers_counts: str = field(
        init=False,
        default="retainability values (probe, t) removed by the IQR rule, summed over t",
    )
    retainability_horizon: str = field(
        init=False,
        default="R̄(t) for t ≤ last logged step − latest t_LAM(q, N) of the population",
    )
    effectivity_is: str = field(
        init=False,
        default="mean over injections of the IQR-filtered mean gain of each injection",
    )
    fit: str = field(
        init=False,
        default="R̄(t) = b − a·log10(t), least squares over t ≥ 1; on a sparse log each t is "
        "weighted by the (step, probe) pairs its observations stand for (every step logged: "
        "ordinary least squares)",
    )
    tokens_per_step: int
    n_logged_steps: int
    first_step: int
    last_step: int
    every_step_logged: bool
    # cohorts: each item's trajectory (and greedy share) shifted so that its first injection
    # falls on its scenario's first injection step; the ``step`` of those tables is then that
    cohorts_aligned: bool
    status: str | None  # the run's status in meta.json ("done", "running", ...)
    incomplete_windows: Mapping[str, int]  # scenario -> items whose window passes the log end
    unlogged_injection_steps: int
    retainability_unavailable: Mapping[str, Mapping[str, int]]  # scenario -> depth -> probes
    control_drift_last: Mapping[str, float]  # depth -> control probes' mean Δℓ at the end
    control_drift_last_ci: Mapping[str, Interval]  # each *_ci: over control items
    control_drift_max: Mapping[str, float]  # depth -> largest |mean Δℓ| of the controls
    control_drift_max_ci: Mapping[str, Interval]
    noise_floor: Mapping[str, float]  # depth -> median |Δℓ| of a control probe in one step
    noise_floor_ci: Mapping[str, Interval]
    # the residual drift (analyze/drift.py, residual_drift.csv): per depth with controls
    residual_drift_zero_share: Mapping[str, float]  # logged steps whose 95% interval holds 0
    residual_drift_zero_share_range: Mapping[str, Interval]  # its lowest and highest split
    residual_drift_chance_share: Mapping[str, float]  # that share when nothing is left
    residual_drift_mean_abs: Mapping[str, float]  # mean |residual| over the run
    residual_drift_mean_abs_ci: Mapping[str, Interval]
    residual_drift_undefined: Mapping[str, str]  # depth -> why it has none
    residual_drift_split: str = field(
        init=False,
        default="per depth, the control items permuted by numpy's default_rng((seed, "
        "position of control among the scenarios, 1, split, depth index)), the first half "
        "corrected by the mean of the rest; each half's items resampled apart (streams 2 and "
        "3, then the split for splits after the first); share and mean over the logged steps "
        "after the first, averaged over 10 splits; the curve is split 0's",
    )

    def __post_init__(self) -> None:
        # derived from ``reference``: fields (not properties) so that they are written in order
        unit = "percent" if self.reference else "fraction"
        excluded = "gain == 0" if self.reference else "gain <= 0"
        object.__setattr__(self, "retainability_unit", unit)
        object.__setattr__(self, "excluded_when", f"{excluded} (or undefined)")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class RunInfo:
    """What the run's ``meta.json`` says about the training, each None when it does not say
    (older runs and the paper's logs carry only ``tokens_per_step``)."""

    n_parameters: int | None = None
    batch_size: int | None = None  # sequences per update
    seq_len: int | None = None
    tokens_per_step: int | None = None
    lr_first: float | None = None
    base_step: int | None = None  # pretraining step of the starting checkpoint
    model_lineage: str | None = None  # the model that checkpoint is a stage of
    # sequences per update of the tiny base's last updates (its settling batch when it
    # settled), where the run continued its AdamW moments (None where they were not loaded)
    base_batch_size: int | None = None

    @classmethod
    def from_meta(cls, meta: Mapping) -> RunInfo:
        base = (meta.get("base_state") or {}).get("config") or {}
        last = "settle_batch_size" if base.get("settle_steps") else "batch_size"
        optim = ((meta.get("config") or {}).get("optim")) or {}
        loaded = optim.get("load_state", True) is not False
        flat = {f.name: meta.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**flat | {"base_batch_size": base.get(last) if loaded else None})


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything ``factdyn analyze`` computes for one run: a :class:`Population` per
    scenario × depth (in the run's order, depths as :data:`~factdyn.data.items.DEPTHS`), the
    settings, the long tables, and the run's config and meta."""

    populations: tuple[Population, ...]
    settings: Settings
    trajectories: pd.DataFrame  # step, tokens, scenario, depth, delta (mean ℓ_t − ℓ_0), n
    control_drift: pd.DataFrame  # step, tokens, depth, delta of the control probes, n
    effectivity: pd.DataFrame  # scenario, depth, injection, step, effectivity, n, n_outliers
    acquisition: pd.DataFrame  # probe × injection: t_i, t_LAM, gain, window_complete
    retainability: pd.DataFrame  # scenario, depth, t, retainability, n, n_outliers
    # one row per probe of a population: probe_id, item, scenario, depth, excluded (no
    # acquisition), retainability (its R at the last t of the population's range where it
    # has one) and retainability_t (that t, -1: none), n_retainability (the t it has R at),
    # n_gain_outliers and n_retainability_outliers (its gains and R values the IQR filter
    # removed)
    per_probe: pd.DataFrame = field(default_factory=pd.DataFrame)
    # step, tokens, scenario, depth, share (of scored probes whose target is the greedy
    # continuation), n; empty when the run has no greedy statistic
    greedy: pd.DataFrame = field(default_factory=pd.DataFrame)
    # step, tokens, depth, residual (half the controls' mean Δℓ after correcting them by the
    # other half's mean), ci_low, ci_high, n (that half's probes); depths with 2+ control items
    residual_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: dict = field(default_factory=dict)
    run_info: RunInfo = field(default_factory=RunInfo)
    # the repeated scenarios with one fixed interval, per depth (analyze/intervals.py)
    intervals: tuple = ()
    options: AnalysisOptions = field(default_factory=AnalysisOptions)  # resamples resolved
    sources: tuple[str, ...] = ()  # the run directories analysed (several: pooled), resolved

    def get(self, scenario: str, depth: str) -> Population | None:
        return next(
            (p for p in self.populations if p.scenario == scenario and p.depth == depth), None
        )

    def scenarios(self) -> list[str]:
        """The injected scenarios, in the analysis's order (controls have no population)."""
        return list(dict.fromkeys(p.scenario for p in self.populations))

    def depths(self, scenario: str | None = None) -> list[str]:
        """The depths of ``scenario`` (of any scenario when None), DEPTHS' order first."""
        return ordered(
            [p.depth for p in self.populations if scenario in (None, p.scenario)], DEPTHS
        )

    @property
    def summary(self) -> dict:
        """``{scenario: {depth: {field: value}}}``: the shape of ``summary.json``."""
        out: dict = {}
        for p in self.populations:
            out.setdefault(p.scenario, {})[p.depth] = p.as_dict()
        return out
