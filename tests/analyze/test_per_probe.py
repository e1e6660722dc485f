"""The per-probe table: what the analysis decided about each probe, planted outliers found."""

from __future__ import annotations

import numpy as np
import pytest
from analyze_synth import planted_run

from factdyn.analyze.populations import analyze_run


@pytest.fixture(scope="module")
def analysis():
    planted = planted_run(
        schedules={"duplicate": [0, 40, 80]}, items_per_scenario=6, total=300,
        effect_outliers=1, retention_outliers=1, seed=3,
    )  # fmt: skip
    return planted.run, analyze_run(planted.run, resamples=0)


def test_the_planted_outliers_are_the_probes_the_filter_removed(analysis):
    run, a = analysis
    table = a.per_probe.merge(run.probes[["probe_id", "probe"]], on="probe_id")
    assert len(table) == len(run.probes)
    first = table["probe"] == 0  # a 30× first gain
    last = table["probe"] == 4  # loses 10× its gain after the last peak
    assert (table.loc[first, "n_gain_outliers"] == 1).all()
    assert (table.loc[~first, "n_gain_outliers"] == 0).all()
    assert (table.loc[last, "n_retainability_outliers"] > 0).all()
    assert not table["excluded"].any()
    for p in a.populations:  # the per-probe counts add up to the population's
        rows = table[(table.scenario == p.scenario) & (table.depth == p.depth)]
        assert rows["n_retainability_outliers"].sum() == p.n_outliers
        eff = a.effectivity[
            (a.effectivity.scenario == p.scenario) & (a.effectivity.depth == p.depth)
        ]
        assert rows["n_gain_outliers"].sum() == eff["n_outliers"].sum()


def test_retainability_is_r_at_the_populations_last_t(analysis):
    run, a = analysis
    ell = run.logprobs[:, :, 0].astype(np.float64)  # every step logged, no drift
    for row in a.per_probe.itertuples():
        p = a.get(row.scenario, row.depth)
        acq = a.acquisition[a.acquisition.probe_id == row.probe_id]
        t1, lam = acq["step"].min(), acq["lam_step"].iloc[-1]
        t = p.retainability_steps[-1]
        want = (ell[lam + t, row.probe_id] - ell[t1, row.probe_id]) / (
            ell[lam, row.probe_id] - ell[t1, row.probe_id]
        )
        assert row.retainability_t == t
        assert row.retainability == pytest.approx(want, rel=1e-9)
