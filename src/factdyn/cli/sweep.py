"""``factdyn reproduce``: the paper's grid as one resumable sweep, then its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import SetOpt, app
from factdyn.sweep import packaged_grids


@app.command()
def reproduce(
    grid: Annotated[
        str,
        typer.Argument(
            help=f"Grid file (its paths are taken from its folder), or a packaged grid by "
            f"its bare name: {', '.join(packaged_grids())}.",
            show_default=True,
        ),
    ] = "tiny",
    out: Annotated[
        Path,
        typer.Option(help="Sweep directory (re-run the command to resume; one sweep at a time)."),
    ] = Path("factdyn-grid"),
    launcher: Annotated[
        str,
        typer.Option(
            help="local (a pool of processes here) or slurm (one submitit array task per run; "
            "needs Slurm: run it on a login node)."
        ),
    ] = "local",
    jobs: Annotated[int, typer.Option(help="local: runs at once (the cores are shared).")] = 1,
    quick: Annotated[
        bool, typer.Option("--quick", help="The grid shrunk to a smoke test.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List the runs with size and time and the command that launches them; "
            "run nothing.",
        ),
    ] = False,
    set_: SetOpt = None,
    test_executor: Annotated[
        str | None,
        typer.Option(
            "--test-executor",
            hidden=True,
            help="Tests only: run the Slurm path with submitit's local or debug executor, here.",
        ),
    ] = None,
) -> None:
    """Run every point of a grid (stage, size, batch size, equal-lr control; replicates)
    as ordinary runs under OUT/runs, then write the grid's report to OUT/report. --set
    section.key=value changes every run's config, --set slurm.key=value the grid's slurm
    section (partition, account, gpus_per_node, time_min, ...). Interrupted (Ctrl-C,
    SIGTERM, to it or to its runs), it stops its runs, starts no other, prints the command
    that resumes them and exits 130 (143 for SIGTERM). A second sweep into the same OUT is
    refused while the first runs (OUT/.lock names it)."""
    from factdyn.errors import DataError
    from factdyn.sweep.stopping import Interrupted, signal_name, sigterm_interrupts
    from factdyn.sweep.sweep import interrupted_line, reproduce_command

    if jobs < 1:
        raise DataError(f"reproduce: --jobs must be at least 1, not {jobs}")
    if launcher not in ("local", "slurm"):
        raise DataError(f"reproduce: --launcher must be local or slurm, not {launcher!r}")
    try:
        with sigterm_interrupts():
            _reproduce(grid, out, launcher, jobs, quick, dry_run, set_ or [], test_executor)
    except (KeyboardInterrupt, Interrupted) as e:
        stopped = e if isinstance(e, Interrupted) else Interrupted(signal_name(e))
        command = reproduce_command(grid, out, quick, launcher, jobs, set_ or [])
        typer.echo(f"factdyn: {interrupted_line(stopped, command)}", err=True)
        raise typer.Exit(stopped.exit_code) from None


def _reproduce(
    grid: str,
    out: Path,
    launcher: str,
    jobs: int,
    quick: bool,
    dry_run: bool,
    overrides: list[str],
    test_executor: str | None,
) -> None:
    from factdyn.sweep.report import write_grid_report
    from factdyn.sweep.state import failures
    from factdyn.sweep.sweep import dry_run as describe
    from factdyn.sweep.sweep import plan_sweep, run_sweep

    sweep = plan_sweep(grid, out, quick, overrides)
    if dry_run:
        typer.echo(describe(sweep, launcher, jobs))
        return
    t0 = time.perf_counter()
    state = run_sweep(sweep, launcher, jobs, typer.echo, test_executor)
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
