"""``--dry-run`` from a preset needs no download: the presets carry their architecture
(``model.shape``), and the parameter count built from it is the published one."""

import os
import subprocess
import sys

import pytest

from factdyn.config import load_config
from factdyn.train.estimate import estimate, run_hours

# Published parameter counts (embeddings included) and how close the count must be: OLMo's
# model cards state 7B/1B (the paper's table: 6.9B, 1.18B); Pythia's model cards state the
# exact count.
PUBLISHED = {
    "olmo-7b-113k": (6.9e9, 0.01),
    "olmo-1b": (1.18e9, 0.02),
    "pythia-1b": (1_011_781_632, 1e-3),
    "pythia-6.9b": (6_857_302_016, 1e-3),
}


@pytest.fixture
def no_hub(monkeypatch):
    """Any read of a config.json (hub or cache) fails the test."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError(f"config.json read: {args}")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", refuse)


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_preset_shape_gives_the_published_parameter_count(preset, no_hub):
    published, rel = PUBLISHED[preset]
    e = estimate(load_config(preset), devices=8)
    assert e["parameters"] == pytest.approx(published, rel=rel), e["parameters"]
    assert e["architecture"].startswith("model.shape")


def test_pythia_counts_are_exact(no_hub):
    assert estimate(load_config("pythia-1b"), 1)["parameters"] == 1_011_781_632
    assert estimate(load_config("pythia-6.9b"), 1)["parameters"] == 6_857_302_016


def test_every_checkpoint_preset_has_a_shape():
    from pathlib import Path

    import factdyn

    presets = Path(factdyn.__file__).parent / "configs"
    for p in presets.glob("*.yaml"):
        assert (load_config(p.stem).model.shape is None) == (p.stem == "tiny"), p.stem


def test_tied_embeddings_are_counted_once(no_hub):
    """OLMo-1B ties its output layer to the embeddings: untying adds vocab × hidden."""
    tied = estimate(load_config("olmo-1b"), 1)["parameters"]
    untied = estimate(load_config("olmo-1b", ["model.shape.tie_embeddings=false"]), 1)
    assert untied["parameters"] - tied == 50304 * 2048


def test_llama_shape_with_grouped_query_attention(no_hub):
    """A Llama shape counts q/o at full width and k/v at kv_heads' width."""
    h, inter, layers, vocab, heads, kv = 256, 512, 2, 1000, 8, 2
    shape = (
        f"model.shape={{family: llama, layers: {layers}, hidden_size: {h}, "
        f"intermediate_size: {inter}, heads: {heads}, kv_heads: {kv}, vocab_size: {vocab}, "
        "tie_embeddings: false}"
    )
    cfg = load_config("olmo-1b", [shape])
    kv_width = h // heads * kv
    per_layer = 2 * h * h + 2 * h * kv_width + 3 * h * inter + 2 * h  # + 2 RMSNorms
    assert estimate(cfg, 1)["parameters"] == 2 * vocab * h + layers * per_layer + h


def test_run_hours_formula(no_hub):
    cfg = load_config("olmo-7b-113k")
    e = estimate(cfg, 8)
    n, f = e["parameters"], e["flops_per_step"]
    hours = run_hours(cfg, 8, 4e14)
    assert hours == pytest.approx(cfg.train.steps * f / (8 * 4e14) / 3600)
    with_probes = run_hours(cfg, 8, 4e14, scored_tokens_per_step=1e6)
    assert with_probes - hours == pytest.approx(cfg.train.steps * 2 * n * 1e6 / (8 * 4e14) / 3600)
    assert run_hours(cfg, 16, 4e14) == pytest.approx(hours / 2)
    with pytest.raises(ValueError):
        run_hours(cfg, 8, 0)


def test_dry_run_cli_works_offline(tmp_path):
    """The real command, with the hub unreachable and an empty cache."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    r = subprocess.run(
        [sys.executable, "-m", "factdyn", "train", "olmo-7b-113k", "--dry-run", "--devices", "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    n = estimate(load_config("olmo-7b-113k"), 8)["parameters"]
    assert f"parameters         {n:,}" in r.stdout and "memory per device" in r.stdout


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("model.shape.layers=0", "model.shape.layers"),
        ("model.shape.depth=3", "model.shape.depth"),
        ("model.shape.family=gpt2", "model.shape.family"),
        ("model.shape.tie_embeddings=1", "model.shape.tie_embeddings"),
        ("model.shape.heads=7", "model.shape"),  # 4096 is no multiple of 7
    ],
)
def test_bad_shape_is_one_line_and_exit_code_2(override, field, exits_2):
    err = exits_2(["train", "olmo-7b-113k", "--dry-run", "--set", override])
    assert f"field '{field}'" in err, err
