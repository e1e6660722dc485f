"""The HTML report: self-contained, complete, written atomically; the command's errors."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys

import pytest
from matplotlib.image import imread

from factdyn.errors import DataError
from factdyn.files import json_safe
from factdyn.report.findings import compute_findings
from factdyn.report.html import write_report


@pytest.fixture(scope="module")
def page(report_one) -> str:
    return report_one.read_text(encoding="utf-8")


def test_the_page_is_self_contained(page, report_one):
    from plotly.offline import get_plotlyjs

    # three scripts, none loaded from elsewhere: plotly.js inlined, the explorer's data, its code
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts == ["", ' type="application/json" id="explorer-data"', ""]
    assert page.count("</script>") == 3 and "<link" not in page.lower()
    library = f"<script>{get_plotlyjs()}</script>"
    assert page.count(library) == 1
    # plotly.js names web addresses in its strings; the rest of the page names none
    assert not re.search(r"https?://", page.replace(library, ""))
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert (
        len(srcs) == page.count("<img") == len(list((report_one.parent / "figures").glob("*.png")))
    )
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert img.shape[0] > 200 and img.shape[1] > 300


def test_the_page_has_the_tables_config_drift_and_findings(page, analysis_one):
    e = analysis_one.get("duplicate", "composition")
    for value, interval in (
        (e.decay_constant, e.decay_constant_ci),
        (e.intercept, e.intercept_ci),
        (e.x_intercept_steps, e.x_intercept_steps_ci),
        (e.effectivity, e.effectivity_ci),
    ):  # every number with its interval
        assert f"{value:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]" in page
    assert f"{e.x_intercept_tokens:.3g} [{e.x_intercept_tokens_ci[0]:.3g}," in page
    assert f"{e.r2:.3f} [{e.r2_ci[0]:.3g}, {e.r2_ci[1]:.3g}]" in page
    alt = e.alternatives["ratio_of_means"]  # beside the paper's fit, with its interval
    assert "<th>ratio of means: a</th>" in page
    assert f"{alt.decay_constant:.3g} [{alt.decay_constant_ci[0]:.3g}," in page
    for head in ("τ steps [95% CI]", "τ tokens [95% CI]", "R² [95% CI]", "per injection [95% CI]"):
        assert f"<th>{head}</th>" in page
    assert "batch_size: 16" in page and "<pre>" in page  # the run's configuration as YAML
    assert "drift correction</td><td class=l>applied" in page
    marks = re.findall(r'<span class="mark (yes|no|unsure|na)"[^>]*>(.)</span>', page)
    assert ("na", "–") in marks  # one run: the comparisons between runs are not testable
    assert {m for m, _ in marks} <= {"yes", "no", "unsure", "na"} and len(marks) == 16


def test_the_findings_list_and_json_are_the_computed_findings(
    page, report_one, run_dirs, analysis_one
):
    found = compute_findings([analysis_one], [run_dirs[0].name])
    doc = json.loads((report_one.parent / "findings.json").read_text(encoding="utf-8"))
    assert [(d["claim"], d["ref"], d["verdict"]) for d in doc] == [
        (f.claim, f.ref, f.verdict) for f in found
    ]
    for d, f in zip(doc, found, strict=True):
        assert d["interval"] == (None if f.interval is None else json_safe(f.interval))
    css = {"reproduced": "yes", "contradicted": "no", "inconclusive": "unsure"}
    items = re.findall(
        r'<li><span class="mark (\w+)"[^>]*>(.)</span> <b>finding ([^<]*)</b> (.*?) <i>.*?'
        r'<div class="ev">(.*?)</div></li>',
        page,
    )
    assert items == [
        (css.get(f.verdict, "na"), f.mark, f.ref, html.escape(f.claim), html.escape(f.evidence))
        for f in found
    ]


def test_rewriting_replaces_the_figures_and_leaves_other_files(run_dirs, tmp_path):
    out = tmp_path / "rep"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "stale.png").write_bytes(b"old")  # not a name factdyn writes: kept
    (out / "notes.txt").write_text("mine")
    path = write_report([run_dirs[1]], out)
    assert path == out / "report.html" and path.stat().st_size > 10_000
    assert (out / "figures" / "stale.png").read_bytes() == b"old"
    assert len(list((out / "figures").glob("*.pdf"))) >= 3
    assert (out / "notes.txt").read_text() == "mine"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures", "findings.json", "notes.txt", "report.html"]


def test_bad_input_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="at least one"):
        write_report([], tmp_path / "out")
    with pytest.raises(DataError, match="no such directory"):
        write_report([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a run directory, an analysis folder"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "meta.json").write_text("{}")
    with pytest.raises(DataError, match="cannot read the run"):
        write_report([tmp_path / "half"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["missing-run"], []])
def test_the_command_exits_2_with_one_line_on_bad_input(args, tmp_path):
    cmd = [sys.executable, "-m", "factdyn", "report", *[str(tmp_path / a) for a in args]]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    if args:
        assert result.stderr.startswith("factdyn: error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_report_modules_do_not_import_torch():
    code = (
        "import sys, factdyn.report.html, factdyn.report.figures, factdyn.report.findings;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_greedy_figure_sits_next_to_the_trajectories(tmp_path):
    from report_synth import planted, with_greedy, write_run_dir

    run_dir = write_run_dir(with_greedy(planted(n_controls=2)), tmp_path / "greedy")
    path = write_report([run_dir], tmp_path / "out")
    text = path.read_text()
    assert (path.parent / "figures" / "fig2b-greedy.png").is_file()
    traj = text.index("figures/fig2-trajectories.png")
    greedy = text.index("figures/fig2b-greedy.png")
    assert traj < greedy < text.index("figures/fig3-effectivity.png")
    assert "Share of probes whose target is the greedy continuation" in text
