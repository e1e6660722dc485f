"""``factdyn train --dry-run``: size, memory and compute of a run, without loading weights.

The model is built on torch's ``meta`` device from its configuration alone, so the parameter
count is exact; memory and FLOPs are the standard estimates (stated in the output).
"""

from __future__ import annotations

import torch

from factdyn.config import RunConfig
from factdyn.errors import DataError


def count_parameters(name: str, revision: str | None = None) -> tuple[int, object]:
    """Exact parameter count of a model from its config (no weights read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(name, revision=revision)
    except OSError as e:
        raise DataError(
            f"{name}: cannot read the model config ({str(e).splitlines()[0]})"
        ) from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters()), config


def estimate(cfg: RunConfig, devices: int) -> dict:
    """Parameters, per-device memory (GiB) and FLOPs per optimizer step."""
    n, config = count_parameters(str(cfg.model.name), cfg.model.revision)
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
        "parameters": n,
        "devices": devices,
        "tokens_per_step": tokens,
        "flops_per_step": float(flops),
        "memory_per_device_gib": (state_bytes + act_bytes) / 2**30,
        "state_gib": state_bytes / 2**30,
        "activations_gib": act_bytes / 2**30,
    }


def describe(cfg: RunConfig, devices: int) -> str:
    e = estimate(cfg, devices)
    rev = f"@{e['revision']}" if e["revision"] else ""
    return "\n".join(
        [
            f"model              {e['model']}{rev}",
            f"parameters         {e['parameters']:,}",
            f"devices            {e['devices']}{' (FSDP)' if cfg.model.fsdp else ' (DDP)'}",
            f"tokens per step    {e['tokens_per_step']:,}",
            f"FLOPs per step     {e['flops_per_step']:.3e}  (6·N·tokens + attention)",
            f"memory per device  {e['memory_per_device_gib']:.1f} GiB  "
            f"(weights+grads+AdamW {e['state_gib']:.1f}, activations {e['activations_gib']:.1f})",
        ]
    )
