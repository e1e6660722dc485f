"""Resource abuse (issue 33, items 3 and 4): NaN and infinity refused for every float option
of every command, and every size a user sets checked against what it costs in memory and
disk before anything runs, refused in one line with the estimate.

The size checks are tested on their estimates with planted sizes and a planted machine
(its available memory and free disk monkeypatched), and through the commands in-process on
tiny inputs; nothing here trains a model or allocates what it refuses.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import typer.main
from harness import assert_refused, run_cli, snapshot

from factdyn import budget
from factdyn.analyze.longtail import long_tail
from factdyn.analyze.options import bootstrap_bytes, check_resamples
from factdyn.analyze.simulate import ModelParams, final_levels
from factdyn.cli import app
from factdyn.config import RunConfig
from factdyn.errors import DataError
from factdyn.rundir import init_logs
from factdyn.train.estimate import check_log_space, log_bytes, logged_steps, plan_bytes
from factdyn.train.evaluation import eval_schedule
from factdyn.train.plan import injection_steps, plan_injections

# a generate command line with an endpoint nothing listens on (refused before any request)
LLM = ["generate", "--llm", "http://127.0.0.1:9/v1", "--llm-model", "m", "--out", "NEW"]

NON_FINITE = ("nan", "inf", "-inf", "-Infinity", "1e400")


def _float_options() -> list[tuple[tuple[str, ...], str]]:
    """(command path, --option) of every float option of every command, walked from the
    application itself, so that an option added later is covered without a new case."""
    found = []

    def walk(command, path: tuple[str, ...]) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))
        for param in command.params:
            annotation = param.type_descriptor.annotation
            if annotation is float or float in getattr(annotation, "__args__", ()):
                found.append((path, next(o for o in param.opts if o.startswith("--"))))

    walk(typer.main.get_command(app), ())
    return found


FLOAT_OPTIONS = _float_options()


def test_the_walk_finds_the_float_options():
    """The walk sees the options it must (so an empty walk cannot pass the test below)."""
    assert {(("simulate",), "--interval"), (("analyze",), "--iqr")} <= set(FLOAT_OPTIONS)
    assert (("generate",), "--timeout") in FLOAT_OPTIONS
    assert len(FLOAT_OPTIONS) >= 10


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "option"), FLOAT_OPTIONS, ids=lambda v: "-".join(v) if isinstance(v, tuple) else v
)
def test_every_float_option_refuses_nan_and_infinity(place, path, option, value):
    before = snapshot(place.root)
    outcome = run_cli(*path, f"{option}={value}")
    assert_refused(outcome, mentions=f"{path[-1]}: {option}: must be a finite number")
    assert snapshot(place.root) == before


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "ANALYSIS", "--interval", "nan", "--exposures", "3"],
        ["simulate", "ANALYSIS", "--interval", "10", "--exposures", "3", "--zipf", "inf"],
        ["analyze", "RUN", "--iqr", "nan"],
        ["report", "RUN", "--iqr", "inf"],
        ["generate", "--out", "NEW", "--corpus-mb", "NaN"],
        [*LLM, "--timeout", "nan"],
        [*LLM, "--backoff", "-inf"],
    ],
    ids=[
        "simulate-interval",
        "simulate-zipf",
        "analyze-iqr",
        "report-iqr",
        "generate-corpus",
        "generate-timeout",
        "generate-backoff",
    ],
)
def test_non_finite_options_among_valid_ones(place, args):
    """By hand, among otherwise valid arguments: refused before anything is read or written."""
    subst = {"ANALYSIS": place.run / "analysis", "RUN": place.run, "NEW": place.root / "new"}
    before = snapshot(place.root)
    outcome = run_cli(*(subst.get(a, a) for a in args))
    bad = next(a for a in args if a.lower().lstrip("-") in ("nan", "inf", "infinity"))
    assert_refused(outcome, mentions="must be a finite number")
    assert f"not {float(bad)}" in outcome.error_lines[0]
    assert snapshot(place.root) == before
    assert not (place.root / "new").exists()


# ---- budgets: sizes checked against the machine before the work starts ----


@pytest.fixture
def machine(monkeypatch):
    """``machine(memory=…, disk=…)``: the machine the budget sees (bytes available, free)."""

    def plant(memory: float = 8e9, disk: float = 100e9) -> None:
        monkeypatch.setattr(budget, "available_memory", lambda: memory)
        monkeypatch.setattr(budget, "free_disk", lambda path: disk)

    return plant


def test_analyze_refuses_a_billion_resamples_before_drawing_one(place):
    """Used to run into the out-of-memory killer at 23.7 GB."""
    before = snapshot(place.root)
    outcome = run_cli("analyze", place.run, "--resamples", "1000000000")
    assert_refused(outcome, mentions="--resamples 1,000,000,000")
    line = outcome.error_lines[0]
    assert "of memory; this machine has" in line and "room for about" in line
    assert snapshot(place.root) == before


def test_report_refuses_them_too(place, machine):
    machine(memory=1e9)  # about 13 kB a resample for the place's run: 1e6 need 13 GB
    outcome = run_cli("report", place.run, "--resamples", "1000000", "--out", place.root / "r")
    assert_refused(outcome, mentions="--resamples 1,000,000")
    assert "this machine has 1.0 GB available" in outcome.error_lines[0]


def test_resamples_that_fit_pass(machine):
    machine(memory=8e9)
    check_resamples(1000, steps=601, probes=285, items=19)  # the default on a planted run
    with pytest.raises(DataError, match="room for about 194,174 resamples"):  # 8e9 / 41.2 kB
        check_resamples(10_000_000, steps=601, probes=285, items=19)


def test_bootstrap_estimate_bounds_the_measured_peak():
    """The numbers behind bootstrap_bytes: the peak resident memory analyze_run measured
    (planted runs; see its docstring) stays under the estimate."""
    for (resamples, steps, probes, items), measured in {
        (20_000, 601, 285, 19): 770e6,
        (40_000, 601, 285, 19): 1545e6,
        (20_000, 601, 945, 63): 799e6,
        (20_000, 3001, 285, 19): 3727e6,
    }.items():
        assert measured <= bootstrap_bytes(resamples, steps, probes, items) <= 2 * measured


def _params() -> ModelParams:
    return ModelParams((1.0, 0.5), 0.2, 0.9)


def test_long_tail_counts_past_int64():
    """10^300 mentions: every fact is seen astronomically often and is learned (the counts
    used to wrap around int64 and say 0%)."""
    tail = long_tail(_params(), 1.0, 1000, 1e300, 1e9, 1e4, 0.5)
    assert tail.fraction_above == 1.0 and tail.rank_threshold == 1000
    assert np.isfinite(tail.exposures).all() and tail.exposures[0] > 1e296
    ordinary = long_tail(_params(), 1.0, 1000, 1e9, 1e9, 1e4, 0.5)
    assert np.array_equal(ordinary.exposures, np.floor(ordinary.exposures))  # whole counts


def test_exposures_past_int64():
    levels = final_levels([_params()], np.array([10**30, 10**9]), np.array([1.0, 1.0]))
    assert np.isfinite(levels).all() and levels[0, 0] >= levels[0, 1] > 0


def test_long_tail_refuses_facts_the_memory_cannot_hold(machine):
    machine(memory=8e9)
    with pytest.raises(DataError, match=r"--facts 10,000,000,000 needs about 2.0 TB"):
        long_tail(_params(), 1.0, 10**10, 1e9, 1e9, 1e4, 0.5)


@pytest.fixture
def analysis(place):
    """The place's run analysed (20 resamples), as simulate reads it."""
    assert run_cli("analyze", place.run, "--resamples", "20").code == 0
    return place.run / "analysis"


def _simulate(analysis, facts: str, mentions: str) -> list[str]:
    tail = ["--zipf", "1", "--facts", facts, "--mentions", mentions, "--corpus-tokens", "1e9"]
    tail += ["--tokens-per-step", "1e4", "--level", "0.01"]
    return ["simulate", analysis, "--interval", "10", "--exposures", "3", *tail]


def test_simulate_refuses_ten_billion_facts(place, analysis):
    """Used to end in a MemoryError traceback."""
    before = snapshot(place.root)
    outcome = run_cli(*_simulate(analysis, "10000000000", "1e9"))
    assert_refused(outcome, mentions="--facts 10,000,000,000 needs about 2.0 TB of memory")
    assert snapshot(place.root) == before


def test_simulate_with_1e300_mentions_learns_every_fact(analysis):
    """Used to say 0% of facts learned."""
    outcome = run_cli(*_simulate(analysis, "1000", "1e300"))
    assert outcome.code == 0, outcome.stderr
    shares = [ln for ln in outcome.stdout.splitlines() if "% of facts learned" in ln]
    assert shares and all(ln.split("long tail: ")[1].startswith("100") for ln in shares), shares
    assert all("the last mentioned 1.33592e+296 times" in ln for ln in shares), shares


# ---- training: the plan's memory, the batch's room, the logs' disk ----


def _run_config(tmp_path, n_items: int, **train) -> RunConfig:
    items = [
        {
            "train_context": f"Entity{i} was founded in {1000 + i}.",
            "mem_input": [f"Entity{i} was founded in"],
            "mem_target": [str(1000 + i)],
            "gen_input": [f"Entity{i} dates from"],
            "gen_target": [str(1000 + i)],
            "hard_gen_input": [f"The year of Entity{i} is"],
            "hard_gen_target": [str(1000 + i)],
            "paraphrases": [f"Entity{i} dates from {1000 + i}. ({k})" for k in range(4)],
        }
        for i in range(n_items)
    ]
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    settings = {"data": {"seq_len": 64}, "injection": {"items": str(path), "n_controls": 3}}
    return RunConfig.model_validate(settings | {"train": {"batch_size": 4, **train}})


def test_a_trillion_steps_are_refused_before_the_schedule(tmp_path, machine):
    """Used to end in a MemoryError (np.arange of 10^12 steps); sparse logging fits."""
    machine(memory=8e9)
    cfg = _run_config(tmp_path, 20, steps=10**12)
    with pytest.raises(DataError, match=r"train.steps=1,000,000,000,000 with eval.schedule=every"):
        plan_injections(cfg)
    sparse = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"schedule": "sparse"})})
    assert plan_injections(sparse).schedule  # windows and a log-spaced tail: a few kB


def test_plan_estimate_bounds_the_schedule_it_builds(tmp_path):
    """plan_bytes is above what eval_schedule and the logger's row index take."""
    for schedule, window in (("every", 10), ("sparse", 20_000)):
        cfg = _run_config(tmp_path, 20, steps=100_000)
        cfg = cfg.model_copy(
            update={"eval": cfg.eval.model_copy(update={"schedule": schedule, "window": window})}
        )
        injected = injection_steps(plan_injections(cfg).schedule, 20)
        tracemalloc.start()
        try:
            steps, _ = eval_schedule(schedule, injected, window, 100_000, 30)
            row_of = {int(s): i for i, s in enumerate(steps)}
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(row_of) <= logged_steps(cfg, injected)[0]
        assert peak <= plan_bytes(cfg, injected), (schedule, peak)


def test_too_many_texts_for_one_step_are_refused_before_tokenizing(tmp_path):
    """A 100k-item file used to be tokenized for minutes before its rows overflowed; the
    count of texts a step injects says so at once."""
    cfg = _run_config(tmp_path, 2000, steps=400)
    with pytest.raises(DataError) as e:
        plan_injections(cfg)
    message = str(e.value)
    assert "texts into train.batch_size=4 rows" in message and "data.seq_len=64" in message
    assert "set train.batch_size=" in message


def test_log_estimate_is_what_init_logs_writes(tmp_path):
    steps = np.array([0, 1, 2, 5, 9, 40])
    init_logs(tmp_path, steps, n_probes=7, total_steps=40)
    written = sum((tmp_path / f).stat().st_size for f in ("steps.npy", "logprobs.npy", "train.npy"))
    assert written == log_bytes(len(steps), 7, 40)


def test_logs_larger_than_the_free_disk_are_refused(tmp_path, machine):
    """--steps 10^6 used to preallocate 2.7 GB of logs with no look at the free space."""
    machine(disk=1e9)
    with pytest.raises(DataError, match=r"writes about 2.7 GB to .*; 1.0 GB is free there"):
        check_log_space(tmp_path / "run", 1_000_001, 135, 1_000_000)
    check_log_space(tmp_path / "run", 1001, 135, 1000)  # 2.7 MB: fits


def test_a_resume_counts_the_logs_it_has(tmp_path, machine):
    init_logs(tmp_path, np.arange(1001), n_probes=135, total_steps=1000)
    machine(disk=1e6)  # the existing 2.7 MB stay; extending to 1,100 steps adds 0.3 MB
    check_log_space(tmp_path, 1101, 135, 1100)
    with pytest.raises(DataError, match="writes about"):
        check_log_space(tmp_path, 2001, 135, 2000)
