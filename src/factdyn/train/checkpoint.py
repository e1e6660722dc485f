"""Resumable checkpoints: weights (safetensors), AdamW state, and the loop's own state.

A checkpoint ``step_<t>`` holds θ_t: the parameters *before* update t, exactly what the probe
log at step t measured. It is written to a temporary directory and renamed, so a kill during
a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from factdyn.files import atomic_dir, write_json_atomic

STATE = "state.json"
OPTIMIZER = "optimizer.pt"


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    done = [d for d in root.glob("step_*") if (d / STATE).is_file()]
    return sorted(done, key=lambda d: int(d.name.split("_")[1]))


def full_state(model, optimizer) -> tuple[dict, dict | None]:
    """Unsharded model and optimizer state dicts, keyed by parameter name.

    torch.distributed.checkpoint's helpers treat plain, DDP and FSDP2 models alike; every
    rank must call this (it gathers shards), only the main rank writes.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    msd = get_model_state_dict(model, options=opts)
    osd = (
        get_optimizer_state_dict(model, optimizer, options=opts) if optimizer is not None else None
    )
    return msd, osd


def save_checkpoint(
    root: Path, model, states: tuple[dict, dict | None], state: dict, keep: int, tokenizer=None
) -> Path:
    """Save θ_t with its optimizer and loop state; keep only the newest ``keep``."""
    final = root / f"step_{state['step']:07d}"
    with atomic_dir(final) as tmp:
        save_model(tmp, model, states, state, tokenizer)
    for old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_model(
    out: Path, model, states: tuple[dict, dict | None], state: dict, tokenizer=None
) -> None:
    """A Hugging Face directory that also resumes: safetensors + optimizer + state.json last."""
    msd, osd = states
    model.save_pretrained(out, state_dict=msd, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    if osd is not None:
        torch.save(osd, out / OPTIMIZER)
    write_json_atomic(out / STATE, state)


def read_state(path: Path) -> dict:
    f = Path(path) / STATE
    return json.loads(f.read_text()) if f.is_file() else {}


def load_optimizer_state(path: Path, model, optimizer) -> bool:
    """Restore AdamW moments saved beside a model (sharding them if the model is); False when
    there are none."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    f = Path(path) / OPTIMIZER
    if not f.is_file():
        return False
    osd = torch.load(f, map_location="cpu", weights_only=True)
    set_optimizer_state_dict(model, optimizer, osd, options=StateDictOptions(full_state_dict=True))
    return True
