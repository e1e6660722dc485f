"""What ``report`` and ``compare`` were given: a run, a saved analysis or a folder holding one.

A report shows the analysis ``factdyn analyze`` saved, never another one computed behind its
back: a saved analysis is read whole (:func:`~factdyn.analyze.write.read_analysis`) and only
analysed again, with its own options, when its runs have logged more steps since. A run is
analysed only when it has no saved analysis of the asked options, and then with exactly the
options ``analyze`` would take.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from factdyn.analyze.bootstrap import default_resamples
from factdyn.analyze.options import AnalysisOptions
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.result import Analysis
from factdyn.analyze.write import read_analysis
from factdyn.errors import DataError
from factdyn.rundir import Run, load_run

ANALYSIS = "analysis"  # a run's (and the demo folder's) analysis, as analyze writes it
META = "meta.json"  # what makes a folder a run directory


@dataclass(frozen=True)
class Reported:
    """One input of a report: its run (pooled when the analysis pools several), the analysis
    shown, and one line saying where that analysis came from."""

    path: Path  # as the user named it
    run: Run
    analysis: Analysis
    how: str


def is_analysis(path: Path) -> bool:
    return (path / "summary.json").is_file()


def _load(path: Path) -> Run:
    if not path.is_dir():
        raise DataError(f"{path}: no such run directory")
    try:
        return load_run(path)
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: cannot read the run ({type(e).__name__}: {e})") from None


def _runs_of(analysis: Analysis, folder: Path) -> Run:
    """The run an analysis was computed from (its runs pooled), as it is on disk now."""
    from factdyn.analyze.pool import pool_runs

    if not analysis.sources:
        raise DataError(f"{folder}: the analysis names no run it was made from")
    missing = [s for s in analysis.sources if not (Path(s) / META).is_file()]
    if missing:
        raise DataError(
            f"{folder}: analysed from {missing[0]}, which is not a run directory now "
            "(moved or deleted?); report needs the run's log for its figures"
        )
    if len(analysis.sources) > 1:
        return pool_runs(list(analysis.sources))
    return _load(Path(analysis.sources[0]))


def _current(analysis: Analysis, run: Run, folder: Path) -> tuple[Analysis, str]:
    """The saved analysis, or (its run having logged more steps since) the run analysed again
    with the saved options, and the line saying which."""
    saved = f"the analysis saved in {folder} ({analysis.options.describe()})"
    s = analysis.settings
    steps = run.steps
    if len(steps) == s.n_logged_steps and len(steps) and int(steps[-1]) == s.last_step:
        return analysis, saved
    again = analyze_run(run, analysis.options)
    return again, (
        f"{saved}, analysed again with its options: the run has logged steps to "
        f"{int(steps[-1]) if len(steps) else 0} since (the saved analysis ends at {s.last_step})"
    )


def _resolved(options: AnalysisOptions) -> AnalysisOptions:
    if options.resamples is not None:
        return options
    return replace(options, resamples=default_resamples())


def reported(path: str | Path, options: AnalysisOptions | None = None) -> Reported:
    """``path`` (a run directory, an analysis folder, or a folder with an ``analysis/`` of its
    own, as the demo's) with the analysis a report shows. ``options`` (those given on the
    command line; None: none given) apply to a run only: a saved analysis of exactly those
    options is read, otherwise the run is analysed with them."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such directory (give a run directory or an analysis folder)")
    if not (path / META).is_file():
        folder = path if is_analysis(path) else path / ANALYSIS
        if not is_analysis(folder):
            raise DataError(
                f"{path}: not a run directory, an analysis folder (summary.json) or a sweep"
            )
        if options is not None:
            raise DataError(
                f"{path}: a saved analysis is reported as it was analysed; for other options "
                "give its run directory, or run factdyn analyze with them"
            )
        analysis = read_analysis(folder)
        run = _runs_of(analysis, folder)
        return Reported(path, run, *_current(analysis, run, folder))
    run = _load(path)
    folder = path / ANALYSIS
    wanted = _resolved(options or AnalysisOptions())
    if is_analysis(folder):
        try:
            analysis = read_analysis(folder)
        except DataError as e:
            why = f"its saved analysis cannot be read ({e})"
        else:
            own = analysis.sources == (str(path.resolve()),)
            if own and (options is None or analysis.options == wanted):
                return Reported(path, run, *_current(analysis, run, folder))
            why = (
                "its saved analysis pools other runs"
                if not own
                else f"its saved analysis has other options ({analysis.options.describe()})"
            )
    else:
        why = f"no saved analysis in {folder}"
    return Reported(
        path, run, analyze_run(run, wanted), f"analysed now ({wanted.describe()}): {why}"
    )
