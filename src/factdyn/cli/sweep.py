"""``factdyn reproduce``: the paper's grid as one resumable sweep, then its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import SetOpt, app


@app.command()
def reproduce(
    grid: Annotated[
        str, typer.Argument(help="Grid file, or a packaged grid: tiny, olmo.")
    ] = "tiny",
    out: Annotated[
        Path, typer.Option(help="Sweep directory (re-run the command to resume).")
    ] = Path("factdyn-grid"),
    launcher: Annotated[
        str, typer.Option(help="local (a pool here) or slurm (submitit).")
    ] = "local",
    jobs: Annotated[int, typer.Option(help="local: runs at once (the cores are shared).")] = 1,
    quick: Annotated[
        bool, typer.Option("--quick", help="The grid shrunk to a smoke test.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the runs with size and time; run nothing.")
    ] = False,
    set_: SetOpt = None,
    cluster: Annotated[
        str | None,
        typer.Option(hidden=True, help="submitit cluster: local runs the Slurm path here (tests)."),
    ] = None,
) -> None:
    """Run every point of a grid (stage, size, batch size, equal-lr control; replicates)
    as ordinary runs under OUT/runs, then write the grid's report to OUT/report."""
    from factdyn.errors import DataError
    from factdyn.report.grid import write_grid_report
    from factdyn.sweep.sweep import dry_run as describe
    from factdyn.sweep.sweep import failures, plan_sweep, run_sweep

    if jobs < 1:
        raise DataError(f"reproduce: --jobs must be at least 1, not {jobs}")
    if launcher not in ("local", "slurm"):
        raise DataError(f"reproduce: --launcher must be local or slurm, not {launcher!r}")
    sweep = plan_sweep(grid, out, quick, set_ or [])
    if dry_run:
        typer.echo(describe(sweep, launcher))
        return
    t0 = time.perf_counter()
    state = run_sweep(sweep, launcher, jobs, typer.echo, cluster)
    failed = failures(state)
    if failed:
        for line in failed:
            typer.echo(f"factdyn: run failed: {line}", err=True)
        typer.echo(
            f"logs in {out / 'logs'}; run the same command again to resume the sweep", err=True
        )
        raise typer.Exit(1)
    report = write_grid_report(out, out / "report")
    typer.echo(f"sweep done in {time.perf_counter() - t0:.0f} s; report: {report}")
