"""Checkpoint presets continue their checkpoint's own run (learning rate, data position, the
paper's batch), checked against the numbers their header comments state; --dry-run's parameter
count matches the architecture."""

import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import factdyn
from factdyn.cli import app
from factdyn.config import load_config
from factdyn.train.estimate import estimate
from factdyn.train.lr import lr_at

CONFIGS = Path(factdyn.__file__).parent / "configs"
CHECKPOINT_PRESETS = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "tiny")

SCHEDULE = re.compile(
    r"continued from step (?P<step>\d+).*\((?P<kind>linear|cosine) decay from a peak of "
    r"(?P<peak>[\d.e-]+) after (?P<warmup>\d+) warmup steps to (?P<ratio>[\d.]+)x the peak "
    r"at step (?P<total>\d+)\)"
)
DATA_START = re.compile(r"start = (?:step x original batch \()?(?P<step>\d+) x (?P<batch>\d+)")
REVISION = re.compile(r"^step(?P<step>\d+)(?:-tokens(?P<billions>\d+)B)?$")


def _header(name: str) -> dict:
    """The numbers a preset's leading comment states (its checkpoint's own run)."""
    lines = CONFIGS.joinpath(f"{name}.yaml").read_text().splitlines()
    text = " ".join(ln.lstrip("# ") for ln in lines if ln.startswith("#"))
    sched, data = SCHEDULE.search(text), DATA_START.search(text)
    assert sched and data, f"{name}: header no longer states the schedule and data start"
    return {
        **{k: int(v) for k, v in sched.groupdict().items() if k in ("step", "warmup", "total")},
        "kind": sched["kind"],
        "peak": float(sched["peak"]),
        "ratio": float(sched["ratio"]),
        "data_step": int(data["step"]),
        "original_batch": int(data["batch"]),
    }


def _stated_lr(h: dict, step: int) -> float:
    """The lr of the checkpoint's run at ``step``, in closed form from the header's numbers."""
    frac = (step - h["warmup"]) / (h["total"] - h["warmup"])
    decay = 1 - frac if h["kind"] == "linear" else (1 + math.cos(math.pi * frac)) / 2
    return h["peak"] * (h["ratio"] + (1 - h["ratio"]) * decay)


@pytest.mark.parametrize("name", CHECKPOINT_PRESETS)
def test_preset_lr_continues_the_checkpoints_schedule(name):
    """The lr factdyn gives each step is what the checkpoint's own run had at that step (not
    its peak, nor a schedule restarted at 0), from the checkpoint's step to the run's end."""
    h, cfg = _header(name), load_config(name)
    revision = REVISION.match(cfg.model.revision)
    assert revision and int(revision["step"]) == h["step"] == cfg.optim.schedule_start
    o = cfg.optim
    for t in (0, 1, cfg.train.steps // 2, cfg.train.steps):
        got = lr_at(
            o.schedule_start + t,
            peak=o.lr,
            schedule=o.schedule,
            warmup=o.warmup_steps,
            total=o.schedule_total,
            min_ratio=o.min_lr_ratio,
        )
        assert got == pytest.approx(_stated_lr(h, h["step"] + t), rel=1e-9), (name, t)
    assert h["ratio"] * h["peak"] < _stated_lr(h, h["step"]) < h["peak"]


@pytest.mark.parametrize("name", CHECKPOINT_PRESETS)
def test_preset_resumes_the_checkpoints_data_with_the_papers_batch(name):
    """Data resumes at step × the original run's batch (the checkpoint's token count, where its
    revision names one); each step takes the paper's tokens (docs/method.md#finding-5: 2048 or 128 sequences of
    2048 tokens for OLMo; Pythia keeps its own 1024 × 2048, rows of 2049 tokens holding 2048
    predicted ones)."""
    h, cfg = _header(name), load_config(name)
    assert h["data_step"] == h["step"]
    assert cfg.data.start == h["step"] * h["original_batch"]
    billions = REVISION.match(cfg.model.revision)["billions"]
    if billions is not None:
        assert round(cfg.data.start * cfg.data.seq_len / 1e9) == int(billions)
    if name.startswith("olmo"):
        rows = 128 if name.endswith("-bs128") else 2048
        assert cfg.train.batch_size * cfg.data.seq_len == rows * 2048
    else:
        assert cfg.train.batch_size == h["original_batch"] == 1024
        assert cfg.train.batch_size * (cfg.data.seq_len - 1) == 1024 * 2048


def _llama_dir(tmp_path, h=64, layers=3, inter=160, vocab=500, tied=False):
    from transformers import LlamaConfig

    LlamaConfig(
        hidden_size=h,
        num_hidden_layers=layers,
        intermediate_size=inter,
        vocab_size=vocab,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=tied,
    ).save_pretrained(tmp_path)
    # independent count: embeddings, per layer q/k/v/o + gate/up/down + 2 RMSNorms, final norm, head
    per_layer = 4 * h * h + 3 * h * inter + 2 * h
    return vocab * h + layers * per_layer + h + (0 if tied else vocab * h)


@pytest.mark.parametrize("tied", [False, True])
def test_dry_run_parameter_count_matches_architecture(tmp_path, tied):
    expected = _llama_dir(tmp_path, tied=tied)
    cfg = load_config("olmo-7b-113k", [f"model.name={tmp_path}", "model.revision=null"])
    e = estimate(cfg, devices=8)
    assert e["parameters"] == expected
    assert e["tokens_per_step"] == 2048 * 2048
    assert e["flops_per_step"] >= 6 * expected * 2048 * 2048


def test_dry_run_cli_prints_without_weights(tmp_path):
    expected = _llama_dir(tmp_path)
    r = CliRunner().invoke(
        app,
        [
            "train",
            "olmo-1b",
            "--dry-run",
            "--devices",
            "4",
            "--model",
            str(tmp_path),
            "--set",
            "model.revision=null",
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"{expected:,}" in r.output and "memory per device" in r.output


def test_tiny_yaml_is_the_defaults():
    """The shipped tiny.yaml and the config defaults are one and the same run."""
    from factdyn.config import RunConfig, load_config

    assert load_config("tiny") == RunConfig()
    assert load_config("tiny").model_dump() == RunConfig().model_dump()
