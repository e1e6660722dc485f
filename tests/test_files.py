"""factdyn.files: a crash never leaves an output half-written or gone, and the output policy
refuses what could touch files factdyn did not create."""

from __future__ import annotations

import os

import pytest

from factdyn.errors import DataError
from factdyn.files import (
    atomic_dir,
    atomic_file,
    output_dir,
    prepare_output,
    prepare_output_file,
    repair_dir,
    replace_dir,
)


def _make(folder, **files: str):
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _crash_on_rename(monkeypatch, call: int) -> None:
    """The ``call``-th os.rename from now raises, as a SIGKILL at that instant would stop it."""
    real, count = os.rename, iter(range(1, 100))

    def rename(src, dst):
        if next(count) == call:
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)


def test_a_crash_between_the_two_renames_is_repaired_by_the_next_call(tmp_path, monkeypatch):
    dest = _make(tmp_path / "analysis", **{"summary.json": "old"})
    new = _make(tmp_path / "new", **{"summary.json": "new"})
    _crash_on_rename(monkeypatch, call=2)  # the old one moved aside, the new not yet in place
    with pytest.raises(KeyboardInterrupt):
        replace_dir(new, dest)
    monkeypatch.undo()
    assert not dest.exists()
    backups = [p for p in tmp_path.iterdir() if p.name.endswith("factdyn-old")]
    assert [(b / "summary.json").read_text() for b in backups] == ["old"]  # still readable
    newer = _make(tmp_path / "newer", **{"summary.json": "newer"})
    replace_dir(newer, dest)
    assert (dest / "summary.json").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis", "new"]


def test_a_crash_before_the_old_copy_is_removed_is_cleaned_up(tmp_path, monkeypatch):
    dest = _make(tmp_path / "d", a="old")
    new = _make(tmp_path / "n", a="new")
    monkeypatch.setattr("shutil.rmtree", lambda *a, **k: None)  # killed before removing it
    replace_dir(new, dest)
    monkeypatch.undo()
    assert (dest / "a").read_text() == "new" and (tmp_path / ".d.factdyn-old").is_dir()
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("newest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_output_dir_replaces_only_its_own_files(tmp_path):
    dest = _make(tmp_path / "out", **{"summary.json": "old", "mine.txt": "user"})
    _make(dest / "figures", **{"drawing.png": "user"})
    with output_dir(dest) as stage:
        (stage / "summary.json").write_text("new")
        (stage / "figures").mkdir()
        (stage / "figures" / "fig1.png").write_text("fig")
    assert (dest / "summary.json").read_text() == "new"
    assert (dest / "mine.txt").read_text() == "user"
    assert (dest / "figures" / "drawing.png").read_text() == "user"
    assert (dest / "figures" / "fig1.png").read_text() == "fig"
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_output_dir_refuses_a_folder_where_it_writes_a_file_and_changes_nothing(tmp_path):
    dest = _make(tmp_path / "out", **{"a.csv": "old"})
    (dest / "summary.json").mkdir()
    with pytest.raises(DataError, match="is a directory"), output_dir(dest) as stage:
        (stage / "a.csv").write_text("new")
        (stage / "summary.json").write_text("new")
    assert (dest / "a.csv").read_text() == "old"


def test_a_failed_write_leaves_no_folder_behind(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as err, atomic_file(tmp_path / "a" / "b" / "x.csv") as tmp:
        tmp.write_text("x")
    assert err.value.filename == str(tmp_path / "a" / "b" / "x.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def run(tmp_path):
    return _make(tmp_path / "run", **{"meta.json": "{}", "logprobs.npy": ""})


def test_prepare_output_policy(tmp_path, run):
    user = _make(tmp_path / "user", notes="mine")
    for out, kw in [
        (run, {}),
        (run / "checkpoints", {"run_place": "analysis"}),
        (run / "analysis" / "x", {"run_place": "analysis"}),
        (run / "report", {"run_place": "analysis", "overwrite": True}),
        (user, {}),
        (user / "notes", {"overwrite": True}),
    ]:
        with pytest.raises(DataError):
            prepare_output(out, **{"overwrite": False, **kw})
    assert prepare_output(run / "analysis", overwrite=False, run_place="analysis")
    assert prepare_output(user, overwrite=True) == user
    assert prepare_output(tmp_path / "new", overwrite=False) == tmp_path / "new"
    other = _make(tmp_path / "half")  # an input run without the markers still counts
    with pytest.raises(DataError, match="inside the run"):
        prepare_output(other / "x", overwrite=True, protected_runs=[other])


def test_prepare_output_file_policy(tmp_path, run):
    (tmp_path / "old.parquet").write_text("x")
    with pytest.raises(DataError, match="exists"):
        prepare_output_file(tmp_path / "old.parquet", overwrite=False)
    with pytest.raises(DataError, match="inside the run"):
        prepare_output_file(run / "meta.json", overwrite=True)
    with pytest.raises(DataError, match="is a directory"):
        prepare_output_file(run, overwrite=True)
    assert prepare_output_file(tmp_path / "old.parquet", overwrite=True)


def _look_alike(tmp_path, name: str):
    """A user's folder that merely has the name of factdyn's backup of ``name``."""
    return _make(tmp_path / f".{name}.factdyn-old", **{"paper.tex": "mine"})


def test_repair_touches_only_a_backup_factdyn_made(tmp_path):
    mine = _look_alike(tmp_path, "out")
    repair_dir(tmp_path / "out")  # the output missing: not put in its place
    assert not (tmp_path / "out").exists() and (mine / "paper.tex").read_text() == "mine"
    _make(tmp_path / "out", a="x")
    repair_dir(tmp_path / "out")  # the output present: not removed
    assert (mine / "paper.tex").read_text() == "mine"


def test_a_look_alike_in_the_way_of_a_swap_is_refused_and_kept(tmp_path):
    dest = _make(tmp_path / "out", a="old")
    mine = _look_alike(tmp_path, "out")
    with pytest.raises(DataError, match="not factdyn's backup"), atomic_dir(dest) as tmp:
        (tmp / "a").write_text("new")
    assert (dest / "a").read_text() == "old" and (mine / "paper.tex").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.factdyn-old", "out"]


def _interrupted_swap(tmp_path, monkeypatch):
    """``out`` replaced, killed between the two renames: only factdyn's backup is left."""
    dest = _make(tmp_path / "out", **{"summary.json": "old"})
    new = _make(tmp_path / "new", **{"summary.json": "new"})
    _crash_on_rename(monkeypatch, call=2)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(new, dest)
    monkeypatch.undo()
    assert not dest.exists()
    return dest, tmp_path / ".out.factdyn-old"


def test_no_repair_before_a_refusal(tmp_path, monkeypatch):
    """prepare_output checks, it repairs nothing: an interrupted swap's backup counts as the
    output's content (refused without --overwrite) and stays where it is either way; the
    write that follows puts it back first, without its marker."""
    dest, old = _interrupted_swap(tmp_path, monkeypatch)
    with pytest.raises(DataError, match="interrupted"):
        prepare_output(dest, overwrite=False)
    assert old.is_dir() and not dest.exists()
    assert prepare_output(dest, overwrite=True) == dest
    assert old.is_dir() and not dest.exists()
    with output_dir(dest) as stage:
        (stage / "more.csv").write_text("more")
    assert sorted(p.name for p in dest.iterdir()) == ["more.csv", "summary.json"]
    assert (dest / "summary.json").read_text() == "old" and not old.exists()
