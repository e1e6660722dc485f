"""Several runs side by side (``factdyn compare``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from factdyn.analyze.inputs import reported
from factdyn.errors import DataError
from factdyn.files import atomic_file

METRICS = ("effectivity", "decay_constant", "r2", "x_intercept_steps", "x_intercept_tokens")


def _flatten(d: dict, prefix: str = "") -> dict:
    """Nested config -> {"section.key": value}."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def compare(paths: Sequence[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """Several runs side by side: one row per run × scenario × depth, with the config fields
    that differ between the runs as columns, each run's numbers those of its saved analysis
    where it has one (:func:`~factdyn.analyze.inputs.reported`). Writes ``out/compare.csv``
    when ``out`` is given."""
    if not paths:
        raise DataError("compare: give at least one run directory")
    analyses = [reported(p).analysis for p in paths]
    flat = [_flatten(a.config) for a in analyses]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differ = [
        k for k in keys if len({json.dumps(f[k], default=str) if k in f else "" for f in flat}) > 1
    ]
    rows = [
        {
            "run": str(path),
            **{k: f.get(k) for k in differ},
            "scenario": p.scenario,
            "depth": p.depth,
            **{k: getattr(p, k) for k in METRICS},  # Population fields, as columns
        }
        for path, a, f in zip(paths, analyses, flat, strict=True)
        for p in a.populations
    ]
    table = pd.DataFrame(rows, columns=["run", *differ, "scenario", "depth", *METRICS])
    if out is not None:
        with atomic_file(Path(out) / "compare.csv") as tmp:
            table.to_csv(tmp, index=False)
    return table
