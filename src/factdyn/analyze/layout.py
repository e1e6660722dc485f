"""A run's probes in population order: every scenario × depth one contiguous block of rows.

Probes are sorted by scenario (in the run's order), then depth (:data:`DEPTHS`' order first),
stably, so that per-population work on the probe-major (P, L) log reads slices, never
scattered columns, and a mean over every population is one pass over the log
(:func:`block_means`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from factdyn.analyze.result import ordered
from factdyn.data.items import DEPTHS
from factdyn.errors import DataError
from factdyn.rundir import Run


class Block(NamedTuple):
    """One scenario × depth: rows ``start`` to ``stop`` (exclusive) of the ordered probes."""

    scenario: str
    depth: str
    start: int
    stop: int


@dataclass(frozen=True, eq=False)
class Layout:
    """The probes of a run in population order, and where each population's block lies."""

    probes: pd.DataFrame  # the run's probe table in population order
    order: np.ndarray  # (P,) the run's row of each ordered probe
    identity: bool  # the run's probes were in population order already
    scenario: np.ndarray  # (P,) each ordered probe's scenario
    depth_code: np.ndarray  # (P,) the index of its depth in ``depths``
    scenarios: list[str]  # in the run's order
    depths: list[str]  # DEPTHS' order first
    blocks: tuple[Block, ...]
    bounds: np.ndarray  # the first row of each block (as np.add.reduceat takes them)

    def labels(self) -> dict[str, list[str]]:
        """The blocks' label columns, for a long table of one column per block."""
        return {
            "scenario": [b.scenario for b in self.blocks],
            "depth": [b.depth for b in self.blocks],
        }

    def draw(self, seed: int, scenario: str) -> tuple[int, int]:
        """The bootstrap seed of a scenario: ``seed`` and the scenario's position (past the
        last for one the run does not have), so that the depths of one scenario share their
        draws and scenarios are independent."""
        position = (
            self.scenarios.index(scenario) if scenario in self.scenarios else len(self.scenarios)
        )
        return (seed, position)


def _codes(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Index of each value in ``names``."""
    index = {n: k for k, n in enumerate(names)}
    return np.array([index[v] for v in values.tolist()], dtype=np.int64)


def layout_of(run: Run) -> Layout:
    """The population order of ``run``'s probes (a stable sort by scenario, then depth)."""
    n_probes = len(run.probes)
    scen_all = run.probes["scenario"].astype(str).to_numpy()
    depth_all = run.probes["depth"].astype(str).to_numpy()
    scenarios = ordered(scen_all.tolist())
    depths = ordered(depth_all.tolist(), DEPTHS)
    s_code = _codes(scen_all, scenarios)
    d_code = _codes(depth_all, depths)
    order = np.lexsort((d_code, s_code))
    identity = bool((order == np.arange(n_probes)).all())
    probes = run.probes if identity else run.probes.iloc[order].reset_index(drop=True)
    s_code, d_code = s_code[order], d_code[order]
    pair = s_code * len(depths) + d_code
    bounds = np.flatnonzero(np.diff(pair, prepend=-1)) if n_probes else np.zeros(0, int)
    ends = np.append(bounds, n_probes)
    blocks = tuple(
        Block(scenarios[c // len(depths)], depths[c % len(depths)], int(a), int(b))
        for c, a, b in zip(pair[bounds], ends[:-1], ends[1:], strict=True)
    )
    return Layout(
        probes, order, identity, scen_all[order], d_code, scenarios, depths, blocks, bounds
    )


def ordered_log(run: Run, layout: Layout, stat: str) -> np.ndarray:
    """The probe-major (P, L) log of ``stat`` in population order, float64; refused when the
    run never logged it."""
    raw = run.stat(stat).T
    ell_t = (
        np.ascontiguousarray(raw, dtype=np.float64)
        if layout.identity
        else raw[layout.order].astype(float)
    )
    if ell_t.size and np.isnan(ell_t).all():
        hint = " (a run logs it with eval.full_text: true)" if stat == "full" else ""
        raise DataError(f"{run.path}: statistic '{stat}' was not logged{hint}")
    return ell_t


def block_means(
    x_t: np.ndarray, bounds: np.ndarray, has_nan: bool
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean over the row blocks of a probe-major (P, L) array starting at
    ``bounds``: (L, G) means and (L, G) counts, one pass over the log."""
    n_steps = x_t.shape[1]
    if len(bounds) == 0:
        return np.zeros((n_steps, 0)), np.zeros((n_steps, 0), dtype=np.int64)
    if has_nan:
        ok = ~np.isnan(x_t)
        total = np.add.reduceat(np.where(ok, x_t, 0.0), bounds, axis=0)
        n = np.add.reduceat(ok.astype(np.int64), bounds, axis=0)
    else:
        total = np.add.reduceat(x_t, bounds, axis=0)
        sizes = np.diff(np.append(bounds, x_t.shape[0]))
        n = np.broadcast_to(sizes[:, None], total.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return mean.T, np.ascontiguousarray(n.T)
