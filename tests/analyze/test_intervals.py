"""The interval experiment's analysis on a planted log: each exposure adds a gain g that
fades linearly to nothing L + 1 steps later, on its own clock. A fact exposed every
Δ < L + 1 steps keeps something until the next exposure, and its level rises from exposure
k to k + 1 while (k + 1)·Δ < L + 1: the thresholds are the largest tested Δ below L + 1
(retained) and below (L + 1)/2 (rises)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factdyn.analyze.intervals import interval_curves, intervals_table, measured_thresholds
from factdyn.analyze.populations import analyze_run
from factdyn.rundir import STATS, TRAIN_COLUMNS, Run

DEPTHS = ("memorization", "semantic", "composition")
DELTAS = (5, 10, 20, 40, 80)
K = 4
LIFE = 30  # a gain is gone LIFE + 1 steps after its exposure
GAIN = 1.0


def fade(u: np.ndarray) -> np.ndarray:
    """Share of an exposure's gain present u steps after it (peak at u = 1)."""
    return np.where(u >= 1, np.clip(1 - (u - 1) / LIFE, 0, None), 0.0)


def planted(noise: float = 0.01, items: int = 6, seed: int = 0) -> Run:
    rng = np.random.default_rng(seed)
    total = K * max(DELTAS) + 10
    steps = np.arange(total + 1)
    cols, rows, inj = [], [], []
    item = 0
    for delta in DELTAS:
        sched = [k * delta for k in range(K)]
        for _ in range(items):
            inj += [(t, 0, item, f"every{delta}", 0, 0, 0) for t in sched]
            for depth in DEPTHS:
                for j in range(3):
                    ell = rng.uniform(-6, -3) + sum(GAIN * fade(steps - t) for t in sched)
                    cols.append(ell + rng.normal(0, noise, len(steps)))
                    rows.append((item, f"every{delta}", depth, j))
            item += 1
    ell = np.stack(cols, axis=1)
    probes = pd.DataFrame(rows, columns=["item", "scenario", "depth", "probe"])
    probes.insert(0, "probe_id", np.arange(len(probes)))
    probes["input"], probes["target"] = "in", "out"
    items_t = probes.groupby("item").scenario.first().reset_index()
    items_t["n_injections"] = K
    logprobs = np.full((len(steps), ell.shape[1], len(STATS)), np.nan, dtype=np.float32)
    logprobs[:, :, 0] = ell
    train = pd.DataFrame(np.zeros((total, 3)), columns=list(TRAIN_COLUMNS))
    train.insert(0, "step", np.arange(total))
    cols_inj = ["step", "row", "item", "scenario", "variant", "token_start", "token_end"]
    return Run(
        path=Path("planted-intervals"),
        config={"train": {"batch_size": 4, "steps": total}, "eval": {"window": 5}},
        meta={"tokens_per_step": 1000, "window": 5, "status": "done", "steps_done": total},
        steps=steps,
        logprobs=logprobs,
        probes=probes,
        items=items_t,
        injections=pd.DataFrame(inj, columns=cols_inj).sort_values(["step", "item"]),
        train=train,
    )


@pytest.fixture(scope="module")
def analysis():
    return analyze_run(planted(), resamples=300)  # interval curves included


def test_levels_match_the_planted_superposition(analysis):
    acq = analysis.acquisition
    for delta in DELTAS:
        rows = acq[acq["scenario"] == f"every{delta}"]
        for k in range(1, K + 1):
            at = rows[rows["injection"] == k]
            sched = np.array([j * delta for j in range(K)])
            t_k = sched[k - 1]
            # written out: exposures before k, evaluated at t_k, t_k + 1 (the peak) and t_k + Δ
            before = sum(GAIN * fade(np.array(t_k - t)) for t in sched[: k - 1])
            peak = sum(GAIN * fade(np.array(t_k + 1 - t)) for t in sched[:k])
            nxt = sum(GAIN * fade(np.array(t_k + delta - t)) for t in sched[:k])
            assert at["level_before"].mean() == pytest.approx(before, abs=0.02)
            assert at["level_peak"].mean() == pytest.approx(peak, abs=0.03)  # max of noise
            assert at["level_next"].mean() == pytest.approx(nxt, abs=0.02)


def test_accumulation_below_the_planted_lifetime_and_none_above(analysis):
    curves = interval_curves(analysis, resamples=300)
    assert sorted({c.interval for c in curves}) == list(DELTAS)
    for c in curves:
        assert c.exposures == K and c.n_probes == 6 * 3
        # a planted rise (> 0.1 per exposure) is found; a planted flat level has a slope
        # near 0 (its interval may exclude 0 by chance: 15 curves, each at 95%)
        if 2 * c.interval < LIFE + 1:
            assert c.rises and c.slope > 0.1, (c.interval, c.slope, c.slope_ci)
        else:
            assert abs(c.slope) < 0.005, (c.interval, c.slope, c.slope_ci)
        assert c.retained == (c.interval < LIFE + 1), (c.interval, c.kept, c.kept_ci)
        # the kept level per exposure: k·g·fade(Δ) plus the earlier ones' remains
        want = GAIN * sum(float(fade(np.array(j * c.interval))) for j in range(1, K + 1))
        assert c.kept[-1] == pytest.approx(want, abs=0.02)
        assert c.slope_ci[0] <= c.slope <= c.slope_ci[1]
    found = measured_thresholds(curves)
    assert found.retained == dict.fromkeys(DEPTHS, 20)
    assert all(found.rises[d] in (10, 20) for d in DEPTHS)  # 20 only by a chance slope
    table = intervals_table(curves)
    assert len(table) == len(DELTAS) * len(DEPTHS) * K
    assert set(table.loc[table["interval"] >= 40, "retained"]) == {False}


def test_a_run_without_repeated_fixed_intervals_has_no_curves():
    from analyze_synth import planted_run

    once_only = planted_run(schedules={"once": [0], "irregular": [0, 10, 30]}).run
    assert interval_curves(analyze_run(once_only, resamples=0), resamples=0) == []


def test_the_analysis_carries_the_curves_and_writes_them(analysis, tmp_path):
    from factdyn.analyze.write import write_analysis

    assert {c.interval for c in analysis.intervals} == set(DELTAS)
    out = write_analysis(analysis, tmp_path / "analysis")
    table = pd.read_csv(out / "intervals.csv")
    assert len(table) == len(DELTAS) * len(DEPTHS) * K
    acq = pd.read_csv(out / "acquisition.csv")
    assert {"level_before", "level_peak", "level_next"} <= set(acq.columns)


def test_the_report_shows_the_threshold_section_with_the_measured_thresholds(analysis, tmp_path):
    from factdyn.report import learnability as L
    from factdyn.report.html import write_report

    run, a = planted(), analysis  # the analysis of this run
    rows = L.rows(a)
    assert [r[0] for r in rows] == list(DEPTHS)
    assert all(r[1] == "20" for r in rows)  # retained up to the largest Δ below LIFE + 1
    page = write_report([tmp_path / "planted"], tmp_path / "report", [a], runs=[run])
    html = page.read_text()
    assert "3b. The learnability threshold" in html and "retained up to" in html
    assert (tmp_path / "report" / "figures" / "fig6-learnability.png").is_file()


def test_the_predicted_curve_has_a_band_over_the_bootstrap_replicates(analysis):
    from matplotlib.collections import PolyCollection

    from factdyn.analyze.simulate import kept_levels
    from factdyn.report import learnability as L

    fig = L.figure(analysis)
    for ax, c in zip(fig.axes, L.compare(analysis), strict=True):
        assert len(c.replicates) > 250  # of 300, those with a usable fit
        (band,) = [p for p in ax.collections if isinstance(p, PolyCollection)]
        edge = band.get_paths()[0].vertices
        for x in np.unique(edge[:, 0])[1:-1:40]:  # the band's edges at some Δ of the grid
            kept = [kept_levels(p, x, K)[-1] for p in c.replicates]  # one replicate at a time
            lo, hi = np.quantile(kept, [0.025, 0.975], method="inverted_cdf")
            ys = edge[edge[:, 0] == x, 1]
            assert ys.min() == pytest.approx(lo, rel=1e-9) and ys.max() == pytest.approx(
                hi, rel=1e-9
            )


def test_pooled_copies_of_a_run_resample_their_items_together(analysis):
    from dataclasses import replace as copy_of

    from factdyn.analyze.pool import pool_runs

    run, single = planted(items=6), analysis  # the module's analysis: this run, 300 resamples
    meta = {**run.meta, "data_order": {"seed": 1, "start": 0}}  # another seed, another
    other = copy_of(run, meta=meta, train=run.train.assign(loss=1.0))  # log: not a copy
    pooled = analyze_run(pool_runs([run, other]), resamples=300)

    def widths(a):
        return [c.kept_ci[-1][1] - c.kept_ci[-1][0] for c in a.intervals]

    ratios = np.array(widths(pooled)) / np.array(widths(single))
    assert 0.8 < np.median(ratios) < 1.25  # the same items twice: not twice the evidence
