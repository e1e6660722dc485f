"""Shipped presets validate, and --dry-run's parameter count matches the architecture."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

import factdyn
from factdyn.cli import app
from factdyn.config import load_config
from factdyn.train.estimate import estimate

PRESETS = sorted(p.stem for p in (Path(factdyn.__file__).parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates(name):
    cfg = load_config(name)
    assert cfg.train.batch_size % (cfg.train.micro_batch_size or 1) == 0


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
