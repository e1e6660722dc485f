"""Checkpoints you can trust and an explicit resume, tried as a hostile user would.

Every case goes through the ``factdyn`` command (:func:`harness.run_cli`). Damaged checkpoints
must be passed over with one line on stderr and the run must still end with the log of an
uninterrupted run, bit for bit; a resume that would continue with anything but the run's own
configuration, a second writer, or a directory that is not a run must be refused in one line
(exit 2) with every file left as it was.

The runs use eval.schedule=every and a constant learning rate, so a run of T steps logs
exactly the first T (+1) rows of the uninterrupted 30-step ``reference``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from harness import Outcome, assert_refused, run_cli, snapshot

from factdyn.errors import DataError
from factdyn.rundir import STATS
from factdyn.train import checkpoint as ckpt
from factdyn.train import loop

COMMON = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=4",  # injections at 0, 4, ..., 16
    "injection.n_controls=3",
    "eval.window=2",
    "eval.schedule=every",
    "train.checkpoint_every=6",
    "train.keep_checkpoints=3",
    "train.threads=2",
]
STEPS = 24  # the finished run: checkpoints step_12, step_18, step_24 kept
NEWEST, PREVIOUS = "step_0000024", "step_0000018"


def _sets(world: Path, base: Path, *extra: str) -> list[str]:
    return [f"--set={s}" for s in [f"data.path={world}", f"model.name={base}", *COMMON, *extra]]


def _ok(outcome: Outcome) -> Outcome:
    assert outcome.code == 0, (outcome.code, outcome.stderr[-3000:])
    assert "Traceback" not in outcome.stderr
    return outcome


def _notices(outcome: Outcome) -> list[str]:
    """factdyn's own stderr lines (not progress bars, not library warnings)."""
    return [ln for ln in outcome.error_lines if ln.startswith("factdyn:")]


def _new_run(out: Path, world: Path, base: Path, steps: int, *extra: str) -> Path:
    _ok(run_cli("train", "--out", out, *_sets(world, base, f"train.steps={steps}", *extra)))
    return out


def _without_lock(snap: dict[str, str]) -> dict[str, str]:
    """A resume that takes the lock and is then refused rewrites its pid into RUN/.lock."""
    return {k: v for k, v in snap.items() if k != ".lock"}


@pytest.fixture(scope="module")
def reference(toy_world, toy_base, tmp_path_factory) -> Path:
    """An uninterrupted run of 30 steps: what every resumed run must reproduce."""
    return _new_run(tmp_path_factory.mktemp("ref") / "run", toy_world, toy_base, 30)


@pytest.fixture(scope="module")
def finished(toy_world, toy_base, tmp_path_factory) -> Path:
    return _new_run(tmp_path_factory.mktemp("done") / "run", toy_world, toy_base, STEPS)


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A private copy of the finished run to damage."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def _scribble_after(run: Path, step: int) -> None:
    """Overwrite the log rows after θ_step, so that only a resumed run that recomputes them
    can match the reference."""
    for name in ("logprobs.npy",):
        log = np.load(run / name, mmap_mode="r+")
        log[step + 1 :] = 0.0
        log.flush()
    train = np.load(run / "train.npy", mmap_mode="r+")
    train[step:] = 0.0
    train.flush()


def assert_same_logs(run: Path, reference: Path) -> None:
    """The run's logs are the reference's first rows, bit for bit (NaN where the reference
    has NaN: the unlogged `full` column), and no step missing (no NaN ℓ)."""
    steps = np.load(run / "steps.npy")
    assert steps.tolist() == list(range(len(steps)))
    log = np.load(run / "logprobs.npy")
    np.testing.assert_array_equal(log, np.load(reference / "logprobs.npy")[: len(steps)])
    assert not np.isnan(log[..., STATS.index("target_mean")]).any()
    train = np.load(run / "train.npy")
    assert np.array_equal(train, np.load(reference / "train.npy")[: len(train)])


def assert_checkpoints_verify(run: Path) -> None:
    dirs = ckpt.checkpoint_dirs(run / "checkpoints")
    assert dirs and all(ckpt.manifest_problems(d) == [] for d in dirs), dirs


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip(f: Path) -> None:
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def _edit_state(d: Path) -> None:
    """Same size, other step: only the hash can tell."""
    f = d / "state.json"
    f.write_text(f.read_text().replace(str(STEPS), "18"))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated weights": (lambda d: _truncate(d / "model.safetensors"), "model.safetensors: size"),
    "flipped weights": (lambda d: _flip(d / "model.safetensors"), "model.safetensors: hash"),
    "deleted optimizer": (lambda d: (d / "optimizer.pt").unlink(), "optimizer.pt: missing"),
    "deleted manifest": (lambda d: (d / "manifest.json").unlink(), "manifest.json: missing"),
    "edited state": (_edit_state, "state.json: hash mismatch"),
    "deleted checkpoint": (shutil.rmtree, f"{NEWEST} is missing"),
}


# ---- damaged checkpoints: fallback, then the uninterrupted run's log ----


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_and_log_stays_bit_identical(run, reference, kind):
    damage, mention = DAMAGE[kind]
    damage(run / "checkpoints" / NEWEST)
    _scribble_after(run, 18)
    out = _ok(run_cli("train", "--resume", run))
    (notice,) = _notices(out)
    assert mention in notice and notice.endswith(f"resuming from {PREVIOUS}"), notice
    assert_same_logs(run, reference)
    assert_checkpoints_verify(run)  # the damaged one was saved again, whole
    meta = json.loads((run / "meta.json").read_text())
    assert (meta["status"], meta["steps_done"]) == ("done", STEPS)


def test_two_damaged_checkpoints_fall_back_two(run, reference):
    _flip(run / "checkpoints" / NEWEST / "model.safetensors")
    _truncate(run / "checkpoints" / PREVIOUS / "optimizer.pt")
    _scribble_after(run, 12)
    (notice,) = _notices(_ok(run_cli("train", "--resume", run)))
    assert "(and 1 more); resuming from step_0000012" in notice, notice
    assert_same_logs(run, reference)
    assert_checkpoints_verify(run)


def test_no_intact_checkpoint_is_refused_and_nothing_changes(run):
    for d in ckpt.checkpoint_dirs(run / "checkpoints"):
        _flip(d / "model.safetensors")
    before = snapshot(run)
    out = run_cli("train", "--resume", run)
    assert_refused(out, mentions="no intact checkpoint")
    assert "start a new run from its config.yaml" in out.stderr
    assert _without_lock(snapshot(run)) == _without_lock(before)


def test_missing_optimizer_needs_explicit_permission(run):
    for d in ckpt.checkpoint_dirs(run / "checkpoints"):
        (d / "optimizer.pt").unlink()
    before = snapshot(run)
    assert_refused(run_cli("train", "--resume", run), mentions="--allow-missing-optimizer")
    assert _without_lock(snapshot(run)) == _without_lock(before)
    out = _ok(run_cli("train", "--resume", run, "--allow-missing-optimizer"))
    (notice,) = _notices(out)
    assert f"{NEWEST} has no optimizer.pt" in notice and "AdamW" in notice
    assert json.loads((run / "meta.json").read_text())["status"] == "done"


# ---- resume is explicit: the run's own configuration ----


def test_edited_config_yaml_is_refused_naming_the_field(run):
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("lr: null", "lr: 0.01"))
    before = snapshot(run)
    assert_refused(run_cli("train", "--resume", run), mentions="optim.lr null -> 0.01")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--set", "optim.lr=0.01"], "optim.lr"),
        (
            ["--set", "eval.window=3", "--set", "data.seed=1"],
            "data.seed 0 -> 1, eval.window 2 -> 3",
        ),
        (["--steps", "12"], "train.steps 24 -> 12"),
    ],
)
def test_changed_settings_on_the_command_line_are_refused(run, args, field):
    before = snapshot(run)
    assert_refused(run_cli("train", "--resume", run, *args), mentions=field)
    assert snapshot(run) == before


def test_a_different_config_file_is_refused_and_the_runs_own_is_accepted(run, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text((run / "config.yaml").read_text().replace("window: 2", "window: 4"))
    assert_refused(run_cli("train", other, "--resume", run), mentions="eval.window 2 -> 4")
    same = tmp_path / "same.yaml"
    shutil.copy(run / "config.yaml", same)
    before = snapshot(run / "checkpoints")
    _ok(run_cli("train", same, "--resume", run))  # finished: θ_24 is scored again, no update
    assert snapshot(run / "checkpoints") == before


def test_meta_records_the_hash_of_the_resolved_config(finished):
    meta = json.loads((finished / "meta.json").read_text())
    digest = hashlib.sha256((finished / "config.yaml").read_bytes()).hexdigest()
    assert meta["config_sha256"] == digest
    assert meta["config"]["train"]["steps"] == STEPS


def test_extending_train_steps_grows_the_logs_to_the_longer_runs(run, reference):
    out = _ok(run_cli("train", "--resume", run, "--steps", "30"))
    assert _notices(out) == []
    assert_same_logs(run, reference)
    assert len(np.load(run / "steps.npy")) == 31 and len(np.load(run / "train.npy")) == 30
    meta = json.loads((run / "meta.json").read_text())
    assert (meta["status"], meta["total_steps"], meta["config"]["train"]["steps"]) == (
        "done",
        30,
        30,
    )
    assert "steps: 30" in (run / "config.yaml").read_text()
    assert meta["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    with (run / ".lock").open("a") as f:  # released at the end
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_extending_a_sparse_run_past_its_tail_is_refused(toy_world, toy_base, tmp_path):
    sparse = _new_run(
        tmp_path / "sparse",
        toy_world,
        toy_base,
        8,
        "injection.interval=1",  # injections at 0..4, windows end at 6, tail: 7, 8
        "eval.schedule=sparse",
        "eval.log_points=2",
        "train.checkpoint_every=10",
    )
    before = snapshot(sparse)
    out = run_cli("train", "--resume", sparse, "--steps", "16")
    assert_refused(out, mentions="train.steps: extending 8 -> 16 from step 8")
    assert "start a new run" in out.stderr
    assert _without_lock(snapshot(sparse)) == _without_lock(before)


# ---- one writer at a time ----


def test_a_second_writer_is_refused_naming_the_first(run):
    with (run / ".lock").open("r+") as held:  # the first writer, as far as the lock can tell
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate()
        held.write("424242\n")
        held.flush()
        before = snapshot(run)
        assert_refused(run_cli("train", "--resume", run), mentions="process 424242")
        assert snapshot(run) == before


# ---- what is not a run ----


@pytest.mark.parametrize("what", ["empty dir", "missing", "a file"])
def test_resume_of_something_that_is_not_a_run(tmp_path, what):
    target = tmp_path / "x"
    if what == "empty dir":
        target.mkdir()
    elif what == "a file":
        target.write_text("hello")
    before = snapshot(tmp_path)
    assert_refused(run_cli("train", "--resume", target), mentions="not a factdyn run directory")
    assert snapshot(tmp_path) == before


# ---- the NaN guard keeps the last good checkpoint ----


def test_nan_weights_are_never_checkpointed_and_resume_completes(
    toy_world, toy_base, tmp_path, reference, monkeypatch
):
    real = loop.train_step
    calls = iter(range(10**6))

    def poisoned(model, opt, ids, labels, **kw):
        loss = real(model, opt, ids, labels, **kw)
        if next(calls) == 9:  # update 9 ends with a finite loss and NaN weights: θ_10 is bad
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return loss

    monkeypatch.setattr(loop, "train_step", poisoned)
    sets = _sets(toy_world, toy_base, "train.steps=20", "train.checkpoint_every=1")
    out = run_cli("train", "--out", tmp_path / "run", *sets)
    assert out.code == 1 and "Traceback" not in out.stderr
    (line,) = _notices(out)
    assert "step 10: non-finite parameters" in line and "step_0000009" in line, line
    run = tmp_path / "run"
    dirs = ckpt.checkpoint_dirs(run / "checkpoints")
    assert [d.name for d in dirs] == ["step_0000007", "step_0000008", "step_0000009"]
    assert_checkpoints_verify(run)
    assert json.loads((run / "meta.json").read_text())["status"] == "failed"
    monkeypatch.setattr(loop, "train_step", real)
    _ok(run_cli("train", "--resume", run))
    assert_same_logs(run, reference)


# ---- the base model and the manifest itself ----


def test_a_damaged_base_model_is_refused_before_a_run_exists(toy_world, toy_base, tmp_path):
    base = Path(shutil.copytree(toy_base, tmp_path / "base"))
    _flip(base / "model.safetensors")
    out = run_cli("train", "--out", tmp_path / "run", *_sets(toy_world, base, "train.steps=20"))
    assert_refused(out, mentions="model directory is damaged (model.safetensors: hash")
    assert not (tmp_path / "run").exists()


def test_manifest_lists_every_file_with_size_and_hash(finished):
    d = ckpt.checkpoint_dirs(finished / "checkpoints")[-1]
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["format"] == ckpt.FORMAT and manifest["step"] == STEPS
    files = {p.name for p in d.iterdir() if p.name != "manifest.json"}
    assert set(manifest["files"]) == files >= {"model.safetensors", "optimizer.pt", "state.json"}
    for name, entry in manifest["files"].items():
        data = (d / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_rotation_keeps_the_newest_good_checkpoint_and_damaged_newer_ones(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (10, 20, 30):
        d = root / f"step_{step:07d}"
        d.mkdir(parents=True)
        (d / "state.json").write_text(json.dumps({"step": step}))
        ckpt.write_manifest(d, step=step)
    _flip(root / "step_0000030" / "state.json")  # newer and damaged: a passed-over one
    ckpt.rotate(root, root / "step_0000020", keep=1)
    assert [d.name for d in ckpt.checkpoint_dirs(root)] == ["step_0000020", "step_0000030"]
    assert ckpt.choose_checkpoint(root, 30).path == root / "step_0000020"
    os.remove(root / "step_0000020" / "manifest.json")
    with pytest.raises(DataError, match="no intact checkpoint"):
        ckpt.choose_checkpoint(root, 30)
