"""Where commands write (issue 12, items 1, 3, 5): no command deletes or replaces what it did
not create, and a path the system refuses is one line, not a traceback nor a half-written file.

The table holds hostile outputs (a run directory, its checkpoints, a user's folder, a file, an
earlier export) and broken machines (full disk, no permission, read-only mount, simulated at
the final rename). Each case must exit 2 with one line and leave every file and folder of
the place exactly as it was. The tests after the table check what ``--overwrite`` and the
documented places do write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from errno import EACCES, ENOSPC, EROFS
from pathlib import Path

import pytest
from harness import assert_refused, run_cli, snapshot


@dataclass
class Ctx:
    """What a case's arguments are built from; training fixtures are made only when used."""

    place: object  # conftest's Place
    request: pytest.FixtureRequest

    def __getattr__(self, name: str):
        if name in ("train_args", "pretrain_args", "inputs"):
            return self.request.getfixturevalue(name)
        return getattr(self.place, name)


@dataclass(frozen=True)
class Case:
    args: Callable[[Ctx], list]
    mentions: str
    fault: int | None = None  # errno every rename fails with
    setup: Callable[[Ctx], list] | None = None  # a command that succeeds first
    training: bool = False  # reads the toy world and base (they are watched too)


def analyze(c: Ctx, *more) -> list:
    return ["analyze", c.run, *more]


RUN_INSIDE = "inside the run directory"
NOT_EMPTY = "not empty"
NOT_DIR = "not a directory"
FULL, DENIED, READ_ONLY = "No space left", "Permission denied", "Read-only file system"

CASES: dict[str, Case] = {
    # --- outputs that would destroy a run ---
    "analyze-out-run": Case(lambda c: analyze(c, "--out", c.run), RUN_INSIDE),
    "analyze-out-run-overwrite": Case(
        lambda c: analyze(c, "--out", c.run, "--overwrite"), RUN_INSIDE
    ),
    "analyze-out-checkpoints": Case(
        lambda c: analyze(c, "--out", c.run / "checkpoints"), RUN_INSIDE
    ),
    "analyze-out-checkpoints-overwrite": Case(
        lambda c: analyze(c, "--out", c.run / "checkpoints", "--overwrite"), RUN_INSIDE
    ),
    "analyze-out-below-analysis": Case(
        lambda c: analyze(c, "--out", c.run / "analysis" / "x"), RUN_INSIDE
    ),
    "analyze-out-other-run": Case(lambda c: analyze(c, "--out", c.run2), RUN_INSIDE),
    "analyze-out-other-runs-report": Case(
        lambda c: analyze(c, "--out", c.run2 / "report"), RUN_INSIDE
    ),
    "report-out-run": Case(lambda c: ["report", c.run, "--out", c.run], RUN_INSIDE),
    "report-out-run-analysis": Case(
        lambda c: ["report", c.run, "--out", c.run / "analysis", "--overwrite"], RUN_INSIDE
    ),
    "report-out-checkpoints": Case(
        lambda c: ["report", c.run, "--out", c.run / "checkpoints"], RUN_INSIDE
    ),
    "compare-out-run": Case(
        lambda c: ["compare", c.run, c.run2, "--out", c.run, "--overwrite"], RUN_INSIDE
    ),
    "export-into-run": Case(
        lambda c: ["export", c.run, "--out", c.run / "logprobs.npy", "--overwrite"], RUN_INSIDE
    ),
    "export-into-checkpoints": Case(
        lambda c: ["export", c.run, "--out", c.run / "checkpoints" / "x.parquet"], RUN_INSIDE
    ),
    "pretrain-out-run": Case(
        lambda c: ["pretrain", *c.pretrain_args, "--out", c.run, "--overwrite"],
        RUN_INSIDE,
        training=True,
    ),
    "generate-out-in-run": Case(
        lambda c: ["generate", "--out", c.run / "world", "--corpus-mb", "0.01"], RUN_INSIDE
    ),
    "train-out-in-run": Case(
        lambda c: ["train", *c.train_args, "--out", c.run / "checkpoints" / "new"],
        RUN_INSIDE,
        training=True,
    ),
    # --- a user's non-empty folder without --overwrite ---
    "analyze-out-user-dir": Case(lambda c: analyze(c, "--out", c.user), NOT_EMPTY),
    "report-out-user-dir": Case(lambda c: ["report", c.run, "--out", c.user], NOT_EMPTY),
    "compare-out-user-dir": Case(lambda c: ["compare", c.run, c.run2, "--out", c.user], NOT_EMPTY),
    "pretrain-out-user-dir": Case(
        lambda c: ["pretrain", *c.pretrain_args, "--out", c.user], NOT_EMPTY, training=True
    ),
    "generate-out-user-dir": Case(
        lambda c: ["generate", "--out", c.user, "--corpus-mb", "0.01"], NOT_EMPTY
    ),
    "train-out-user-dir": Case(
        lambda c: ["train", *c.train_args, "--out", c.user], NOT_EMPTY, training=True
    ),
    "report-several-runs-no-out": Case(lambda c: ["report", c.run, c.run2], "give --out"),
    "export-over-earlier-export": Case(lambda c: ["export", c.run, "--out", c.export], "exists"),
    "score-over-earlier-export": Case(
        lambda c: ["score", "--model", "m", "--data", "d.json", "--out", c.export], "exists"
    ),
    # --- an output path naming a file, or a file on the way ---
    "analyze-out-file": Case(lambda c: analyze(c, "--out", c.file), NOT_DIR),
    "report-out-file": Case(lambda c: ["report", c.run, "--out", c.file], NOT_DIR),
    "compare-out-file": Case(lambda c: ["compare", c.run, "--out", c.file], NOT_DIR),
    "pretrain-out-file": Case(
        lambda c: ["pretrain", *c.pretrain_args, "--out", c.file], NOT_DIR, training=True
    ),
    "generate-out-file": Case(lambda c: ["generate", "--out", c.file], NOT_DIR),
    "train-out-file": Case(
        lambda c: ["train", *c.train_args, "--out", c.file], NOT_DIR, training=True
    ),
    "export-out-dir": Case(lambda c: ["export", c.run, "--out", c.user], "is a directory"),
    "analyze-out-below-file": Case(lambda c: analyze(c, "--out", c.file / "sub"), "file.txt"),
    "export-out-below-file": Case(
        lambda c: ["export", c.run, "--out", c.file / "x.parquet"], "file.txt"
    ),
    # --- the machine refuses the write (full disk, permission, read-only mount) ---
    "analyze-full-disk": Case(lambda c: analyze(c), FULL, fault=ENOSPC),
    "analyze-full-disk-keeps-old": Case(
        lambda c: analyze(c, "--window", "5"), FULL, fault=ENOSPC, setup=lambda c: analyze(c)
    ),
    "analyze-denied": Case(lambda c: analyze(c, "--out", c.root / "new"), DENIED, fault=EACCES),
    "analyze-read-only": Case(
        lambda c: analyze(c, "--out", c.user, "--overwrite"), READ_ONLY, fault=EROFS
    ),
    "report-full-disk": Case(lambda c: ["report", c.run], FULL, fault=ENOSPC),
    "report-denied-keeps-old": Case(
        lambda c: ["report", c.run], DENIED, fault=EACCES, setup=lambda c: ["report", c.run]
    ),
    "compare-full-disk": Case(
        lambda c: ["compare", c.run, c.run2, "--out", c.root / "cmp"], FULL, fault=ENOSPC
    ),
    "export-full-disk-keeps-old": Case(
        lambda c: ["export", c.run, "--out", c.export, "--overwrite"], FULL, fault=ENOSPC
    ),
    "export-read-only": Case(
        lambda c: ["export", c.run, "--out", c.root / "new.parquet"], READ_ONLY, fault=EROFS
    ),
    "generate-denied": Case(
        lambda c: ["generate", "--out", c.root / "w", "--items", "2", "--corpus-mb", "0.01"],
        DENIED,
        fault=EACCES,
    ),
    "pretrain-full-disk": Case(
        lambda c: ["pretrain", *c.pretrain_args, "--out", c.root / "base"],
        FULL,
        fault=ENOSPC,
        training=True,
    ),
}


def tree(root: Path) -> dict[str, str]:
    """Every file's hash and every folder (an empty folder left behind counts too)."""
    folders = {str(p.relative_to(root)): "dir" for p in root.rglob("*") if p.is_dir()}
    return {**snapshot(root), **folders}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_refused_and_nothing_touched(case: Case, place, break_writes, request):
    ctx = Ctx(place, request)
    if case.setup is not None:
        assert run_cli(*case.setup(ctx)).code == 0
    args = case.args(ctx)
    watched = [place.root, *(ctx.inputs if case.training else [])]
    before = [tree(d) for d in watched]
    if case.fault is not None:
        break_writes(case.fault)
    assert_refused(run_cli(*args), mentions=case.mentions)
    assert [tree(d) for d in watched] == before


# --- what the documented places and --overwrite do write ---


def test_analyze_rewrites_its_own_place_and_keeps_the_users_files(place):
    assert run_cli("analyze", place.run).code == 0
    analysis = place.run / "analysis"
    (analysis / "my-notes.txt").write_text("mine")
    run_files = {k: v for k, v in snapshot(place.run).items() if not k.startswith("analysis")}
    outcome = run_cli("analyze", place.run, "--window", "5")  # no --overwrite needed there
    assert outcome.code == 0, outcome.stderr
    assert json.loads((analysis / "summary.json").read_text())["_settings"]["window"] == 5
    assert (analysis / "my-notes.txt").read_text() == "mine"
    after = snapshot(place.run)
    assert {k: v for k, v in after.items() if not k.startswith("analysis")} == run_files


def test_overwrite_replaces_only_factdyns_files(place):
    before = snapshot(place.user)
    outcome = run_cli("report", place.run, "--out", place.user, "--overwrite")
    assert outcome.code == 0, outcome.stderr
    after = snapshot(place.user)
    assert all(after[k] == v for k, v in before.items())  # drawing.png and notes.txt stay
    assert "report.html" in after and any(k.endswith(".pdf") for k in after)
    assert run_cli("analyze", place.run, "--out", place.user, "--overwrite").code == 0
    assert all(snapshot(place.user)[k] == v for k, v in after.items() if k != "report.html")


def test_export_overwrite_replaces_the_file(place):
    outcome = run_cli("export", place.run, "--out", place.export, "--overwrite")
    assert outcome.code == 0, outcome.stderr
    assert place.export.read_bytes()[:4] == b"PAR1"


def test_compare_and_report_never_write_into_the_working_directory(place):
    before = tree(place.root)
    assert run_cli("compare", place.run, place.run2).code == 2  # --out is required
    assert run_cli("report", place.run, place.run2).code == 2
    assert tree(place.root) == before
    outcome = run_cli("compare", place.run, place.run2, "--out", place.root / "cmp")
    assert outcome.code == 0, outcome.stderr
    assert sorted(p.name for p in (place.root / "cmp").iterdir()) == ["compare.csv"]


def test_pretrain_overwrite_keeps_the_users_files(place, pretrain_args):
    (place.user / "config.json").write_text("{}")  # a name the checkpoint writes: replaced
    outcome = run_cli("pretrain", *pretrain_args, "--out", place.user, "--overwrite")
    assert outcome.code == 0, outcome.stderr
    assert (place.user / "notes.txt").read_text() == "my notes"
    assert (place.user / "figures" / "drawing.png").read_bytes() == b"my drawing"
    assert json.loads((place.user / "config.json").read_text())["hidden_size"] == 32
    assert (place.user / "state.json").is_file()
