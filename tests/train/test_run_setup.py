"""What a run is set up with: concrete inputs, meta.json, the run tables' schema, the loop's
callbacks and AdamW's parameter groups."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from factdyn import cache, load_run
from factdyn.analyze.reference import read_reference_log
from factdyn.config import BaseConfig, load_config
from factdyn.errors import DataError
from factdyn.rundir import META_KEYS, init_logs, open_log, steps_trained
from factdyn.train.cached import with_cached_inputs
from factdyn.train.callbacks import Callback
from factdyn.train.experiment import train
from factdyn.train.loop import make_optimizer
from factdyn.train.plan import check_inputs

SMALL = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=2",
    "injection.n_controls=3",
    "eval.window=2",
    "eval.log_points=3",
    "train.checkpoint_every=5",
    "train.threads=2",
]


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_train_start(self, step):
        self.events.append(("train_start", step))

    def on_step_start(self, step, model):
        self.events.append(("step_start", step))

    def on_step_end(self, step, loss, lr):
        self.events.append(("step_end", step, loss, lr))

    def on_train_end(self, step):
        self.events.append(("train_end", step))


def _reference_log(path, n_items=3, n_steps=2):
    records = [
        {f"{p}_target": [[1.0 + s]] * n_items for p in ("mem", "gen", "gen_hard")}
        for s in range(n_steps)
    ]
    path.write_text(json.dumps(records))
    return path


def test_run_meta_tables_and_callbacks(toy_world, toy_base, tmp_path):
    from safetensors import safe_open

    rec = Recorder()
    cfg = load_config(
        None, [f"data.path={toy_world}", f"model.name={toy_base}", *SMALL, "train.steps=12"]
    )
    run = load_run(train(cfg, tmp_path / "run", callbacks=[rec]))

    # n_parameters: the saved weights' sizes, summed independently of the loaded model
    with safe_open(str(tmp_path / "run/checkpoints/step_0000012/model.safetensors"), "pt") as f:
        saved = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)
    assert run.meta["n_parameters"] == saved
    base_cfg = BaseConfig(**json.loads((toy_base / "state.json").read_text())["config"])
    assert run.meta["base_step"] == base_cfg.steps == 60
    # constant lr continued from the base's cosine end point: peak x min_lr_ratio
    assert run.meta["lr_first"] == pytest.approx(base_cfg.lr * base_cfg.min_lr_ratio)
    assert run.meta["lr_first"] == run.train.lr[0]
    assert (run.meta["batch_size"], run.meta["seq_len"]) == (8, 64)
    assert run.meta["tokens_per_step"] == 8 * 64

    # an extra callback sees every hook in order, after factdyn's own
    ends = [e for e in rec.events if e[0] == "step_end"]
    assert rec.events[0] == ("train_start", 0) and rec.events[-1] == ("train_end", 12)
    assert [e[1] for e in rec.events if e[0] == "step_start"] == list(range(13))
    assert [e[1] for e in ends] == list(range(12))
    assert (
        rec.events.index(("step_start", 3))
        < rec.events.index(ends[3])
        < rec.events.index(("step_start", 4))
    )
    np.testing.assert_array_equal([e[2] for e in ends], run.train.loss)
    np.testing.assert_array_equal([e[3] for e in ends], run.train.lr)

    # a factdyn run and the reader of the paper's logs share one schema and the meta keys
    ref = read_reference_log(_reference_log(tmp_path / "log.json"))
    for table in ("probes", "items", "injections"):
        mine, theirs = getattr(run, table), getattr(ref, table)
        assert mine.dtypes.to_dict() == theirs.dtypes.to_dict(), table
    assert set(META_KEYS) <= set(run.meta) and set(META_KEYS) <= set(ref.meta)
    assert ref.meta["n_parameters"] is None and ref.meta["tokens_per_step"] == 2048 * 2048


def test_steps_trained_counts_the_logged_updates(tmp_path):
    """What the demo's progress bar reads from its runs' processes: 0 before a run has logs."""
    assert steps_trained(tmp_path / "nothing") == 0
    init_logs(tmp_path, np.arange(5), n_probes=2, total_steps=10)
    assert steps_trained(tmp_path) == 0
    log = open_log(tmp_path, "train.npy")
    log[:4] = [[2.0, 1e-3, 512.0]] * 4
    log.flush()
    assert steps_trained(tmp_path) == 4


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("data.path=null", "data.path"),
        ("model.name=null", "model.name"),
        ("model.name=/no/such/base", "model.name"),
        ("injection.items=/no/such/items.json", "injection.items"),
    ],
)
def test_missing_inputs_are_one_line_errors_naming_the_field(
    toy_world, toy_base, tmp_path, override, field
):
    cfg = load_config(None, [f"data.path={toy_world}", f"model.name={toy_base}", *SMALL, override])
    with pytest.raises(DataError, match=f"field '{field}'") as e:
        train(cfg, tmp_path / "run")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_hub_ids_pass_the_input_check(toy_world):
    check_inputs(load_config(None, [f"data.path={toy_world}", "model.name=EleutherAI/pythia-1b"]))
    check_inputs(load_config(None, [f"data.path={toy_world}", "model.name=gpt2"]))


def test_cache_only_names_paths_and_the_caller_fills_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTDYN_CACHE", str(tmp_path / "cache"))
    world = cache.world_path(cache.world_spec())
    base = cache.base_path(world, BaseConfig())
    assert not cache.world_built(world) and not cache.base_built(base)
    assert not (tmp_path / "cache").exists()  # asking builds nothing
    # built (here: planted) entries are used as they are, not rebuilt
    world.mkdir(parents=True)
    (world / "knowledge.json").write_text("[]")
    base.mkdir(parents=True)
    (base / "state.json").write_text("{}")
    cfg = with_cached_inputs(load_config(None))
    assert (cfg.data.path, cfg.model.name) == (str(world), str(base))
    given = with_cached_inputs(load_config(None, ["model.name=gpt2"]))
    assert given.model.name == "gpt2"
    # the cache module itself pulls in no training or generation code
    code = (
        "import sys, factdyn.cache; "
        "bad = [m for m in sys.modules if m.startswith(('torch', 'factdyn.train', "
        "'factdyn.data.generator'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_base_without_settling_keeps_the_cache_key_it_had_before_settling_existed(tmp_path):
    """Cached bases (and the finished runs that name them) stay valid: the key of a base
    without settling is the earlier formula, written out here over the earlier fields."""
    import hashlib
    import json

    world = tmp_path / "world"  # no corpus manifest: the key reads the path
    earlier = {
        "hidden_size": 128, "layers": 4, "heads": 4, "intermediate_size": 512, "seq_len": 256,
        "batch_size": 16, "steps": 450, "lr": 4e-3, "warmup_steps": 50, "schedule": "cosine",
        "min_lr_ratio": 0.25, "weight_decay": 0.0, "grad_clip": 1.0, "seed": 0,
        "snapshots": [0.25, 0.5],
    }  # fmt: skip
    text = json.dumps([str(world), earlier], sort_keys=True, default=str)
    want = "base-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    assert cache.base_path(world, BaseConfig()).name == want
    assert cache.base_path(world, BaseConfig(settle_batch_size=8)).name == want  # unused
    assert cache.base_path(world, BaseConfig(settle_steps=50)).name != want


def _kind(name: str) -> str:
    """Independent classification by the names these two architectures use."""
    if name.endswith(".bias"):
        return "bias"
    if "embed_tokens" in name or "embed_in" in name:
        return "embedding"
    if "norm" in name:
        return "norm"
    return "weight"


def _tiny(arch: str, tied: bool) -> torch.nn.Module:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    common = dict(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        tie_word_embeddings=tied,
    )
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common, attention_bias=True, mlp_bias=True))
    return GPTNeoXForCausalLM(GPTNeoXConfig(**common))


@pytest.mark.parametrize(("arch", "tied"), [("llama", False), ("llama", True), ("neox", False)])
@pytest.mark.parametrize(
    "exclude", [[], ["bias"], ["norm", "bias"], ["embedding"], ["norm", "bias", "embedding"]]
)
def test_adamw_groups_follow_the_exclusions(arch, tied, exclude):
    model = _tiny(arch, tied)
    opt = make_optimizer(model, (0.9, 0.95), 1e-8, 0.1, exclude)
    named = dict(model.named_parameters())
    kinds = {_kind(n) for n in named}
    assert {"bias", "embedding", "norm", "weight"} <= kinds  # every kind is present
    expected_off = sum(p.numel() for n, p in named.items() if _kind(n) in exclude)
    total = sum(p.numel() for p in named.values())
    by_decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    assert by_decay.get(0.0, 0) == expected_off
    assert by_decay[0.1] == total - expected_off
    assert len(opt.param_groups) == (2 if exclude else 1)  # nothing excluded: as before


def test_a_training_seed_is_refused_because_nothing_would_change():
    """Two runs that differ only in train.seed were bit-identical (the field seeded nothing),
    yet pooled as replicates; now the setting is refused, naming the one that works."""
    assert load_config(None, ["train.seed=0"]).train.seed == 0  # earlier runs' configs load
    with pytest.raises(DataError, match="field 'train.seed'.*data.seed") as e:
        load_config(None, ["train.seed=1"])
    assert "\n" not in str(e.value)


def test_a_run_started_with_relative_paths_resumes_from_another_directory(
    toy_world, toy_base, tmp_path, monkeypatch
):
    """The recorded config names its inputs absolutely: before, a run given `--world w` from
    one directory could not be resumed (or extended) from another."""
    from typer.testing import CliRunner

    from factdyn.cli import app

    monkeypatch.chdir(toy_world.parent)
    sets = [a for s in [*SMALL, "train.steps=10"] for a in ("--set", s)]
    args = ["--world", toy_world.name, "--model", str(toy_base), "--out", str(tmp_path / "run")]
    first = CliRunner().invoke(app, ["train", *args, *sets])
    assert first.exit_code == 0, first.output
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["data"]["path"] == str(toy_world.resolve())
    assert config["model"]["name"] == str(toy_base.resolve())
    monkeypatch.chdir(tmp_path)
    again = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--steps", "12"])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["steps_done"] == 12
