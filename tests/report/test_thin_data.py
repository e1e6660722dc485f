"""Reports of thin data never crash: a run of 20 steps, a run without controls, a run with one
scenario, a population whose gains are all ≤ 0. Each report exits 0, and where a figure cannot
show something the page says why."""

from __future__ import annotations

import numpy as np
import pytest
from analyze_synth import planted_run, write_run_dir
from typer.testing import CliRunner

from factdyn.cli import app

runner = CliRunner()


def _report(run_dir) -> str:
    result = runner.invoke(app, ["report", str(run_dir), "--resamples", "20"])
    assert result.exit_code == 0, result.output
    return (run_dir / "report" / "report.html").read_text(encoding="utf-8")


def test_a_twenty_step_run_reports_and_says_why_there_is_no_forgetting_curve(tmp_path):
    # injections at 0 and 15 with a window of 10: the log ends before any t ≥ 1 after the
    # last acquisition maximum of the duplicate scenario
    planted = planted_run(
        schedules={"duplicate": [0, 15], "once": [18]}, n_controls=2, keep_steps=np.arange(21)
    )
    page = _report(write_run_dir(planted.run, tmp_path / "short"))
    assert "no retainability to draw" in page


def test_a_run_without_controls_and_with_one_scenario_reports(tmp_path):
    planted = planted_run(schedules={"once": [0]}, n_controls=0, total=60)
    page = _report(write_run_dir(planted.run, tmp_path / "one"))
    assert "the run has no control probes" in page


def test_gains_all_at_or_below_zero_report(tmp_path):
    planted = planted_run(schedules={"once": [0]}, total=80, n_controls=2)
    run = planted.run
    # every probe of the run falls from step 0 on: no gain anywhere
    steps = np.asarray(run.steps, dtype=float)
    run.logprobs[:] = run.logprobs[:1] - 0.01 * steps[:, None, None]
    page = _report(write_run_dir(run, tmp_path / "flat"))
    assert "report" in page


@pytest.mark.parametrize("steps", [2, 4])
def test_a_run_of_a_step_or_three_reports(tmp_path, steps):
    planted = planted_run(n_controls=2, keep_steps=np.arange(steps))
    page = _report(write_run_dir(planted.run, tmp_path / f"tiny{steps}"))
    assert "no retainability to draw" in page
