"""Benchmark: factdyn's vectorised analysis vs a straightforward per-interval Python baseline.

A synthetic log at the paper's scale (120 items × 15 probes = 1,800 probes, 2,500 logged
steps, paraphrase/duplicate/once, 10 injections every 100 steps from step 0, once-items only
at step 0) is analysed completely by ``factdyn.analyze.populations.analyze_run`` (median of
several repetitions after a warm-up). The baseline is what one writes without vectorising:
effectivity in Python loops over probes and injections, then, once per retainability
interval t, a loop over every probe that finds its local acquisition maximum, computes
R(q, t), IQR-filters and averages per scenario × depth. The baseline is timed on a subset of
intervals and extrapolated linearly to all of them (each interval costs the same), and its
values are checked against factdyn's on that subset. Both compute point estimates only; the
bootstrap intervals are measured by bench_bootstrap.py.

    python benchmarks/bench_analysis.py [--reps 5] [--intervals 40]

The last line printed is the speed-up ratio (baseline / factdyn).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from factdyn.analyze.populations import analyze_run  # noqa: E402
from factdyn.rundir import STATS, Run  # noqa: E402

DEPTHS = ("memorization", "semantic", "composition")
SCENARIOS = (("paraphrase", 0, 40), ("duplicate", 40, 80), ("once", 80, 120))
N_ITEMS, PROBES_PER_DEPTH, N_STEPS, WINDOW, IQR = 120, 5, 2500, 50, 1.5


def synthetic_run(seed: int = 0) -> Run:
    """Each injection adds a per-probe gain g that decays as g·(1 − 0.2·log10 τ) after a
    probe-specific delay; plus Gaussian noise of 0.02 nat per step."""
    rng = np.random.default_rng(seed)
    steps = np.arange(N_STEPS)
    rows, inj = [], []
    for k in range(N_ITEMS):
        scen = next(s for s, lo, hi in SCENARIOS if lo <= k < hi)
        sched = [0] if scen == "once" else list(range(0, 1000, 100))
        inj += [
            (t, 0, k, scen, v if scen == "paraphrase" else 0, 0, 0) for v, t in enumerate(sched)
        ]
        for depth in DEPTHS:
            for j in range(PROBES_PER_DEPTH):
                rows.append((k, scen, depth, j, sched))
    n = len(rows)
    ell = rng.uniform(-6, -3, n)[None, :] + rng.normal(0, 0.02, (N_STEPS, n))
    gain_scale = {"memorization": 0.6, "semantic": 0.45, "composition": 0.3}
    for p, (_, _, depth, _, sched) in enumerate(rows):
        delay = rng.integers(1, 20)
        for t in sched:
            tau = steps - t - delay
            g = gain_scale[depth] * rng.uniform(0.5, 1.5)
            rise = np.clip((steps - t) / delay, 0, 1)
            ell[:, p] += g * rise * np.clip(1 - 0.2 * np.log10(np.maximum(tau, 1)), 0, None)
    probes = pd.DataFrame([r[:4] for r in rows], columns=["item", "scenario", "depth", "probe"])
    probes.insert(0, "probe_id", np.arange(n))
    probes["input"] = ""
    probes["target"] = ""
    items = probes.groupby("item").scenario.first().reset_index()
    items["n_injections"] = [1 if s == "once" else 10 for s in items.scenario]
    injections = pd.DataFrame(
        inj, columns=["step", "row", "item", "scenario", "variant", "token_start", "token_end"]
    ).sort_values(["step", "item"], ignore_index=True)
    logprobs = np.full((N_STEPS, n, len(STATS)), np.nan, dtype=np.float32)
    logprobs[:, :, 0] = ell
    return Run(
        path=Path("synthetic-paper-scale"),
        config={},
        meta={"tokens_per_step": 2048 * 2048, "window": WINDOW},
        steps=steps.astype(np.int64),
        logprobs=logprobs,
        probes=probes,
        items=items,
        injections=injections,
        train=pd.DataFrame(columns=["step", "loss", "lr", "tokens"]),
    )


# ---- the straightforward baseline: plain Python over probes, once per interval ----


def baseline_setup(run: Run) -> tuple[list[list[float]], dict, list[list[int]]]:
    series = run.stat("target_mean").astype(np.float64).T.tolist()  # per probe, per step
    sched = run.injections.groupby("item").step.apply(sorted).to_dict()
    inj = [sched[k] for k in run.probes["item"]]
    groups: dict = {}
    for p, (s, d) in enumerate(zip(run.probes.scenario, run.probes.depth, strict=True)):
        groups.setdefault((s, d), []).append(p)
    return series, groups, inj


def iqr_mean(values: list[float]) -> float:
    q1, q3 = np.percentile(values, [25, 75])
    lo, hi = q1 - IQR * (q3 - q1), q3 + IQR * (q3 - q1)
    kept = [v for v in values if lo <= v <= hi]
    return sum(kept) / len(kept)


def baseline_effectivity(series, groups, inj) -> dict:
    out = {}
    for key, probes in groups.items():
        per_inj = []
        for i in range(max(len(inj[p]) for p in probes)):
            gains = []
            for p in probes:
                t_i = inj[p][i]
                window = series[p][t_i + 1 : t_i + WINDOW + 1]
                gains.append(max(window) - series[p][t_i])
            per_inj.append(iqr_mean(gains))
        out[key] = sum(per_inj) / len(per_inj)
    return out


def baseline_retainability(series, groups, inj, t: int) -> dict:
    """R̄(t) per scenario × depth, recomputed from scratch for this one interval."""
    out = {}
    for key, probes in groups.items():
        values = []
        for p in probes:
            s, last, first = series[p], inj[p][-1], inj[p][0]
            window = s[last + 1 : last + WINDOW + 1]
            lam = last + 1 + window.index(max(window))
            gain = s[lam] - s[first]
            if gain <= 0 or lam + t >= len(s):
                continue
            values.append((s[lam + t] - s[first]) / gain)
        out[key] = iqr_mean(values) if values else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--intervals", type=int, default=40, help="baseline intervals timed")
    args = parser.parse_args()

    t0 = time.perf_counter()
    run = synthetic_run()
    n_steps, n_probes = run.logprobs.shape[:2]
    print(
        f"synthetic log: {n_probes} probes × {n_steps} logged steps ({time.perf_counter() - t0:.1f} s to build)"
    )

    analyze_run(run, resamples=0)  # warm-up; the bootstrap has its own benchmark
    times = []
    for _ in range(max(args.reps, 5)):
        t0 = time.perf_counter()
        analysis = analyze_run(run, resamples=0)
        times.append(time.perf_counter() - t0)
    fast = float(np.median(times))
    n_intervals = max(
        len(e["retainability_steps"]) for d in analysis.summary.values() for e in d.values()
    )
    print(
        f"factdyn analyze_run (everything, {n_intervals} intervals): median {fast:.3f} s of {len(times)} reps "
        f"(min {min(times):.3f}, max {max(times):.3f})"
    )

    series, groups, inj = baseline_setup(run)
    t0 = time.perf_counter()
    baseline_effectivity(series, groups, inj)
    t_eff = time.perf_counter() - t0
    subset = np.unique(np.linspace(0, n_intervals - 1, args.intervals).round().astype(int))
    t0 = time.perf_counter()
    results = {int(t): baseline_retainability(series, groups, inj, int(t)) for t in subset}
    per_interval = (time.perf_counter() - t0) / len(subset)
    slow = t_eff + per_interval * n_intervals
    print(
        f"baseline: effectivity {t_eff:.3f} s + {per_interval * 1e3:.2f} ms per interval, timed on "
        f"{len(subset)} of {n_intervals} intervals and extrapolated linearly: {slow:.1f} s"
    )

    ret = analysis.retainability.set_index(["scenario", "depth", "t"]).retainability
    worst = max(
        abs(ret[(s, d, t)] - v)
        for t, by_key in results.items()
        for (s, d), v in by_key.items()
        if (s, d, t) in ret
    )
    print(f"baseline vs factdyn R̄ on the timed intervals: max |difference| {worst:.2e}")
    ok_time = "met" if fast <= 5 else "MISSED"
    ok_ratio = "met" if slow / fast >= 100 else "MISSED"
    print(f"targets: full analysis ≤ 5 s ({ok_time}), speed-up ≥ 100× ({ok_ratio})")
    print(f"speed-up (baseline / factdyn): {slow / fast:.0f}×")


if __name__ == "__main__":
    main()
