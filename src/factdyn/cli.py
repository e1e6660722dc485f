"""The ``factdyn`` command line: thin wrappers; the work lives in the pipeline's modules.

Each subcommand imports what it needs inside its body, so ``factdyn --help`` stays fast and
the analysis commands never import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from factdyn.data.items import DataError

app = typer.Typer(
    help="Measure how language models acquire and forget factual knowledge during pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate knowledge data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# ---- data / generate commands ----

# ---- score commands ----

# ---- train commands ----

SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--set", "-s", help="Override a config field: section.key=value (repeatable)."),
]


@app.command()
def pretrain(
    world: Annotated[
        Path | None, typer.Option(help="Generated world dir (default: cached demo world).")
    ] = None,  # noqa: UP045
    out: Annotated[Path | None, typer.Option(help="Output dir (default: factdyn's cache).")] = None,  # noqa: UP045
    set_: SetOpt = None,
) -> None:
    """Pretrain the tiny base model from scratch on a generated world (cached)."""
    from factdyn import cache
    from factdyn.config import load_base_config
    from factdyn.train.base import pretrain as run_pretrain

    cfg = load_base_config(set_)
    world = world or cache.default_world()
    if not (world / "tokenizer").is_dir():
        raise DataError(f"{world}: not a generated world (no tokenizer/); run 'factdyn generate'")
    path = run_pretrain(world, out, cfg) if out else cache.default_base(world, cfg)
    typer.echo(f"base model: {path}")


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config or preset name.")] = None,  # noqa: UP045
    out: Annotated[Optional[Path], typer.Option(help="Run directory to create.")] = None,  # noqa: UP045
    resume: Annotated[Optional[Path], typer.Option(help="Resume this run directory.")] = None,  # noqa: UP045
    set_: SetOpt = None,
    world: Annotated[Optional[Path], typer.Option(help="Shortcut for data.path (a world).")] = None,  # noqa: UP045
    model: Annotated[Optional[str], typer.Option(help="Shortcut for model.name.")] = None,  # noqa: UP045
    steps: Annotated[Optional[int], typer.Option(help="Shortcut for train.steps.")] = None,  # noqa: UP045
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print size, memory and FLOPs; no weights.")
    ] = False,
    devices: Annotated[int, typer.Option(help="Devices assumed by --dry-run.")] = 1,
) -> None:
    """Continue pretraining with injected knowledge, logging every probe's log probability."""
    from factdyn.config import dump_config, load_config

    overrides = list(set_ or [])
    overrides += [f"data.path={world}"] if world else []
    overrides += [f"model.name={model}"] if model else []
    overrides += [f"train.steps={steps}"] if steps else []
    cfg = load_config(config, overrides)
    if print_config:
        typer.echo(dump_config(cfg), nl=False)
        return
    if dry_run:
        from factdyn.train.estimate import describe

        typer.echo(describe(cfg, devices))
        return
    from factdyn.train.experiment import train as run_train
    from factdyn.train.loop import TrainingError

    if resume is None and out is None:
        raise DataError("train: give --out RUN_DIR (or --resume RUN_DIR)")
    try:
        run_dir = run_train(cfg, resume or out, resume=resume is not None)
    except TrainingError as e:
        print(f"factdyn: training stopped: {e}", file=sys.stderr)
        raise typer.Exit(1) from None
    _echo_main(
        f"run written to {run_dir} (logs: logprobs.npy, injections.parquet; next: factdyn analyze {run_dir})"
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
) -> None:
    """Write a run's probe log as one long table (step, tokens, item, scenario, depth, probe, stats)."""
    from factdyn.rundir import export_long, load_run

    table = export_long(load_run(run_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    typer.echo(f"{len(table):,} rows written to {out}")


def _echo_main(msg: str) -> None:
    """Print once in a multi-process run."""
    import os

    if os.environ.get("RANK", "0") == "0":
        typer.echo(msg)


# ---- analyze commands ----

# ---- report commands ----


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2."""
    try:
        app()
    except DataError as e:
        print(f"factdyn: error: {e}", file=sys.stderr)
        sys.exit(2)
