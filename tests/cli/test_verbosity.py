"""``factdyn -q`` prints only errors and where results went; ``-v`` adds debug lines; by
default a slow step without a bar says what it is doing, and other libraries' progress bars
stay out of factdyn's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tiny_run import TINY, VERBOSITY_ENV
from typer.testing import CliRunner

from factdyn import progress
from factdyn.cli import app

TINY = [*TINY, "train.steps=45", "train.checkpoint_every=20"]
ENV = VERBOSITY_ENV


@pytest.fixture
def clean_env(monkeypatch):
    """No verbosity inherited, and whatever a command sets undone afterwards."""
    for name in ENV:
        monkeypatch.setenv(name, "")  # recorded, so that what a command sets is undone
        monkeypatch.delenv(name)


def _sets(toy_world, toy_base) -> list[str]:
    pairs = [f"data.path={toy_world}", f"model.name={toy_base}", *TINY]
    return [a for p in pairs for a in ("--set", p)]


def test_quiet_prints_only_where_the_run_went(toy_world, toy_base, tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    cmd = [sys.executable, "-m", "factdyn", "-q", "train", "--out", str(run)]
    done = subprocess.run(
        [*cmd, *_sets(toy_world, toy_base)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no bars, no phase lines, no other library's output
    assert done.stdout.splitlines() == [
        f"run written to {run} (logs: logprobs.npy, injections.parquet; next: factdyn analyze {run})"
    ]


def test_verbose_adds_debug_lines(toy_world, toy_base, tmp_path, clean_env):
    run = tmp_path / "run"
    argv = ["-v", "train", "--out", str(run), *_sets(toy_world, toy_base)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "factdyn: loading model" in result.stderr
    assert f"factdyn: loaded {toy_base}: " in result.stderr and "parameters" in result.stderr
    for step in (20, 40, 45):
        assert f"factdyn: checkpoint step {step} saved in " in result.stderr
    assert os.environ["FACTDYN_VERBOSITY"] == "1"  # what the processes it starts inherit


def test_q_and_v_together_are_refused(clean_env):
    result = CliRunner().invoke(app, ["-q", "-v", "train", "--print-config"])
    assert result.exit_code == 2 and "-q and -v" in result.output


def test_without_an_option_a_command_keeps_the_verbosity_it_inherited(clean_env, monkeypatch):
    monkeypatch.setenv("FACTDYN_VERBOSITY", "-1")  # started by a `factdyn -q` command
    result = CliRunner().invoke(app, ["train", "--print-config"])
    assert result.exit_code == 0
    assert progress.quiet()


def test_phase_lines_go_to_a_terminal_and_are_silent_when_quiet(clean_env, capsys, monkeypatch):
    progress.configure(progress.NORMAL)
    progress.phase("tokenizing corpus")
    assert capsys.readouterr().err == ""  # stderr captured, not a terminal: logs stay clean
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    progress.phase("tokenizing corpus")
    assert capsys.readouterr().err == "factdyn: tokenizing corpus …\n"
    monkeypatch.setenv("RANK", "1")  # another process of a torchrun launch: silent
    progress.phase("tokenizing corpus")
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("RANK")
    progress.configure(progress.QUIET)
    progress.phase("tokenizing corpus")
    progress.debug("details")
    assert capsys.readouterr().err == ""
    progress.configure(progress.NORMAL)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # other libraries' bars off


def test_loading_a_model_says_so_without_transformers_bars(
    toy_base, clean_env, capsys, monkeypatch
):
    from factdyn.score.loading import load_model_and_tokenizer

    progress.configure(progress.NORMAL)
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    load_model_and_tokenizer(str(toy_base))
    err = capsys.readouterr().err
    assert err == f"factdyn: loading model {toy_base} …\n"  # and no "Loading weights" bar
