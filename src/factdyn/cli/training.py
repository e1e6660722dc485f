"""Commands that train: pretrain the tiny base, run an injection experiment, export its log."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from factdyn.cli.app import (
    ExplainOpt,
    OverwriteOpt,
    PrintConfigOpt,
    SetOpt,
    app,
    echo_main,
    err_main,
    info,
)
from factdyn.errors import DataError

if TYPE_CHECKING:
    from factdyn.config import RunConfig

# what `factdyn export` writes, by the --out file's extension
EXPORT_FORMATS = (".parquet", ".csv", ".jsonl")


def _interrupted_at(e: BaseException) -> str:
    """`` after step N of T`` when the training loop said where it was."""
    step, total = getattr(e, "step", None), getattr(e, "total", None)
    return f" after step {step} of {total}" if step is not None else ""


def _interrupted_run(run_dir: Path, e: KeyboardInterrupt) -> str:
    """The line Ctrl-C ends a run with: where it stopped, what is saved, how to go on."""
    from factdyn.files import is_run_dir
    from factdyn.rundir import read_meta

    if not is_run_dir(run_dir):
        return "factdyn: interrupted before the run directory was written; nothing was saved"
    try:
        saved = int(read_meta(run_dir).get("steps_done") or 0)
    except (DataError, TypeError, ValueError):
        saved = None
    command = f"factdyn train --resume {shlex.quote(str(run_dir))}"
    if saved is None:
        kept = f"continue from its last checkpoint with: {command}"
    elif saved:
        kept = f"checkpoint step {saved} is saved; continue from there with: {command}"
    else:
        kept = f"no checkpoint yet, so a resume starts over from step 0: {command}"
    return f"factdyn: interrupted{_interrupted_at(e)}; {kept}"


def _refuse_existing_run(out: Path) -> None:
    """``train --out`` makes a new run: an existing run there is continued with --resume,
    and a folder that holds anything else is no place for one."""
    from factdyn.files import is_run_dir
    from factdyn.rundir import read_meta
    from factdyn.train.lock import LOCK

    if is_run_dir(out):
        command = f"factdyn train --resume {shlex.quote(str(out))}"
        try:
            meta = read_meta(out)
            status, done = meta.get("status"), int(meta["steps_done"])
            total = int(meta["total_steps"])
        except (DataError, KeyError, TypeError, ValueError):
            status, done, total = None, None, None
        if status == "done":
            raise DataError(
                f"{out}: already a finished factdyn run ({total} steps); train it longer with "
                f"'{command} --steps N', or give another --out for a new run"
            )
        state = f" (stopped with step {done} of {total} saved)" if done is not None else ""
        raise DataError(
            f"{out}: already a factdyn run{state}; continue it with '{command}', or give "
            "another --out for a new run"
        )
    if out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
        raise DataError(
            f"{out}: exists and is not empty (and is no factdyn run); give --out a new or "
            "empty folder"
        )


# ---- train commands ----


@app.command()
def pretrain(
    world: Annotated[
        Path | None, typer.Option(help="Generated world dir (default: cached demo world).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output dir (default: factdyn's cache).")] = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
    print_config: PrintConfigOpt = False,
    explain: ExplainOpt = False,
) -> None:
    """Pretrain the tiny base model from scratch on a generated world (cached)."""
    from factdyn.config import load_base_config
    from factdyn.files import prepare_output
    from factdyn.train.base import pretrain as run_pretrain
    from factdyn.train.cached import cached_base, cached_world

    cfg = load_base_config(set_)
    if print_config or explain:
        import yaml

        from factdyn.config import explain_config

        text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        typer.echo(explain_config(cfg) if explain else text, nl=False)
        return
    if out is not None:
        prepare_output(out, overwrite=overwrite)
    world = world or cached_world()
    if not (world / "tokenizer").is_dir():
        raise DataError(f"{world}: not a generated world (no tokenizer/); run 'factdyn generate'")
    try:
        path = run_pretrain(world, out, cfg) if out else cached_base(world, cfg)
    except KeyboardInterrupt as e:
        err_main(
            f"factdyn: pretraining interrupted{_interrupted_at(e)}; the base model was not "
            "saved (pretraining has no resume: run the command again)"
        )
        raise typer.Exit(130) from None
    echo_main(f"base model: {path}")


@app.command()
def train(
    config: Annotated[
        str | None,  # not a Path: Path("./olmo-1b.yaml") would lose the "./" that makes it a path
        typer.Argument(help="YAML config file, or a packaged preset by its bare name (olmo-1b)."),
    ] = None,
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
    print_config: PrintConfigOpt = False,
    explain: ExplainOpt = False,
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
    from factdyn.config import dump_config, load_config, updated, with_absolute_paths

    overrides = list(set_ or [])
    if resume is not None:
        from factdyn.train.resume import requested_config

        cfg = requested_config(resume, config, overrides)  # compared with the run's own
    else:
        cfg = load_config(config, overrides)
    cfg = updated(cfg, "--world", data={"path": str(world)}) if world else cfg
    cfg = updated(cfg, "--model", model={"name": model}) if model else cfg
    cfg = updated(cfg, "--steps", train={"steps": steps}) if steps is not None else cfg
    cfg = updated(cfg, "--tracker", train={"trackers": tracker}) if tracker else cfg
    cfg = with_absolute_paths(cfg) if resume is None else cfg
    if print_config or explain:
        from factdyn.config import explain_config

        typer.echo(explain_config(cfg) if explain else dump_config(cfg), nl=False)
        return
    if dry_run:
        from factdyn.train.estimate import describe

        typer.echo(describe(cfg, devices))
        return
    if resume is None and out is None:
        raise DataError("train: give --out RUN_DIR (or --resume RUN_DIR)")
    if resume is None:
        cfg = _new_run(out, cfg)
    run_dir = _train_or_exit(cfg, resume or out, resume is not None, allow_missing_optimizer)
    echo_main(
        f"run written to {run_dir} (logs: logprobs.npy, injections.parquet; next: factdyn analyze {run_dir})"
    )


def _new_run(out: Path, cfg: RunConfig) -> RunConfig:
    """Before a new run loads anything: ``out`` is free for it, and a world-sourced config
    without its inputs gets factdyn's cached ones (built on first use)."""
    from factdyn.files import prepare_output
    from factdyn.train.lock import claim_new_run

    _refuse_existing_run(out)  # a run there goes on with --resume
    prepare_output(out, overwrite=True)  # not a file, not inside another run
    claim_new_run(out).release()  # another `train --out` of it, still loading: refused now
    if cfg.data.source == "world" and None in (cfg.data.path, cfg.model.name):
        from factdyn.cache import root
        from factdyn.train.cached import with_cached_inputs

        unset = [
            k for k, v in (("data.path", cfg.data.path), ("model.name", cfg.model.name)) if not v
        ]
        info(f"{' and '.join(unset)} not set: using factdyn's cache {root()} (built on first use)")
        cfg = with_cached_inputs(cfg)
    return cfg


def _train_or_exit(
    cfg: RunConfig, run_dir: Path, resume: bool, allow_missing_optimizer: bool
) -> Path:
    """The run, its trackers shown the analysis; a stop is one line on stderr and the exit
    status (1: training stopped, 130: Ctrl-C)."""
    from factdyn.errors import TrainingError
    from factdyn.report.readout import AnalysisReadout
    from factdyn.train.experiment import train as run_train

    try:
        return run_train(
            cfg,
            run_dir,
            resume=resume,
            allow_missing_optimizer=allow_missing_optimizer,
            readouts=AnalysisReadout,
        )
    except TrainingError as e:
        print(f"factdyn: training stopped: {e}", file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt as e:
        err_main(_interrupted_run(run_dir, e))
        raise typer.Exit(130) from None


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    out: Annotated[
        Path,
        typer.Option(help="File to write; its extension picks the format: .parquet, .csv, .jsonl."),
    ],
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a run's probe log as one long table (step, tokens, item, scenario, depth, probe, stats)."""
    from factdyn.files import atomic_file, prepare_output_file
    from factdyn.rundir import export_long, load_run

    prepare_output_file(out, overwrite=overwrite, protected_runs=[run_dir])
    kind = out.suffix.lower()
    if kind not in EXPORT_FORMATS:
        raise DataError(
            f"{out}: export writes {', '.join(EXPORT_FORMATS[:-1])} or {EXPORT_FORMATS[-1]} "
            f"files; name --out with one of these extensions"
        )
    table = export_long(load_run(run_dir))
    with atomic_file(out) as tmp:
        if kind == ".parquet":
            table.to_parquet(tmp, index=False)
        elif kind == ".csv":
            table.to_csv(tmp, index=False)
        else:  # one JSON object per line; a missing value is null
            table.to_json(tmp, orient="records", lines=True, force_ascii=False)
    echo_main(f"{len(table):,} rows written to {out}")
