"""Items injected in staggered cohorts: each item's trajectory is read from its own first
injection, so the population mean shows the planted staircase, not a smear of it."""

from __future__ import annotations

import dataclasses

import numpy as np
from analyze_synth import planted_run

from factdyn.analyze.populations import analyze_run
from factdyn.report.figures import injection_steps

GAP = 7


def _staggered(run, gap: int):
    """``run`` with every odd item started ``gap`` steps later: its rows shifted in time,
    its injections moved with them; before its start it sat 0.5 nat lower (a change before
    an item's first injection is not part of its trajectory)."""
    ell = run.logprobs.copy()
    late = run.probes["item"].to_numpy() % 2 == 1
    late &= run.probes["scenario"].to_numpy() != "control"
    ell[gap:, late] = run.logprobs[:-gap, late]
    ell[:gap, late] = run.logprobs[:1, late] - 0.5
    inj = run.injections.copy()
    inj.loc[inj["item"] % 2 == 1, "step"] += gap
    inj = inj.sort_values(["step", "item"], ignore_index=True)
    return dataclasses.replace(run, logprobs=ell, injections=inj)


def test_cohorts_are_aligned_to_their_first_injection():
    planted = planted_run(n_controls=4, noise=0.0)
    plain = analyze_run(planted.run, resamples=0)
    shifted = analyze_run(_staggered(planted.run, GAP), resamples=0)
    assert shifted.settings.cohorts_aligned and not plain.settings.cohorts_aligned
    key = ["scenario", "depth", "step"]
    a = plain.trajectories.set_index(key)["delta"]
    b = shifted.trajectories.set_index(key)["delta"]
    early = a.index.get_level_values("step") <= planted.run.steps[-1] - GAP
    np.testing.assert_allclose(b.loc[a[early].index], a[early], atol=1e-5)
    # the aligned series stop where the late cohort's log ends: each step stands for all items
    assert b.index.get_level_values("step").max() == planted.run.steps[-1] - GAP
    n_plain = plain.trajectories.set_index(key)["n"]
    n_shifted = shifted.trajectories.set_index(key)["n"]
    assert (n_shifted == n_plain.loc[n_shifted.index]).all()
    # the per-item numbers do not depend on when an item started
    for p in plain.populations:
        q = shifted.get(p.scenario, p.depth)
        np.testing.assert_allclose(q.effectivity_per_injection, p.effectivity_per_injection, 1e-5)
    # the figure marks the injections the aligned trajectories share: the first cohort's
    assert (
        injection_steps(shifted)
        == injection_steps(plain)
        == {
            "duplicate": [0, 40, 80, 120, 160],
            "once": [0],
        }
    )
