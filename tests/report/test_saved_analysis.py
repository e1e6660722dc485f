"""`report`, `simulate` and `compare` show what `analyze` saved: the options, the numbers and
the verdicts of the analysis folder, never another analysis computed with other options."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from analyze_synth import planted_run, write_run_dir
from typer.testing import CliRunner

from factdyn.analyze.populations import analyze_run
from factdyn.analyze.write import read_analysis, write_analysis
from factdyn.cli import app
from factdyn.files import json_safe
from factdyn.report.findings import compute_findings, findings_document

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Two seeds of one planted run (another data.seed: another draw of the noise)."""
    root = tmp_path_factory.mktemp("seeds")
    runs = []
    for k in range(2):
        config = {"train": {"batch_size": 16, "steps": 600}, "eval": {"window": 10}}
        config["data"] = {"seed": k}
        run = planted_run(n_controls=4, drift=0.002, seed=k, config=config).run
        runs.append(write_run_dir(run, root / f"run-seed{k}"))
    return runs


def _fit_cells(page: str) -> list[str]:
    """The a [95% CI] cells of the page's fit table, in order."""
    table = page.split("<h2>3. Retainability")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r)[3] for r in rows]


def test_report_shows_the_options_and_numbers_analyze_saved(seeds, tmp_path):
    run = seeds[0]
    invoke("analyze", run, "--no-drift-correction", "--iqr", "3", "--resamples", "60")
    saved = json.loads((run / "analysis" / "summary.json").read_text())
    out = invoke("report", run)
    assert "the analysis saved in" in out and "--iqr 3 --no-drift-correction" in out
    page = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "<td class=l>drift correction</td><td class=l>not applied" in page
    assert "<td class=l>IQR factor</td><td class=l>3</td>" in page
    assert "applied (control probes" not in page
    # the page's decay constants are summary.json's, to the digits printed
    expected = [
        f"{saved[s][d]['decay_constant']:.4g}"
        for s in ("duplicate", "once")
        for d in ("memorization", "semantic", "composition")
    ]
    assert [c.split(" ")[0] for c in _fit_cells(page)] == expected
    # and the verdicts are those computed in memory from an analysis made with those options
    fresh = analyze_run(run, drift_correct=False, iqr=3.0, resamples=60)
    doc = findings_document(compute_findings([fresh], [run.name]))
    written = json.loads((run / "report" / "findings.json").read_text())
    assert json_safe(doc) == written


def test_a_saved_analysis_reads_back_whole(seeds, tmp_path):
    analysis = analyze_run(seeds[1], iqr=2.5, resamples=40)
    back = read_analysis(write_analysis(analysis, tmp_path / "a"))
    assert back.options == analysis.options and back.sources == analysis.sources
    assert back.run_info == analysis.run_info and back.config == analysis.config
    for p, q in zip(analysis.populations, back.populations, strict=True):
        assert json_safe(p.as_dict()) == json_safe(q.as_dict())
        for name in ("effectivity", "decay_constant", "intercept", "x_intercept_tokens"):
            assert np.array_equal(
                getattr(p.replicates, name), getattr(q.replicates, name), equal_nan=True
            )
    assert json_safe(analysis.settings.as_dict()) == json_safe(back.settings.as_dict())
    for name in ("trajectories", "effectivity", "retainability", "acquisition", "per_probe"):
        a, b = getattr(analysis, name).reset_index(drop=True), getattr(back, name)
        assert list(a.columns) == list(b.columns)
        for col in a.columns:
            assert list(a[col].astype(str)) == list(b[col].astype(str)), (name, col)
    # the same verdicts, to the interval
    assert findings_document(compute_findings([analysis])) == findings_document(
        compute_findings([back])
    )


def test_report_of_a_pooled_analysis_and_of_a_folder_holding_one(seeds, tmp_path):
    pooled = tmp_path / "demo" / "analysis"
    invoke("analyze", seeds[0], "--pool", seeds[1], "--out", pooled, "--resamples", "40")
    summary = json.loads((pooled / "summary.json").read_text())
    assert len(summary["_sources"]) == 2
    out = invoke("report", pooled, "--out", tmp_path / "r1")
    assert "the analysis saved in" in out
    out = invoke("report", tmp_path / "demo")  # a folder with an analysis/ of its own
    assert (tmp_path / "demo" / "report" / "report.html").is_file()

    def verdicts(doc):  # the evidence names each report's run label; the verdicts are equal
        return [(f["ref"], f["verdict"], f["interval"]) for f in doc]

    one = json.loads((tmp_path / "r1" / "findings.json").read_text())
    two = json.loads((tmp_path / "demo" / "report" / "findings.json").read_text())
    assert verdicts(one) == verdicts(two)
    # the pooled verdicts: those of the pooled analysis in memory
    from factdyn.analyze.pool import pool_runs

    fresh = analyze_run(pool_runs(seeds), resamples=40)
    assert one == json_safe(findings_document(compute_findings([fresh], ["analysis"])))
    assert {f["verdict"] for f in one} & {"reproduced", "contradicted", "inconclusive"}


def test_report_with_other_options_analyses_the_run_with_them(seeds, tmp_path, exits_2):
    run = seeds[1]
    invoke("analyze", run, "--resamples", "30")
    out = invoke("report", run, "--window", "7", "--resamples", "30", "--out", tmp_path / "w")
    assert "analysed now (--window 7 --resamples 30)" in out
    page = (tmp_path / "w" / "report.html").read_text(encoding="utf-8")
    assert "<td class=l>window t_w</td><td class=l>7</td>" in page
    # the same options as the saved analysis: the saved one is shown
    out = invoke("report", run, "--resamples", "30", "--out", tmp_path / "s")
    assert "the analysis saved in" in out
    # a saved analysis takes no options: it is shown as it was made
    line = exits_2(["report", str(run / "analysis"), "--iqr", "2", "--out", str(tmp_path / "x")])
    assert "a saved analysis is reported as it was analysed" in line


def test_simulate_and_compare_read_the_saved_analysis(seeds, tmp_path):
    run = seeds[0]
    invoke("analyze", run, "--iqr", "4", "--resamples", "30", "--overwrite")
    out = invoke("simulate", run / "analysis", "--interval", "50", "--exposures", "3")
    assert "(--iqr 4 --resamples 30)" in out.splitlines()[0]
    saved = json.loads((run / "analysis" / "summary.json").read_text())
    invoke("compare", run, seeds[1], "--out", tmp_path / "cmp")
    import pandas as pd

    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    mine = table[table["run"] == str(run)]
    for _, row in mine.iterrows():
        assert row["decay_constant"] == pytest.approx(
            saved[row["scenario"]][row["depth"]]["decay_constant"], rel=1e-12
        )
