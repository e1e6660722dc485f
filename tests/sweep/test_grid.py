"""Grid files: validation (one line, exit 2, naming the field), expansion, and --dry-run
without network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.config import BaseConfig
from factdyn.errors import DataError
from factdyn.sweep.grid import expand, load_grid


def _grid(tmp_path, doc: dict):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _fails(tmp_path, doc: dict, *words: str) -> None:
    """The grid ends in exit code 2 with one line containing ``words``; nothing written."""
    path = _grid(tmp_path, doc)
    out = tmp_path / "sweep"
    r = CliRunner().invoke(app, ["reproduce", str(path), "--out", str(out)])
    assert r.exit_code == 2 or isinstance(r.exception, DataError), r.output
    with pytest.raises(DataError) as e:
        expand(*load_grid(path))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    assert not out.exists()


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"axes": {"sise": [{"name": "small"}]}}, ("grid.yaml", "axes.sise")),
        (
            {"axes": {"size": [{"name": "s", "base": {"hiden_size": 8}}]}},
            ("axes.size.s", "hiden_size"),
        ),
        ({"axes": {"stage": [{"name": "q", "stage": 0.3}]}}, ("axes.stage.q", "stage", "0.3")),
        ({"axes": {"batch_size": [{"name": "b", "set": ["train.batch_sise=8"]}]}}, ("batch_sise",)),
        (
            {"axes": {"batch_size": [{"name": "b", "set": ["train.batch_size=0"]}]}},
            ("train.batch_size",),
        ),
        (
            {"axes": {"size": [{"name": "a"}], "stage": [{"name": "a", "stage": 0.5}]}},
            ("'a'", "twice"),
        ),
        ({"replicates": 0}, ("replicates",)),
        ({"colour": "red"}, ("colour",)),
        ({"world": {"itmes": 3}}, ("world.itmes",)),
        (
            {"axes": {"stage": [{"name": "x", "stage": 0.5, "set": ["model.name=gpt2"]}]}},
            ("tiny model",),
        ),
    ],
)
def test_bad_grids_end_in_one_line_naming_the_field(tmp_path, doc, words):
    _fails(tmp_path, doc, *words)


def test_cli_exit_code_2_for_a_bad_axis(tmp_path):
    path = _grid(tmp_path, {"axes": {"sise": [{"name": "small"}]}})
    env = {**os.environ, "FACTDYN_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "factdyn", "reproduce", str(path), "--out", str(tmp_path / "o")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "axes.sise" in r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()


def test_expansion_reference_first_replicates_and_duplicates_kept_once(tmp_path):
    doc = {
        "replicates": 2,
        "axes": {
            "stage": [{"name": "half", "stage": 0.5}, {"name": "full", "stage": 1.0}],
            "batch_size": [{"name": "b8", "set": ["train.batch_size=8"]}],
        },
    }
    specs = expand(*load_grid(_grid(tmp_path, doc)))
    # stage 1.0 is the reference itself: kept once, under the reference's name
    assert [s.name for s in specs] == [
        "reference-r0", "reference-r1", "half-r0", "half-r1", "b8-r0", "b8-r1"
    ]  # fmt: skip
    assert all(s.base == BaseConfig() for s in specs)
    assert [s.replicate for s in specs[:2]] == [0, 1]
    assert specs[4].config.train.batch_size == 8 and specs[0].config.train.batch_size == 4


def test_replicates_read_successive_blocks_of_the_data_stream():
    from factdyn.config import load_config
    from factdyn.sweep.grid import with_start

    cfg = load_config(None, ["train.steps=100", "train.batch_size=4"])
    assert with_start(cfg, 9600, 0).data.start is None  # replicate 0: after the base's own
    assert with_start(cfg, 9600, 2).data.start == 9600 + 2 * 400
    explicit = load_config(None, ["data.start=50", "train.steps=10", "train.batch_size=2"])
    assert with_start(explicit, 9600, 1).data.start == 70


def test_packaged_grids_are_valid_and_the_tiny_one_varies_each_factor_enough():
    specs = expand(*load_grid("tiny"))
    axes = {s.axis for s in specs}
    assert {"reference", "stage", "lr_control", "size", "batch_size"} <= axes
    assert min(s.replicate for s in specs) == 0 and max(s.replicate for s in specs) >= 1
    ref = next(s for s in specs if s.axis == "reference")
    small = next(s for s in specs if s.axis == "size")
    big = next(s for s in specs if s.axis == "batch_size")
    assert big.config.train.batch_size >= 8 * ref.config.train.batch_size  # the issue: ≥ 8×
    from factdyn.sweep.estimate import spec_estimate

    grid = load_grid("tiny")[0]
    ratio = spec_estimate(ref, grid).parameters / spec_estimate(small, grid).parameters
    assert ratio >= 4  # sizes ≥ 4× apart in parameters
    assert len({s.stage for s in specs if s.axis == "stage"} | {1.0}) == 3  # ¼, ½, all
    assert len(expand(*load_grid("tiny"), quick=True)) <= len(specs)
    olmo = expand(*load_grid("olmo"))
    assert {s.axis for s in olmo} == {"reference", "stage", "lr_control", "size", "batch_size"}
    # the offline grids keep the 600-step base they were measured on, whatever the default
    for name in ("tiny", "interval"):
        assert {s.base.steps for s in expand(*load_grid(name))} == {600} != {BaseConfig().steps}


def test_olmo_dry_run_lists_the_papers_runs_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env["FACTDYN_CACHE"] = str(tmp_path / "cache")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "factdyn", "reproduce", "olmo", "--dry-run", "--launcher",
           "slurm", "--out", str(out)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    for name in ("reference", "40k", "339k", "1b", "bs128", "40k-const", "339k-const"):
        assert any(line.split()[:1] == [name] for line in lines), name
    ref = next(line for line in lines if line.startswith("reference"))
    assert "6,888,095,744" in ref  # OLMo-7B from its preset's shape, no download
    # (6·N + attention 12·layers·hidden·seq) per token, 2000 steps × 2048 × 2048 tokens, at
    # 4e14 FLOP/s on each of 8 GPUs
    per_token = 6 * 6.888e9 + 12 * 32 * 4096 * 2048
    hours = per_token * 2000 * 2048 * 2048 / 4e14 / 3600 / 8
    assert float(ref.split()[4]) == pytest.approx(hours, rel=0.05)
    assert "--launcher slurm" in r.stdout and "gpus_per_node" in r.stdout
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_a_run_the_training_would_refuse_is_refused_before_the_sweep_starts(
    toy_world, toy_base, tmp_path
):
    # injections past the last step: found for every run before anything is written
    sets = [f"data.path={toy_world}", f"model.name={toy_base}", "train.steps=10",
            "injection.n_controls=3"]  # fmt: skip
    path = _grid(tmp_path, {"set": [*sets, "data.seq_len=128"]})
    out = tmp_path / "sweep"
    r = CliRunner().invoke(app, ["reproduce", str(path), "--out", str(out)])
    assert isinstance(r.exception, DataError)
    assert "run reference" in str(r.exception) and "train.steps=10" in str(r.exception)
    assert not out.exists()


def test_set_applies_to_every_run_and_is_part_of_the_recorded_grid(tmp_path):
    from factdyn.sweep.sweep import plan_sweep

    sweep = plan_sweep("olmo", tmp_path / "o", overrides=["data.files=/data/shards.txt"])
    assert {s.config.data.files for s in sweep.specs} == {"/data/shards.txt"}
    assert sweep.record()["spec"]["set"][-1] == "data.files=/data/shards.txt"
    with pytest.raises(DataError, match="train.stepz"):
        plan_sweep("tiny", tmp_path / "t", overrides=["train.stepz=3"])


def test_relative_input_paths_are_recorded_as_the_runs_record_them(
    toy_world, toy_base, tmp_path, monkeypatch
):
    """`factdyn train` records local paths absolutely; a grid's configs must say the same, or a
    re-run of the sweep would find every run "started with another configuration"."""
    from factdyn.sweep.sweep import plan_sweep, prepare

    monkeypatch.chdir(toy_world.parent)
    sets = [f"data.path={toy_world.name}", f"model.name={toy_base}", "train.steps=10",
            "injection.n_controls=3", "injection.interval=2", "data.seq_len=64"]  # fmt: skip
    sweep = plan_sweep(_grid(tmp_path, {"set": sets}), tmp_path / "sweep")
    (job,) = prepare(sweep)
    recorded = yaml.safe_load(Path(job.config_file).read_text())
    assert recorded["data"]["path"] == str(toy_world.resolve())
