"""Resumable checkpoints you can trust: weights (safetensors), AdamW state, the loop's state,
and a manifest that commits them.

A checkpoint ``step_<t>`` holds θ_t: the parameters *before* update t, exactly what the probe
log at step t measured. It is written to a temporary directory and renamed, so a kill during
a save leaves the previous checkpoint intact. Its last file is ``manifest.json`` (every other
file's size and SHA-256), written after the others were read back from disk, the commit
marker of PyTorch DCP and OLMo-core: a checkpoint without one, or whose files no longer match
it (truncated, deleted, bit-flipped), is not used. A resume takes the newest checkpoint that
verifies (:func:`choose_checkpoint`); rotation never removes the newest verified one.

Whatever else must survive a restart (the data position, the probe log, the training log, the
trackers) is a :class:`Stateful` component that saves its state into ``state.json`` and
restores itself from it (torchtitan's ``Stateful``): :func:`loop_state`, :func:`restore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from factdyn.errors import DataError
from factdyn.files import atomic_dir, write_json_atomic

STATE = "state.json"
OPTIMIZER = "optimizer.pt"
MANIFEST = "manifest.json"
FORMAT = "factdyn-checkpoint/1"


def step_of(path: Path) -> int | None:
    """The step in a ``step_<t>`` directory name (None for anything else)."""
    head, _, num = path.name.partition("_")
    return int(num) if head == "step" and num.isdigit() else None


def checkpoint_dirs(root: Path) -> list[Path]:
    """Every ``step_<t>`` directory under ``root``, committed or not, oldest first."""
    if not root.is_dir():
        return []
    found = [d for d in root.iterdir() if d.is_dir() and step_of(d) is not None]
    return sorted(found, key=step_of)


def _sha256(path: Path, sync: bool = False) -> str:
    """SHA-256 of a file, read in 8 MiB blocks; with ``sync`` also fsynced, since the
    manifest that records it must not reach the disk before the file does (verifying a
    checkpoint only reads)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


def write_manifest(directory: Path, **info: object) -> None:
    """Commit ``directory``: record every file's size and SHA-256 in ``manifest.json``, last."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {
        str(p.relative_to(directory)): {"size": p.stat().st_size, "sha256": _sha256(p, sync=True)}
        for p in files
    }
    write_json_atomic(directory / MANIFEST, {"format": FORMAT, **info, "files": entries})


def manifest_problems(directory: Path) -> list[tuple[str, str]]:
    """What is wrong with a committed directory, as (file, problem) pairs; [] when every file
    the manifest lists is there with its size and hash. Sizes are checked before any hash."""
    f = directory / MANIFEST
    if not f.is_file():
        return [(MANIFEST, "missing (the checkpoint was never committed)")]
    try:
        files = json.loads(f.read_text())["files"]
        entries = {str(k): (int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return [(MANIFEST, "unreadable")]
    problems = []
    for name, (size, _) in entries.items():
        p = directory / name
        if not p.is_file():
            problems.append((name, "missing"))
        elif p.stat().st_size != size:
            problems.append((name, f"size {p.stat().st_size}, expected {size}"))
    if problems:
        return problems
    return [
        (n, "hash mismatch") for n, (_, sha) in entries.items() if _sha256(directory / n) != sha
    ]


def verify_model_dir(path: Path) -> None:
    """A local model directory that carries a manifest (a pretrained base) must match it."""
    path = Path(path)
    if (path / MANIFEST).is_file() and (problems := manifest_problems(path)):
        name, what = problems[0]
        raise DataError(f"{path}: model directory is damaged ({name}: {what})")


@dataclass(frozen=True)
class Choice:
    """Where a resume starts: a verified checkpoint (None: the base model, nothing was ever
    saved), whether its optimizer state is missing, and what stderr should tell the user."""

    path: Path | None
    missing_optimizer: bool = False
    notice: str | None = None


def _usable(problems: list[tuple[str, str]], allow_missing_optimizer: bool) -> bool:
    return not problems or (allow_missing_optimizer and problems == [(OPTIMIZER, "missing")])


def _chosen(d: Path, missing_optimizer: bool, passed: list[str]) -> Choice:
    """The choice of ``d`` and one line naming the newest checkpoint passed over."""
    notes = []
    if passed:
        more = f" (and {len(passed) - 1} more)" if len(passed) > 1 else ""
        notes.append(f"checkpoint {passed[0]}{more}; resuming from {d.name}")
    if missing_optimizer:
        notes.append(
            f"{d.name} has no {OPTIMIZER}: AdamW moments restart from zero, so the log will "
            "differ from an uninterrupted run"
        )
    return Choice(d, missing_optimizer, "; ".join(notes) or None)


def choose_checkpoint(
    root: Path, committed_step: int, allow_missing_optimizer: bool = False
) -> Choice:
    """The newest checkpoint that verifies, naming the newer ones passed over and why.

    ``committed_step`` is the newest step the run recorded as saved (meta.json's steps_done),
    so a deleted checkpoint directory is noticed too. With nothing usable: the base model if
    nothing was ever saved, else a one-line :class:`DataError` (a silent restart from the base
    would throw away the run's progress; a new run from its config.yaml does that explicitly).
    A missing optimizer.pt is damage unless ``allow_missing_optimizer``.
    """
    dirs = checkpoint_dirs(root)
    passed: list[tuple[int, str]] = []
    if committed_step > 0 and committed_step not in map(step_of, dirs):
        passed.append((committed_step, f"step_{committed_step:07d} is missing"))
    for d in reversed(dirs):
        problems = manifest_problems(d)
        if _usable(problems, allow_missing_optimizer):
            newer = [r for s, r in sorted(passed, reverse=True) if s > step_of(d)]
            return _chosen(d, bool(problems), newer)
        passed.append((step_of(d), f"{d.name} is damaged ({problems[0][0]}: {problems[0][1]})"))
    if not passed:
        return Choice(None)
    reasons = [r for _, r in sorted(passed, reverse=True)]
    hint = (
        f"; --allow-missing-optimizer resumes without {OPTIMIZER}"
        if any(f"({OPTIMIZER}: missing)" in r for r in reasons)
        else ""
    )
    raise DataError(
        f"{root}: no intact checkpoint to resume from ({'; '.join(reasons)}); to recompute "
        f"from the base model, start a new run from its config.yaml{hint}"
    )


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


def non_finite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of this rank's parameters (its shards, under FSDP) holding NaN or ±inf."""
    bad = []
    for name, p in model.named_parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        if not bool(torch.isfinite(local).all()):
            bad.append(name)
    return bad


def save_checkpoint(
    root: Path, model, states: tuple[dict, dict | None], state: dict, keep: int, tokenizer=None
) -> Path:
    """Save and commit θ_t with its optimizer and loop state, then rotate (:func:`rotate`)."""
    final = root / f"step_{state['step']:07d}"
    with atomic_dir(final) as tmp:
        save_model(tmp, model, states, state, tokenizer)
    rotate(root, final, keep)
    return final


def rotate(root: Path, newest: Path, keep: int) -> None:
    """Keep ``newest`` (just committed, so verified) and the ``keep - 1`` checkpoints before
    it. Directories after it are damaged ones a fallback passed over: kept for the user to
    look at, until a save of their step replaces them."""
    older = [d for d in checkpoint_dirs(root) if step_of(d) < step_of(newest)]
    for old in older[: max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


def save_model(
    out: Path, model, states: tuple[dict, dict | None], state: dict, tokenizer=None
) -> None:
    """A Hugging Face directory that also resumes: safetensors + optimizer + state.json, then
    the manifest that commits them."""
    msd, osd = states
    model.save_pretrained(out, state_dict=msd, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    if osd is not None:
        torch.save(osd, out / OPTIMIZER)
    write_json_atomic(out / STATE, state)
    write_manifest(out, step=state.get("step"))


def read_state(path: Path) -> dict:
    f = Path(path) / STATE
    return json.loads(f.read_text()) if f.is_file() else {}


class Stateful(Protocol):
    """A component that must survive a restart. Its state is a small JSON mapping that holds
    at least ``step``, the step the checkpoint resumes at; given only ``{"step": t}`` (a
    checkpoint from before it saved itself, or a component new on resume) it restores what
    an uninterrupted run has at step t."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def loop_state(step: int, components: Mapping[str, Stateful]) -> dict:
    """``state.json`` of θ_``step``: the step and every component's own state by its name
    (names other than a base's keys: a checkpoint may be continued as a base)."""
    return {"step": step, **{name: c.state_dict() for name, c in components.items()}}


def restore(path: Path, components: Mapping[str, Stateful]) -> int:
    """Every component restored from the checkpoint at ``path``, in order; the step it holds."""
    state = read_state(path)
    step = int(state.get("step", 0))
    for name, component in components.items():
        component.load_state_dict(state.get(name) or {"step": step})
    return step


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
