"""Synthetic probe logs with planted dynamics, built here without factdyn's analysis code.

Every probe of an injected item starts at a random base level. Injection i (at step t_i)
raises ℓ linearly over ``d`` updates to a peak ℓ_{t_i} + g_i (the probe's delay ``d`` is
inside the window, so the planted peak is the local acquisition maximum and g_i the planted
effectivity); until the next injection ℓ then sags by 10 % of g_i. After the peak of the last
injection, ℓ follows ``ℓ_pre + G·(b − a·log10 t + ε_t)`` with G the accumulated gain and ε
uniform noise, i.e. a planted power-law retainability. Controls stay at their base. A drift
added to *every* probe (controls included) models the background forgetting (docs/method.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from factdyn.rundir import STATS, TRAIN_COLUMNS, Run

DEPTHS = ("memorization", "semantic", "composition")
GAIN = {"memorization": 1.0, "semantic": 0.7, "composition": 0.4}


@dataclass
class Planted:
    run: Run
    gains: dict = field(default_factory=dict)  # (scenario, depth) -> mean planted g_i per i
    decay: dict = field(default_factory=dict)  # scenario -> (a, b)


def planted_run(
    schedules: dict[str, list[int]] | None = None,
    decay: dict[str, tuple[float, float]] | None = None,
    items_per_scenario: int = 8,
    probes_per_depth: int = 5,
    n_controls: int = 0,
    total: int = 600,
    window: int = 10,
    noise: float = 0.03,
    drift: float = 0.0,
    effect_outliers: int = 0,
    retention_outliers: int = 0,
    keep_steps: np.ndarray | None = None,
    seed: int = 0,
    config: dict | None = None,
) -> Planted:
    """A Run whose ℓ follows the planted dynamics above (ℓ in stats 'target_mean' and, ×3,
    'target_sum'). ``effect_outliers`` probes per scenario × depth get a 30× first gain;
    ``retention_outliers`` probes lose 10× their gain after the last peak."""
    rng = np.random.default_rng(seed)
    if schedules is None:
        schedules = {"duplicate": [0, 40, 80, 120, 160], "once": [0]}
    decay = {"duplicate": (0.25, 0.9), "once": (0.15, 0.8)} if decay is None else decay
    steps = np.arange(total + 1)
    cols, rows, inj = [], [], []
    gains: dict = {}
    item = 0
    plan = [(s, schedules[s]) for s in schedules] + [("control", [])] * (n_controls > 0)
    for scenario, sched in plan:
        n_items = n_controls if scenario == "control" else items_per_scenario
        a, b = decay.get(scenario, (0.0, 1.0))
        for _ in range(n_items):
            for v, t in enumerate(sched):
                inj.append((t, 0, item, scenario, v, 0, 0))
            for depth in DEPTHS:
                for j in range(probes_per_depth):
                    base = rng.uniform(-6, -3)
                    ell = np.full(total + 1, base)
                    if sched:
                        d = int(rng.integers(1, window // 2 + 1))
                        level = base
                        for i, t in enumerate(sched):
                            g = GAIN[depth] * (1 + 0.1 * i) * rng.uniform(0.95, 1.05)
                            if i == 0 and j < effect_outliers:
                                g *= 30  # an outlier: not part of the planted mean
                            else:
                                gains.setdefault((scenario, depth), {}).setdefault(i, []).append(g)
                            peak = t + d
                            ell[t + 1 : peak + 1] = level + g * np.arange(1, d + 1) / d
                            top = level + g
                            nxt = sched[i + 1] if i + 1 < len(sched) else None
                            if nxt is not None:
                                span = np.arange(1, nxt - peak + 1)
                                ell[peak + 1 : nxt + 1] = top - 0.1 * g * span / (nxt - peak)
                                level = ell[nxt]
                            else:
                                tt = np.arange(1, total - peak + 1)
                                r = b - a * np.log10(tt) + rng.uniform(-noise, noise, len(tt))
                                if j >= probes_per_depth - retention_outliers:
                                    r = r - 10.0
                                ell[peak + 1 :] = base + (top - base) * r
                    cols.append(ell - drift * steps)
                    rows.append((item, scenario, depth, j))
            item += 1
    ell = np.stack(cols, axis=1)
    ell -= max(0.0, float(ell.max()))  # log probabilities: ≤ 0 (the numbers use differences)
    gains = {k: [float(np.mean(v[i])) for i in sorted(v)] for k, v in gains.items()}
    probes = pd.DataFrame(rows, columns=["item", "scenario", "depth", "probe"])
    probes.insert(0, "probe_id", np.arange(len(probes)))
    probes["input"] = "in"
    probes["target"] = "out"
    items = probes.groupby("item").scenario.first().reset_index()
    n_inj = pd.Series([r[2] for r in inj]).value_counts()
    items["n_injections"] = [int(n_inj.get(k, 0)) for k in items["item"]]
    injections = pd.DataFrame(
        inj, columns=["step", "row", "item", "scenario", "variant", "token_start", "token_end"]
    ).sort_values(["step", "item"], ignore_index=True)
    if keep_steps is not None:
        steps, ell = steps[keep_steps], ell[keep_steps]
    logprobs = np.full((len(steps), ell.shape[1], len(STATS)), np.nan, dtype=np.float32)
    logprobs[:, :, 0] = ell
    logprobs[:, :, 1] = 3 * ell
    train = pd.DataFrame(np.zeros((total, 3)), columns=list(TRAIN_COLUMNS))
    train.insert(0, "step", np.arange(total))
    run = Run(
        path=Path("synthetic"),
        config=config or {"train": {"batch_size": 16, "steps": total}, "eval": {"window": window}},
        meta={"tokens_per_step": 1000, "window": window, "status": "done", "steps_done": total},
        steps=steps.astype(np.int64),
        logprobs=logprobs,
        probes=probes,
        items=items,
        injections=injections,
        train=train,
    )
    return Planted(run, gains, decay)


def write_run_dir(run: Run, path: Path, unfinished_after: int | None = None) -> Path:
    """Write ``run`` in the run-directory layout; rows from ``unfinished_after`` on stay NaN,
    as a killed run leaves them."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(run.config))
    (path / "meta.json").write_text(json.dumps(run.meta))
    run.probes.to_parquet(path / "probes.parquet", index=False)
    run.items.to_parquet(path / "items.parquet", index=False)
    run.injections.to_parquet(path / "injections.parquet", index=False)
    np.save(path / "steps.npy", run.steps)
    logprobs = run.logprobs.copy()
    if unfinished_after is not None:
        logprobs[unfinished_after:] = np.nan
    np.save(path / "logprobs.npy", logprobs)
    np.save(path / "train.npy", run.train[list(TRAIN_COLUMNS)].to_numpy())
    return path


def with_greedy(run: Run, seed: int = 0) -> Run:
    """``run`` with a greedy flag of 1 where ℓ is in its top 40%, 10% of entries unscored."""
    ell = run.logprobs[:, :, 0]
    flags = (ell > np.quantile(ell, 0.6)).astype(np.float32)
    flags[np.random.default_rng(seed).random(flags.shape) < 0.1] = np.nan
    run.logprobs[:, :, STATS.index("greedy")] = flags
    return run
