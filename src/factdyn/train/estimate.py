"""``factdyn train --dry-run``: size, memory and compute of a run, without loading weights;
and what a run's plan and logs will take of this machine's memory and disk, refused before
they are built.

The model is built on torch's ``meta`` device from its configuration alone, so the parameter
count is exact; memory and FLOPs are the standard estimates (stated in the output). The
configuration is the model's own ``config.json`` when ``model.name`` is a local directory,
else ``model.shape`` when the config has one (every checkpoint preset does: no download),
else the ``config.json`` read from the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from factdyn.budget import check_disk, check_memory
from factdyn.config import ModelConfig, ModelShape, RunConfig
from factdyn.errors import DataError
from factdyn.rundir import STATS, TRAIN_COLUMNS


def shape_config(shape: ModelShape):
    """The transformers configuration of ``shape``'s family (nothing read from anywhere)."""
    from transformers import GPTNeoXConfig, LlamaConfig, OlmoConfig

    common = {
        "num_hidden_layers": shape.layers,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_attention_heads": shape.heads,
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": shape.tie_embeddings,
    }
    if shape.family == "gpt_neox":  # validated: no grouped-query attention
        return GPTNeoXConfig(**common)
    cls = LlamaConfig if shape.family == "llama" else OlmoConfig
    return cls(**common, num_key_value_heads=shape.kv_heads or shape.heads)


def _meta_count(config) -> int:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())  # tied weights once


@lru_cache(maxsize=32)
def _shape_count(shape_json: str) -> tuple[int, object]:
    config = shape_config(ModelShape.model_validate_json(shape_json))
    return _meta_count(config), config


def count_parameters(model: ModelConfig | str, revision: str | None = None) -> tuple[int, object]:
    """Exact parameter count of a model and its transformers configuration (no weights read).

    ``model``: a :class:`ModelConfig` (its local ``config.json``, else its ``shape``, else the
    hub's ``config.json`` at ``model.revision``) or a path / hub id (its ``config.json``).
    """
    if isinstance(model, ModelConfig):
        name, revision = model.name, model.revision
        local = name is not None and (Path(name) / "config.json").is_file()
        if model.shape is not None and not local:
            return _shape_count(model.shape.model_dump_json())
    else:
        name = model
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(name), revision=revision)
    except OSError as e:
        raise DataError(
            f"{name}: cannot read the model config ({str(e).splitlines()[0]}); "
            "model.shape gives the architecture without a download"
        ) from None
    return _meta_count(config), config


def _architecture(model: ModelConfig) -> str:
    """Where the parameter count's architecture came from (as :func:`count_parameters`)."""
    name = model.name
    if model.shape is None or (name is not None and (Path(name) / "config.json").is_file()):
        return "config.json"
    s = model.shape
    return f"model.shape: {s.family}, {s.layers} layers x {s.hidden_size}"


def estimate(cfg: RunConfig, devices: int) -> dict:
    """Parameters, per-device memory (GiB) and FLOPs per optimizer step."""
    n, config = count_parameters(cfg.model)
    layers = getattr(config, "num_hidden_layers", 0)
    hidden = getattr(config, "hidden_size", 0)
    seq, batch = cfg.data.seq_len, cfg.train.batch_size
    tokens = batch * seq
    # 6·N per token (forward + backward) plus attention scores: 12·layers·hidden·seq per token.
    flops = 6 * n * tokens + 12 * layers * hidden * seq * tokens
    # fp32 weights + grads + AdamW moments = 16 B/param; bf16 autocast keeps fp32 master weights.
    state_bytes = 16 * n
    if cfg.model.fsdp:
        state_bytes /= devices
    micro = cfg.train.micro_batch_size or batch // devices
    # activations kept for backward: ~34·hidden + 5·heads·seq bytes per token per layer (bf16
    # rule of thumb from Korthikanti et al.), doubled for fp32; checkpointing keeps ~1 layer.
    heads = getattr(config, "num_attention_heads", 1)
    per_tok = (34 * hidden + 5 * heads * seq) * (1 if cfg.model.dtype == "bf16" else 2)
    act_layers = 1 if cfg.model.gradient_checkpointing else layers
    act_bytes = per_tok * micro * seq * act_layers
    return {
        "model": cfg.model.name,
        "revision": cfg.model.revision,
        "architecture": _architecture(cfg.model),
        "parameters": n,
        "devices": devices,
        "tokens_per_step": tokens,
        "flops_per_step": float(flops),
        "memory_per_device_gib": (state_bytes + act_bytes) / 2**30,
        "state_gib": state_bytes / 2**30,
        "activations_gib": act_bytes / 2**30,
    }


def run_hours(
    cfg: RunConfig,
    devices: int,
    flops_per_second: float,
    scored_tokens_per_step: float = 0,
) -> float:
    """Estimated wall-clock hours of the whole run (``train.steps`` steps)::

        hours = train.steps × (F_step + 2·N·S) / (devices × flops_per_second) / 3600

    F_step: training FLOPs per optimizer step (:func:`estimate`: 6·N·tokens + attention);
    N: parameters; S: ``scored_tokens_per_step``, the probe tokens scored per
    step, averaged over the run (a forward pass only: ≈ 2·N FLOPs per token; its attention
    term is left out). S is the caller's: it depends on the items, depths and evaluation
    schedule, which the config alone does not give (0 = training only).
    ``flops_per_second``: what one device sustains (its peak × the expected utilisation).
    Checkpoint writes, data loading and start-up are not counted.
    """
    if devices < 1 or flops_per_second <= 0 or scored_tokens_per_step < 0:
        raise ValueError("devices must be >= 1, flops_per_second > 0, scored tokens >= 0")
    e = estimate(cfg, devices)
    per_step = e["flops_per_step"] + 2 * e["parameters"] * scored_tokens_per_step
    return cfg.train.steps * per_step / (devices * flops_per_second) / 3600


def describe(cfg: RunConfig, devices: int) -> str:
    e = estimate(cfg, devices)
    rev = f"@{e['revision']}" if e["revision"] else ""
    return "\n".join(
        [
            f"model              {e['model']}{rev}",
            f"parameters         {e['parameters']:,}  ({e['architecture']})",
            f"devices            {e['devices']}{' (FSDP)' if cfg.model.fsdp else ' (DDP)'}",
            f"tokens per step    {e['tokens_per_step']:,}",
            f"FLOPs per step     {e['flops_per_step']:.3e}  (6·N·tokens + attention)",
            f"memory per device  {e['memory_per_device_gib']:.1f} GiB  "
            f"(weights+grads+AdamW {e['state_gib']:.1f}, activations {e['activations_gib']:.1f})",
        ]
    )


# ---- what a run's plan and logs cost, from the config and the schedule alone ----

# Bytes per logged step of the plan and the probe logger: the step (8), its row of the
# item mask (one per item) and the logger's row index (a dict entry, 100-190 bytes as the
# table's fill varies); and per entry of the sparse schedule's Python sets (50-90). The
# peak tracemalloc measured: 125-160 bytes a step for `every` (10^5-2·10^6 steps), 230-300
# for `sparse` with overlapping windows; each under this estimate.
STEP_BYTES = 200
SET_ENTRY_BYTES = 96


def logged_steps(cfg: RunConfig, injected: Sequence[Sequence[int]]) -> tuple[int, int]:
    """Upper bounds of the steps the evaluation schedule logs and of the entries the sparse
    schedule's sets hold on the way, for items injected at ``injected[i]``, computed without
    building the schedule (:func:`~factdyn.train.evaluation.eval_schedule`): each distinct
    pattern of injection steps logs its windows and its log-spaced tail."""
    total = cfg.train.steps
    if cfg.eval.schedule == "every":
        return total + 1, 0
    patterns = {tuple(sorted(set(s))) for s in injected if len(s)} or {()}
    span = min(cfg.eval.window, total) + 1
    own = sum(min(total + 1, len(p) * span + cfg.eval.log_points + 2) for p in patterns)
    return min(total + 1, own), own


def plan_bytes(cfg: RunConfig, injected: Sequence[Sequence[int]]) -> float:
    """Peak memory of the run's evaluation schedule, and of the probe logger that reads it,
    for items injected at ``injected[i]``."""
    steps, entries = logged_steps(cfg, injected)
    return steps * (STEP_BYTES + len(injected)) + entries * SET_ENTRY_BYTES


def check_plan_memory(cfg: RunConfig, injected: Sequence[Sequence[int]]) -> None:
    """Refuse, before the schedule is built, a run whose logged steps the machine's memory
    cannot hold (``train.steps`` of 10^12 used to end in a MemoryError)."""
    steps, _ = logged_steps(cfg, injected)
    fix = "lower train.steps (--steps)"
    if cfg.eval.schedule == "every":
        fix += ", or set eval.schedule=sparse (its windows, then log-spaced steps)"
    else:
        fix += ", eval.window or eval.log_points"
    check_memory(
        plan_bytes(cfg, injected),
        f"train.steps={cfg.train.steps:,} with eval.schedule={cfg.eval.schedule} (up to "
        f"{steps:,} logged steps of {len(injected):,} items)",
        fix,
    )


def log_bytes(logged: int, probes: int, steps: int) -> float:
    """Bytes of a run's preallocated logs (:func:`~factdyn.rundir.init_logs`): steps.npy
    (8 a logged step), logprobs.npy (float32, one per logged step × probe × statistic) and
    train.npy (float64, one per step × column), each with its 128-byte header."""
    return 3 * 128 + 8 * logged + 4 * logged * probes * len(STATS) + 8 * steps * len(TRAIN_COLUMNS)


def check_log_space(run_dir: Path, logged: int, probes: int, steps: int) -> None:
    """Refuse a run whose logs the free disk where they go cannot hold, before a byte of them
    is written; a resume counts what its logs already take."""
    held = sum(
        (run_dir / f).stat().st_size
        for f in ("steps.npy", "logprobs.npy", "train.npy")
        if (run_dir / f).is_file()
    )
    check_disk(
        log_bytes(logged, probes, steps) - held,
        run_dir,
        f"train.steps={steps:,} ({logged:,} logged steps × {probes:,} probes)",
        "lower train.steps (--steps), log fewer steps or probes (eval.schedule, "
        "injection.max_items), or give --out a disk with room",
    )
