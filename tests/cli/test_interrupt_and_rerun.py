"""Stopping and re-running ``factdyn train``: Ctrl-C ends with one line naming the saved step
and the resume command; an existing run given as ``--out`` points to ``--resume``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from tiny_run import TINY, VERBOSITY_ENV
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.rundir import read_meta
from factdyn.train.loop import Interrupted

CLEAN = VERBOSITY_ENV  # factdyn's own environment variables


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _lines(stream: str) -> list[str]:
    """What a terminal shows last: progress bars redraw with carriage returns."""
    return [x.strip() for x in re.split(r"[\r\n]", stream) if x.strip()]


def test_ctrl_c_ends_with_the_saved_step_and_the_resume_command(toy_world, toy_base, tmp_path):
    run = tmp_path / "run"
    sets = [f"data.path={toy_world}", f"model.name={toy_base}", *TINY]
    sets += ["train.steps=400", "train.checkpoint_every=5"]
    cmd = [sys.executable, "-m", "factdyn", "train", "--out", str(run)]
    cmd += [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        # Ctrl-C's default action, even where the test runner itself ignores SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        meta = run / "meta.json"
        if meta.exists() and json.loads(meta.read_text()).get("steps_done", 0) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = _lines(err)[-1]
    m = re.fullmatch(
        r"factdyn: interrupted after step (\d+) of 400; checkpoint step (\d+) is saved; "
        r"continue from there with: factdyn train --resume (\S+)",
        last,
    )
    assert m, err[-2000:]
    stopped, saved, where = int(m[1]), int(m[2]), m[3]
    assert where == str(run)
    assert saved == read_meta(run)["steps_done"] and saved % 5 == 0 and saved <= stopped < 400
    assert (run / "checkpoints" / f"step_{saved:07d}").is_dir()
    assert "Traceback" not in err and out == ""
    # the default output: factdyn's bar, no other library's progress bars
    assert "train:" in err
    assert "Loading weights" not in err and "Writing model shards" not in err


def _fake_train(exc: BaseException):
    def train(*args, **kwargs):
        raise exc

    return train


def test_ctrl_c_before_the_run_directory_exists_says_nothing_was_saved(tmp_path, monkeypatch):
    monkeypatch.setattr("factdyn.train.experiment.train", _fake_train(KeyboardInterrupt()))
    out = tmp_path / "new"
    argv = ["train", "--out", str(out), "--set", "data.path=w", "--set", "model.name=m"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 130
    assert result.stderr == (
        "factdyn: interrupted before the run directory was written; nothing was saved\n"
    )


def _run_dir(path, **meta):
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "logprobs.npy").write_bytes(b"")
    (path / "config.yaml").write_text("{}\n")
    return path


def test_ctrl_c_before_the_first_checkpoint_says_a_resume_starts_over(tmp_path, monkeypatch):
    run = _run_dir(tmp_path / "run", status="running", steps_done=0, total_steps=90)
    monkeypatch.setattr("factdyn.train.experiment.train", _fake_train(Interrupted(3, 90)))
    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 130
    assert result.stderr == (
        "factdyn: interrupted after step 3 of 90; no checkpoint yet, so a resume starts over "
        f"from step 0: factdyn train --resume {run}\n"
    )


def _set(*pairs: str) -> list[str]:
    return [a for p in pairs for a in ("--set", p)]


@pytest.mark.parametrize(
    "meta, says",
    [
        (
            {"status": "done", "steps_done": 250, "total_steps": 250},
            "already a finished factdyn run (250 steps); train it longer with "
            "'factdyn train --resume {run} --steps N', or give another --out for a new run",
        ),
        (
            {"status": "running", "steps_done": 50, "total_steps": 250},
            "already a factdyn run (stopped with step 50 of 250 saved); continue it with "
            "'factdyn train --resume {run}', or give another --out for a new run",
        ),
    ],
)
def test_an_existing_run_as_out_points_to_resume(exits_2, tmp_path, meta, says):
    run = _run_dir(tmp_path / "my run", **meta)
    err = exits_2(["train", "--out", run, *_set("data.path=w", "model.name=m")])
    quoted = f"'{run}'"  # the command as a shell needs it (the name has a space)
    assert err == f"factdyn: error: {run}: {says.format(run=quoted)}\n"


def test_a_folder_with_other_files_as_out_is_refused_without_resume(exits_2, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    err = exits_2(["train", "--out", tmp_path / "notes", *_set("data.path=w", "model.name=m")])
    assert "exists and is not empty (and is no factdyn run)" in err and "--resume" not in err


def test_ctrl_c_during_pretraining_says_the_base_was_not_saved(tmp_path, monkeypatch):
    (tmp_path / "world" / "tokenizer").mkdir(parents=True)
    monkeypatch.setattr("factdyn.train.base.pretrain", _fake_train(Interrupted(12, 450)))
    argv = ["pretrain", "--world", str(tmp_path / "world"), "--out", str(tmp_path / "base")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 130
    assert result.stderr == (
        "factdyn: pretraining interrupted after step 12 of 450; the base model was not saved "
        "(pretraining has no resume: run the command again)\n"
    )
    assert not (tmp_path / "base").exists()
