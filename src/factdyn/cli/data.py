"""Commands for knowledge data: generate a world, score probes, validate items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import OverwriteOpt, SetOpt, app, data_app
from factdyn.errors import DataError

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
    llm: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1): the "
            "items are written by its model; only knowledge.json + generation.json."
        ),
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="The model name (with --llm).")] = None,
    domain: Annotated[
        str | None, typer.Option(help="What the invented entities are (with --llm).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Items asked at once (with --llm).")] = 4,
    judge: Annotated[
        bool, typer.Option("--judge", help="The model also judges each item's probes.")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(help="Requests and replies (with --llm; default $FACTDYN_CACHE/llm)."),
    ] = None,
    retries: Annotated[int, typer.Option(help="Retries of a failed request (with --llm).")] = 5,
    backoff: Annotated[float, typer.Option(help="First retry's wait in seconds, doubling.")] = 1.0,
    timeout: Annotated[
        float, typer.Option(help="Seconds one request may take in all, connect to last byte.")
    ] = 120.0,
    max_tokens: Annotated[int, typer.Option(help="Longest reply asked for, in tokens.")] = 8192,
) -> None:
    """Generate the offline fictional world: knowledge.json, corpus/, tokenizer/, world.json
    (with --llm: knowledge items written by a language model)."""
    from factdyn.files import prepare_output

    if llm is None:
        if llm_model is not None or domain is not None or cache is not None or judge:
            raise DataError("generate: --llm-model, --domain, --cache and --judge need --llm")
        from factdyn.data.generator import generate_world

        prepare_output(out, overwrite=False)
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
        return
    from factdyn.data.llm.client import Retry
    from factdyn.data.llm.generate import Settings

    if not llm_model:
        raise DataError("generate: --llm needs --llm-model (the model's name on the endpoint)")
    settings = Settings(items=items, seed=seed, paraphrases=paraphrases, concurrency=concurrency,
                        judge=judge, **({"domain": domain} if domain else {}))  # fmt: skip
    retry = Retry(retries=retries, backoff=backoff, timeout=timeout)
    _generate_llm(out, llm, llm_model, settings, retry, cache, max_tokens)


def _generate_llm(
    out: Path, endpoint: str, model: str, settings, retry, cache: Path | None, max_tokens: int
) -> None:
    """``generate --llm``: ``settings.items`` items from ``model`` behind ``endpoint``
    (see factdyn.data.llm), asked through the request cache; every option is checked (by
    the client and ``settings``) before the output folder is."""
    from factdyn import cache as factdyn_cache
    from factdyn.data.llm.client import ChatClient
    from factdyn.data.llm.generate import write_llm_items
    from factdyn.files import prepare_output

    client = ChatClient(
        endpoint, model, cache or factdyn_cache.root() / "llm", retry, max_tokens=max_tokens
    )
    prepare_output(out, overwrite=False)
    write_llm_items(out, client, settings)
    c = client.counts
    typer.echo(
        f"{settings.items} items written to {out / 'knowledge.json'} by {model} "
        f"({c.sent} requests sent, {c.from_cache} from the cache; see generation.json)"
    )


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
    overwrite: OverwriteOpt = False,
) -> None:
    """Score every probe: target_mean, target_sum, first, full (natural-log probabilities), greedy."""
    from factdyn.data.items import load_items
    from factdyn.files import atomic_file, prepare_output_file
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.probes import score_items
    from factdyn.train.distributed import resolve_device

    if dtype not in ("fp32", "bf16"):
        raise DataError(f"--dtype: expected fp32 or bf16, got '{dtype}'")
    if device not in ("auto", "cpu", "cuda"):
        raise DataError(f"--device: expected auto, cpu or cuda, got '{device}'")
    if batch_tokens < 1:
        raise DataError(f"--batch-tokens: must be at least 1, got {batch_tokens}")
    prepare_output_file(out, overwrite=overwrite)
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


def _check_run(file: Path, config: Path, overrides: list[str], tokenizer: str | None) -> list[str]:
    """The checks ``factdyn train CONFIG`` makes of its items before the model loads
    (:func:`factdyn.train.plan.make_plan`, the same function), with ``file`` as
    ``injection.items``; lines that say what was checked."""
    from factdyn.config import load_config, with_absolute_paths
    from factdyn.train.plan import load_tokenizer, make_plan, plan_injections, plan_items

    cfg = with_absolute_paths(load_config(config, overrides))
    lines = []
    items = str(file.resolve()) if file.exists() else str(file)  # a path, or a hub id
    if cfg.injection.items not in (None, items):
        lines.append(f"note: {file} checked in place of the config's injection.items")
    cfg.injection.items = items
    name, field = (tokenizer, "--tokenizer") if tokenizer else (cfg.model.name, "model.name")
    if name is None:
        planned = plan_injections(cfg)
        scenarios, steps = planned.scenarios, [i.step for i in planned.schedule]
        tokens = (
            "tokens: not checked against data.seq_len (set model.name in the config, or give "
            "--tokenizer)"
        )
    else:
        tok = load_tokenizer(name, None if tokenizer else cfg.model.revision, field)
        laid = make_plan(cfg, tok) if cfg.model.name else plan_items(cfg, tok)
        scenarios, steps = laid.scenarios, laid.placements.step.tolist()
        longest = max((len(t) for t in laid.tokens.values()), default=0)
        tokens = (
            f"tokens: every probe and injected text fits data.seq_len={cfg.data.seq_len} with "
            f"{name}'s tokenizer (the longest injected text: {longest} tokens with its EOS)"
        )
        lines.insert(0, _check_corpus(cfg, tok))
    split = ", ".join(f"{k} {scenarios.count(k)}" for k in dict.fromkeys(scenarios))
    when = f"{len(steps)} injections at steps {min(steps)} to {max(steps)}" if steps else "none"
    return [
        f"run {config}: items per scenario: {split}; {when}, train.steps={cfg.train.steps}",
        tokens,
        *lines,
    ]


def _check_corpus(cfg, tokenizer) -> str:
    """The run's background data opened as train opens it (tokenized and cached, or its
    first sequence streamed): a missing file or text field is said now."""
    from factdyn.data.sources import build_source

    if cfg.data.path is None and cfg.data.source == "world":
        return "corpus: not checked (data.path not set: train uses factdyn's cached world)"
    source = build_source(cfg.data, tokenizer)
    source.sequence(0)
    n = getattr(source, "n_sequences", None)
    size = f"{n:,} sequences of {cfg.data.seq_len} tokens" if n else "its first sequence read"
    return f"corpus: {cfg.data.path} ({cfg.data.source}, field '{cfg.data.text_field}'): {size}"


@data_app.command("validate")
def data_validate(
    file: Annotated[Path, typer.Argument(help="Knowledge items (.json/.jsonl or dataset dir).")],
    tokenizer: Annotated[
        str | None,
        typer.Option(help="Tokenizer (local dir or hub id) for token lengths."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A training config (or preset): also check the items against what that run "
            "asks of them (enough items for its scenarios and controls, paraphrases, injections "
            "before train.steps, token lengths against data.seq_len with model.name's "
            "tokenizer), exactly as 'factdyn train' will."
        ),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Check knowledge data; print items, probes per depth, paraphrases (and token lengths)."""
    from factdyn.data.items import DEPTHS, load_items

    if set_ and config is None:
        raise DataError("data validate: --set needs --config (the run it overrides)")
    items = load_items(file)
    run_lines = _check_run(file, config, list(set_ or []), tokenizer) if config else []
    per_depth = {d: sum(len(it.probes.get(d, ())) for it in items) for d in DEPTHS}
    typer.echo(f"{file}: valid" + (f" for {config}" if config else ""))
    typer.echo(f"items: {len(items)}")
    typer.echo(
        "probes: "
        + ", ".join(f"{d} {n}" for d, n in per_depth.items())
        + f" (total {sum(per_depth.values())})"
    )
    typer.echo(f"paraphrases per item: {_min_med_max([len(it.paraphrases) for it in items])}")
    for line in run_lines:
        typer.echo(line)
    if tokenizer is None:
        return
    from factdyn.train.plan import load_tokenizer

    tok = load_tokenizer(tokenizer, field="--tokenizer")

    def lengths(texts: list[str]) -> list[int]:
        return [len(x) for x in tok(texts, add_special_tokens=True)["input_ids"]] if texts else []

    groups = {
        "train_context": [it.train_context for it in items],
        "paraphrases": [p for it in items for p in it.paraphrases],
        "probes": [p.text for it in items for d in DEPTHS for p in it.probes.get(d, ())],
    }
    for name, texts in groups.items():
        typer.echo(f"tokens {name}: {_min_med_max(lengths(texts))}")
