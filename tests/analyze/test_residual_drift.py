"""The drift judged after its correction (issue 31 part 2): half the control items corrected
by the other half's mean leave a residual drift within noise when every probe drifts alike,
and show one when the halves drift differently.

Planted runs: 20 control items (5 probes per depth each), every control probe with i.i.d.
noise of 0.05 nat per logged step (the synthetic controls are otherwise flat), and a common
drift of 0.3 nat over the run added to every probe, injected ones included.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from analyze_synth import DEPTHS, planted_run

from factdyn.analyze.drift import RESIDUAL_SPLITS, chance_share, control_halves
from factdyn.analyze.layout import layout_of
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.write import read_analysis, write_analysis
from factdyn.errors import DataError
from factdyn.files import json_safe
from factdyn.report.figures import CONTROL_COLOR, trajectory_figure
from factdyn.report.tables import settings_table
from factdyn.report.text import format_summary

TOTAL, DRIFT = 300, 0.3


def _noisy_run(n_controls: int = 20, seed: int = 0):
    """A planted run with the common drift, its controls given per-step noise."""
    run = planted_run(n_controls=n_controls, total=TOTAL, drift=DRIFT / TOTAL, seed=seed).run
    control = (run.probes["scenario"] == "control").to_numpy()
    noise = np.random.default_rng(seed + 1).normal(0, 0.05, (len(run.steps), control.sum()))
    run.logprobs[:, control, 0] += noise.astype(np.float32)
    return run


def _half_a_rows(run, seed: int = 0) -> np.ndarray:
    """The run's probe rows in the residual drift's half A (the analysis's own split)."""
    layout = layout_of(run)
    control = layout.scenario == "control"
    items = layout.probes["item"].to_numpy()[control]
    half = control_halves(
        items, layout.depth_code[control], len(layout.depths), layout.draw(seed, "control")
    )
    return layout.order[np.flatnonzero(control)[half]]


@pytest.fixture(scope="module")
def common():
    return analyze_run(_noisy_run(), resamples=200)


def test_a_common_drift_leaves_a_residual_within_noise(common):
    m = common.settings
    for d in DEPTHS:
        assert m.control_drift_last[d] == pytest.approx(-DRIFT, abs=0.05)  # raw: the model's
        # one planted draw: near what chance gives for 10 items a half, not above it by rule
        assert m.residual_drift_chance_share[d] == pytest.approx(0.92, abs=0.005)
        assert m.residual_drift_zero_share[d] >= m.residual_drift_chance_share[d] - 0.1
        low, high = m.residual_drift_zero_share_range[d]  # the splits' lowest and highest
        assert low <= m.residual_drift_zero_share[d] <= high and low < high
        assert m.residual_drift_mean_abs[d] <= 0.03
        assert m.residual_drift_mean_abs_ci[d][1] <= 0.05  # within noise, interval included
    assert m.residual_drift_undefined == {}
    table = common.residual_drift
    assert list(table.columns) == [
        *("step", "tokens", "depth", "residual", "ci_low", "ci_high", "n")
    ]
    assert len(table) == 3 * (TOTAL + 1) and (table["n"] == 50).all()  # 10 items × 5 probes
    first = table[table["step"] == 0]
    assert (first["residual"] == 0).all()
    assert (table["ci_low"] <= table["residual"]).all()
    assert (table["residual"] <= table["ci_high"]).all()


def test_a_drift_the_halves_do_not_share_shows_as_residual():
    """Half the control items (the first split's half A) drift by 0.3 nat more. The first
    split's curve shows it whole; another split sees it as far as its halves differ in
    planted items, so the mean |r| averaged over the splits is predicted from the splits."""
    run = _noisy_run()
    rows = _half_a_rows(run)
    run.logprobs[:, rows, 0] -= (np.asarray(run.steps) * DRIFT / TOTAL)[:, None]
    analysis = analyze_run(run, resamples=200)
    m = analysis.settings
    planted = np.isin(np.arange(len(run.probes)), rows)
    layout = layout_of(run)
    control = layout.scenario == "control"
    items = layout.probes["item"].to_numpy()[control]
    in_a = planted[layout.order[np.flatnonzero(control)]]
    unbalance = []
    for s in range(RESIDUAL_SPLITS):
        half = control_halves(
            items, layout.depth_code[control], len(DEPTHS), layout.draw(0, "control"), s
        )
        first = layout.depth_code[control] == 0
        k_a = len(np.unique(items[first & half & in_a]))  # planted items in half A
        k_b = len(np.unique(items[first & ~half & in_a]))
        unbalance.append(abs(k_a - k_b) / 10)
    # |r| grows as DRIFT·t/T, so its mean over the steps is half its last value
    expected = DRIFT / 2 * np.mean(unbalance)
    last = analysis.residual_drift.groupby("depth", observed=True).last()
    for d in DEPTHS:
        assert m.residual_drift_mean_abs[d] == pytest.approx(expected, abs=0.02)
        assert last.loc[d, "residual"] == pytest.approx(-DRIFT, abs=0.05)  # the first split
        assert last.loc[d, "ci_high"] < -0.2


@pytest.mark.parametrize("n_a, n_b", [(10, 10), (15, 15), (6, 9)])
def test_the_chance_share_is_the_percentile_intervals_coverage(n_a, n_b):
    """Against a Monte Carlo of the interval itself: two halves of normal items that differ by
    chance alone, each mean resampled 500 times, the percentile interval of the difference."""
    rng = np.random.default_rng(n_a * 100 + n_b)
    trials, held = 1500, 0
    for _ in range(trials):
        a, b = rng.normal(size=n_a), rng.normal(size=n_b)
        diff = a[rng.integers(0, n_a, (500, n_a))].mean(1) - b[
            rng.integers(0, n_b, (500, n_b))
        ].mean(1)
        low, high = np.percentile(diff, [2.5, 97.5])
        held += low <= 0 <= high
    assert chance_share(n_a, n_b) == pytest.approx(held / trials, abs=0.025)
    assert chance_share(n_a, n_b) < 0.95 < chance_share(1000, 1000) + 0.001
    assert chance_share(1, 1) == 0  # one item a half: the interval is a point


def test_the_split_is_seeded_by_the_analysis_seed():
    run = _noisy_run()
    again = analyze_run(run, resamples=50)
    assert again.residual_drift.equals(analyze_run(run, resamples=50).residual_drift)
    other = analyze_run(run, resamples=50, seed=1).residual_drift
    assert not np.allclose(other["residual"], again.residual_drift["residual"])
    assert not np.array_equal(_half_a_rows(run, 0), _half_a_rows(run, 1))


def test_too_few_controls_to_split_is_undefined_with_the_reason():
    analysis = analyze_run(_noisy_run(n_controls=1), resamples=20)
    m = analysis.settings
    assert m.residual_drift_mean_abs == m.residual_drift_zero_share == {}
    assert set(m.residual_drift_undefined) == set(DEPTHS)
    assert "2 or more are needed" in m.residual_drift_undefined["semantic"]
    assert len(analysis.residual_drift) == 0
    assert "semantic undefined (1 control item" in format_summary(analysis)


def test_without_intervals_the_share_is_undefined(common):
    run = _noisy_run()
    m = analyze_run(run, resamples=0).settings
    assert all(np.isnan(v) for v in m.residual_drift_zero_share.values())
    assert m.residual_drift_mean_abs == common.settings.residual_drift_mean_abs
    assert "0 in CI at – of steps [–, – over the splits] (chance 92%)" in format_summary(analyze_run(run, resamples=0))


def test_summary_report_and_saved_folder_carry_it(common, tmp_path):
    text = format_summary(common)
    assert "residual drift after correction (half the controls): memorization mean |r|" in text
    assert "residual drift after correction" in settings_table(common)
    back = read_analysis(write_analysis(common, tmp_path / "a"))
    assert back.settings.residual_drift_mean_abs == common.settings.residual_drift_mean_abs
    assert back.settings.residual_drift_split == common.settings.residual_drift_split
    table = back.residual_drift
    assert list(table["depth"].cat.categories) == list(DEPTHS)
    np.testing.assert_allclose(table["residual"], common.residual_drift["residual"])
    assert (tmp_path / "a" / "residual_drift.csv").is_file()


def test_an_older_summary_without_it_asks_for_a_new_analysis(common, tmp_path):
    folder = write_analysis(common, tmp_path / "a")
    data = json.loads((folder / "summary.json").read_text())
    for key in [k for k in data["_settings"] if k.startswith("residual_drift")]:
        del data["_settings"][key]
    (folder / "summary.json").write_text(json.dumps(json_safe(data)))
    with pytest.raises(DataError, match="older factdyn .no residual drift.; rerun"):
        read_analysis(folder)


def test_the_drift_figure_draws_it_beside_the_raw_drift(common):
    ax = trajectory_figure(common).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    residual = lines["residual drift (half the controls)"]
    assert residual.get_color() == CONTROL_COLOR and residual.get_linestyle() == "--"
    assert (
        abs(residual.get_ydata()).max()
        < 0.1
        < abs(lines["control drift (subtracted)"].get_ydata()).max()
    )
