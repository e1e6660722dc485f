"""`factdyn analyze` and `factdyn compare` on fake run directories; writing; no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from analyze_synth import planted_run, write_run_dir
from typer.testing import CliRunner

from factdyn.analyze.compare import compare
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.write import write_analysis
from factdyn.cli import app

runner = CliRunner()

# the keys of one summary.json entry, in the order docs/run-format.md documents them
DOCUMENTED_KEYS = [
    *("effectivity", "effectivity_ci", "snr", "snr_ci", "effectivity_per_injection"),
    *("effectivity_per_injection_ci", "retainability", "retainability_ci"),
    *("retainability_steps", "decay_constant", "decay_constant_ci", "intercept", "intercept_ci"),
    *("r2", "r2_ci", "decay_constant_se", "x_intercept_steps", "x_intercept_steps_ci"),
    *("x_intercept_tokens", "x_intercept_tokens_ci", "n_probes", "n_excluded", "n_outliers"),
    "alternatives",
]


def strict_json(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run_dir(planted_run(n_controls=2).run, tmp_path_factory.mktemp("runs") / "r1")


def test_analyze_writes_summary_and_tables_and_prints_the_table(run_dir):
    result = runner.invoke(app, ["analyze", str(run_dir)])
    assert result.exit_code == 0, result.output
    out = run_dir / "analysis"
    assert f"analysis written to {out}" in result.output
    assert "duplicate" in result.output and "τ steps" in result.output
    summary = strict_json((out / "summary.json").read_text())
    assert list(summary)[:4] == ["schema_version", "duplicate", "once", "_settings"]
    assert summary["_options"]["iqr"] is None and summary["_sources"] == [str(run_dir.resolve())]
    assert summary["schema_version"] == 1
    assert summary["_settings"]["drift_corrected"] is True
    assert summary["_settings"]["window"] == 10  # the run's own window
    assert summary["once"]["memorization"]["decay_constant"] == pytest.approx(0.15, abs=0.01)
    for s in ("duplicate", "once"):
        assert all(list(e) == DOCUMENTED_KEYS for e in summary[s].values())
    for name in ("trajectories", "control_drift", "effectivity", "retainability", "settings"):
        assert (out / f"{name}.csv").stat().st_size > 0
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_analyze_options_reach_the_analysis(run_dir, tmp_path):
    out = tmp_path / "a"
    args = ["analyze", str(run_dir), "--out", str(out), "--window", "5", "--iqr", "3"]
    args += ["--stat", "target_sum", "--no-drift-correction"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    s = strict_json((out / "summary.json").read_text())["_settings"]
    assert (s["window"], s["iqr_factor"], s["stat"], s["drift_corrected"]) == (
        5,
        3.0,
        "target_sum",
        False,
    )
    args = ["analyze", str(run_dir), "--out", str(out), "--reference", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    s = strict_json((out / "summary.json").read_text())
    assert s["_settings"]["reference"] and s["duplicate"]["semantic"]["retainability"][0] == 100


def test_bad_input_is_one_line_and_exit_code_2(run_dir, tmp_path, exits_2):
    for argv in (
        ["analyze", str(run_dir), "--stat", "first"],
        ["analyze", str(tmp_path)],
        ["analyze"],
        ["analyze", "--reference-log", str(tmp_path / "missing.json")],
    ):
        exits_2(argv)


def test_unfinished_run_windows_past_the_log_end_are_reported(tmp_path):
    run = planted_run().run  # injections at 0..160, window 10
    path = write_run_dir(run, tmp_path / "killed", unfinished_after=165)
    analysis = analyze_run(path)
    assert analysis.settings.last_step == 164
    assert analysis.settings.incomplete_windows == {"duplicate": 8}  # 8 items, last injection
    assert "past the end of the log" in runner.invoke(app, ["analyze", str(path)]).output
    e = analysis.get("duplicate", "memorization")
    assert len(e.effectivity_per_injection) == 5  # the partial window still counts


def test_reference_log_on_the_command_line(tmp_path):
    from test_analyze_reference import tiny_log

    log = tmp_path / "log.json"
    log.write_text(json.dumps(tiny_log(steps=tuple(range(120)))))
    result = runner.invoke(app, ["analyze", "--reference-log", str(log), "--reference"])
    assert result.exit_code == 0, result.output
    summary = strict_json((tmp_path / "log-analysis" / "summary.json").read_text())
    populations = {k for k in summary if not k.startswith("_")}
    assert populations == {"schema_version", "paraphrase", "duplicate", "once"}
    assert summary["_settings"]["unlogged_injection_steps"] == 80 * 8  # steps 200..900


def test_compare_puts_runs_side_by_side_with_differing_config(tmp_path):
    a = write_run_dir(
        planted_run(config={"train": {"batch_size": 16, "steps": 600}}).run, tmp_path / "a"
    )
    cfg = {"train": {"batch_size": 128, "steps": 600}}
    b = write_run_dir(planted_run(config=cfg, seed=1).run, tmp_path / "b")
    table = compare([a, b], tmp_path / "cmp")
    assert len(table) == 2 * 2 * 3
    assert "train.batch_size" in table.columns and "train.steps" not in table.columns
    assert sorted(set(table["train.batch_size"])) == [16, 128]
    for col in ("effectivity", "decay_constant", "r2", "x_intercept_steps", "x_intercept_tokens"):
        assert table[col].notna().all()
    assert (tmp_path / "cmp" / "compare.csv").is_file()
    result = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c2")])
    assert result.exit_code == 0, result.output
    assert "train.batch_size" in result.output and (tmp_path / "c2" / "compare.csv").is_file()


def test_rewriting_an_analysis_replaces_its_files_only(tmp_path):
    analysis = analyze_run(planted_run().run)
    out = tmp_path / "analysis"
    out.mkdir()
    (out / "notes.csv").write_text("mine")
    (out / "summary.json").write_text("old")
    write_analysis(analysis, out)
    assert (out / "notes.csv").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["schema_version"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_analysis_modules_do_not_import_torch():
    code = (
        "import sys, factdyn.analyze.populations, factdyn.analyze.write, factdyn.analyze.compare,"
        " factdyn.analyze.reference, factdyn.report.text; sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
