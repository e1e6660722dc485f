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

STATE = "state.json"
OPTIMIZER = "optimizer.pt"


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    done = [d for d in root.glob("step_*") if (d / STATE).is_file() and not d.name.endswith(".tmp")]
    return sorted(done, key=lambda d: int(d.name.split("_")[1]))


def save_checkpoint(root: Path, model, optimizer, state: dict, keep: int, tokenizer=None) -> Path:
    """Save θ_t with its optimizer and loop state; keep only the newest ``keep``."""
    final = root / f"step_{state['step']:07d}"
    tmp = root / (final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(tmp, model, optimizer, state, tokenizer)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_model(out: Path, model, optimizer, state: dict, tokenizer=None) -> None:
    """A Hugging Face directory that also resumes: safetensors + optimizer + state.json last."""
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), out / OPTIMIZER)
    (out / STATE).write_text(json.dumps(state, indent=1))


def read_state(path: Path) -> dict:
    f = Path(path) / STATE
    return json.loads(f.read_text()) if f.is_file() else {}


def load_optimizer_state(path: Path, optimizer) -> bool:
    """Restore AdamW moments saved beside a model; False when there are none."""
    f = Path(path) / OPTIMIZER
    if not f.is_file():
        return False
    optimizer.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
    return True
