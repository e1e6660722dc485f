"""Damaged and impossible runs (issue 33, items 5 and 6): every file of a run is checked as it
is read (factdyn.runcheck, through rundir.load_run), so each case below is one line naming the
file and the field or row at fault, exit 2, from every command that reads a run, and nothing
is written or repaired. A run pooled with itself or a copy of itself is refused; a folder that
only looks like factdyn's backup of an output is never touched; words a user wrote reach the
figures as written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import assert_refused, run_cli, snapshot

from factdyn.rundir import load_run


def tree(root: Path) -> dict[str, str]:
    """Every file's digest and every folder under ``root``."""
    return snapshot(root) | {str(p.relative_to(root)): "dir" for p in root.rglob("*") if p.is_dir()}


def meta(**changes) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        f = run / "meta.json"
        f.write_text(json.dumps({**json.loads(f.read_text()), **changes}))

    return edit


def table(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable:
    def damage(run: Path) -> None:
        f = run / f"{name}.parquet"
        df = pd.read_parquet(f)
        out = edit(df)
        (df if out is None else out).to_parquet(f, index=False)

    return damage


def array(name: str, edit: Callable[[np.ndarray], np.ndarray | None]) -> Callable:
    def damage(run: Path) -> None:
        f = run / name
        a = np.load(f)
        out = edit(a)
        np.save(f, a if out is None else out)

    return damage


def setitem(index, value) -> Callable[[np.ndarray], None]:
    def edit(a):
        a[index] = value

    return edit


def cell(col: str, row: int, value) -> Callable[[pd.DataFrame], None]:
    def edit(df):
        df.loc[row, col] = value

    return edit


@dataclass(frozen=True)
class Case:
    damage: Callable[[Path], None]
    command: str
    mentions: tuple[str, ...]


def command(name: str, p) -> list:
    return {
        "analyze": ["analyze", p.run, "--out", p.root / "analysis"],
        "compare": ["compare", p.run, p.run2, "--out", p.root / "cmp"],
        "report": ["report", p.run, "--out", p.root / "rep"],
        "export": ["export", p.run, "--out", p.root / "x.parquet"],
    }[name]


INJECTED = "once"  # a scenario of the place's runs (items 3..5)
CASES: dict[str, Case] = {
    # --- meta.json with wrong types ---
    "meta-tokens-per-step-string": Case(
        meta(tokens_per_step="lots"), "analyze", ("meta.json", "tokens_per_step", "'lots'")
    ),
    "meta-window-zero": Case(meta(window=0), "analyze", ("meta.json", "window must be")),
    "meta-window-float": Case(meta(window=2.5), "report", ("meta.json", "window")),
    "meta-steps-done-negative": Case(meta(steps_done=-3), "export", ("meta.json", "steps_done")),
    "meta-steps-done-past-the-log": Case(meta(steps_done=10**6), "export", ("steps_done",)),
    "meta-batch-size-string": Case(meta(batch_size="16"), "compare", ("meta.json", "batch_size")),
    "meta-n-parameters-bool": Case(meta(n_parameters=True), "report", ("n_parameters",)),
    "meta-lr-first-string": Case(meta(lr_first="fast"), "analyze", ("lr_first",)),
    "meta-base-state-list": Case(meta(base_state=[1]), "report", ("base_state",)),
    "meta-base-config-list": Case(
        meta(base_state={"config": [1]}), "analyze", ("base_state.config",)
    ),
    "meta-data-order-seed-string": Case(
        meta(data_order={"seed": "x", "start": 0}), "analyze", ("data_order.seed",)
    ),
    "meta-no-tokens-per-step": Case(meta(tokens_per_step=None), "export", ("tokens_per_step",)),
    # --- tables: schema, duplicate ids, missing columns, unknown items ---
    "probes-duplicate-id": Case(
        table("probes", cell("probe_id", 1, 0)), "analyze", ("probes.parquet", "row 1", "probe_id")
    ),
    "probes-duplicate-id-export": Case(
        table("probes", cell("probe_id", 1, 0)), "export", ("probes.parquet", "probe_id")
    ),
    "probes-missing-column": Case(
        table("probes", lambda df: df.drop(columns=["depth"])),
        "analyze",
        ("probes.parquet", "'depth'"),
    ),
    "probes-missing-column-report": Case(
        table("probes", lambda df: df.drop(columns=["item"])),
        "report",
        ("probes.parquet", "'item'"),
    ),
    "probes-ids-out-of-order": Case(
        table("probes", lambda df: df.assign(probe_id=df["probe_id"][::-1].to_numpy())),
        "export",
        ("probes.parquet", "probe_id"),
    ),
    "probes-depth-numbers": Case(
        table("probes", lambda df: df.assign(depth=7)), "compare", ("probes.parquet", "'depth'")
    ),
    "probes-unknown-item": Case(
        table("probes", cell("item", 0, 77)), "analyze", ("probes.parquet", "row 0", "item 77")
    ),
    "items-duplicate": Case(
        table("items", cell("item", 1, 0)), "compare", ("items.parquet", "row 1", "item 0")
    ),
    "items-missing-column": Case(
        table("items", lambda df: df.drop(columns=["scenario"])), "export", ("items.parquet",)
    ),
    "injections-step-float": Case(
        table("injections", lambda df: df.assign(step=df["step"] + 0.5)),
        "analyze",
        ("injections.parquet", "'step'"),
    ),
    # --- impossible logs: steps, log-probabilities, injections ---
    "steps-descending": Case(
        array("steps.npy", lambda s: s[::-1].copy()), "analyze", ("steps.npy", "increase")
    ),
    "steps-descending-compare": Case(
        array("steps.npy", lambda s: s[::-1].copy()), "compare", ("steps.npy", "increase")
    ),
    "steps-negative": Case(array("steps.npy", lambda s: s - 7), "compare", ("steps.npy", "-7")),
    "steps-repeated": Case(array("steps.npy", setitem(3, 2)), "report", ("steps.npy", "row 3")),
    "steps-float": Case(
        array("steps.npy", lambda s: s.astype(np.float64)), "export", ("steps.npy", "float64")
    ),
    "logprob-plus-inf": Case(
        array("logprobs.npy", setitem((5, 3, 0), np.inf)),
        "analyze",
        ("logprobs.npy", "step 5", "probe_id 3", "target_mean", "inf"),
    ),
    "logprob-plus-inf-compare": Case(
        array("logprobs.npy", setitem((5, 3, 0), np.inf)), "compare", ("logprobs.npy", "inf")
    ),
    "logprob-1e30": Case(
        array("logprobs.npy", setitem((7, 2, 1), 1e30)), "report", ("logprobs.npy", "target_sum")
    ),
    "logprob-positive": Case(
        array("logprobs.npy", setitem((0, 0, 0), 0.5)), "export", ("logprobs.npy", "0.5")
    ),
    "logprob-minus-inf": Case(
        array("logprobs.npy", setitem((9, 4, 1), -np.inf)), "analyze", ("logprobs.npy", "-inf")
    ),
    "greedy-inf": Case(
        array("logprobs.npy", setitem((1, 1, 4), np.inf)), "export", ("logprobs.npy", "greedy")
    ),
    "logprobs-probe-count": Case(
        array("logprobs.npy", lambda a: a[:, :-1].copy()), "export", ("logprobs.npy", "shape")
    ),
    "logprobs-three-stats": Case(
        array("logprobs.npy", lambda a: a[:, :, :3].copy()), "analyze", ("logprobs.npy", "shape")
    ),
    "train-log-two-columns": Case(
        array("train.npy", lambda a: a[:, :2].copy()), "export", ("train.npy", "shape")
    ),
    "injection-item-999-step-minus-7": Case(
        table(
            "injections",
            lambda df: df.assign(item=[999, *df["item"][1:]], step=[-7, *df["step"][1:]]),
        ),
        "analyze",
        ("injections.parquet", "row 0", "item 999"),
    ),
    "injection-item-999-compare": Case(
        table("injections", cell("item", 0, 999)), "compare", ("injections.parquet", "item 999")
    ),
    "injection-step-minus-7": Case(
        table("injections", cell("step", 0, -7)), "analyze", ("injections.parquet", "step -7")
    ),
    "injection-step-past-the-run": Case(
        table("injections", cell("step", 0, 5000)), "report", ("injections.parquet", "step 5000")
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_damaged_run_is_one_line_and_nothing_is_written(case: Case, place):
    case.damage(place.run)
    before = tree(place.root)
    outcome = run_cli(*command(case.command, place))
    assert_refused(outcome)
    line = outcome.error_lines[0]
    assert all(m in line for m in case.mentions), (case.mentions, line)
    assert tree(place.root) == before


def test_unlogged_rows_and_float_rounding_stay_allowed(place):
    """A killed run's NaN rows, a sparse run's unscored probes and a log probability a hair
    above 0 (float rounding) load; the rows after the first unlogged one are not the run's."""
    log = np.load(place.run / "logprobs.npy")
    log[150:] = np.nan  # killed after step 149
    log[10:20, :6] = np.nan  # items off their steps
    log[3, 0, 0] = 1e-5
    np.save(place.run / "logprobs.npy", log)
    run = load_run(place.run)
    assert len(run.steps) == 150 and np.isnan(run.logprobs[10, :6]).all()


def test_the_check_reads_a_large_log_in_chunks_once(place, monkeypatch):
    """The probe log is read a bounded chunk of rows at a time (a memory-mapped log of 10^5
    steps × 10^4 probes must not be copied whole), and still every row is checked."""
    import factdyn.runcheck as runcheck

    monkeypatch.setattr(runcheck, "CHUNK_BYTES", 4096)
    log = np.load(place.run / "logprobs.npy")
    log[-1, -1, 0] = np.inf  # in the last chunk
    np.save(place.run / "logprobs.npy", log)
    assert_refused(run_cli("export", place.run, "--out", place.root / "x.csv"), mentions="inf")


# --- pooling a run with itself ------------------------------------------------------------


def test_a_run_pooled_with_itself_is_refused(place):
    before = tree(place.root)
    outcome = run_cli("analyze", place.run, "--pool", place.run, "--out", place.root / "p")
    assert_refused(outcome, mentions="the same run")
    assert tree(place.root) == before


def test_a_run_pooled_with_a_copy_of_itself_is_refused(place):
    copy = Path(shutil.copytree(place.run, place.root / "copy"))
    before = tree(place.root)
    outcome = run_cli("analyze", place.run, "--pool", copy, "--out", place.root / "p")
    assert_refused(outcome, mentions="is a copy of")
    assert str(copy) in outcome.error_lines[0]
    assert tree(place.root) == before


# --- no repair before a refusal; no repair of what factdyn did not make -----------------


def test_a_refused_command_leaves_a_look_alike_backup_folder(place):
    """The case of the issue: ``compare RUN --out userdir`` is refused (userdir is not empty)
    and the user's ``.userdir.factdyn-old/`` beside it used to be deleted first."""
    mine = place.root / ".mine.factdyn-old"
    (mine / "kept").mkdir(parents=True)
    (mine / "kept" / "paper.tex").write_text("my paper")
    before = tree(place.root)
    assert_refused(
        run_cli("compare", place.run, place.run2, "--out", place.user), mentions="--overwrite"
    )
    assert tree(place.root) == before


def test_a_look_alike_backup_of_a_missing_output_is_not_put_in_its_place(place, monkeypatch):
    """A folder named like factdyn's backup of a new output, but not made by factdyn, is
    neither renamed into the output nor removed, whether the command succeeds or not."""
    monkeypatch.setenv("FACTDYN_RESAMPLES", "0")
    mine = place.root / ".new.factdyn-old"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    refused = run_cli("analyze", place.run, "--pool", place.run, "--out", place.root / "new")
    assert_refused(refused)  # after the output was checked
    assert not (place.root / "new").exists() and (mine / "notes.txt").read_text() == "mine"
    outcome = run_cli("analyze", place.run, "--out", place.root / "new")
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert (place.root / "new" / "summary.json").is_file()
    assert not (place.root / "new" / "notes.txt").exists()
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


# --- words as written in the figures ----------------------------------------------------

MARKUP = "$\\alpha$ <b>_x_</b> $\\nosuchmacro{$"


def test_markup_in_a_scenario_name_is_drawn_as_written(place, monkeypatch):
    """A scenario named with TeX and HTML markup: the report is written (mathtext used to
    fail on it, or draw α), and no text of the user's is typeset."""
    import matplotlib.mathtext as mathtext

    monkeypatch.setenv("FACTDYN_RESAMPLES", "0")
    for name in ("probes", "items", "injections"):
        table(name, lambda df: df.assign(scenario=df["scenario"].replace(INJECTED, MARKUP)))(
            place.run
        )
    typeset: list[str] = []
    parse = mathtext.MathTextParser.parse

    def spy(self, s, *args, **kwargs):
        typeset.append(s)
        return parse(self, s, *args, **kwargs)

    monkeypatch.setattr(mathtext.MathTextParser, "parse", spy)
    outcome = run_cli("report", place.run, "--out", place.root / "rep")
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert list((place.root / "rep" / "figures").glob("*.png"))
    assert not [s for s in typeset if "alpha" in s or "nosuchmacro" in s]
    assert any("10^" in s for s in typeset)  # a log axis's numbers are still typeset
