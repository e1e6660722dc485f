"""Predict Δℓ(t) of a fact under any exposure schedule from a run's fitted quantities.

The paper fits the mean retainability R̄(t) = b − a·log10 t (docs/method.md) and reads
τ = 10^(b/a) as a learnability threshold: a fact seen less often than once every τ steps is
never learned. This module turns that reading into an explicit prediction, so that it can be
checked against runs with other schedules and carried over to a corpus with a long tail of
facts (``factdyn simulate``).

The model
---------
Exposure k, at step t_k, adds a gain E_k to ℓ that then decays as R(t − t_k), and the
exposures superpose::

    Δℓ(t) = ℓ(t) − ℓ_0 = Σ_{t_k ≤ t} E_k · R(t − t_k)
    R(0) = 1,   R(u) = clip(b − a·log10 u, 0, 1) for u > 0

- The gain is taken to appear at the exposure step itself: the lag to the local acquisition
  maximum within the window (docs/method.md) is ignored, and R is counted from the exposure.
- R is the fitted line where it was measured (u ≥ 1 step). Below one step, which only a fact
  seen more than once per step reaches, it is the same line continued (clipped at 1).
- E_k is the run's mean effectivity of injection k (``effectivity_per_injection``) where the
  run measured it; every later exposure gets the last measured one.
- Gains decay independently of each other (superposition). The run measured R only after
  its last injection, so this is the model's assumption, not a finding of the run.

Exposures every Δ steps keep R(Δ) of each gain when the next one comes, and R(Δ) > 0
exactly when Δ < τ: τ is the largest interval at which exposures accumulate
(:func:`predicted_threshold`); :mod:`factdyn.analyze.longtail` carries it over to a corpus
with a long tail of facts. A run fitted in percent (``--reference``) has its a and b
divided by 100 here (τ is unchanged).

Each prediction's 95% interval comes from the analysis's item bootstrap: the model is run
once per replicate (:func:`replicates_of`), with that replicate's a, b
and E_k together, since they come from one draw of items and are correlated (a and b
strongly); :func:`final_levels` takes all replicates at once.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from factdyn.analyze.bootstrap import NO_INTERVAL, Interval
from factdyn.analyze.result import Analysis, Population
from factdyn.errors import DataError

UNITS = {"fraction": 1.0, "percent": 100.0}


class NoFit(DataError):
    """A population without a usable forgetting fit; ``reason`` is the message without the
    file and population, for a caller that lists populations and skips this one."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class InputIntervals:
    """The analysis's 95% intervals of a :class:`ModelParams`' inputs, printed beside them (a
    and b in fractions, as the params): undefined where the analysis has none."""

    effectivity_per_injection: tuple[Interval, ...] = ()  # one per E_k
    decay_constant: Interval = NO_INTERVAL
    intercept: Interval = NO_INTERVAL
    x_intercept_steps: Interval = NO_INTERVAL
    x_intercept_tokens: Interval = NO_INTERVAL


@dataclass(frozen=True)
class ModelParams:
    """What the model needs of one scenario × depth, checked on construction so that every
    prediction starts from a defined fit. ``decay_constant`` (a) and ``intercept`` (b) are
    fractions; ``effectivities`` are in ℓ's units (log-probability)."""

    effectivities: tuple[float, ...]  # E_k of the run's injections, in order
    decay_constant: float  # a of R(t) = b − a·log10 t
    intercept: float  # b
    scenario: str = ""
    depth: str = ""
    x_intercept_steps: float = math.nan  # τ as the analysis reported it
    tokens_per_step: float | None = None  # the run's, for τ in tokens
    origin: str = "simulate"  # where the numbers come from, for error messages
    intervals: InputIntervals = field(default_factory=InputIntervals)

    def __post_init__(self) -> None:
        gains = tuple(float(e) for e in self.effectivities)
        object.__setattr__(self, "effectivities", gains)
        a, b = float(self.decay_constant), float(self.intercept)
        if not gains:
            raise NoFit(self.origin, "effectivity_per_injection is empty (no gain measured)")
        bad = next((k for k, e in enumerate(gains) if not math.isfinite(e)), None)
        if bad is not None:
            raise NoFit(self.origin, f"effectivity_per_injection[{bad}] is null or NaN")
        for name, v in (("decay_constant", a), ("intercept", b)):
            if not math.isfinite(v):
                raise NoFit(self.origin, f"{name} is null or NaN (the forgetting fit is undefined)")
        if a <= 0:
            raise NoFit(
                self.origin,
                f"decay_constant is {a:g} ≤ 0 (no forgetting measured: no threshold to predict)",
            )


# ---- the model ----


def exposure_gains(params: ModelParams, n: int) -> np.ndarray:
    """E_1..E_n: the run's per-injection effectivities, the last one repeated past them."""
    measured = np.asarray(params.effectivities, dtype=np.float64)
    if n <= len(measured):
        return measured[:n].copy()
    return np.concatenate([measured, np.full(n - len(measured), measured[-1])])


def retention(params: ModelParams, age: np.ndarray | float) -> np.ndarray:
    """R(age): 1 at age 0, the clipped fitted line after it, and 0 for a negative age (an
    exposure still to come contributes nothing)."""
    return _retention(params.decay_constant, params.intercept, np.asarray(age, dtype=np.float64))


def _retention(a: np.ndarray | float, b: np.ndarray | float, age: np.ndarray) -> np.ndarray:
    """:func:`retention` with a and b as arrays that broadcast against ``age``."""
    positive = age > 0
    line = b - a * np.log10(np.where(positive, age, 1.0))
    return np.where(positive, np.clip(line, 0.0, 1.0), np.where(age == 0, 1.0, 0.0))


def simulate(
    params: ModelParams, exposure_steps: Sequence[float], steps: Sequence[float]
) -> np.ndarray:
    """Δℓ at each of ``steps`` after exposures at ``exposure_steps`` (E_k in time order): the
    superposition of the module's model, O(exposures × steps)."""
    t_k = np.sort(finite_array(exposure_steps, "exposure steps"))
    at = finite_array(steps, "steps")
    out = np.zeros(at.shape)
    for gain, t in zip(exposure_gains(params, len(t_k)), t_k, strict=True):
        out += gain * retention(params, at - t)
    return out


def kept_levels(params: ModelParams, interval: float, exposures: int) -> np.ndarray:
    """Δℓ just before exposure k + 1, k = 1..K, for exposures at 0, Δ, 2Δ, ... (at step k·Δ;
    the last value is what K exposures leave Δ steps after the K-th): what each exposure
    builds on. O(K × injections measured), so K can be large; :func:`final_levels` gives the
    last value alone in closed form."""
    delta = positive(interval, "interval")
    k = count(exposures, "exposures")
    r = retention(params, delta * np.arange(1, k + 1))  # r[m − 1] = R(mΔ)
    gains = exposure_gains(params, k)
    last = params.effectivities[-1]
    # level_k = Σ_{i ≤ k} E_i·R((k − i + 1)Δ): E_last·Σ R, plus what the measured E_i differ by
    levels = last * np.cumsum(r)
    for i in range(1, min(len(params.effectivities), k) + 1):
        levels[i - 1 :] += (gains[i - 1] - last) * r[: k - i + 1]
    return levels


def predicted_threshold(params: ModelParams) -> float:
    """The largest interval Δ (steps) at which exposures still accumulate, i.e. R(Δ) > 0 so
    that each exposure starts above the previous one's start; beyond it every exposure starts
    from ℓ_0 again. Found from the model's :func:`retention` (bisection on its sign over
    log10 Δ) rather than by formula, so that it stays what the model implies; for the clipped
    line that is 10^(b/a). Independent of the gains; inf when no float interval reaches it."""

    def keeps(log_delta: float) -> bool:
        with np.errstate(over="ignore"):  # 10^x past the floats: an infinite age, R = 0
            return float(retention(params, np.power(10.0, log_delta))) > 0

    if float(retention(params, np.finfo(np.float64).max)) > 0:
        return math.inf
    lo, hi = 0.0, 1.0  # bracket the sign change: R(10^lo) > 0 = R(10^hi)
    while keeps(hi):
        lo, hi = hi, 2 * hi
    while not keeps(lo):
        lo, hi = 2 * lo - 1, lo
    while (mid := (lo + hi) / 2) not in (lo, hi):  # down to adjacent floats
        lo, hi = (mid, hi) if keeps(mid) else (lo, mid)
    return float(10.0**hi)


def final_levels(
    params: Sequence[ModelParams], exposures: np.ndarray, interval: np.ndarray
) -> np.ndarray:
    """(len(params), len(exposures)): Σ_{j=1..n} E_j·R((n − j + 1)Δ), the level n ≥ 1
    exposures Δ steps apart leave Δ steps after the last (:func:`kept_levels`' last value),
    for each parameter set (a row; each with as many gains) and each pair (n, Δ) of
    ``exposures`` and ``interval`` (a column). In closed form, E_last·Σ_{m=1..n} R(mΔ) plus
    the measured gains' differences from E_last, so that n may run to billions (a long tail's
    frequent facts) and the parameter sets be a bootstrap's replicates, all in one pass."""
    n = np.asarray(exposures, dtype=np.float64)  # whole counts, any size: floats never wrap
    delta = np.asarray(interval, dtype=np.float64)
    if not params:
        return np.empty((0, len(n)))
    a = np.array([p.decay_constant for p in params])[:, None]
    b = np.array([p.intercept for p in params])[:, None]
    gains = np.array([p.effectivities for p in params])  # (B, injections measured)
    u = b - a * np.log10(delta)  # R(mΔ) = clip(u − a·log10 m, 0, 1)
    # m ≤ full: R = 1; full < m ≤ kept: R = u − a·log10 m in (0, 1); beyond: R = 0
    full = np.where(u >= 1, np.floor(10.0 ** np.minimum((u - 1) / a, 18.0)), 0.0)
    kept = np.where(u > 0, np.ceil(10.0 ** np.minimum(u / a, 18.0)) - 1, 0.0)
    full = np.minimum(full, n)
    kept = np.maximum(np.minimum(kept, n), full)
    total = full + (kept - full) * u - a * (_log10_factorial(kept) - _log10_factorial(full))
    last = gains[:, -1:]
    out = last * total
    reach = np.max(b / a)  # log10 of the largest τ: R = 0 at any older age
    for j in range(1, gains.shape[1]):
        age = np.where(n >= j, (n - j + 1) * delta, np.inf)  # no j-th exposure: never kept
        live = np.log10(age) < reach  # a j-th exposure that some set still keeps
        out[:, live] += (gains[:, j - 1 : j] - last) * _retention(a, b, age[live])
    return out


_SMALL = 16
_LOG10_FACTORIAL_SMALL = np.concatenate([[0.0], np.cumsum(np.log10(np.arange(1, _SMALL)))])


def _log10_factorial(m: np.ndarray) -> np.ndarray:
    """log10(m!) for whole m ≥ 0 (as floats): exact sums below 16, Stirling's series from
    there (its error under 1e-13); numpy has no log-gamma."""
    m = np.asarray(m, dtype=np.float64)
    out = _LOG10_FACTORIAL_SMALL[np.minimum(m, _SMALL - 1).astype(np.int64)]
    large = m >= _SMALL
    x = m[large]
    y = 1 / (x * x)  # the series' tail 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷), by Horner
    tail = (1 / 12 - y * (1 / 360 - y * (1 / 1260 - y / 1680))) / x
    out[large] = (x * np.log(x) - x + 0.5 * np.log(2 * np.pi * x) + tail) / math.log(10)
    return out


# ---- a run's analysis as the model's inputs ----


def default_scenario(analysis: Analysis) -> str:
    """``duplicate`` (the paper's repeated exposures) when the analysis has it with a usable
    forgetting fit at some depth, else the first scenario that has one (else ``duplicate`` or
    the first scenario, whose refusal then says why)."""
    scenarios = analysis.scenarios()
    if not scenarios:
        raise DataError("simulate: the analysis has no injected scenario")

    def fits(s: str) -> bool:
        for p in analysis.populations:
            if p.scenario == s:
                try:
                    params_of(analysis, p)
                except NoFit:
                    continue
                return True
        return False

    preferred = ["duplicate", *(s for s in scenarios if s != "duplicate")]
    usable = [s for s in preferred if s in scenarios and fits(s)]
    return usable[0] if usable else ("duplicate" if "duplicate" in scenarios else scenarios[0])


def _scale(analysis: Analysis) -> float:
    """What divides a and b into fractions: a ``--reference`` fit is in percent."""
    return UNITS[analysis.settings.retainability_unit]


def params_of(analysis: Analysis, p: Population, origin: str = "") -> ModelParams:
    """The model's inputs from a population of an analysis (in memory or read back with
    :func:`~factdyn.analyze.write.read_analysis`), a and b in fractions whatever unit the fit
    was in; :class:`NoFit` names ``origin`` and the field when the fit is unusable."""
    scale = _scale(analysis)
    return ModelParams(
        effectivities=p.effectivity_per_injection,
        decay_constant=p.decay_constant / scale,
        intercept=p.intercept / scale,
        scenario=p.scenario,
        depth=p.depth,
        x_intercept_steps=p.x_intercept_steps,
        tokens_per_step=analysis.settings.tokens_per_step or None,
        origin=f"{origin}{': ' if origin else ''}{p.scenario}/{p.depth}",
        intervals=InputIntervals(
            effectivity_per_injection=tuple(p.effectivity_per_injection_ci),
            decay_constant=(p.decay_constant_ci[0] / scale, p.decay_constant_ci[1] / scale),
            intercept=(p.intercept_ci[0] / scale, p.intercept_ci[1] / scale),
            x_intercept_steps=p.x_intercept_steps_ci,
            x_intercept_tokens=p.x_intercept_tokens_ci,
        ),
    )


Draws = tuple[np.ndarray, np.ndarray, np.ndarray]  # a (B,), b (B,), E_k (B, N)


def replicates_of(
    analysis: Analysis, p: Population, params: ModelParams
) -> tuple[list[ModelParams], int]:
    """:func:`replicate_params` of the population's bootstrap replicates (none when it has
    none), a and b in fractions as :func:`params_of` gives them."""
    r = p.replicates
    if r is None:
        return [], 0
    scale = _scale(analysis)
    return replicate_params(
        params, (r.decay_constant / scale, r.intercept / scale, r.effectivity_per_injection)
    )


def replicate_params(params: ModelParams, draws: Draws) -> tuple[list[ModelParams], int]:
    """A ModelParams per bootstrap replicate of ``params``' population (``draws``: a, b and
    E_k of each replicate), and how many replicates were left out because they have no
    usable fit (a ≤ 0, or a, b or a gain undefined): a prediction's interval comes from the
    replicates' a, b and E_k together, since they are drawn together and correlated."""
    out = []
    for a, b, gains in zip(*draws, strict=True):
        try:
            out.append(
                replace(
                    params,
                    effectivities=tuple(gains),
                    decay_constant=a,
                    intercept=b,
                    intervals=InputIntervals(),
                )
            )
        except NoFit:
            continue
    return out, len(draws[0]) - len(out)


# ---- checks of inputs (a refusal names the input) ----


def finite_number(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"simulate: {name} must be a number, not {value!r}") from None
    if not math.isfinite(v):
        raise DataError(f"simulate: {name} must be finite, not {v}")
    return v


def positive(value: object, name: str) -> float:
    v = finite_number(value, name)
    if v <= 0:
        raise DataError(f"simulate: {name} must be positive, not {v:g}")
    return v


def count(value: object, name: str) -> int:
    try:
        k = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(f"simulate: {name} must be a whole number, not {value!r}") from None
    if k < 1:
        raise DataError(f"simulate: {name} must be at least 1, not {k}")
    return k


def finite_array(values: Sequence[float], name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"simulate: {name} must be numbers") from None
    if not np.isfinite(arr).all():
        raise DataError(f"simulate: {name} must be finite")
    return arr
