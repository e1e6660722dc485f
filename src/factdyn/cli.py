"""The ``factdyn`` command line: thin wrappers; the work lives in the pipeline's modules.

Each subcommand imports what it needs inside its body, so ``factdyn --help`` stays fast and
the analysis commands never import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factdyn.errors import DataError

app = typer.Typer(
    help="Measure how language models acquire and forget factual knowledge during pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate knowledge data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# ---- data / generate commands ----


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="World directory to create.")],
    items: Annotated[int, typer.Option(help="Knowledge items to inject (and hold out).")] = 36,
    seed: Annotated[int, typer.Option(help="Everything follows from the seed.")] = 0,
    corpus_mb: Annotated[float, typer.Option(help="Background corpus size in MB.")] = 20.0,
    entities: Annotated[int, typer.Option(help="Background entities in the corpus.")] = 2000,
    paraphrases: Annotated[int, typer.Option(help="Paraphrases per item.")] = 9,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 2048,
) -> None:
    """Generate the offline fictional world: knowledge.json, corpus/, tokenizer/, world.json."""
    from factdyn.data.generator import generate_world

    path = generate_world(
        out,
        n_items=items,
        seed=seed,
        corpus_mb=corpus_mb,
        entities=entities,
        n_paraphrases=paraphrases,
        vocab_size=vocab_size,
    )
    typer.echo(f"world written to {path} ({items} items, {corpus_mb:g} MB corpus)")


# ---- score commands ----


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Model: a local directory or a hub id.")],
    data: Annotated[Path, typer.Option(help="Knowledge items (.json/.jsonl, dataset dir or id).")],
    out: Annotated[Path, typer.Option(help="Parquet file to write (one row per probe).")],
    revision: Annotated[
        str | None,
        typer.Option(help="Hub revision (branch, tag, commit)."),
    ] = None,
    dtype: Annotated[str, typer.Option(help="fp32 or bf16.")] = "fp32",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    batch_tokens: Annotated[int, typer.Option(help="Token budget per forward pass.")] = 16384,
) -> None:
    """Score every probe: target_mean, target_sum, first, full (natural-log probabilities)."""
    from factdyn.data.items import load_items
    from factdyn.files import atomic_file
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.probes import score_items
    from factdyn.train.distributed import resolve_device

    if dtype not in ("fp32", "bf16"):
        raise DataError(f"--dtype: expected fp32 or bf16, got '{dtype}'")
    if device not in ("auto", "cpu", "cuda"):
        raise DataError(f"--device: expected auto, cpu or cuda, got '{device}'")
    device = str(resolve_device(device))
    items = load_items(data)
    lm, tokenizer = load_model_and_tokenizer(model, revision, dtype, device)
    table = score_items(lm, tokenizer, items, batch_tokens=batch_tokens, progress=True)
    with atomic_file(out) as tmp:
        table.to_parquet(tmp, index=False)
    typer.echo(f"{len(table):,} rows written to {out}")


def _min_med_max(values) -> str:
    import numpy as np

    if len(values) == 0:
        return "none"
    v = np.asarray(values)
    return f"min {v.min():g}, median {np.median(v):g}, max {v.max():g}"


@data_app.command("validate")
def data_validate(
    file: Annotated[Path, typer.Argument(help="Knowledge items (.json/.jsonl or dataset dir).")],
    tokenizer: Annotated[
        str | None,
        typer.Option(help="Tokenizer (local dir or hub id) for token lengths."),
    ] = None,
) -> None:
    """Check knowledge data; print items, probes per depth, paraphrases (and token lengths)."""
    from factdyn.data.items import DEPTHS, load_items

    items = load_items(file)
    per_depth = {d: sum(len(it.probes.get(d, ())) for it in items) for d in DEPTHS}
    typer.echo(f"{file}: valid")
    typer.echo(f"items: {len(items)}")
    typer.echo(
        "probes: "
        + ", ".join(f"{d} {n}" for d, n in per_depth.items())
        + f" (total {sum(per_depth.values())})"
    )
    typer.echo(f"paraphrases per item: {_min_med_max([len(it.paraphrases) for it in items])}")
    if tokenizer is None:
        return
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as e:
        raise DataError(f"{tokenizer}: cannot load tokenizer ({str(e).splitlines()[0]})") from None

    def lengths(texts: list[str]) -> list[int]:
        return [len(x) for x in tok(texts, add_special_tokens=True)["input_ids"]] if texts else []

    groups = {
        "train_context": [it.train_context for it in items],
        "paraphrases": [p for it in items for p in it.paraphrases],
        "probes": [p.text for it in items for d in DEPTHS for p in it.probes.get(d, ())],
    }
    for name, texts in groups.items():
        typer.echo(f"tokens {name}: {_min_med_max(lengths(texts))}")


# ---- train commands ----

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: section.key=value (repeatable)."),
]


@app.command()
def pretrain(
    world: Annotated[
        Path | None, typer.Option(help="Generated world dir (default: cached demo world).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output dir (default: factdyn's cache).")] = None,
    set_: SetOpt = None,
) -> None:
    """Pretrain the tiny base model from scratch on a generated world (cached)."""
    from factdyn.config import load_base_config
    from factdyn.demo import cached_base, cached_world
    from factdyn.train.base import pretrain as run_pretrain

    cfg = load_base_config(set_)
    world = world or cached_world()
    if not (world / "tokenizer").is_dir():
        raise DataError(f"{world}: not a generated world (no tokenizer/); run 'factdyn generate'")
    path = run_pretrain(world, out, cfg) if out else cached_base(world, cfg)
    typer.echo(f"base model: {path}")


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config or preset name.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to create.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Resume this run directory.")] = None,
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
    from factdyn.errors import TrainingError
    from factdyn.train.experiment import train as run_train

    if resume is None and out is None:
        raise DataError("train: give --out RUN_DIR (or --resume RUN_DIR)")
    if resume is None and cfg.data.source == "world" and None in (cfg.data.path, cfg.model.name):
        from factdyn.cache import root
        from factdyn.demo import with_cached_inputs

        unset = [
            k for k, v in (("data.path", cfg.data.path), ("model.name", cfg.model.name)) if not v
        ]
        _echo_main(
            f"{' and '.join(unset)} not set: using factdyn's cache {root()} (built on first use)"
        )
        cfg = with_cached_inputs(cfg)
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
    from factdyn.files import atomic_file
    from factdyn.rundir import export_long, load_run

    table = export_long(load_run(run_dir))
    with atomic_file(out) as tmp:
        table.to_parquet(tmp, index=False)
    typer.echo(f"{len(table):,} rows written to {out}")


def _echo_main(msg: str) -> None:
    """Print once in a multi-process run."""
    import os

    if os.environ.get("RANK", "0") == "0":
        typer.echo(msg)


# ---- analyze commands ----


@app.command()
def analyze(
    run_dir: Annotated[Path | None, typer.Argument(help="A run directory.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output dir (default: RUN_DIR/analysis, or LOG-analysis/)."),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(help="Acquisition window t_w (default: the run's window, else 50)."),
    ] = None,
    iqr: Annotated[
        float | None,
        typer.Option(help="IQR outlier factor (default 1.5; 2.0 with --reference)."),
    ] = None,
    stat: Annotated[str, typer.Option(help="target_mean or target_sum.")] = "target_mean",
    no_drift_correction: Annotated[
        bool,
        typer.Option(
            "--no-drift-correction",
            help="Use raw ℓ even when the run has control probes (default: subtract their mean).",
        ),
    ] = False,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference",
            help="The published code's choices: IQR 2.0, retainability in %, only zero "
            "gains excluded, no drift correction.",
        ),
    ] = False,
    reference_log: Annotated[
        Path | None,
        typer.Option("--reference-log", help="Analyse a log in the paper's published JSON format."),
    ] = None,
) -> None:
    """Effectivity, retainability and the power-law forgetting fit per scenario × depth."""
    from factdyn.analyze.populations import analyze_reference_log, analyze_run
    from factdyn.analyze.write import write_analysis
    from factdyn.report.text import format_summary

    if stat not in ("target_mean", "target_sum"):
        raise DataError(f"analyze: --stat must be target_mean or target_sum, not {stat!r}")
    options = dict(
        window=window,
        iqr=iqr,
        stat=stat,
        drift_correct=False if no_drift_correction else None,
        reference=reference,
    )
    if reference_log is not None:
        if run_dir is not None:
            raise DataError("analyze: give RUN_DIR or --reference-log, not both")
        analysis = analyze_reference_log(reference_log, **options)
        out = out or reference_log.with_name(reference_log.stem + "-analysis")
    elif run_dir is not None:
        analysis = analyze_run(run_dir, **options)
        out = out or run_dir / "analysis"
    else:
        raise DataError("analyze: give a RUN_DIR (or --reference-log LOG.json)")
    path = write_analysis(analysis, out)
    typer.echo(format_summary(analysis))
    typer.echo(f"analysis written to {path}")


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to put side by side.")],
    out: Annotated[Path, typer.Option(help="Directory for compare.csv.")] = Path("."),
) -> None:
    """Several runs in one table, with the config fields that differ between them."""
    import pandas as pd

    from factdyn.analyze.compare import compare as compare_runs

    table = compare_runs(run_dirs, out)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        typer.echo(table.to_string(index=False))
    typer.echo(f"table written to {out / 'compare.csv'}")


# ---- report commands ----


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (one or more).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output dir (default: RUN_DIR/report for one run, ./report for several)."
        ),
    ] = None,
) -> None:
    """Write an HTML report (figures embedded) and every figure as PNG and PDF."""
    from factdyn.report.html import write_report

    if out is None:
        out = run_dirs[0] / "report" if len(run_dirs) == 1 else Path("report")
    typer.echo(f"report written to {write_report(run_dirs, out)}")


# ---- demo ----


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the run and the report go.")] = Path(
        "factdyn-demo"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="A one-minute smoke version.")] = False,
) -> None:
    """The main job: world → base model → three-scenario run → analysis → HTML report."""
    import time

    from factdyn.demo import run_demo

    t0 = time.perf_counter()
    result = run_demo(out, quick=quick)
    typer.echo(result.summary)
    _echo_main(
        f"demo done in {time.perf_counter() - t0:.0f} s; report: {result.report}\n"
        f"run: {result.run_dir}  analysis: {result.analysis_dir}"
    )


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2."""
    try:
        app()
    except DataError as e:
        print(f"factdyn: error: {e}", file=sys.stderr)
        sys.exit(2)
