"""Run directories with planted dynamics (no training), and one report built from them once."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_synth import planted, write_run_dir


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Two run directories: batch 16 (1,000 tokens/step) and batch 128 (8,000 tokens/step)."""
    root = tmp_path_factory.mktemp("runs")
    small = write_run_dir(planted(16, 1000, seed=0, n_controls=2), root / "small")
    large = write_run_dir(planted(128, 8000, seed=1, n_controls=2), root / "large")
    return small, large


@pytest.fixture(scope="session")
def analysis_one(run_dirs):
    """The first run analysed with the default options, as ``report_one``'s page shows it."""
    from factdyn.analyze.populations import analyze_run

    return analyze_run(run_dirs[0])


@pytest.fixture(scope="session")
def report_one(run_dirs) -> Path:
    """``factdyn report RUN_DIR`` (default output dir) on the first run: report.html's path."""
    from typer.testing import CliRunner

    from factdyn.cli import app

    result = CliRunner().invoke(app, ["report", str(run_dirs[0])])
    assert result.exit_code == 0, result.output
    path = run_dirs[0] / "report" / "report.html"
    assert f"report written to {path}" in result.output
    return path
