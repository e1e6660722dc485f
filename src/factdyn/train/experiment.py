"""``factdyn train``: a knowledge-injection run from a config, into a run directory.

Wires the pieces (items, schedule, placement, data source, model, optimizer) and the loop's
callbacks (probe logger, checkpoints, training log) and hands them to
:func:`factdyn.train.loop.run_loop`. Inputs are concrete paths or hub ids (the CLI and the
demo resolve factdyn's cache, never this module), and all input is validated before the run
directory is created, so bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from factdyn.config import RunConfig, dump_config
from factdyn.data.items import KnowledgeItem, load_items
from factdyn.errors import DataError, TrainingError
from factdyn.files import atomic_dir, write_json_atomic
from factdyn.inject.placement import plan_placements
from factdyn.inject.schedule import build_schedule
from factdyn.rundir import init_logs, run_meta, run_tables, update_meta, write_run_tables
from factdyn.score.requests import probe_table
from factdyn.train import checkpoint as ckpt
from factdyn.train.callbacks import Callback, Checkpointer, TrainLog
from factdyn.train.distributed import World, barrier, setup, teardown, wrap
from factdyn.train.evaluation import ProbeLogger, eval_schedule
from factdyn.train.loop import Batcher, LoopConfig, make_optimizer, run_loop
from factdyn.train.lr import lr_at

# "name" or "org/name": what Hugging Face accepts as a model or dataset id
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass
class Plan:
    """Everything decided before training starts (and written to the run directory)."""

    cfg: RunConfig
    items: list[KnowledgeItem]
    scenarios: list[str]
    placements: pd.DataFrame
    tokens: dict
    steps: np.ndarray  # logged steps (L,)
    mask: np.ndarray  # (L, items): which items' probes are scored at each logged step
    model_path: str
    base_state: dict
    base_step: int | None  # the base checkpoint's pretraining step, if known
    schedule_start: int  # lr schedule position of step 0
    lr_kwargs: dict  # factdyn.train.lr.lr_at's keywords

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.train.batch_size * self.cfg.data.seq_len


def _local_or_hub(field: str, value: str) -> None:
    """A path that exists, or a hub id (whose existence only loading can tell)."""
    if not Path(value).exists() and (
        not HUB_ID.fullmatch(value) or value.endswith((".json", ".jsonl"))
    ):
        raise DataError(f"config, field '{field}': {value}: no such file or directory")


def items_source(cfg: RunConfig) -> str:
    """``injection.items``, or the world's own knowledge.json."""
    if cfg.injection.items is not None:
        return cfg.injection.items
    if cfg.data.source != "world":
        raise DataError("config, field 'injection.items': required unless data.source is 'world'")
    return str(Path(cfg.data.path) / "knowledge.json")


def check_inputs(cfg: RunConfig) -> None:
    """Every input is given and exists (hub ids are checked when loaded)."""
    if cfg.data.path is None and cfg.data.source != "olmo":
        raise DataError(
            "config, field 'data.path': required (a world from 'factdyn generate'; "
            "'factdyn train' without one uses factdyn's cached world)"
        )
    if cfg.data.source in ("world", "text") and not Path(cfg.data.path).exists():
        raise DataError(f"config, field 'data.path': {cfg.data.path}: no such file or directory")
    if cfg.model.name is None:
        raise DataError("config, field 'model.name': required (a model directory or hub id)")
    _local_or_hub("model.name", cfg.model.name)
    _local_or_hub("injection.items", items_source(cfg))


def _lr_schedule(cfg: RunConfig, base_state: dict) -> tuple[int | None, int, dict]:
    """The base's pretraining step, the schedule position of step 0, lr_at's keywords."""
    base_step = cfg.model.base_step if cfg.model.base_step is not None else base_state.get("step")
    start = cfg.optim.schedule_start
    start = start if start is not None else int(base_step or 0)
    peak = cfg.optim.lr if cfg.optim.lr is not None else base_state.get("lr")
    if peak is None:
        raise DataError(
            "config, field 'optim.lr': required (the checkpoint records no learning rate)"
        )
    lr_kwargs = {
        "peak": peak,
        "schedule": cfg.optim.schedule,
        "warmup": cfg.optim.warmup_steps,
        "total": cfg.optim.schedule_total or start + cfg.train.steps,
        "min_ratio": cfg.optim.min_lr_ratio,
    }
    return base_step, start, lr_kwargs


def make_plan(cfg: RunConfig, tokenizer) -> Plan:
    """Validate and plan the run: schedule, placements (length errors here), eval steps."""
    items = load_items(items_source(cfg))
    items = items[: cfg.injection.max_items or len(items)]
    inj = cfg.injection
    schedule, scenarios = build_schedule(inj, items)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError(f"{cfg.model.name}: tokenizer has no eos_token")
    tokens = {
        (i.item, i.variant): [
            *tokenizer(items[i.item].variant(i.variant), add_special_tokens=False)["input_ids"],
            eos,
        ]
        for i in schedule
    }
    bad = [i for i in schedule if i.step >= cfg.train.steps]
    if bad:
        raise DataError(
            f"injection: step {bad[0].step} (item {bad[0].item}) is not before train.steps={cfg.train.steps}"
        )
    placements = plan_placements(
        schedule, tokens, cfg.train.batch_size, cfg.data.seq_len, inj.allow_truncation
    )
    injected: list[list[int]] = [[] for _ in items]
    for i in schedule:
        injected[i.item].append(i.step)
    steps, mask = eval_schedule(
        cfg.eval.schedule,
        injected,
        cfg.eval.window,
        cfg.train.steps,
        cfg.eval.log_points,
        cfg.eval.per_item,
    )
    base_state = ckpt.read_state(Path(cfg.model.name))
    return Plan(
        cfg,
        items,
        scenarios,
        placements,
        tokens,
        steps,
        mask,
        str(cfg.model.name),
        base_state,
        *_lr_schedule(cfg, base_state),
    )


def _write_run_dir(
    plan: Plan, run_dir: Path, n_probes: int, world: World, n_parameters: int
) -> None:
    """Create the run directory (config, tables, preallocated logs, meta) atomically."""
    cfg = plan.cfg
    with atomic_dir(run_dir) as tmp:
        (tmp / "config.yaml").write_text(dump_config(cfg))
        write_run_tables(tmp, run_tables(probe_table(plan.items), plan.scenarios, plan.placements))
        init_logs(tmp, plan.steps, n_probes, len(plan.items), cfg.train.steps)
        meta = run_meta(
            plan.tokens_per_step,
            batch_size=cfg.train.batch_size,
            seq_len=cfg.data.seq_len,
            window=cfg.eval.window,
            n_parameters=n_parameters,
            lr_first=lr_at(plan.schedule_start, **plan.lr_kwargs),
            base_step=plan.base_step,
            status="running",
            steps_done=0,
            total_steps=cfg.train.steps,
            world_size=world.size,
            model=plan.model_path,
            base_state=plan.base_state,
        )
        write_json_atomic(tmp / "meta.json", meta)


def train(
    cfg: RunConfig, run_dir: Path, resume: bool = False, callbacks: Sequence[Callback] = ()
) -> Path:
    """Run (or resume) an injection experiment; returns the run directory. ``callbacks`` run
    after factdyn's own (probe logger, checkpointer, training log) at every hook."""
    from factdyn.data.sources import build_source
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.requests import encode_probes, encode_texts

    if resume:
        cfg = RunConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    else:
        check_inputs(cfg)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise DataError(f"{run_dir}: run directory exists and is not empty (use --resume)")
    world = setup(cfg.model.device)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.batch_size % world.size:
            raise DataError(
                f"config, field 'train.batch_size': {cfg.train.batch_size} not divisible by {world.size} processes"
            )
        last = ckpt.checkpoint_dirs(run_dir / "checkpoints")[-1:] if resume else []
        weights = str(last[0]) if last else cfg.model.name
        model, tokenizer = load_model_and_tokenizer(
            weights,
            revision=None if last else cfg.model.revision,
            dtype="fp32",
            device=str(world.device),
        )
        n_parameters = sum(p.numel() for p in model.parameters())  # before any wrapping
        plan = make_plan(cfg, tokenizer)
        source = build_source(cfg.data, tokenizer)
        probes = encode_probes(tokenizer, plan.items)
        contexts = (
            encode_texts(tokenizer, [it.train_context for it in plan.items])
            if cfg.eval.contexts
            else None
        )
        if not resume and world.main:
            _write_run_dir(plan, run_dir, len(probes), world, n_parameters)
        barrier(world)
        return _run(
            plan,
            run_dir,
            model,
            tokenizer,
            source,
            probes,
            contexts,
            world,
            last[0] if last else None,
            callbacks,
        )
    finally:
        teardown(world)


def _run(
    plan: Plan,
    run_dir: Path,
    model,
    tokenizer,
    source,
    probes,
    contexts,
    world: World,
    resume_from: Path | None,
    extra: Sequence[Callback],
) -> Path:
    cfg = plan.cfg
    if cfg.model.gradient_checkpointing:
        # transformers renamed it; the old name still exists on older releases we support
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
    model.train()
    wrapped = wrap(model, world, fsdp=cfg.model.fsdp)
    net = torch.compile(wrapped) if cfg.model.compile else wrapped
    opt = make_optimizer(
        wrapped, cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay, cfg.optim.decay_exclude
    )
    state = ckpt.read_state(resume_from) if resume_from else {}
    if resume_from is not None:
        ckpt.load_optimizer_state(resume_from, wrapped, opt)
    elif cfg.optim.load_state:
        ckpt.load_optimizer_state(Path(plan.model_path), wrapped, opt)
    base = plan.base_state
    start_pos = cfg.data.start if cfg.data.start is not None else int(base.get("data_position", 0))
    batcher = Batcher(
        source,
        start_pos,
        cfg.train.batch_size,
        {int(s): g for s, g in plan.placements.groupby("step")},
        plan.tokens,
        cfg.injection.placement,
        tokenizer.eos_token_id,
        world,
    )
    loop = LoopConfig(
        total_steps=cfg.train.steps,
        micro_batch=cfg.train.micro_batch_size or cfg.train.batch_size // world.size,
        grad_clip=cfg.optim.grad_clip,
        lr_kwargs=plan.lr_kwargs,
        schedule_start=plan.schedule_start,
        tokens_per_step=plan.tokens_per_step,
        autocast_dtype=torch.bfloat16 if cfg.model.dtype == "bf16" else None,
    )
    callbacks = [  # in this order at every hook: θ_t is scored, then saved
        ProbeLogger(
            run_dir,
            plan.steps,
            plan.mask,
            probes,
            probe_table(plan.items)["item"].to_numpy(),
            contexts,
            world,
            cfg.eval.batch_tokens,
            split=not cfg.model.fsdp,
        ),
        Checkpointer(
            run_dir,
            wrapped,
            opt,
            cfg.train.checkpoint_every,
            cfg.train.steps,
            cfg.train.keep_checkpoints,
            world,
            tokenizer,
        ),
        TrainLog(run_dir, plan.tokens_per_step, world),
        *extra,
    ]
    try:
        run_loop(model, opt, batcher, int(state.get("step", 0)), loop, world, callbacks, net)
    except TrainingError as e:
        if world.main:
            update_meta(run_dir, status="failed", error=str(e))
        raise
    if world.main:
        update_meta(run_dir, status="done", steps_done=cfg.train.steps)
    return run_dir
