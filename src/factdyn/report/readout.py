"""What ``factdyn train``'s trackers show of the analysis while and after a run trains.

Training imports no analysis: the command hands this in as the trackers' readout
(:class:`factdyn.train.tracking.Readout`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.drift import control_means
from factdyn.analyze.inputs import reported
from factdyn.errors import DataError
from factdyn.report.findings import compute_findings, findings_document
from factdyn.rundir import CONTROL, STATS


class AnalysisReadout:
    """What ``factdyn train``'s trackers show of the analysis
    (:class:`factdyn.train.tracking.Readout`), read from the run's ``logprobs.npy`` (the rows
    the probe logger has written) and ``probes.parquet``: the mean Δℓ per scenario × depth at
    a logged row, drift-corrected as the analysis corrects it
    (:func:`~factdyn.analyze.drift.control_means`), and at the end the numbers and
    findings ``factdyn report`` would show."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        probes = pd.read_parquet(run_dir / "probes.parquet")
        self.ell = np.load(run_dir / "logprobs.npy", mmap_mode="r")[..., STATS.index("target_mean")]
        scenario = probes["scenario"].astype(str).to_numpy()
        depth = probes["depth"].astype(str).to_numpy()
        self.depths = list(dict.fromkeys(depth))
        self.d_code = np.array([self.depths.index(d) for d in depth], dtype=np.int64)
        self.control = scenario == CONTROL
        self.groups = {
            (s, d): np.flatnonzero((scenario == s) & (depth == d))
            for s, d in dict.fromkeys(zip(scenario, depth, strict=True))
            if s != CONTROL
        }

    def means(self, row: int) -> dict[str, float]:
        ell = np.asarray(self.ell[[0, row]], dtype=np.float64)  # (2, P): ℓ_0, ℓ_t
        ell_0, ell_t = ell
        delta = ell_t - ell_0
        (ctrl_0, ctrl_t), _ = control_means(ell.T, self.control, self.d_code, len(self.depths))
        drift = ctrl_t - ctrl_0  # (D,) the controls' mean Δℓ; NaN: none scored
        out = {
            f"drift/{d}": float(v)
            for d, v in zip(self.depths, drift, strict=True)
            if np.isfinite(v)
        }
        for (scenario, depth), cols in self.groups.items():
            if np.isfinite(delta[cols]).any():
                shift = drift[self.depths.index(depth)]
                mean = float(np.nanmean(delta[cols]))
                out[f"delta/{scenario}/{depth}"] = mean - (shift if np.isfinite(shift) else 0.0)
        return out

    def final(self) -> tuple[dict[str, float], pd.DataFrame | None]:
        """Effectivity and decay constant of every population with their intervals, and the
        findings table; nothing (and a notice) when the log cannot be analysed."""
        try:  # the analysis factdyn report would show for this run
            analysis = reported(self.run_dir).analysis
        except DataError as e:
            print(f"factdyn: trackers: no final analysis ({e})", file=sys.stderr)
            return {}, None
        values: dict[str, float] = {}
        for p in analysis.populations:
            for name, value, ci in (
                ("effectivity", p.effectivity, p.effectivity_ci),
                ("decay_constant", p.decay_constant, p.decay_constant_ci),
            ):
                key = f"final/{name}/{p.scenario}/{p.depth}"
                values.update({key: value, f"{key}/lo": ci[0], f"{key}/hi": ci[1]})
        table = pd.DataFrame(findings_document(compute_findings([analysis])))
        table["interval"] = table["interval"].map(lambda v: "" if v is None else str(v))
        return values, table
