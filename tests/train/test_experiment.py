"""The injection run on real (tiny) training: placement, learning signal, resume, schedules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from factdyn import load_items, load_run
from factdyn.analyze.populations import analyze_run
from factdyn.config import load_config
from factdyn.errors import DataError, TrainingError
from factdyn.inject.provenance import tokens_sha256
from factdyn.rundir import PROVENANCE_FILE, STATS
from factdyn.train import loop
from factdyn.train.experiment import train

COMMON = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=10",
    "injection.n_controls=3",
    "injection.cohorts=1",  # the paper's protocol: a scenario's items share their steps
    "injection.scenario_offset=0",
    "eval.window=5",
    "eval.schedule=every",
    "train.checkpoint_every=10",
    "train.threads=2",
]


def _cfg(world, base, *extra):
    return load_config(None, [f"data.path={world}", f"model.name={base}", *COMMON, *extra])


def test_injected_text_is_in_the_batch_at_logged_steps_and_rows(
    toy_world, toy_base, tmp_path, monkeypatch
):
    seen: dict[int, np.ndarray] = {}
    real = loop.train_step
    calls = iter(range(10**6))

    def spy(model, opt, ids, labels, **kw):
        seen[next(calls)] = ids.copy()
        return real(model, opt, ids, labels, **kw)

    monkeypatch.setattr(loop, "train_step", spy)
    run_dir = train(_cfg(toy_world, toy_base, "train.steps=45"), tmp_path / "run")
    run = load_run(run_dir)
    items = load_items(toy_world / "knowledge.json")
    tok = AutoTokenizer.from_pretrained(toy_base)
    eos = tok.eos_token_id
    inj = run.injections
    assert sorted(inj.step.unique()) == [0, 10, 20, 30, 40]
    for r in inj.itertuples():
        text = (
            items[r.item].train_context
            if r.variant == 0
            else items[r.item].paraphrases[r.variant - 1]
        )
        expect = tok(text, add_special_tokens=False)["input_ids"] + [eos]
        got = seen[r.step][r.row, r.token_start : r.token_end].tolist()
        assert got == expect[: r.token_end - r.token_start], (r.step, r.item)
    # the loop's record says the same: each injection once, with the hashes of what was placed
    record = pd.read_parquet(run_dir / PROVENANCE_FILE)
    key = ["step", "row", "item", "variant", "token_start", "token_end"]
    assert record[key].equals(inj[key].sort_values(["step", "row", "item"], ignore_index=True))
    for r in record.itertuples():
        assert r.tokens_sha256 == tokens_sha256(seen[r.step][r.row, r.token_start : r.token_end])
        assert (r.micro, r.micro_row) == (0, r.row)  # micro_batch_size: the whole batch
    # steps without injections contain no injected paragraph at all
    first_tokens = {
        tuple(tok(it.train_context, add_special_tokens=False)["input_ids"][:8]) for it in items
    }
    for step in set(range(45)) - set(inj.step):
        for row in seen[step]:
            assert all(tuple(row[k : k + 8]) not in first_tokens for k in range(len(row) - 8))
    # scenarios follow the split: 2 paraphrase, 2 duplicate, 2 once, 3 controls; once = one step
    assert (
        run.items.scenario.tolist()
        == ["paraphrase"] * 2 + ["duplicate"] * 2 + ["once"] * 2 + ["control"] * 3
    )
    assert inj[inj.scenario == "once"].step.unique().tolist() == [0]


def test_injection_raises_memorization_of_injected_items_not_controls(
    toy_world, toy_base, tmp_path
):
    run = load_run(
        train(
            _cfg(toy_world, toy_base, "train.steps=45", "optim.lr=3e-3", "eval.schedule=sparse"),
            tmp_path / "run",
        )
    )
    lp = run.stat("target_mean")
    mem = run.probes.depth == "memorization"
    injected = (mem & (run.probes.scenario != "control")).to_numpy()
    control = (mem & (run.probes.scenario == "control")).to_numpy()
    # θ_1 is right after the step-0 injection
    gain_inj = (lp[1, injected] - lp[0, injected]).mean()
    gain_ctl = (lp[1, control] - lp[0, control]).mean()
    assert gain_inj > 0.1
    assert gain_inj > gain_ctl + 0.1


def test_sparse_evaluation_logs_exactly_the_promised_steps(toy_world, toy_base, tmp_path):
    run = load_run(
        train(
            _cfg(
                toy_world,
                toy_base,
                "train.steps=120",
                "eval.schedule=sparse",
                "eval.log_points=6",
            ),
            tmp_path / "run",
        )
    )
    # paraphrase and duplicate items: injected at 0, 10, ..., 40; once items: at 0 only
    windows = {s for t in (0, 10, 20, 30, 40) for s in range(t, t + 6)}
    repeated = windows | {45 + int(round(x)) for x in np.geomspace(1, 75, 6)} | {0, 120}
    once = set(range(6)) | {5 + int(round(x)) for x in np.geomspace(1, 115, 6)} | {0, 120}
    assert run.steps.tolist() == sorted(repeated | once)
    scored = ~np.isnan(run.logprobs[:, :, 0])  # (steps, probes): what was actually scored
    for scenario, expected in (("paraphrase", repeated), ("duplicate", repeated), ("once", once)):
        cols = (run.probes.scenario == scenario).to_numpy()
        assert (scored[:, cols] == scored[:, cols][:, :1]).all()  # a scenario's probes together
        assert set(run.steps[scored[:, cols][:, 0]].tolist()) == expected, scenario
    assert scored[:, (run.probes.scenario == "control").to_numpy()].all()
    greedy = run.stat("greedy")  # a 0/1 flag exactly where the probe was scored
    assert (np.isnan(greedy) == ~scored).all() and set(np.unique(greedy[scored])) <= {0.0, 1.0}
    # the analysis reads the gaps as "not logged": every scenario still gets its numbers
    analysis = analyze_run(run)
    for scenario in ("paraphrase", "duplicate", "once"):
        assert np.isfinite(analysis.get(scenario, "memorization").effectivity)
    share = analysis.greedy  # rows only at a population's scored steps
    rows = share[(share.scenario == "once") & (share.depth == "memorization")]
    assert set(rows.step.tolist()) == once and ((rows.share >= 0) & (rows.share <= 1)).all()


def test_bad_input_leaves_no_run_directory(toy_world, toy_base, tmp_path):
    with pytest.raises(DataError, match="data.seq_len=16"):
        train(_cfg(toy_world, toy_base, "data.seq_len=16", "train.steps=60"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "run.tmp").exists()


def _logged_steps(run_dir) -> int:
    """The steps a run's train.npy holds so far (0 before its meta.json exists)."""
    if not (run_dir / "meta.json").exists():
        return 0
    return int(np.isfinite(np.load(run_dir / "train.npy", mmap_mode="r")[:, 0]).sum())


def _kill_when_logged(proc: subprocess.Popen, run_dir, steps: int) -> int:
    """SIGKILL the training ``proc`` as soon as its log holds ``steps`` steps, checking that it
    was still running right before the kill and that the kill is what ended it; the steps
    logged when it was killed."""
    deadline = time.monotonic() + 120
    while (logged := _logged_steps(run_dir)) < steps:
        assert proc.poll() is None, f"training exited ({proc.returncode}) at {logged} steps"
        assert time.monotonic() < deadline, f"{logged} steps logged after 120 s, not {steps}"
        time.sleep(0.05)
    assert proc.poll() is None, f"training exited ({proc.returncode}) before the kill"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, f"the kill did not end the training ({proc.returncode})"
    return logged


def test_kill_and_resume_gives_the_same_log_bit_for_bit(toy_world, toy_base, tmp_path):
    args = [
        f"--set={s}"
        for s in [
            f"data.path={toy_world}",
            f"model.name={toy_base}",
            *COMMON,
            "train.steps=50",
            "train.checkpoint_every=7",
        ]
    ]
    ref = tmp_path / "ref"
    subprocess.run(
        [sys.executable, "-m", "factdyn", "train", "--out", str(ref), *args],
        check=True,
        capture_output=True,
    )
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for kill_after in (10, 25):  # killed twice, at arbitrary points between checkpoints
        cmd = [sys.executable, "-m", "factdyn", "train"]
        cmd += ["--resume", str(run_dir)] if run_dir.exists() else ["--out", str(run_dir), *args]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert kill_after <= _kill_when_logged(proc, run_dir, kill_after) < 51
        assert json.loads((run_dir / "meta.json").read_text())["status"] != "done"
    subprocess.run(
        [sys.executable, "-m", "factdyn", "train", "--resume", str(run_dir)],
        check=True,
        capture_output=True,
    )
    a, b = load_run(ref), load_run(run_dir)
    assert a.steps.tolist() == b.steps.tolist() == list(range(51))
    np.testing.assert_array_equal(a.logprobs, b.logprobs)  # bit for bit; NaN alike (`full`)
    assert not np.isnan(b.logprobs[..., STATS.index("target_mean")]).any()  # no missing step
    assert np.array_equal(a.train.to_numpy(), b.train.to_numpy())
    assert b.meta["status"] == "done"
    record = pd.read_parquet(run_dir / PROVENANCE_FILE)  # truncated at each resume's checkpoint
    assert record.equals(pd.read_parquet(ref / PROVENANCE_FILE))
    assert len(record) == len(b.injections) and record.step.is_monotonic_increasing


def test_non_finite_loss_stops_and_keeps_last_checkpoint(
    toy_world, toy_base, tmp_path, monkeypatch
):
    real = loop.train_step
    calls = iter(range(10**6))

    def poisoned(model, opt, ids, labels, **kw):
        if next(calls) == 13:
            with __import__("torch").no_grad():
                next(model.parameters()).fill_(float("nan"))
        return real(model, opt, ids, labels, **kw)

    monkeypatch.setattr(loop, "train_step", poisoned)
    with pytest.raises(TrainingError, match="step 13"):
        train(_cfg(toy_world, toy_base, "train.steps=60"), tmp_path / "run")
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step_0000010"]
    assert load_run(tmp_path / "run").meta["status"] == "failed"


def test_gradient_checkpointing_changes_nothing_and_bf16_stays_close(toy_world, toy_base, tmp_path):
    """Recomputing activations must give the same updates; bf16 autocast approximately so."""
    runs = {}
    for name, extra in {
        "plain": [],
        "ckpt": ["model.gradient_checkpointing=true"],
        "bf16": ["model.dtype=bf16"],
    }.items():
        cfg = _cfg(
            toy_world,
            toy_base,
            "train.steps=15",
            "injection.interval=3",
            "train.checkpoint_every=100",
            *extra,
        )
        runs[name] = load_run(train(cfg, tmp_path / name))
    plain, ckpt, bf16 = runs["plain"], runs["ckpt"], runs["bf16"]
    np.testing.assert_allclose(ckpt.train.loss, plain.train.loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ckpt.logprobs, plain.logprobs, rtol=0, atol=1e-4)
    assert np.isfinite(bf16.train.loss).all()
    np.testing.assert_allclose(bf16.train.loss, plain.train.loss, rtol=0.05)
