"""Bad inputs (issue 12, items 2-5): damaged run logs, hostile configurations, a device the
machine lacks, texts that can never fit; each is one line and exit 2 before anything is
written, and no input folder is ever written to.

Every case runs in the fault ``place`` (see conftest.py) and must leave every file and
folder there, and in the toy world and base when it reads them, exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from harness import assert_refused, run_cli, snapshot

DEEP = 100_000


@dataclass(frozen=True)
class Case:
    args: Callable  # (place, request) -> command line; may damage a file of the place first
    mentions: str
    training: bool = False  # reads the toy world and base (they are watched too)


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def put(path: Path, content: str | bytes) -> Path:
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def damaged(name: str, command: str = "analyze", how=truncate) -> Callable:
    """A command on the place's run after ``how`` damaged one of its files."""

    def args(p, request) -> list:
        how(p.run / name)
        if command == "export":
            return ["export", p.run, "--out", p.root / "x.parquet"]
        if command == "compare":
            return ["compare", p.run, p.run2, "--out", p.root / "cmp"]
        return [command, p.run]

    return args


def config(content: str | bytes, *more: str) -> Callable:
    """``factdyn train CONFIG --print-config``: the config is read and checked, nothing run."""

    def args(p, request) -> list:
        return ["train", put(p.root / "bad.yaml", content), *more, "--print-config"]

    return args


def sets(*overrides: str) -> Callable:
    return lambda p, r: ["train", *(a for o in overrides for a in ("--set", o)), "--print-config"]


def training(*overrides: str, items: Callable[[list], None] | None = None) -> Callable:
    """A real ``factdyn train --out`` on the toy world, with ``items`` edited first."""

    def args(p, request) -> list:
        more = [a for o in overrides for a in ("--set", o)]
        if items is not None:
            world = request.getfixturevalue("tokenized_world")
            data = json.loads((world / "knowledge.json").read_text())
            items(data)
            path = put(p.root / "items.json", json.dumps(data))
            more += ["--set", f"injection.items={path}"]
        return ["train", *request.getfixturevalue("train_args"), *more, "--out", p.root / "new"]

    return args


def long_target(data: list) -> None:
    data[0]["mem_target"][0] = "Frace " * 350_000  # about 2 MB


def long_probe(data: list) -> None:
    data[0]["mem_input"][0] = " ".join(f"Word{k}" for k in range(60))


def long_context(data: list) -> None:
    data[0]["train_context"] = "Anbello was founded. " * 100_000


def bad_shape(path: Path) -> None:
    np.save(path, np.zeros((3, 4), dtype=np.float32))


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

CASES: dict[str, Case] = {
    # --- damaged run logs (analyze / export / compare / report) ---
    "analyze-truncated-logprobs": Case(damaged("logprobs.npy"), "logprobs.npy"),
    "export-truncated-logprobs": Case(damaged("logprobs.npy", "export"), "logprobs.npy"),
    "compare-truncated-logprobs": Case(damaged("logprobs.npy", "compare"), "logprobs.npy"),
    "report-truncated-logprobs": Case(damaged("logprobs.npy", "report"), "logprobs.npy"),
    "analyze-truncated-steps": Case(damaged("steps.npy"), "steps.npy"),
    "compare-truncated-train": Case(damaged("train.npy", "compare"), "train.npy"),
    "analyze-header-only-logprobs": Case(
        damaged("logprobs.npy", how=lambda f: truncate(f, 0.0001)), "logprobs.npy"
    ),
    "analyze-garbage-meta": Case(damaged("meta.json", how=lambda f: put(f, "{oops")), "meta.json"),
    "analyze-deep-meta": Case(
        damaged("meta.json", how=lambda f: put(f, "[" * DEEP + "]" * DEEP)), "meta.json"
    ),
    "export-list-meta": Case(damaged("meta.json", "export", lambda f: put(f, "[1]")), "mapping"),
    "analyze-garbage-config": Case(
        damaged("config.yaml", how=lambda f: put(f, "a: [b")), "config.yaml"
    ),
    "analyze-garbage-items": Case(
        damaged("items.parquet", how=lambda f: put(f, b"PAR1 not parquet")), "items.parquet"
    ),
    "export-truncated-probes": Case(damaged("probes.parquet", "export"), "probes.parquet"),
    "analyze-logprobs-wrong-shape": Case(damaged("logprobs.npy", how=bad_shape), "shape"),
    "export-missing-train-log": Case(
        damaged("train.npy", "export", lambda f: f.unlink()), "train.npy"
    ),
    "analyze-not-a-run": Case(lambda p, r: ["analyze", p.user], "not a factdyn run"),
    "analyze-window-zero": Case(lambda p, r: ["analyze", p.run, "--window", "0"], "--window"),
    "analyze-negative-iqr": Case(lambda p, r: ["analyze", p.run, "--iqr", "-1"], "--iqr"),
    # --- configuration files ---
    "config-not-utf8": Case(config(b"train:\n  steps: 3 # \xff\xfe\n"), "not UTF-8"),
    "config-yaml-syntax": Case(config("train: {steps: 3"), "YAML error"),
    "config-deep-yaml": Case(config("train: " + "[" * DEEP + "]" * DEEP), "nested too deeply"),
    "config-deep-json": Case(config('{"a":' * DEEP + "1" + "}" * DEEP), "nested too deeply"),
    "config-a-list": Case(config("- train\n- steps\n"), "expected a mapping"),
    "config-missing": Case(lambda p, r: ["train", p.root / "no.yaml"], "no such config"),
    "config-steps-true": Case(config("train:\n  steps: true\n"), "train.steps"),
    "config-steps-float": Case(config("train:\n  steps: 2.5\n"), "train.steps"),
    "config-lr-string": Case(config("optim:\n  lr: '0.1'\n"), "optim.lr"),
    # --- --set and --steps ---
    "set-bad-list": Case(sets("injection.scenarios=[1,2"), "YAML error"),
    "set-no-equals": Case(sets("train.steps"), "section.key=value"),
    "set-empty-key": Case(sets("train..steps=3"), "section.key=value"),
    "set-below-a-value": Case(sets("train.steps=3", "train.steps.x=1"), "train.steps"),
    "set-negative-lr": Case(sets("optim.lr=-1e-3"), "optim.lr"),
    "set-zero-batch": Case(sets("train.batch_size=0"), "train.batch_size"),
    "set-zero-window": Case(sets("eval.window=0"), "eval.window"),
    "set-beta-above-one": Case(sets("optim.betas=[0.9, 1.5]"), "optim.betas"),
    "steps-zero": Case(lambda p, r: ["train", "--steps", "0", "--print-config"], "train.steps"),
    "pretrain-negative-lr": Case(lambda p, r: ["pretrain", "--set", "lr=-1"], "lr"),
    "pretrain-steps-true": Case(lambda p, r: ["pretrain", "--set", "steps=true"], "steps"),
    "pretrain-heads-mismatch": Case(lambda p, r: ["pretrain", "--set", "heads=3"], "heads"),
    # --- the offline world's sizes (a negative vocabulary was a traceback of the BPE trainer) ---
    "generate-negative-vocab": Case(
        lambda p, r: ["generate", "--out", p.root / "w", "--vocab-size", "-5"], "--vocab-size"
    ),
    "generate-vocab-below-bytes": Case(
        lambda p, r: ["generate", "--out", p.root / "w", "--vocab-size", "100"], "--vocab-size"
    ),
    "generate-no-paraphrases": Case(
        lambda p, r: ["generate", "--out", p.root / "w", "--paraphrases", "0"], "--paraphrases"
    ),
    # --- devices ---
    "train-cuda-missing": Case(training("model.device=cuda"), "CUDA", training=True),
    "train-no-such-device": Case(training("model.device=tpu9"), "not a device", training=True),
    "score-cuda-missing": Case(
        lambda p, r: ["score", "--model", "m", "--data", "d", "--out", "x", "--device", "cuda"],
        "CUDA",
    ),
    "resume-missing-dir": Case(lambda p, r: ["train", "--resume", p.root / "gone"], "gone"),
    # --- texts that can never fit data.seq_len ---
    "probe-target-2mb": Case(training(items=long_target), "item 0", training=True),
    "probe-longer-than-seq-len": Case(training(items=long_probe), "data.seq_len=64", training=True),
    "context-2mb": Case(training(items=long_context), "item 0", training=True),
}
CUDA_CASES = {"train-cuda-missing", "score-cuda-missing"}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=k, marks=[NO_CUDA] if k in CUDA_CASES else []) for k, c in CASES.items()],
)
def test_refused_and_nothing_touched(case: Case, place, request):
    args = case.args(place, request)  # damages the place first where the case says so
    watched = [place.root, *(request.getfixturevalue("inputs") if case.training else [])]
    before = [snapshot(d) | {str(p): "dir" for p in d.rglob("*") if p.is_dir()} for d in watched]
    assert_refused(run_cli(*args), mentions=case.mentions)
    after = [snapshot(d) | {str(p): "dir" for p in d.rglob("*") if p.is_dir()} for d in watched]
    assert after == before


def test_training_never_writes_into_its_inputs(place, train_args, inputs, cache_dir):
    """A 3-step run reads the world and base only: the token cache goes to factdyn's cache.
    Where the tests run as root chmod stops nothing, so the snapshot is the proof."""
    world = inputs[0]
    before = [snapshot(d) for d in inputs]
    modes = {p: p.stat().st_mode for d in inputs for p in (d, *d.rglob("*")) if p.is_dir()}
    try:
        for p in modes:
            p.chmod(0o555)
        outcome = run_cli("train", *train_args, "--out", place.root / "run3")
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert [snapshot(d) for d in inputs] == before
    assert not list(world.rglob(".tokens"))
    assert list((cache_dir / "tokens").glob("tokens-*.npy"))
