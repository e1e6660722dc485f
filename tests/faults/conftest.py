"""Shared ground for the fault cases: a folder of things a user cares about, and ways to break
the machine under a command.

``place`` is a fresh folder per case (also the working directory, so a command that writes
into the cwd is caught) holding two small synthetic run directories (no training), a folder
of the user's own files, a plain file and an earlier export. The toy world and base model of
``tests/conftest.py`` serve the few cases that must reach training; the snapshot of a case
covers them too, so an input folder that gains a file fails the case.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "analyze"))
from analyze_synth import planted_run, write_run_dir  # noqa: E402

# A 3-step training run on the toy world: one injection at step 0, every step logged.
TINY_RUN = [
    "data.seq_len=64",
    "train.batch_size=8",
    "train.steps=3",
    "train.checkpoint_every=2",
    "train.threads=2",
    "injection.scenarios=[{name: once, variant: duplicate, count: 1}]",
    "injection.n_controls=2",
    "injection.cohorts=1",
    "eval.window=2",
    "eval.schedule=every",
]
# A pretraining that takes a second: what `factdyn pretrain --set` accepts.
TINY_BASE = [
    "hidden_size=32",
    "layers=1",
    "heads=2",
    "intermediate_size=64",
    "seq_len=32",
    "batch_size=2",
    "steps=2",
    "warmup_steps=1",
    "threads=2",
]


@dataclass
class Place:
    root: Path
    run: Path  # a finished synthetic run, with a checkpoint folder
    run2: Path  # a second one, with a different batch size
    user: Path  # a folder of the user's own files
    file: Path  # a plain file
    export: Path  # an earlier export (a user's result)


@pytest.fixture(scope="session")
def run_templates(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fault-runs")
    runs = []
    for k, batch in enumerate((16, 32)):
        config = {"train": {"batch_size": batch, "steps": 200}, "eval": {"window": 10}}
        planted = planted_run(
            schedules={"duplicate": [0, 40, 80], "once": [0]},
            items_per_scenario=3,
            probes_per_depth=2,
            total=200,
            seed=k,
            config=config,
        )
        path = write_run_dir(planted.run, root / f"run{k}")
        (path / "checkpoints" / "step_200").mkdir(parents=True)
        (path / "checkpoints" / "step_200" / "model.safetensors").write_bytes(b"weights")
        runs.append(path)
    return runs[0], runs[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """factdyn's cache for the fault cases (outside every snapshot), shared by all."""
    return tmp_path_factory.mktemp("fault-cache")


@pytest.fixture
def place(tmp_path, run_templates, cache_dir, monkeypatch) -> Place:
    root = tmp_path / "place"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("FACTDYN_CACHE", str(cache_dir))
    run = Path(shutil.copytree(run_templates[0], root / "run"))
    run2 = Path(shutil.copytree(run_templates[1], root / "run2"))
    user = root / "mine"
    (user / "figures").mkdir(parents=True)
    (user / "notes.txt").write_text("my notes")
    (user / "figures" / "drawing.png").write_bytes(b"my drawing")
    file = root / "file.txt"
    file.write_text("a file")
    export = root / "old.parquet"
    export.write_bytes(b"an earlier export")
    return Place(root, run, run2, user, file, export)


@pytest.fixture
def break_writes(monkeypatch) -> Callable[[int], None]:
    """``break_writes(errno.ENOSPC)``: from now on every rename into place fails with that
    error, as a full disk, a read-only mount or a revoked permission makes it fail (the
    tests may run as root, where chmod stops nothing)."""

    def install(code: int) -> None:
        def fail(src, dst, *args, **kwargs):
            raise OSError(code, os.strerror(code), str(dst))

        monkeypatch.setattr(os, "replace", fail)
        monkeypatch.setattr(os, "rename", fail)

    return install


def _sets(values: list[str]) -> list[str]:
    return [a for v in values for a in ("--set", v)]


@pytest.fixture
def train_args(tokenized_world, toy_base) -> list[str]:
    """``factdyn train`` arguments of a 3-step run on the toy world and base."""
    return ["--world", str(tokenized_world), "--model", str(toy_base), *_sets(TINY_RUN)]


@pytest.fixture
def pretrain_args(tokenized_world) -> list[str]:
    """``factdyn pretrain`` arguments of a 2-step tiny base on the toy world."""
    return ["--world", str(tokenized_world), *_sets(TINY_BASE)]


@pytest.fixture(scope="session")
def tokenized_world(toy_world, cache_dir) -> Path:
    """The toy world's corpus tokenized once into the shared cache, so that no case prints
    a tokenizing progress bar among its messages."""
    from transformers import AutoTokenizer

    from factdyn.data.corpus import cached_tokens, corpus_files

    tokenizer = AutoTokenizer.from_pretrained(toy_world / "tokenizer")
    cached_tokens(corpus_files(toy_world), tokenizer, cache_dir / "tokens")
    return toy_world


@pytest.fixture
def inputs(tokenized_world, toy_base) -> list[Path]:
    """The input folders a training case reads: none may change."""
    return [tokenized_world, toy_base]
