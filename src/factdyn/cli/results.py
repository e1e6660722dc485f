"""Commands on finished runs: analyze, compare, report, and the demo that runs it all."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import OverwriteOpt, app, echo_main
from factdyn.errors import DataError

# ---- analyze commands ----


WindowOpt = Annotated[
    int | None,
    typer.Option(help="Acquisition window t_w (default: the run's window, else 50)."),
]
IqrOpt = Annotated[
    float | None, typer.Option(help="IQR outlier factor (default 1.5; 2.0 with --reference).")
]
StatOpt = Annotated[
    str, typer.Option(help="The log-probability statistic: target_mean or target_sum.")
]
NoDriftOpt = Annotated[
    bool,
    typer.Option(
        "--no-drift-correction",
        help="Use raw ℓ even when the run has control probes (default: subtract their mean).",
    ),
]
ReferenceOpt = Annotated[
    bool,
    typer.Option(
        "--reference",
        help="The published code's choices: IQR 2.0, retainability in %, only zero "
        "gains excluded, no drift correction.",
    ),
]
ResamplesOpt = Annotated[
    int | None,
    typer.Option(help="Bootstrap resamples per interval (default 1,000; 0: no intervals)."),
]


def _options(window, iqr, stat, no_drift_correction, reference, resamples):
    """The command line's analysis options as the one type that checks them."""
    from factdyn.analyze.options import AnalysisOptions

    return AnalysisOptions(
        window=window,
        iqr=iqr,
        stat=stat,
        drift_correct=False if no_drift_correction else None,
        reference=reference,
        resamples=resamples,
    )


@app.command()
def analyze(
    run_dir: Annotated[Path | None, typer.Argument(help="A run directory.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output dir (default: RUN_DIR/analysis, or LOG-analysis/)."),
    ] = None,
    window: WindowOpt = None,
    iqr: IqrOpt = None,
    stat: StatOpt = "target_mean",
    no_drift_correction: NoDriftOpt = False,
    reference: ReferenceOpt = False,
    reference_log: Annotated[
        Path | None,
        typer.Option("--reference-log", help="Analyse a log in the paper's published JSON format."),
    ] = None,
    pool: Annotated[
        list[Path] | None,
        typer.Option(
            "--pool",
            help="Another seed of the same run, pooled with RUN_DIR (repeatable; needs --out): "
            "the bootstrap then resamples (run, item) pairs.",
        ),
    ] = None,
    resamples: ResamplesOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Effectivity, retainability and the power-law forgetting fit per scenario × depth,
    each with a 95% bootstrap interval over items. The analysis folder keeps its options:
    report and simulate show it as it is, without analysing again."""
    from factdyn.analyze.pool import pool_runs
    from factdyn.analyze.populations import analyze_reference_log, analyze_run
    from factdyn.analyze.write import write_analysis
    from factdyn.files import prepare_output
    from factdyn.report.text import format_summary

    options = _options(window, iqr, stat, no_drift_correction, reference, resamples)
    if pool and (run_dir is None or out is None):
        raise DataError("analyze: --pool needs a RUN_DIR and --out (pooled runs own no folder)")
    if reference_log is not None and run_dir is not None:
        raise DataError("analyze: give RUN_DIR or --reference-log, not both")
    if reference_log is None and run_dir is None:
        raise DataError("analyze: give a RUN_DIR (or --reference-log LOG.json)")
    inputs = [run_dir, *(pool or [])] if run_dir is not None else []
    default = (
        run_dir / "analysis"
        if run_dir is not None
        else reference_log.with_name(reference_log.stem + "-analysis")
    )
    out = prepare_output(
        out or default,
        overwrite=overwrite,
        run_place="analysis",
        default=out is None,
        protected_runs=inputs,
    )
    if reference_log is not None:
        analysis = analyze_reference_log(reference_log, options)
    else:
        analysis = analyze_run(pool_runs(inputs) if pool else run_dir, options)
    path = write_analysis(analysis, out)
    typer.echo(format_summary(analysis))
    typer.echo(f"analysis written to {path}")


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories to put side by side, or one sweep.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for compare.csv (required).")],
    overwrite: OverwriteOpt = False,
) -> None:
    """Several runs in one table, with the config fields that differ between them."""
    import pandas as pd

    from factdyn.analyze.compare import compare as compare_runs
    from factdyn.files import atomic_file, prepare_output
    from factdyn.sweep.sweep import SWEEP

    prepare_output(out, overwrite=overwrite, protected_runs=run_dirs)
    if len(run_dirs) == 1 and (run_dirs[0] / SWEEP).is_file():  # a sweep: its points
        from factdyn.sweep.report import comparison_table, load_points

        table = comparison_table(load_points(run_dirs[0])[0])
        with atomic_file(out / "compare.csv") as tmp:
            table.to_csv(tmp, index=False)
    else:
        table = compare_runs(run_dirs, out)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        typer.echo(table.to_string(index=False))
    typer.echo(f"table written to {out / 'compare.csv'}")


# ---- report commands ----


@app.command()
def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories, analysis folders (as analyze writes them, pooled or not) or "
            "folders holding one (the demo's); or one sweep directory."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output dir (default: RUN_DIR/report, beside a saved analysis, or "
            "SWEEP/report; required for several inputs)."
        ),
    ] = None,
    window: WindowOpt = None,
    iqr: IqrOpt = None,
    stat: StatOpt = "target_mean",
    no_drift_correction: NoDriftOpt = False,
    reference: ReferenceOpt = False,
    resamples: ResamplesOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write an HTML report (figures embedded), findings.json and every figure as PNG and PDF.
    It shows the analysis analyze saved (RUN_DIR/analysis); a run without one, or given
    analysis options other than its saved analysis's, is analysed with them, as analyze would."""
    from factdyn.analyze.inputs import ANALYSIS, is_analysis, reported
    from factdyn.files import prepare_output
    from factdyn.report.html import write_report
    from factdyn.sweep.sweep import SWEEP

    given = _options(window, iqr, stat, no_drift_correction, reference, resamples)
    options = None if given == type(given)() else given
    if len(run_dirs) == 1 and (run_dirs[0] / SWEEP).is_file():  # a sweep: the grid's report
        from factdyn.sweep.report import write_grid_report

        if options is not None:
            raise DataError("report: a sweep's report takes no analysis options")
        out = prepare_output(
            out or run_dirs[0] / "report", overwrite=overwrite, default=out is None
        )
        typer.echo(f"report written to {write_grid_report(run_dirs[0], out)}")
        return
    if out is None and len(run_dirs) != 1:
        raise DataError("report: give --out DIR for a report of several inputs")
    inputs = [reported(p, options) for p in run_dirs]
    for r in inputs:
        typer.echo(f"{r.path}: {r.how}")
    default = out is None
    if default:  # a run's report goes into it; a saved analysis's beside it
        first = run_dirs[0]
        beside = is_analysis(first) and first.name == ANALYSIS  # RUN/analysis: RUN/report
        out = (first.parent if beside else first) / "report"
    sources = [Path(s) for r in inputs for s in r.analysis.sources]
    out = prepare_output(
        out,
        overwrite=overwrite,
        run_place="report",
        default=default,
        protected_runs=[*run_dirs, *sources],
    )
    page = write_report(run_dirs, out, [r.analysis for r in inputs], runs=[r.run for r in inputs])
    typer.echo(f"report written to {page}")


# ---- demo ----


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the run and the report go.")] = Path(
        "factdyn-demo"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="A one-minute smoke version.")] = False,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Runs with data.seed 0..N-1, analysed pooled (default 4: factdyn.demo.SEEDS, "
            "not imported here, to keep the command line's start-up light).",
            min=1,
        ),
    ] = None,
    first_seed: Annotated[
        int,
        typer.Option(
            help="The first data.seed: --first-seed 10 --seeds 4 runs seeds 10-13, a draw "
            "disjoint from the default 0-3.",
            min=0,
        ),
    ] = 0,
) -> None:
    """The main job: world → base model → three-scenario run → analysis → HTML report."""
    import time

    from factdyn.demo import SEEDS, run_demo
    from factdyn.errors import TrainingError

    t0 = time.perf_counter()
    try:
        result = run_demo(
            out, quick=quick, seeds=SEEDS if seeds is None else seeds, first_seed=first_seed
        )
    except TrainingError as e:  # a run failed; the others went on and are kept
        typer.echo(f"factdyn: run failed: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(result.summary)
    echo_main(
        f"demo done in {time.perf_counter() - t0:.0f} s; report: {result.report}\n"
        f"runs: {'  '.join(str(d) for d in result.run_dirs)}  analysis: {result.analysis_dir}"
    )
