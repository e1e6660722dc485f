"""Paths mean what they say (issue 33): a path that names no file is an error, never a
packaged preset or grid (those are named bare: ``tiny``, ``olmo-1b``); the paths in a grid
file are taken from the grid's folder, whatever the working directory; a bad ``set`` of a
grid names the grid and its point; and two ``train --out`` of one new folder cannot both
run (the second is refused naming the first)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
import yaml
from harness import assert_refused, run_cli, snapshot

from factdyn.errors import DataError
from factdyn.sweep.sweep import plan_sweep
from factdyn.train.lock import claim_new_run

HOLDER = "424242 otherhost 2026-01-01T00:00:00Z\n"


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


# -- a path that names no file -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["reproduce", "/nonexistent/tiny.yaml", "--dry-run"], "no such grid file"),
        (["reproduce", "nowhere/tiny", "--dry-run"], "no such grid file"),
        (["train", "/nosuch/olmo-1b.yaml", "--print-config"], "no such config file"),
        (["train", "nosuch/tiny", "--print-config"], "no such config file"),
        (["train", "./olmo-1b.yaml", "--print-config"], "./olmo-1b.yaml: no such config file"),
        (["reproduce", "./tiny.yaml", "--dry-run"], "./tiny.yaml: no such grid file"),
    ],
)
def test_a_missing_path_is_an_error_not_a_packaged_name(tmp_path, monkeypatch, args, mentions):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    outcome = run_cli(*args)
    assert_refused(outcome, mentions=mentions)
    assert "named without a folder" in outcome.stderr  # and how to name the packaged one
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ["train", "olmo-1b", "--print-config"],
        ["train", "tiny.yaml", "--print-config"],
        ["reproduce", "tiny", "--dry-run"],
    ],
)
def test_packaged_presets_and_grids_by_bare_name(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*args).code == 0


# -- paths inside a grid file ---------------------------------------------------------------


def test_a_grids_paths_are_taken_from_its_folder_not_the_working_directory(tmp_path, monkeypatch):
    grids, elsewhere = tmp_path / "grids", tmp_path / "elsewhere"
    _write(grids / "mine.yaml", {"train": {"steps": 7}})
    (grids / "corpus").mkdir()
    grid = _write(
        grids / "grid.yaml",
        {
            "config": "mine.yaml",
            "set": ["data.source=text", "data.path=corpus"],
            "axes": {"other": [{"name": "packaged", "config": "tiny.yaml"}]},
        },
    )
    _write(elsewhere / "mine.yaml", {"train": {"steps": 9}})  # the same names, elsewhere
    _write(elsewhere / "tiny.yaml", {"train": {"steps": 9}})
    (elsewhere / "corpus").mkdir()
    monkeypatch.chdir(elsewhere)
    ref, packaged = plan_sweep(os.path.relpath(grid), tmp_path / "out").specs
    assert ref.config.train.steps == 7  # grids/mine.yaml
    assert packaged.config.train.steps == 250  # a bare name that is no file there: packaged
    assert ref.config.data.path == str((grids / "corpus").resolve())


def test_a_grids_missing_config_file_names_the_grid_and_point(tmp_path):
    grid = _write(
        tmp_path / "grid.yaml", {"axes": {"size": [{"name": "big", "config": "big/x.yaml"}]}}
    )
    with pytest.raises(DataError, match=r"grid.yaml: axes.size.big, field 'config': .*no such"):
        plan_sweep(grid, tmp_path / "out")


# -- a bad value in a grid's set ------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "quick", "where"),
    [
        ({"set": ["train.steps=abc"]}, False, "grid.yaml: set train.steps=abc"),
        (
            {"axes": {"size": [{"name": "small", "set": ["train.steps=abc"]}]}},
            False,
            "grid.yaml: axes.size.small: set train.steps=abc",
        ),
        ({"quick": {"set": ["train.steps=abc"]}}, True, "grid.yaml: quick.set train.steps=abc"),
        (
            {"axes": {"size": [{"name": "small", "set": ["train.steps=[1"]}]}},
            False,
            "grid.yaml: axes.size.small: set 'train.steps=[1'",
        ),
    ],
)
def test_a_bad_set_in_a_grid_is_blamed_on_the_grid_and_its_point(tmp_path, doc, quick, where):
    grid = _write(tmp_path / "grid.yaml", doc)
    outcome = run_cli("reproduce", grid, *(["--quick"] if quick else []), "--dry-run")
    assert_refused(outcome, mentions=where)
    assert "--set" not in outcome.stderr and "defaults" not in outcome.stderr


def test_a_bad_set_on_the_command_line_is_still_blamed_on_it(tmp_path):
    grid = _write(tmp_path / "grid.yaml", {"set": ["train.steps=5"]})
    outcome = run_cli("reproduce", grid, "--set", "train.steps=x", "--dry-run")
    assert_refused(outcome, mentions="--set train.steps=x, field 'train.steps'")


# -- two train --out of one new folder ----------------------------------------------------


def _hold(folder: Path):
    """``folder/.lock`` held as a first ``train --out`` holds it while its weights load."""
    folder.mkdir(parents=True, exist_ok=True)
    f = (folder / ".lock").open("a+")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(HOLDER)
    f.flush()
    return f


def test_a_second_train_into_a_new_folder_being_written_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "run"
    with _hold(out):
        before = snapshot(tmp_path)
        outcome = run_cli("train", "--out", out, "--steps", "3")
        assert_refused(outcome, mentions="process 424242 on otherhost since 2026-01-01")
        assert snapshot(tmp_path) == before


def test_a_new_runs_claim_is_refused_while_held_free_when_stale_and_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "run"
    lock = claim_new_run(out)
    with pytest.raises(DataError, match=f"being written by process {os.getpid()} on "):
        claim_new_run(out)
    lock.release()
    assert not (tmp_path / "new").exists()  # a claim that came to nothing leaves nothing
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / ".lock").write_text(HOLDER)  # its holder died: the kernel dropped its flock
    claim_new_run(stale).release()
    (stale / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="exists and is not empty"):
        claim_new_run(stale)


def test_train_itself_claims_a_new_folder(train_args, tmp_path, monkeypatch):
    """The claim the training takes, not only the command line's early look: two
    commands that both passed that look (started at the same instant) cannot both run."""
    import factdyn.train.experiment  # noqa: F401 (binds the real claim before the patch)
    import factdyn.train.lock

    monkeypatch.setattr(factdyn.train.lock, "claim_new_run", lambda out: _Free())
    out = tmp_path / "run"
    with _hold(out):
        outcome = run_cli("train", *train_args, "--out", out)
        assert_refused(outcome, mentions="process 424242 on otherhost")
    assert not (out / "meta.json").exists()


class _Free:
    """The command line's look at the folder, skipped."""

    def release(self) -> None:
        pass
