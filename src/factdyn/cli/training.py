"""Commands that train: pretrain the tiny base, run an injection experiment, export its log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import OverwriteOpt, SetOpt, app, echo_main
from factdyn.errors import DataError

# ---- train commands ----


@app.command()
def pretrain(
    world: Annotated[
        Path | None, typer.Option(help="Generated world dir (default: cached demo world).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output dir (default: factdyn's cache).")] = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Pretrain the tiny base model from scratch on a generated world (cached)."""
    from factdyn.config import load_base_config
    from factdyn.demo import cached_base, cached_world
    from factdyn.files import prepare_output
    from factdyn.train.base import pretrain as run_pretrain

    cfg = load_base_config(set_)
    if out is not None:
        prepare_output(out, overwrite=overwrite)
    world = world or cached_world()
    if not (world / "tokenizer").is_dir():
        raise DataError(f"{world}: not a generated world (no tokenizer/); run 'factdyn generate'")
    path = run_pretrain(world, out, cfg) if out else cached_base(world, cfg)
    typer.echo(f"base model: {path}")


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config or preset name.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to create.")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Resume this run directory (its own config; CONFIG/--set/--steps may only "
            "extend train.steps)."
        ),
    ] = None,
    allow_missing_optimizer: Annotated[
        bool,
        typer.Option(
            "--allow-missing-optimizer",
            help="Resume from a checkpoint whose optimizer.pt is gone (AdamW restarts).",
        ),
    ] = False,
    set_: SetOpt = None,
    world: Annotated[Path | None, typer.Option(help="Shortcut for data.path (a world).")] = None,
    model: Annotated[str | None, typer.Option(help="Shortcut for model.name.")] = None,
    steps: Annotated[int | None, typer.Option(help="Shortcut for train.steps.")] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print size, memory and FLOPs; no weights.")
    ] = False,
    devices: Annotated[int, typer.Option(help="Devices assumed by --dry-run.")] = 1,
    tracker: Annotated[
        list[str] | None,
        typer.Option(
            help="Log live to tensorboard (RUN_DIR/tb) or wandb (RUN_DIR/wandb); repeatable. "
            "Shortcut for train.trackers."
        ),
    ] = None,
) -> None:
    """Continue pretraining with injected knowledge, logging every probe's log probability."""
    from factdyn.config import dump_config, load_config, with_absolute_paths

    overrides = list(set_ or [])
    overrides += [f"data.path={world}"] if world else []
    overrides += [f"model.name={model}"] if model else []
    overrides += [f"train.steps={steps}"] if steps is not None else []
    overrides += [f"train.trackers=[{','.join(tracker)}]"] if tracker else []
    if resume is not None:
        from factdyn.train.resume import requested_config

        cfg = requested_config(resume, config, overrides)  # compared with the run's own
    else:
        cfg = with_absolute_paths(load_config(config, overrides))
    if print_config:
        typer.echo(dump_config(cfg), nl=False)
        return
    if dry_run:
        from factdyn.train.estimate import describe

        typer.echo(describe(cfg, devices))
        return
    from factdyn.errors import TrainingError
    from factdyn.train.experiment import train as run_train

    if resume is None and out is None:
        raise DataError("train: give --out RUN_DIR (or --resume RUN_DIR)")
    if resume is None:
        from factdyn.files import prepare_output

        # not a file, not inside another run; a non-empty one is refused by the training
        prepare_output(out, overwrite=True)
    if resume is None and cfg.data.source == "world" and None in (cfg.data.path, cfg.model.name):
        from factdyn.cache import root
        from factdyn.demo import with_cached_inputs

        unset = [
            k for k, v in (("data.path", cfg.data.path), ("model.name", cfg.model.name)) if not v
        ]
        echo_main(
            f"{' and '.join(unset)} not set: using factdyn's cache {root()} (built on first use)"
        )
        cfg = with_cached_inputs(cfg)
    try:
        run_dir = run_train(
            cfg,
            resume or out,
            resume=resume is not None,
            allow_missing_optimizer=allow_missing_optimizer,
        )
    except TrainingError as e:
        print(f"factdyn: training stopped: {e}", file=sys.stderr)
        raise typer.Exit(1) from None
    echo_main(
        f"run written to {run_dir} (logs: logprobs.npy, injections.parquet; next: factdyn analyze {run_dir})"
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a run's probe log as one long table (step, tokens, item, scenario, depth, probe, stats)."""
    from factdyn.files import atomic_file, prepare_output_file
    from factdyn.rundir import export_long, load_run

    prepare_output_file(out, overwrite=overwrite, protected_runs=[run_dir])
    table = export_long(load_run(run_dir))
    with atomic_file(out) as tmp:
        table.to_parquet(tmp, index=False)
    typer.echo(f"{len(table):,} rows written to {out}")
