"""The report's figures: written as PNG and PDF, real images, what they draw."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread
from report_synth import DECAY, SCHEDULES, planted

from factdyn.analyze.bootstrap import HIGH, LOW
from factdyn.analyze.populations import analyze_run
from factdyn.report import figures as F

SINGLE = ("fig2-trajectories", "fig3-effectivity", "fig4-retainability")


def check_image(png) -> np.ndarray:
    assert png.stat().st_size > 1000
    img = imread(png)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    rgb = img[..., :3].reshape(-1, 3)
    assert (rgb != rgb[0]).any(), f"{png.name} is one colour"
    # coloured (non-grey) pixels: the depth curves or bars were drawn
    coloured = (rgb.max(axis=1) - rgb.min(axis=1)) > 0.2
    assert coloured.mean() > 0.002, f"{png.name}: no coloured data drawn"
    return img


def test_every_figure_is_a_png_and_a_pdf(report_one):
    fig_dir = report_one.parent / "figures"
    names = sorted(p.stem for p in fig_dir.glob("*.png"))
    assert names == sorted(SINGLE)  # one run: no tokens figure
    assert sorted(p.stem for p in fig_dir.glob("*.pdf")) == names
    for name in names:
        check_image(fig_dir / f"{name}.png")
        pdf = (fig_dir / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_several_runs_with_different_batches_get_the_tokens_figure(run_dirs, tmp_path):
    out = tmp_path / "both"
    cmd = [sys.executable, "-m", "factdyn", "report", *map(str, run_dirs), "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str(out / "report.html"))
    names = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert names == [
        "fig2-trajectories-large",
        "fig2-trajectories-small",
        "fig3-effectivity",
        "fig4-retainability-large",
        "fig4-retainability-small",
        "fig5-retainability-tokens",
    ]
    for name in names:
        check_image(out / "figures" / f"{name}.png")
        assert (out / "figures" / f"{name}.pdf").stat().st_size > 1000


@pytest.fixture(scope="module")
def analysis():
    return analyze_run(planted(n_controls=2))


def _lines(ax) -> dict:
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def _panels(fig):
    """Each scenario's panel with its labelled lines, after checking the panel's title and
    that its dotted lines are exactly the scenario's injection steps."""
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == list(SCHEDULES)
    for ax, (scenario, steps) in zip(axes, SCHEDULES.items(), strict=True):
        vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        assert sorted(ln.get_xdata()[0] for ln in vlines) == steps, scenario
        yield ax, scenario, _lines(ax)


def test_trajectory_figure_marks_injections_and_control_drift(analysis):
    for ax, scenario, lines in _panels(F.trajectory_figure(analysis)):
        for depth, colour in F.DEPTH_COLORS.items():
            assert lines[depth].get_color() == colour
        assert lines["control drift (subtracted)"].get_color() == F.CONTROL_COLOR
        traj = analysis.trajectories
        mem = traj[(traj.scenario == scenario) & (traj.depth == "memorization")]
        band = ax.collections[0].get_paths()[0].vertices[:, 1]  # memorization's band first
        assert band.min() == pytest.approx(mem.ci_low.min())
        assert band.max() == pytest.approx(mem.ci_high.max())
        assert (mem.ci_low <= mem.delta + 1e-12).all() and (mem.delta <= mem.ci_high + 1e-12).all()


def test_retainability_legend_carries_the_fitted_decay_constant(analysis):
    fig = F.retainability_figure(analysis)
    for ax, scenario in zip(fig.get_axes(), SCHEDULES, strict=True):
        assert ax.get_xscale() == "log"
        a = analysis.get(scenario, "memorization").decay_constant
        assert abs(a - DECAY[scenario][0]) < 0.02
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(lab.startswith(f"memorization: a = {a:.3g}") for lab in labels), labels
        fit = _lines(ax)[labels[0]]
        assert fit.get_color() == F.DEPTH_COLORS["memorization"]


def test_effectivity_bars_have_the_summary_heights_and_depth_colours(analysis):
    fig = F.effectivity_figure([analysis, analysis], ["x", "y"])
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["x", "y"]
    bars = axes[0].patches
    assert len(bars) == 3 * 3
    heights = sorted(b.get_height() for b in bars)
    want = sorted(p.effectivity for p in analysis.populations)
    assert len(want) == len(SCHEDULES) * 3
    assert np.allclose(heights, want)


def test_retainability_bands_and_effectivity_bars_span_the_bootstrap_intervals(analysis):
    fig = F.retainability_figure(analysis)
    ret = analysis.retainability
    for ax, scenario in zip(fig.get_axes(), SCHEDULES, strict=True):
        bands = ax.collections
        assert len(bands) == 3  # one band per depth, in depth order
        for band, depth in zip(bands, ("memorization", "semantic", "composition"), strict=True):
            rows = ret[(ret.scenario == scenario) & (ret.depth == depth) & (ret.t >= 1)]
            ys = band.get_paths()[0].vertices[:, 1]
            assert ys.min() == pytest.approx(rows.ci_low.min())
            assert ys.max() == pytest.approx(rows.ci_high.max())
    fig = F.effectivity_figure([analysis])
    segments = [seg for c in fig.get_axes()[0].collections for seg in c.get_segments()]
    got = sorted((round(s[:, 1].min(), 9), round(s[:, 1].max(), 9)) for s in segments)
    want = sorted(
        (round(p.effectivity_ci[LOW], 9), round(p.effectivity_ci[HIGH], 9))
        for p in analysis.populations
    )
    assert got == want


def test_greedy_figure_lines_equal_the_greedy_table():
    from report_synth import with_greedy

    analysis = analyze_run(with_greedy(planted(n_controls=2)), resamples=0)
    table = analysis.greedy
    assert not table.empty
    for _ax, scenario, lines in _panels(F.greedy_figure(analysis)):
        assert set(lines) == {"injection", *F.DEPTH_COLORS}
        for depth, colour in F.DEPTH_COLORS.items():
            part = table[(table.scenario == scenario) & (table.depth == depth)]
            assert lines[depth].get_color() == colour
            np.testing.assert_array_equal(lines[depth].get_xdata(), part["step"])
            np.testing.assert_array_equal(lines[depth].get_ydata(), part["share"])


def test_greedy_figure_says_when_the_run_has_no_greedy(analysis):
    assert analysis.greedy.empty
    fig = F.greedy_figure(analysis)
    assert "no greedy statistic" in fig.get_axes()[0].texts[0].get_text()
