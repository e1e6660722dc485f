"""How a run is analysed: the options of ``factdyn analyze``, checked in one place.

The command line, the library (:func:`~factdyn.analyze.populations.analyze_run`), ``report``
(when it has to analyse a run itself) and a saved analysis share this one type, so an option
is spelled, defaulted and refused the same way everywhere, and a saved analysis records the
options that made it (``summary.json``'s ``_options``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from factdyn.budget import check_memory
from factdyn.errors import DataError
from factdyn.rundir import CONTROL, STATS, Run

# the log-probability statistics an analysis may read (greedy is a 0/1 flag: its own table)
LOG_PROB_STATS = tuple(s for s in STATS if s != "greedy")
IQR_PAPER = 1.5
IQR_REFERENCE = 2.0


@dataclass(frozen=True)
class AnalysisOptions:
    """Every choice behind an analysis's numbers; None means the documented default, resolved
    against the run (the window it was configured with; IQR 1.5, or 2.0 with ``reference``;
    drift correction when the run has control probes; ``$FACTDYN_RESAMPLES`` or 1,000)."""

    window: int | None = None  # acquisition window t_w, in steps
    iqr: float | None = None  # IQR outlier factor
    stat: str = "target_mean"
    drift_correct: bool | None = None  # subtract the control probes' mean ℓ
    reference: bool = False  # the published code's choices
    resamples: int | None = None  # bootstrap resamples per interval (0: none)
    seed: int = 0  # of the bootstrap's draws

    def __post_init__(self) -> None:
        def bad(flag: str, rule: str, value: object) -> DataError:
            return DataError(f"analyze: {flag} must be {rule}, not {value!r}")

        if self.stat not in LOG_PROB_STATS:
            raise bad("--stat", f"one of {', '.join(LOG_PROB_STATS)}", self.stat)
        if self.window is not None and not (_is_int(self.window) and self.window >= 1):
            raise bad("--window", "a whole number of steps ≥ 1", self.window)
        if self.iqr is not None and not (
            _is_number(self.iqr) and math.isfinite(self.iqr) and self.iqr > 0
        ):
            raise bad("--iqr", "a positive number", self.iqr)
        if self.resamples is not None and not (_is_int(self.resamples) and self.resamples >= 0):
            raise bad("--resamples", "a whole number ≥ 0", self.resamples)
        for name in ("drift_correct", "reference"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (value is None and name == "drift_correct")):
                raise bad(name, "true or false", value)
        if not _is_int(self.seed):
            raise bad("seed", "a whole number", self.seed)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping, origin: str) -> AnalysisOptions:
        """Options read back from a file; ``origin`` names it in the one-line refusal."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, Mapping) or set(values) - names:
            extra = sorted(set(values) - names) if isinstance(values, Mapping) else values
            raise DataError(f"{origin}: unknown analysis options {extra!r}")
        try:
            return cls(**values)
        except DataError as e:
            raise DataError(f"{origin}: {str(e).removeprefix('analyze: ')}") from None

    def describe(self) -> str:
        """The options that differ from the defaults, as the command-line flags that set them
        (``defaults`` when none do)."""
        flags = []
        if self.window is not None:
            flags.append(f"--window {self.window}")
        if self.iqr is not None:
            flags.append(f"--iqr {self.iqr:g}")
        if self.stat != "target_mean":
            flags.append(f"--stat {self.stat}")
        if self.drift_correct is False:
            flags.append("--no-drift-correction")
        if self.reference:
            flags.append("--reference")
        if self.resamples is not None:
            flags.append(f"--resamples {self.resamples}")
        return " ".join(flags) or "defaults"


@dataclass(frozen=True)
class Method:
    """The options as they apply to one run: every default resolved."""

    window: int
    iqr: float
    drift_correct: bool
    reference: bool
    resamples: int
    seed: int

    @property
    def exclude(self) -> str:
        """Which gains mean no acquisition (:func:`~factdyn.analyze.metrics.retainability`)."""
        return "zero" if self.reference else "nonpositive"

    @property
    def scale(self) -> float:
        """What a fraction of retainability is multiplied by to be reported (100: percent)."""
        return 100.0 if self.reference else 1.0


def resolve(run: Run, options: AnalysisOptions) -> Method:
    """The window, IQR factor and drift correction ``options`` mean for this run; refused
    when the run cannot have them. The caller resolves the resamples (the default reads the
    environment, :func:`~factdyn.analyze.bootstrap.default_resamples`)."""
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
    resamples = int(options.resamples)  # type: ignore[arg-type]
    check_resamples(resamples, len(run.steps), len(run.probes), run.probes["item"].nunique())
    return Method(window, iqr, bool(drift_correct), reference, resamples, options.seed)


def bootstrap_bytes(resamples: int, steps: int, probes: int, items: int) -> float:
    """Peak memory of the bootstrap over ``resamples`` resamples of a log of ``probes`` probes
    of ``items`` items at ``steps`` logged steps: per resample 64 bytes a logged step (the
    replicates' mean trajectories and their percentiles), 8 a probe and 24 an item (each
    draw's counts). Measured on analyze_run's peak resident memory (planted runs, 285-945
    probes, 601-3,001 steps, 20,000-40,000 resamples): the estimate is 5-60% above it."""
    return float(resamples) * (64 * steps + 8 * probes + 24 * items)


def check_resamples(resamples: int, steps: int, probes: int, items: int) -> None:
    """Refuse, before the analysis starts, resamples whose bootstrap the machine's memory
    cannot hold."""
    per = bootstrap_bytes(1, steps, probes, items)
    check_memory(
        resamples * per,
        f"analyze: --resamples {resamples:,} (for {probes:,} probes of {items:,} items at "
        f"{steps:,} logged steps)",
        "give fewer --resamples (the default, 1,000, gives stable 95% intervals)",
        (per, "resamples"),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
