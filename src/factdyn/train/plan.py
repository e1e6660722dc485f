"""The plan of a run: everything decided before training starts, from the config alone.

Inputs are checked (given, existing, fitting ``seq_len``), the injection schedule and each
injection's batch row are laid out, the evaluation schedule and the learning-rate schedule
are fixed. A resume that extends ``train.steps`` is accepted only when the longer plan
agrees with everything already done (:func:`check_extension`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.config import RunConfig
from factdyn.data.items import KnowledgeItem, load_items
from factdyn.errors import DataError
from factdyn.inject.placement import plan_placements
from factdyn.inject.schedule import build_schedule
from factdyn.score.requests import check_lengths
from factdyn.train import checkpoint as ckpt
from factdyn.train.evaluation import eval_schedule
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
    fixed = () if inj.allow_truncation else {(i.item, i.variant) for i in schedule}
    check_lengths(items, tokenizer, cfg.data.seq_len, sorted(fixed), cfg.eval.contexts)
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


def check_extension(old: Plan, new: Plan, start: int) -> None:
    """A longer train.steps may continue a run from θ_start only if everything before it is
    what the longer run would have done: the same learning rates, injections and logged
    steps. A schedule spread over train.steps is not: a decaying lr without
    optim.schedule_total, or the sparse log-spaced tail once the run has reached it."""
    why = None
    lrs = [[lr_at(p.schedule_start + t, **p.lr_kwargs) for t in range(start)] for p in (old, new)]
    if lrs[0] != lrs[1]:
        why = "changes the learning rates already used (the schedule's length follows train.steps)"
    elif not old.placements.equals(new.placements):
        why = "changes the injections"
    else:
        a, b = old.steps <= start, new.steps <= start
        if not (
            np.array_equal(old.steps[a], new.steps[b]) and np.array_equal(old.mask[a], new.mask[b])
        ):
            why = "changes which steps before it are logged (sparse tail spans train.steps)"
    if why:
        raise DataError(
            f"train.steps: extending {old.cfg.train.steps} -> {new.cfg.train.steps} from step "
            f"{start} {why}; start a new run with --out"
        )
