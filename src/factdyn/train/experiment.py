"""``factdyn train``: a knowledge-injection run from a config, into a run directory.

Wires the pieces (items, schedule, placement, data source, model, optimizer, probe logger,
checkpoints) and hands them to :func:`factdyn.train.loop.run_loop`. All input is validated
before the run directory is created, so bad input never leaves a half-written run behind.
"""

from __future__ import annotations

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
from factdyn.rundir import init_logs, open_log
from factdyn.score.requests import probe_table
from factdyn.train import checkpoint as ckpt
from factdyn.train.distributed import World, barrier, setup, teardown, wrap
from factdyn.train.evaluation import ProbeLogger, eval_schedule
from factdyn.train.loop import Batcher, make_optimizer, run_loop


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


def resolve_defaults(cfg: RunConfig) -> RunConfig:
    """Fill the offline world and base model from factdyn's cache (building them if needed)."""
    from factdyn import cache

    cfg = cfg.model_copy(deep=True)
    if cfg.data.source == "world" and cfg.data.path is None:
        cfg.data.path = str(cache.default_world())
    if cfg.model.name is None:
        cfg.model.name = str(
            cache.default_base(Path(cfg.data.path)) if cfg.data.source == "world" else None
        )
    if cfg.injection.items is None:
        if cfg.data.source != "world":
            raise DataError(
                "config, field 'injection.items': required unless data.source is 'world'"
            )
        cfg.injection.items = str(Path(cfg.data.path) / "knowledge.json")
    return cfg


def make_plan(cfg: RunConfig, tokenizer) -> Plan:
    """Validate and plan the run: schedule, placements (length errors here), eval steps."""
    items = load_items(cfg.injection.items)
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
    return Plan(
        cfg,
        items,
        scenarios,
        placements,
        tokens,
        steps,
        mask,
        str(cfg.model.name),
        ckpt.read_state(Path(cfg.model.name)),
    )


def _write_run_dir(plan: Plan, run_dir: Path, probes, world: World) -> None:
    """Create the run directory (config, tables, preallocated logs) atomically."""
    with atomic_dir(run_dir) as tmp:
        _fill_run_dir(plan, tmp, probes, world)


def _fill_run_dir(plan: Plan, tmp: Path, probes, world: World) -> None:
    cfg = plan.cfg
    (tmp / "config.yaml").write_text(dump_config(cfg))
    table = probe_table(plan.items).reset_index(drop=True)
    table.insert(0, "probe_id", np.arange(len(table), dtype=np.int64))
    table.insert(2, "scenario", [plan.scenarios[i] for i in table["item"]])
    table.to_parquet(tmp / "probes.parquet", index=False)
    counts = plan.placements.groupby("item").step.nunique()
    pd.DataFrame(
        {
            "item": np.arange(len(plan.items), dtype=np.int64),
            "scenario": plan.scenarios,
            "n_injections": [int(counts.get(i, 0)) for i in range(len(plan.items))],
        }
    ).to_parquet(tmp / "items.parquet", index=False)
    plan.placements.to_parquet(tmp / "injections.parquet", index=False)
    init_logs(tmp, plan.steps, len(probes), len(plan.items), cfg.train.steps)
    write_json_atomic(
        tmp / "meta.json",
        {
            "status": "running",
            "steps_done": 0,
            "total_steps": cfg.train.steps,
            "tokens_per_step": cfg.train.batch_size * cfg.data.seq_len,
            "window": cfg.eval.window,
            "seq_len": cfg.data.seq_len,
            "batch_size": cfg.train.batch_size,
            "world_size": world.size,
            "model": plan.model_path,
            "base_state": plan.base_state,
        },
    )


def train(cfg: RunConfig, run_dir: Path, resume: bool = False) -> Path:
    """Run (or resume) an injection experiment; returns the run directory."""
    from factdyn.data.sources import build_source
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.requests import encode_probes, encode_texts

    world = setup(cfg.model.device)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if resume:
            cfg = RunConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
        elif world.main:
            cfg = resolve_defaults(cfg)
        if not resume and world.size > 1:
            barrier(world)
            cfg = resolve_defaults(cfg)  # now cached: every rank resolves the same paths
        if not resume and run_dir.exists() and any(run_dir.iterdir()):
            raise DataError(f"{run_dir}: run directory exists and is not empty (use --resume)")
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
        plan = make_plan(cfg, tokenizer)
        source = build_source(cfg.data, tokenizer)
        probes = encode_probes(tokenizer, plan.items)
        contexts = (
            encode_texts(tokenizer, [it.train_context for it in plan.items])
            if cfg.eval.contexts
            else None
        )
        if not resume and world.main:
            _write_run_dir(plan, run_dir, probes, world)
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
) -> Path:
    cfg = plan.cfg
    if cfg.model.gradient_checkpointing:
        # transformers renamed it; the old name still exists on older releases we support
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
    model.train()
    wrapped = wrap(model, world, fsdp=cfg.model.fsdp)
    net = torch.compile(wrapped) if cfg.model.compile else wrapped
    opt = make_optimizer(wrapped, cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay)
    state = ckpt.read_state(resume_from) if resume_from else {}
    if resume_from is not None:
        ckpt.load_optimizer_state(resume_from, wrapped, opt)
    elif cfg.optim.load_state:
        ckpt.load_optimizer_state(Path(plan.model_path), wrapped, opt)
    base = plan.base_state
    sched_start = (
        cfg.optim.schedule_start
        if cfg.optim.schedule_start is not None
        else int(base.get("step", 0))
    )
    peak = cfg.optim.lr if cfg.optim.lr is not None else base.get("lr")
    if peak is None:
        raise DataError(
            "config, field 'optim.lr': required (the checkpoint records no learning rate)"
        )
    lr_kwargs = {
        "peak": peak,
        "schedule": cfg.optim.schedule,
        "warmup": cfg.optim.warmup_steps,
        "total": cfg.optim.schedule_total or sched_start + cfg.train.steps,
        "min_ratio": cfg.optim.min_lr_ratio,
    }
    start_pos = cfg.data.start if cfg.data.start is not None else int(base.get("data_position", 0))
    by_step = {int(s): g for s, g in plan.placements.groupby("step")}
    batcher = Batcher(
        source,
        start_pos,
        cfg.train.batch_size,
        by_step,
        plan.tokens,
        cfg.injection.placement,
        tokenizer.eos_token_id,
        world,
    )
    logger = ProbeLogger(
        run_dir,
        plan.steps,
        plan.mask,
        probes,
        probe_table(plan.items)["item"].to_numpy(),
        contexts,
        world,
        cfg.eval.batch_tokens,
        split=not cfg.model.fsdp,
    )
    tps = cfg.train.batch_size * cfg.data.seq_len
    start = int(state.get("step", 0))
    micro = cfg.train.micro_batch_size or cfg.train.batch_size // world.size

    def on_start(step: int) -> None:
        logger.maybe_log(step, model)
        if step > start and (step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps):
            states = ckpt.full_state(wrapped, opt)  # collective: every rank takes part
            if world.main:
                ckpt.save_checkpoint(
                    run_dir / "checkpoints",
                    model,
                    states,
                    {"step": step},
                    cfg.train.keep_checkpoints,
                    tokenizer,
                )
                _update_meta(run_dir, steps_done=step)
            barrier(world)

    train_log = open_log(run_dir, "train.npy") if world.main else None  # once, not per step

    def on_end(step: int, loss: float, lr: float) -> None:
        if train_log is not None:
            train_log[step] = (loss, lr, (step + 1) * tps)
            train_log.flush()

    try:
        run_loop(
            model=net,
            optimizer=opt,
            batcher=batcher,
            start_step=start,
            total_steps=cfg.train.steps,
            lr_kwargs=lr_kwargs,
            schedule_start=sched_start,
            micro_batch=micro,
            grad_clip=cfg.optim.grad_clip,
            world=world,
            tokens_per_step=tps,
            on_step_start=on_start,
            on_step_end=on_end,
            autocast_dtype=torch.bfloat16 if cfg.model.dtype == "bf16" else None,
        )
    except TrainingError as e:
        if world.main:
            _update_meta(run_dir, status="failed", error=str(e))
        raise
    if world.main:
        _update_meta(run_dir, status="done", steps_done=cfg.train.steps)
    return run_dir


def _update_meta(run_dir: Path, **kv: object) -> None:
    import json

    meta = json.loads((run_dir / "meta.json").read_text())
    meta.update(kv)
    write_json_atomic(run_dir / "meta.json", meta)
