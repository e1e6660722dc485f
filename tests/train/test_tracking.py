"""Trackers: TensorBoard event files and an offline W&B run hold the run's own numbers.

Both are read back with the trackers' own formats (TensorBoard's event reader; W&B's
transaction log with W&B's protobuf ``Record``), and every scalar is checked against the run's
arrays, recomputed here from ``train.npy``, ``logprobs.npy`` and ``probes.parquet``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from factdyn import load_run
from factdyn.config import load_config
from factdyn.errors import DataError
from factdyn.report.readout import AnalysisReadout
from factdyn.train import experiment

pytest.importorskip("tensorboard")

STEPS = 24
SETS = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=3",
    "injection.cohorts=1",
    "injection.scenario_offset=0",
    "injection.n_controls=3",
    "eval.window=4",
    "eval.schedule=sparse",
    "eval.log_points=6",
    "train.checkpoint_every=8",
    "train.threads=2",
]


def train(*args, **kwargs):
    """A run as ``factdyn train`` runs it: its trackers get the analysis's numbers."""
    return experiment.train(*args, readouts=AnalysisReadout, **kwargs)


def _cfg(world, base, *extra):
    return load_config(None, [f"data.path={world}", f"model.name={base}", *SETS, *extra])


def tensorboard_scalars(log_dir) -> dict[str, dict[int, float]]:
    """tag -> {step: value}, as TensorBoard itself reads the directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        assert len(steps) == len(set(steps)), f"{tag}: a step logged twice"
        out[tag] = {e.step: e.value for e in events}
    return out


def wandb_history(run_dir) -> dict[str, dict[int, float]]:
    """key -> {step: value} from the offline run's ``.wandb`` file: a LevelDB-style log (a
    7-byte file header, then 32 KiB blocks of records: crc32, length, type, data) whose
    records are W&B's protobuf ``Record`` messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # full, or the last fragment
            records.append(pending)
            pending = b""
    out: dict[str, dict[int, float]] = {}
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        items = {
            i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item
        }
        step = int(items.pop("_step"))
        for key, value in items.items():
            if isinstance(value, int | float) and not key.startswith("_"):
                out.setdefault(key, {})[step] = float(value)
    return out


def expected_means(run) -> dict[str, dict[int, float]]:
    """Mean Δℓ per scenario × depth at each logged step, corrected by the controls' mean
    change at that depth (the analysis's drift correction), and the controls' own change."""
    probes = run.probes
    ell = run.logprobs[:, :, 0].astype(np.float64)
    out: dict[str, dict[int, float]] = {}
    for row, step in enumerate(run.steps.tolist()):
        drift = {}
        for depth, group in probes[probes.scenario == "control"].groupby("depth"):
            cols = group.probe_id.to_numpy()
            drift[depth] = np.nanmean(ell[row, cols]) - np.nanmean(ell[0, cols])
            out.setdefault(f"drift/{depth}", {})[step] = np.nanmean(ell[row, cols] - ell[0, cols])
        for (scenario, depth), group in probes.groupby(["scenario", "depth"]):
            cols = group.probe_id.to_numpy()
            delta = ell[row, cols] - ell[0, cols]
            if scenario == "control" or np.isnan(delta).all():
                continue
            out.setdefault(f"delta/{scenario}/{depth}", {})[step] = np.nanmean(delta) - drift[depth]
    return out


def check_scalars(got: dict[str, dict[int, float]], run, tokens_per_step: int) -> None:
    loss, lr, tokens = (run.train[c].to_numpy() for c in ("loss", "lr", "tokens"))
    n = len(loss)
    assert sorted(got["train/loss"]) == list(range(n))
    np.testing.assert_allclose([got["train/loss"][t] for t in range(n)], loss, rtol=1e-6)
    np.testing.assert_allclose([got["train/lr"][t] for t in range(n)], lr, rtol=1e-6)
    np.testing.assert_allclose(
        [got["train/tokens_seen"][t] for t in range(n)], (np.arange(n) + 1) * tokens_per_step
    )
    np.testing.assert_allclose([got["train/tokens_seen"][t] for t in range(n)], tokens)
    assert all(v > 0 for v in got["train/tokens_per_s"].values())
    want = expected_means(run)
    assert {k for k in got if k.startswith(("delta/", "drift/"))} == set(want)
    for key, series in want.items():
        assert sorted(got[key]) == sorted(series), key
        np.testing.assert_allclose(
            [got[key][s] for s in sorted(series)], [series[s] for s in sorted(series)], atol=1e-5
        )


def test_tensorboard_and_offline_wandb_hold_the_runs_numbers(
    toy_world, toy_base, tmp_path, monkeypatch
):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = _cfg(toy_world, toy_base, f"train.steps={STEPS}", "train.trackers=[tensorboard,wandb]")
    run_dir = train(cfg, tmp_path / "run")
    run = load_run(run_dir)
    tps = run.meta["tokens_per_step"]
    assert run.steps[-1] == STEPS and np.isnan(run.logprobs[:, :, 0]).any()  # a sparse log
    tb, wb = tensorboard_scalars(run_dir / "tb"), wandb_history(run_dir)
    check_scalars(tb, run, tps)
    check_scalars(wb, run, tps)
    # the end: the analysis's effectivity and decay constant with their intervals
    from factdyn.analyze.populations import analyze_run

    analysis = analyze_run(run_dir)
    for p in analysis.populations:
        key = f"final/effectivity/{p.scenario}/{p.depth}"
        for got in (tb, wb):
            assert got[key][STEPS] == pytest.approx(p.effectivity, rel=1e-5, abs=1e-6)
            assert got[f"{key}/lo"][STEPS] == pytest.approx(p.effectivity_ci[0], rel=1e-5, abs=1e-6)
    # the findings table, as TensorBoard's text view shows it: one row per finding
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from factdyn.report.findings import compute_findings

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    text = acc.Tensors("findings/text_summary")[0].tensor_proto.string_val[0].decode()
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    found = compute_findings([analysis])
    assert [(r[0].lstrip("| "), r[2]) for r in rows] == [(f.claim, f.verdict) for f in found]


def test_a_resumed_run_logs_every_step_once(toy_world, toy_base, tmp_path):
    every = ["eval.schedule=every", "train.trackers=[tensorboard]"]
    run_dir = train(_cfg(toy_world, toy_base, "train.steps=16", *every), tmp_path / "run")
    # as if killed before step 16's checkpoint: the resume runs steps 8.. again, and
    # TensorBoard must show them (and the old run's final numbers) once, from the resume
    shutil.rmtree(run_dir / "checkpoints" / "step_0000016")
    train(_cfg(toy_world, toy_base, f"train.steps={STEPS}", *every), run_dir, resume=True)
    run = load_run(run_dir)
    tb = tensorboard_scalars(run_dir / "tb")
    check_scalars(tb, run, run.meta["tokens_per_step"])
    finals = {s for k, v in tb.items() if k.startswith("final/") for s in v}
    assert finals == {STEPS}


def test_trackers_may_be_added_on_resume_and_do_not_stop_pooling(toy_world, toy_base, tmp_path):
    from factdyn.analyze.pool import pool_runs

    a = train(_cfg(toy_world, toy_base, "train.steps=16"), tmp_path / "a")
    train(
        _cfg(toy_world, toy_base, "train.steps=16", "train.trackers=[tensorboard]"), a, resume=True
    )
    assert (a / "tb").is_dir()
    b = train(
        _cfg(toy_world, toy_base, "train.steps=16", "data.seed=1", "train.trackers=[tensorboard]"),
        tmp_path / "b",
    )
    pooled = pool_runs([load_run(a), load_run(b)])
    assert len(pooled.probes) == 2 * len(load_run(a).probes)


def test_an_uninstalled_tracker_is_refused_before_anything_is_written(
    toy_world, toy_base, tmp_path, monkeypatch
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(DataError, match=r"train\.trackers.*wandb is not installed"):
        train(_cfg(toy_world, toy_base, "train.steps=16", "train.trackers=[wandb]"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_wandb_without_an_account_is_one_line_naming_the_fix(toy_world, toy_base, tmp_path):
    """In a process of its own (W&B keeps its settings per process): exit 2, one line, and the
    run stopped before its first update."""
    pytest.importorskip("wandb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"), "NETRC": str(tmp_path / "none")}
    sets = [f"--set={s}" for s in (f"data.path={toy_world}", f"model.name={toy_base}", *SETS)]
    cmd = [sys.executable, "-m", "factdyn", "train", "--out", str(tmp_path / "run"), *sets,
           "--steps", "16", "--tracker", "wandb"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    (line,) = [x for x in r.stderr.splitlines() if "wandb did not start" in x]
    assert "WANDB_MODE=offline" in line and "--resume" in line
    meta = load_run(tmp_path / "run").meta
    assert meta["steps_done"] == 0 and not (tmp_path / "run" / "checkpoints").exists()
