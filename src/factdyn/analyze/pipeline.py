"""A run's log -> the paper's quantities per scenario × depth, written and printed.

:func:`analyze_run` wires the array functions of :mod:`factdyn.analyze.metrics` and
:mod:`factdyn.analyze.fit` over a :class:`~factdyn.rundir.Run` (a factdyn run directory, or
the paper's published log read by :mod:`factdyn.analyze.reference`). Two option sets exist:
the paper's definitions as written (default), and ``reference=True``, the choices of the
published analysis code (IQR factor 2.0, retainability in percent, only exactly-zero gains
excluded, no drift correction), so numbers from the original scripts can be checked.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.fit import fit_power_law, step_weights
from factdyn.analyze.metrics import (
    NO_ROW,
    Acquisition,
    Retention,
    acquisition,
    filtered_mean,
    last_index,
    retainability,
)
from factdyn.data.items import DEPTHS
from factdyn.errors import DataError
from factdyn.files import replace_dir
from factdyn.rundir import CONTROL, STATS, Run, load_run

IQR_PAPER = 1.5
IQR_REFERENCE = 2.0


@dataclass
class Analysis:
    """Everything ``factdyn analyze`` computes for one run.

    ``summary`` has exactly the shape ``{scenario: {depth: {...}}}``; how it was computed
    (window, IQR factor, drift correction, truncated windows, ...) is in ``meta`` and, as
    key/value rows, ``settings``; ``summary.json`` stores ``meta`` under ``"_settings"``.
    """

    summary: dict
    meta: dict
    settings: pd.DataFrame
    trajectories: pd.DataFrame  # step, tokens, scenario, depth, delta (mean ℓ_t − ℓ_0), n
    control_drift: pd.DataFrame  # step, tokens, depth, delta of the control probes, n
    effectivity: pd.DataFrame  # scenario, depth, injection, step, effectivity, n, n_outliers
    acquisition: pd.DataFrame  # probe × injection: t_i, t_LAM, gain, window_complete
    retainability: pd.DataFrame  # scenario, depth, t, retainability, n, n_outliers
    config: dict = field(default_factory=dict)


def _order(names: Sequence[str], preferred: Sequence[str] = ()) -> list[str]:
    """Distinct names, ``preferred`` ones first in that order, the rest by first appearance."""
    seen = list(dict.fromkeys(names))
    return [n for n in preferred if n in seen] + [n for n in seen if n not in preferred]


def injection_matrix(run: Run) -> np.ndarray:
    """(P, N) injection steps of each probe's item, increasing, padded with -1."""
    probe_item = run.probes["item"].to_numpy(dtype=np.int64)
    inj = run.injections[["item", "step"]].drop_duplicates().sort_values(["item", "step"])
    n_items = int(max(probe_item.max(initial=-1), inj["item"].max() if len(inj) else -1)) + 1
    items = inj["item"].to_numpy(dtype=np.int64)
    rank = inj.groupby("item").cumcount().to_numpy()
    n = int(rank.max()) + 1 if len(rank) else 1
    table = np.full((n_items, n), -1, dtype=np.int64)
    table[items, rank] = inj["step"].to_numpy(dtype=np.int64)
    return table[probe_item] if len(probe_item) else np.zeros((0, n), np.int64)


def _codes(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Index of each value in ``names``."""
    index = {n: k for k, n in enumerate(names)}
    return np.array([index[v] for v in values.tolist()], dtype=np.int64)


def _block_means(
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


def _resolve(
    run: Run,
    window: int | None,
    iqr: float | None,
    stat: str,
    drift_correct: bool | None,
    reference: bool,
) -> tuple[int, float, bool]:
    if stat not in STATS:
        raise DataError(f"analyze: --stat must be one of {', '.join(STATS)}, not {stat!r}")
    window = int(window if window is not None else run.window)
    if window < 1:
        raise DataError(f"analyze: --window must be ≥ 1, not {window}")
    iqr = float(iqr if iqr is not None else (IQR_REFERENCE if reference else IQR_PAPER))
    if not iqr >= 0:
        raise DataError(f"analyze: --iqr must be ≥ 0, not {iqr}")
    has_controls = bool((run.probes["scenario"] == CONTROL).any())
    if drift_correct is None:
        drift_correct = has_controls and not reference
    elif drift_correct and not has_controls:
        raise DataError(
            f"{run.path}: drift correction needs control probes (scenario '{CONTROL}'); this run has none"
        )
    return window, iqr, bool(drift_correct)


def analyze_run(
    run_or_path: Run | str | Path,
    window: int | None = None,
    iqr: float | None = None,
    stat: str = "target_mean",
    drift_correct: bool | None = None,
    reference: bool = False,
) -> Analysis:
    """Analyse a run (or run directory) per scenario × depth.

    ``window`` defaults to the run's configured t_w (else 50); ``iqr`` to 1.5 (2.0 with
    ``reference``); ``drift_correct=None`` means: on when the run has control probes and
    ``reference`` is off.
    """
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    window, iqr, drift = _resolve(run, window, iqr, stat, drift_correct, reference)
    steps = np.asarray(run.steps, dtype=np.int64)
    n_probes = len(run.probes)
    if run.logprobs.ndim != 3 or run.logprobs.shape[1] != n_probes:
        raise DataError(
            f"{run.path}: log has {run.logprobs.shape[1:2]} probes, table has {n_probes}"
        )
    if len(steps) == 0:
        raise DataError(f"{run.path}: no logged steps yet")
    # Probes are put in population order (scenario, then depth; stable), so that every
    # scenario × depth is a contiguous block of rows of the probe-major (P, L) log ``ell_t``:
    # per-population work then reads slices, never scattered columns. ``ell`` is its view.
    scen_all = run.probes["scenario"].astype(str).to_numpy()
    depth_all = run.probes["depth"].astype(str).to_numpy()
    scen_names = _order(scen_all.tolist())
    depths = _order(depth_all.tolist(), DEPTHS)
    s_code = _codes(scen_all, scen_names)
    d_code = _codes(depth_all, depths)
    order = np.lexsort((d_code, s_code))
    identity = bool((order == np.arange(n_probes)).all())
    probes = run.probes if identity else run.probes.iloc[order].reset_index(drop=True)
    scen, s_code, d_code = scen_all[order], s_code[order], d_code[order]
    raw = run.stat(stat).T
    ell_t = np.ascontiguousarray(raw, dtype=np.float64) if identity else raw[order].astype(float)
    has_nan = bool(np.isnan(ell_t).any())
    if n_probes and has_nan and np.isnan(ell_t).all():
        raise DataError(f"{run.path}: statistic '{stat}' was not logged")

    # mean ℓ of every scenario × depth block at every step, before any correction
    pair = s_code * len(depths) + d_code
    bounds = np.flatnonzero(np.diff(pair, prepend=-1)) if n_probes else np.zeros(0, int)
    pairs = [(scen_names[c // len(depths)], depths[c % len(depths)]) for c in pair[bounds]]
    block_mean, block_n = _block_means(ell_t, bounds, has_nan)  # (L, G)

    # drift: the control probes' mean ℓ per depth at every step (SPEC §8)
    control = scen == CONTROL
    ctrl_mean = np.full((len(steps), len(depths)), np.nan)
    ctrl_n = np.zeros((len(steps), len(depths)), dtype=np.int64)
    for g, (s, d) in enumerate(pairs):
        if s == CONTROL:
            ctrl_mean[:, depths.index(d)] = block_mean[:, g]
            ctrl_n[:, depths.index(d)] = block_n[:, g]
    corrected: list[str] = []
    shift = np.zeros((len(steps), len(depths)))
    if drift:
        has = ~np.isnan(ctrl_mean).all(axis=0)
        corrected = [d for d, h in zip(depths, has, strict=True) if h]
        shift[:, has] = ctrl_mean[:, has]
        ell_t = ell_t - shift.T[d_code]
    ell = ell_t.T

    inj_steps = injection_matrix(run)
    if not identity:
        inj_steps = inj_steps[order]
    acq = acquisition(steps, ell, inj_steps, window)
    cols = np.arange(n_probes)
    last = last_index(acq.valid)
    injected = last >= 0
    lam_last = np.where(injected, acq.lam_row[cols, np.maximum(last, 0)], NO_ROW)
    pre_row = np.where(injected, acq.base_row[:, 0], NO_ROW)  # t_pre = t_1 = min(T_k)
    exclude = "zero" if reference else "nonpositive"
    scale = 100.0 if reference else 1.0

    summary: dict = {}
    unavailable: dict = {}  # probes whose retainability the log does not (yet) define
    eff_parts, ret_parts = [], []
    tps = run.tokens_per_step
    ends = np.append(bounds, n_probes)
    for g, (s, d) in enumerate(pairs):
        a, b = ends[g], ends[g + 1]
        member = a + np.flatnonzero(injected[a:b])
        if len(member) == 0:
            continue
        ell_m = ell_t[a:b].T if len(member) == b - a else ell_t[member].T  # a slice: no copy
        ret = retainability(steps, ell_m, lam_last[member], pre_row[member], exclude, True)
        entry, eff, rt = _group(member, acq, inj_steps, ret, scale, iqr, tps)
        if np.isnan(ret.gain).any():
            unavailable.setdefault(s, {})[d] = int(np.isnan(ret.gain).sum())
        summary.setdefault(s, {})[d] = entry
        eff_parts.append((s, d, eff))
        ret_parts.append((s, d, rt))

    if has_nan:  # a probe missing at some step: average the per-probe Δℓ
        delta, n = _block_means(ell_t - ell_t[:, :1], bounds, True)
    else:  # mean of differences = difference of means (the correction is per block)
        delta = block_mean - shift[:, [depths.index(d) for _, d in pairs]]
        delta, n = delta - delta[:1], block_n
    labels = {"scenario": [p[0] for p in pairs], "depth": [p[1] for p in pairs]}
    traj = _long(steps, tps, labels, delta, n)
    kept = [k for k in range(len(depths)) if not np.isnan(ctrl_mean[:, k]).all()]
    drift_delta = (ctrl_mean - ctrl_mean[:1])[:, kept]
    drift_df = _long(steps, tps, {"depth": [depths[k] for k in kept]}, drift_delta, ctrl_n[:, kept])
    meta = _meta(run, probes, stat, window, iqr, drift, corrected, reference, steps, acq)
    meta["retainability_unavailable"] = unavailable
    meta["control_drift_last"] = {
        d: _num(ctrl_mean[-1, k] - ctrl_mean[0, k]) for k, d in enumerate(depths) if control.any()
    }
    return Analysis(
        summary=summary,
        meta=meta,
        settings=pd.DataFrame(
            [(k, json.dumps(_clean(v))) for k, v in meta.items()], columns=["key", "value"]
        ),
        trajectories=traj,
        control_drift=drift_df,
        effectivity=_table(eff_parts, EFF_COLUMNS),
        acquisition=_acquisition_table(probes, acq, inj_steps),
        retainability=_table(ret_parts, RET_COLUMNS),
        config=dict(run.config),
    )


EFF_COLUMNS = [
    *("scenario", "depth", "injection", "step", "effectivity"),
    *("n", "n_outliers", "n_missing", "window_complete"),
]
RET_COLUMNS = ["scenario", "depth", "t", "retainability", "n", "n_outliers"]


def _labels(values: Sequence[str], codes: np.ndarray | None = None) -> pd.Categorical:
    """A categorical column (cheap to build and to store, unlike a column of strings)."""
    cats = list(dict.fromkeys(values))
    if codes is None:
        index = {c: k for k, c in enumerate(cats)}
        codes = np.array([index[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=cats)


def _table(parts: list[tuple[str, str, dict]], columns: list[str]) -> pd.DataFrame:
    """One long table from per-population column arrays, with categorical labels."""
    sizes = np.array([len(next(iter(cols.values()))) for _, _, cols in parts], dtype=np.int64)
    names = [(s, d) for s, d, _ in parts]
    if not parts:
        return pd.DataFrame(columns=columns)
    codes = np.repeat(np.arange(len(parts)), sizes)
    out = {
        "scenario": _labels([n[0] for n in names])[codes],
        "depth": _labels([n[1] for n in names])[codes],
    }
    for c in columns[2:]:
        out[c] = np.concatenate([cols[c] for _, _, cols in parts])
    return pd.DataFrame(out, columns=columns)


def _group(
    member: np.ndarray,
    acq: Acquisition,
    inj_steps: np.ndarray,
    ret: Retention,
    scale: float,
    iqr: float,
    tokens_per_step: int,
) -> tuple[dict, dict, dict]:
    """Summary entry and tables of one scenario × depth population.

    ``ret`` holds R only for t ≤ the last logged step minus the latest t_LAM(q, N) of the
    included probes: past it fewer and fewer probes remain, the population changes with t
    and the tail of R̄ would no longer be an average over the scenario × depth.
    """
    valid = acq.valid[member]  # (Pg, N)
    used = valid.any(axis=0)
    gains = acq.gain[member][:, used]  # (Pg, Ni)
    e_mean, e_n, e_out = filtered_mean(gains.T, iqr)
    missing = (valid[:, used] & np.isnan(gains)).sum(axis=0)
    steps_i = np.where(valid, inj_steps[member], np.iinfo(np.int64).max)[:, used].min(axis=0)
    complete = (acq.window_complete[member] | ~valid)[:, used].all(axis=0)
    eff = {
        "injection": np.arange(1, int(used.sum()) + 1),
        "step": steps_i,
        "effectivity": e_mean,
        "n": e_n,
        "n_outliers": e_out,
        "n_missing": missing,
        "window_complete": complete,
    }
    block = ret.r.T[~ret.excluded].T  # (U, Pg): excluded probes have no R at all
    r_mean, r_n, r_out = filtered_mean(block * scale if scale != 1 else block, iqr)
    have = r_n > 0
    t, r_mean = ret.t[have], r_mean[have]
    rt = {
        "t": t,
        "retainability": r_mean,
        "n": r_n[have],
        "n_outliers": r_out[have],
    }
    fitted = np.isfinite(r_mean) & (t >= 1)
    observed = ~np.isnan(block[have])
    if observed.all() and (len(t) == 0 or t[-1] - t[0] == len(t) - 1):
        weights = None  # every t of every probe: ordinary least squares, as the paper
    else:  # a sparse log: each point weighted by the (step, probe) pairs it stands for
        weights = step_weights(t, observed)[fitted]
    fit = fit_power_law(t[fitted], r_mean[fitted], weights)
    finite = e_mean[np.isfinite(e_mean)]
    entry = {
        "effectivity": float(finite.mean()) if len(finite) else math.nan,
        "effectivity_per_injection": e_mean.tolist(),
        "retainability": r_mean.tolist(),
        "retainability_steps": t.tolist(),
        "decay_constant": fit.a,
        "intercept": fit.b,
        "r2": fit.r2,
        "decay_constant_se": fit.se_a,
        "x_intercept_steps": fit.x_intercept_steps,
        "x_intercept_tokens": fit.x_intercept_steps * tokens_per_step,
        "n_probes": len(member),
        "n_excluded": int(ret.excluded.sum()),
        "n_outliers": int(r_out[have].sum()),
    }
    return entry, eff, rt


def _long(
    steps: np.ndarray,
    tokens_per_step: int,
    labels: dict[str, list[str]],
    delta: np.ndarray,
    n: np.ndarray,
) -> pd.DataFrame:
    """(L, G) per-group series as a long table: step, tokens, the group's label columns
    (G labels each), delta, n; only where the group had probes scored (n > 0), so that a
    sparse log's per-item gaps are absent rows rather than NaN."""
    g = delta.shape[1]
    have = n.reshape(-1) > 0
    codes = np.tile(np.arange(g), len(steps))[have]
    columns = {
        "step": np.repeat(steps, g)[have],
        "tokens": np.repeat(steps * tokens_per_step, g)[have],
        **{k: _labels(v)[codes] if g else [] for k, v in labels.items()},
        "delta": delta.reshape(-1)[have],
        "n": n.reshape(-1)[have],
    }
    return pd.DataFrame(columns, columns=list(columns))


def _acquisition_table(
    probes: pd.DataFrame, acq: Acquisition, inj_steps: np.ndarray
) -> pd.DataFrame:
    """One row per (probe, injection): the local acquisition maximum and the gain."""
    p, i = np.nonzero(acq.valid)
    ids = probes["probe_id"].to_numpy()
    by_id = np.lexsort((i, ids[p]))
    p, i = p[by_id], i[by_id]
    scen = probes["scenario"].astype(str).tolist()
    depth = probes["depth"].astype(str).tolist()
    return pd.DataFrame(
        {
            "probe_id": ids[p],
            "item": probes["item"].to_numpy()[p],
            "scenario": _labels(scen)[p],
            "depth": _labels(depth)[p],
            "injection": i + 1,
            "step": np.where(acq.valid[p, i], np.asarray(inj_steps)[p, i], -1),
            "lam_step": acq.lam_step[p, i],
            "gain": acq.gain[p, i],
            "window_complete": acq.window_complete[p, i],
        }
    )


def _meta(
    run: Run,
    probes: pd.DataFrame,
    stat: str,
    window: int,
    iqr: float,
    drift: bool,
    corrected: list[str],
    reference: bool,
    steps: np.ndarray,
    acq: Acquisition,
) -> dict:
    """How the numbers were computed, and what the log did not allow."""
    item = probes["item"].to_numpy()
    _, first = np.unique(item, return_index=True)  # one probe per item: item-level counts
    valid = acq.valid[first]
    scen = probes["scenario"].astype(str).to_numpy()[first]
    incomplete = valid & ~acq.window_complete[first]
    unlogged = valid & (acq.base_row[first] < 0)
    return {
        "source": str(run.path),
        "stat": stat,
        "window": window,
        "iqr_factor": iqr,
        "reference": reference,
        "drift_corrected": drift,
        "drift_corrected_depths": corrected,
        "retainability_unit": "percent" if reference else "fraction",
        "excluded_when": "gain == 0 (or undefined)" if reference else "gain <= 0 (or undefined)",
        "n_outliers_counts": "retainability values (probe, t) removed by the IQR rule, summed over t",
        "retainability_horizon": "R̄(t) for t ≤ last logged step − latest t_LAM(q, N) of the population",
        "effectivity_is": "mean over injections of the IQR-filtered mean gain of each injection",
        "fit": "R̄(t) = b − a·log10(t), least squares over t ≥ 1; on a sparse log each t is "
        "weighted by the (step, probe) pairs its observations stand for (every step logged: "
        "ordinary least squares)",
        "tokens_per_step": run.tokens_per_step,
        "n_logged_steps": len(steps),
        "first_step": int(steps[0]),
        "last_step": int(steps[-1]),
        "every_step_logged": bool(len(steps) == steps[-1] - steps[0] + 1),
        "status": run.meta.get("status"),
        "incomplete_windows": {
            s: int(incomplete[scen == s].sum()) for s in _order(scen) if incomplete[scen == s].any()
        },
        "unlogged_injection_steps": int(unlogged.sum()),
    }


def analyze_reference_log(
    path: str | Path,
    window: int | None = None,
    iqr: float | None = None,
    stat: str = "target_mean",
    drift_correct: bool | None = None,
    reference: bool = False,
    tokens_per_step: int | None = None,
) -> Analysis:
    """Analyse a log in the paper's published JSON format (see :mod:`.reference`)."""
    from factdyn.analyze.reference import TOKENS_PER_STEP, WINDOW, read_reference_log

    run = read_reference_log(path, tokens_per_step or TOKENS_PER_STEP, window or WINDOW)
    return analyze_run(run, window, iqr, stat, drift_correct, reference)


def _num(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _clean(obj: object) -> object:
    """Strict JSON: NaN and ±inf become null, numpy scalars Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_clean(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return _num(obj)
    return obj


TABLES = (
    "settings",
    "trajectories",
    "control_drift",
    "effectivity",
    "acquisition",
    "retainability",
)


def write_analysis(analysis: Analysis, out_dir: str | Path) -> Path:
    """Write summary.json and one CSV per table, all-or-nothing (a .tmp dir renamed in place).

    In summary.json NaN and infinite values are null (strict JSON); how the numbers were
    computed is under the key ``"_settings"``.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    doc = {**_clean(analysis.summary), "_settings": _clean(analysis.meta)}
    (tmp / "summary.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    for name in TABLES:
        getattr(analysis, name).to_csv(tmp / f"{name}.csv", index=False)
    return replace_dir(tmp, out_dir)


def _fmt(v: float, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, spec)


def format_summary(analysis: Analysis) -> str:
    """A plain-text table per scenario × depth, with the settings that produced it."""
    m = analysis.meta
    lines = [
        f"source: {m['source']}",
        f"stat {m['stat']} · window {m['window']} · IQR factor {m['iqr_factor']} · "
        f"drift correction {'on' if m['drift_corrected'] else 'off'}"
        + (" · reference mode (retainability in %)" if m["reference"] else ""),
        f"logged steps: {m['n_logged_steps']} ({m['first_step']}..{m['last_step']}"
        + (", every step)" if m["every_step_logged"] else ", sparse)"),
    ]
    head = ("scenario", "depth", "effectivity", "a", "R²", "τ steps", "τ tokens", "n/excl/outl")
    rows = [head]
    for s, by_depth in analysis.summary.items():
        for d, e in by_depth.items():
            rows.append(
                (
                    s,
                    d,
                    _fmt(e["effectivity"]),
                    _fmt(e["decay_constant"]),
                    _fmt(e["r2"], ".3f"),
                    _fmt(e["x_intercept_steps"]),
                    _fmt(e["x_intercept_tokens"], ".3g"),
                    f"{e['n_probes']}/{e['n_excluded']}/{e['n_outliers']}",
                )
            )
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    for k, r in enumerate(rows):
        cells = [r[j].ljust(w) if j < 2 else r[j].rjust(w) for j, w in enumerate(widths)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not analysis.summary:
        lines.append("(no injected probes in the log)")
    if m.get("control_drift_last"):
        drift = ", ".join(f"{d} {_fmt(v, '+.3f')}" for d, v in m["control_drift_last"].items())
        lines.append(f"control drift (mean Δℓ of control probes at the last step): {drift}")
    if m["incomplete_windows"]:
        inc = ", ".join(f"{s} {n}" for s, n in m["incomplete_windows"].items())
        lines.append(f"windows running past the end of the log (partial windows used): {inc}")
    if m["unlogged_injection_steps"]:
        lines.append(f"injections whose step was not logged: {m['unlogged_injection_steps']}")
    lines.append("n/excl/outl: probes / excluded (no acquisition) / retainability values removed")
    return "\n".join(lines)


METRICS = ("effectivity", "decay_constant", "r2", "x_intercept_steps", "x_intercept_tokens")


def _flatten(d: dict, prefix: str = "") -> dict:
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
    that differ between the runs as columns. Writes ``out/compare.csv`` when ``out`` is given.
    """
    if not paths:
        raise DataError("compare: give at least one run directory")
    analyses = [analyze_run(p) for p in paths]
    flat = [_flatten(a.config) for a in analyses]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differ = [
        k for k in keys if len({json.dumps(f[k], default=str) if k in f else "" for f in flat}) > 1
    ]
    rows = []
    for path, a, f in zip(paths, analyses, flat, strict=True):
        for s, by_depth in a.summary.items():
            for d, e in by_depth.items():
                rows.append(
                    {
                        "run": str(path),
                        **{k: f.get(k) for k in differ},
                        "scenario": s,
                        "depth": d,
                        **{k: e[k] for k in METRICS},
                    }
                )
    table = pd.DataFrame(rows, columns=["run", *differ, "scenario", "depth", *METRICS])
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "compare.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(out / "compare.csv")
    return table
