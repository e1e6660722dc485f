"""The paper's per-probe quantities (docs/method.md) as pure functions on arrays.

Everything works on a log ``ell`` of shape (L, P): ℓ of P probes at L logged steps ``steps``
(strictly increasing, not necessarily consecutive). Nothing is interpolated: a quantity that
needs a step that was not logged is NaN, and the caller counts it. Python loops run only over
the few distinct injection steps and distinct t_LAM values; within them whole blocks of probes
and steps are handled by numpy, so a paper-scale log takes a fraction of a second.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NO_ROW = -1  # a row index meaning "no such logged step"
FIRST = 0  # the column of a probe's first injection in the (P, N) arrays of Acquisition


class Acquisition(NamedTuple):
    """Local acquisition maxima of every (probe, injection) pair; all arrays are (P, N)."""

    base_row: np.ndarray  # row of t_i in the log, NO_ROW if t_i was not logged
    lam_row: np.ndarray  # row of t_LAM, NO_ROW if no logged finite ℓ in the window
    lam_step: np.ndarray  # t_LAM, NO_ROW where undefined
    gain: np.ndarray  # effectivity E(q, i) = ℓ_{t_LAM} − ℓ_{t_i}; NaN where undefined
    window_complete: np.ndarray  # the log reaches t_i + t_w (else: what exists was used)
    valid: np.ndarray  # the pair is a real injection (not padding)


class Retention(NamedTuple):
    """Per-probe retainability R(q, t) at every logged interval t."""

    t: np.ndarray  # (U,) the intervals t ≥ 0 that at least one probe has in the log
    r: np.ndarray  # (U, P) R(q, t); NaN where not logged or excluded (a probe-major view)
    gain: np.ndarray  # (P,) the denominator ℓ_{t_LAM(q,N)} − ℓ_{t_pre}
    excluded: np.ndarray  # (P,) no acquisition (or no data to tell): left out of R


def rows_of(steps: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row index of each queried step in ``steps``, NO_ROW where it was not logged."""
    steps = np.asarray(steps)
    query = np.asarray(query)
    if len(steps) == 0:
        return np.full(query.shape, NO_ROW, dtype=np.int64)
    pos = np.searchsorted(steps, query)
    hit = (pos < len(steps)) & (steps[np.minimum(pos, len(steps) - 1)] == query)
    return np.where(hit, pos, NO_ROW).astype(np.int64)


def acquisition(
    steps: np.ndarray, ell: np.ndarray, inj_steps: np.ndarray, window: int
) -> Acquisition:
    """t_LAM(q, i) = argmax over logged t in (t_i, t_i + t_w] of ℓ_t, first maximum on ties.

    ``inj_steps`` is (P, N): the injection steps of each probe's item in increasing order,
    padded with a negative value where an item has fewer than N injections. A window that
    runs past the end of the log uses the logged steps it has (flagged in
    ``window_complete``); with a sparse log only logged steps are candidates.
    """
    steps = np.asarray(steps, dtype=np.int64)
    ell = np.asarray(ell, dtype=np.float64)
    inj = np.asarray(inj_steps, dtype=np.int64)
    if inj.ndim != 2 or inj.shape[0] != ell.shape[1]:
        raise ValueError(f"inj_steps must be (P, N) with P={ell.shape[1]}, got {inj.shape}")
    valid = inj >= 0
    n_probes = inj.shape[0]
    probe = np.broadcast_to(np.arange(n_probes)[:, None], inj.shape)
    lam_row = np.full(inj.shape, NO_ROW, dtype=np.int64)
    # pairs injected at the same step share a window: one slice of rows per distinct t_i
    pv, iv = np.nonzero(valid)
    for t_i, (pp, ii) in _groups_by(inj[pv, iv], pv, iv):
        lo = int(np.searchsorted(steps, t_i, side="right"))  # first row with step > t_i
        hi = int(np.searchsorted(steps, t_i + window, side="right"))  # > t_i + t_w
        if hi <= lo:
            continue
        win = ell[lo:hi][:, pp]
        win = np.where(np.isnan(win), -np.inf, win)
        first = win.argmax(axis=0)  # argmax returns the first of equal maxima
        found = win[first, np.arange(len(pp))] > -np.inf
        lam_row[pp, ii] = np.where(found, lo + first, NO_ROW)
    base_row = np.where(valid, rows_of(steps, inj), NO_ROW)
    ok = (lam_row >= 0) & (base_row >= 0)
    gain = np.full(inj.shape, np.nan)
    gain[ok] = ell[lam_row[ok], probe[ok]] - ell[base_row[ok], probe[ok]]
    last = steps[-1] if len(steps) else -1
    return Acquisition(
        base_row=base_row,
        lam_row=lam_row,
        lam_step=np.where(lam_row >= 0, steps[np.maximum(lam_row, 0)], NO_ROW)
        if len(steps)
        else lam_row,
        gain=gain,
        window_complete=valid & (inj + window <= last),
        valid=valid,
    )


class Levels(NamedTuple):
    """ℓ of every (probe, injection) pair relative to ℓ at the probe's first injection t_1:
    what repeated exposures accumulate (the interval experiment). All (P, N), NaN where
    the step was not logged."""

    before: np.ndarray  # at t_i: what the earlier exposures left
    peak: np.ndarray  # at t_LAM(q, i)
    next: np.ndarray  # one interval later (at t_{i+1}; after the last, t_N + t_N − t_{N−1})


def exposure_levels(
    steps: np.ndarray, ell: np.ndarray, inj_steps: np.ndarray, acq: Acquisition
) -> Levels:
    """The levels of :class:`Levels` from a (drift-corrected) log ``ell`` (L, P)."""
    steps = np.asarray(steps, dtype=np.int64)
    inj = np.asarray(inj_steps, dtype=np.int64)
    probe = np.broadcast_to(np.arange(inj.shape[0])[:, None], inj.shape)

    def at(rows: np.ndarray) -> np.ndarray:
        ok = rows >= 0
        out = np.full(rows.shape, np.nan)
        out[ok] = ell[rows[ok], probe[ok]]
        return out

    first = at(np.broadcast_to(acq.base_row[:, FIRST : FIRST + 1], inj.shape).copy())
    after = np.full(inj.shape, -1, dtype=np.int64)
    after[:, :-1] = np.where(inj[:, 1:] >= 0, inj[:, 1:], -1)
    n = acq.valid.sum(axis=1)
    last = np.maximum(n - 1, 0)
    rows = np.arange(inj.shape[0])
    regular = n >= 2  # a gap to repeat after the last exposure
    gap = inj[rows, last] - inj[rows, np.maximum(last - 1, 0)]
    after[rows[regular], last[regular]] = inj[rows, last][regular] + gap[regular]
    next_rows = np.where(after >= 0, rows_of(steps, np.maximum(after, 0)), NO_ROW)
    return Levels(
        before=at(acq.base_row) - first,
        peak=at(acq.lam_row) - first,
        next=at(next_rows) - first,
    )


def last_index(valid: np.ndarray) -> np.ndarray:
    """Column of each row's last valid (non-padding) injection, -1 for none."""
    n = valid.shape[1]
    return np.where(valid.any(axis=1), n - 1 - valid[:, ::-1].argmax(axis=1), -1)


def retainability(
    steps: np.ndarray,
    ell: np.ndarray,
    lam_row: np.ndarray,
    pre_row: np.ndarray,
    exclude: str = "nonpositive",
    common: bool = False,
) -> Retention:
    """R(q, t) = (ℓ_{t_LAM+t} − ℓ_{t_pre}) / (ℓ_{t_LAM} − ℓ_{t_pre}) for every logged t ≥ 0.

    ``lam_row`` (P,) is the row of t_LAM(q, N) of each probe's last injection and ``pre_row``
    (P,) the row of t_pre = t_1 (NO_ROW: undefined, the probe is excluded). A probe without
    acquisition is excluded: ``exclude="nonpositive"`` (the paper's text, denominator ≤ 0) or
    ``"zero"`` (the published code, denominator exactly 0). Because t_LAM differs between
    probes, a probe has R only at the t where t_LAM + t was logged. With ``common`` only
    the t that every kept probe's range reaches (t ≤ last step − latest t_LAM) are returned:
    past that the population thins out and its mean is no longer over the same probes.
    """
    steps = np.asarray(steps, dtype=np.int64)
    ell = np.asarray(ell, dtype=np.float64)
    lam_row = np.asarray(lam_row, dtype=np.int64)
    pre_row = np.asarray(pre_row, dtype=np.int64)
    n_probes = ell.shape[1]
    cols = np.arange(n_probes)
    have = (lam_row >= 0) & (pre_row >= 0)
    ell_lam = np.where(have, ell[np.maximum(lam_row, 0), cols], np.nan)
    ell_pre = np.where(have, ell[np.maximum(pre_row, 0), cols], np.nan)
    gain = ell_lam - ell_pre
    if exclude == "nonpositive":
        excluded = ~(gain > 0)
    elif exclude == "zero":
        excluded = ~np.isfinite(gain) | (gain == 0)
    else:
        raise ValueError(f"exclude must be 'nonpositive' or 'zero', not {exclude!r}")
    keep = ~excluded
    if not keep.any() or len(steps) == 0:
        return Retention(np.zeros(0, np.int64), np.zeros((0, n_probes)), gain, excluded)
    kcols = cols[keep]
    # probes sharing a t_LAM share their intervals: order the kept probes by t_LAM, so each
    # distinct t_LAM (few) is a contiguous block; work probe-major so that every copy below
    # runs along one probe's steps (long contiguous rows) rather than across a few columns
    order = kcols[np.argsort(lam_row[kcols], kind="stable")]
    starts, first = np.unique(lam_row[order], return_index=True)
    bounds = np.append(first, len(order))
    dense = steps[-1] - steps[0] == len(steps) - 1  # every step logged: t = 0, 1, 2, ...
    if dense:
        t = np.arange(len(steps) - starts.min(), dtype=np.int64)
    else:
        t = np.unique(np.concatenate([steps[r0:] - steps[r0] for r0 in starts]))
    if common:
        t = t[: np.searchsorted(t, steps[-1] - steps[starts.max()], side="right")]
    sub = ell.T[order]  # (K, L)
    pre = ell_pre[order, None]
    den = gain[order, None]
    r_t = np.empty((n_probes, len(t)))  # (P, U), returned as its (U, P) transpose
    r_t[excluded] = np.nan
    for k, r0 in enumerate(starts):
        a, b = bounds[k], bounds[k + 1]
        rows = order[a:b]
        if dense:  # the rows from t_LAM on are the intervals 0, 1, ...: plain slices
            n = min(len(steps) - r0, len(t))
            r_t[rows, :n] = (sub[a:b, r0 : r0 + n] - pre[a:b]) / den[a:b]  # R(q, 0) is 1
            r_t[rows, n:] = np.nan
        else:
            pos = np.searchsorted(t, steps[r0:] - steps[r0])
            pos = pos[pos < len(t)]  # past the common range (a prefix of the rows)
            block = (sub[a:b, r0 : r0 + len(pos)] - pre[a:b]) / den[a:b]
            part = np.full((b - a, len(t)), np.nan)
            part[:, pos] = block
            r_t[rows] = part
    return Retention(t, r_t.T, gain, excluded)


def _groups_by(key: np.ndarray, *arrays: np.ndarray):
    """Yield (value, [array subsets]) for each distinct value of ``key``, in sorted order."""
    order = np.argsort(key, kind="stable")
    values, first = np.unique(key[order], return_index=True)
    bounds = np.append(first, len(order))
    for k, v in enumerate(values):
        idx = order[bounds[k] : bounds[k + 1]]
        yield v, [a[idx] for a in arrays]


def nan_quartiles(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q1 and Q3 along the last axis ignoring NaN (linear interpolation, numpy's default).

    Rows are sorted (NaN sorts last) and read at their own positions, so rows with different
    numbers of values need no Python loop; numpy's vectorised sort is also several times
    faster here than np.percentile's partition.
    """
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    flat = x.reshape(int(np.prod(lead)), x.shape[-1])
    if flat.shape[1] == 0:
        empty = np.full(lead, np.nan)
        return empty, empty.copy()
    s = np.sort(flat, axis=1)
    n = flat.shape[1] - np.isnan(flat).sum(axis=1)  # the values before the sorted NaN tail
    top = np.maximum(n - 1, 0)
    out = []
    for q in (0.25, 0.75):
        pos = q * top
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, top)
        a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
        out.append(np.where(n > 0, a + (b - a) * (pos - lo), np.nan).reshape(lead))
    return out[0], out[1]


def iqr_keep(x: np.ndarray, factor: float) -> np.ndarray:
    """Mask of the values kept by the IQR rule along the last axis: Q1 − f·IQR ≤ x ≤ Q3 + f·IQR.

    NaN is never kept (and never counted as an outlier by :func:`filtered_mean`).
    """
    x = np.asarray(x, dtype=np.float64)
    q1, q3 = nan_quartiles(x)
    spread = factor * (q3 - q1)
    lo = (q1 - spread)[..., None]
    hi = (q3 + spread)[..., None]
    with np.errstate(invalid="ignore"):
        return (x >= lo) & (x <= hi)


def filtered_mean(x: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean along the last axis after the IQR filter: (mean, n kept, n outliers removed)."""
    return kept_mean(x, iqr_keep(x, factor))


def kept_mean(x: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`filtered_mean` with the filter's mask ``keep`` given, for callers that also
    report which values it removed: (mean, n kept, n outliers removed)."""
    x = np.asarray(x, dtype=np.float64)
    n = keep.sum(axis=-1)
    outliers = (~np.isnan(x)).sum(axis=-1) - n
    total = np.where(keep, x, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return mean, n, outliers
