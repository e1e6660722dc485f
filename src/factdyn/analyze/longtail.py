"""Which facts of a corpus with a long tail of frequencies the model of
:mod:`factdyn.analyze.simulate` says are learned by the corpus's end (``factdyn simulate``'s
long-tail options)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.simulate import (
    ModelParams,
    count,
    final_levels,
    finite_number,
    positive,
)
from factdyn.budget import check_memory
from factdyn.errors import DataError


@dataclass(frozen=True, eq=False)
class LongTail:
    """N facts with Zipf(s) frequencies in a corpus read once: each fact's exposures, evenly
    spaced over the S = C / T steps, and the Δℓ they leave at the end (step S). Arrays are per
    rank (index r − 1)."""

    zipf: float  # s
    facts: int  # N
    mentions: float  # M, over all facts
    corpus_tokens: float  # C
    tokens_per_step: float  # T
    level: float  # a fact counts as learned when its final Δℓ ≥ level
    steps: float  # S = C / T
    exposures: np.ndarray  # n_r = ⌊M·r^(−s) / Σ_j j^(−s)⌋ (whole floats: M may pass 2^63)
    intervals: np.ndarray  # S / n_r steps between its mentions (inf: never mentioned)
    final_levels: np.ndarray  # Δℓ at step S
    fraction_above: float  # share of the N facts whose final Δℓ ≥ level
    rank_threshold: int  # every rank ≤ this ends at ≥ level (0: not even the first)

    @property
    def ranks(self) -> np.ndarray:
        return np.arange(1, self.facts + 1)


def long_tail(
    params: ModelParams,
    zipf: float,
    facts: int,
    mentions: float,
    corpus_tokens: float,
    tokens_per_step: float,
    level: float,
) -> LongTail:
    """Which facts of a Zipf-distributed corpus the model says are learned by its end.

    The fact of rank r is expected n = M·r^(−s)/Σ_j j^(−s) times; it gets ⌊n⌋ exposures
    (the expected count rounded down: a fact expected less than once is never seen and ends
    at 0), at steps 0, S/⌊n⌋, 2S/⌊n⌋, ..., so its final level is :func:`kept_levels` at
    interval S/⌊n⌋ after ⌊n⌋ exposures. Computed in closed form (:func:`final_levels`) once
    per distinct count, so N = 10^6 facts, each seen up to billions of times, takes well under
    a second. The counts stay floats (exact below 2^53, the nearest float above), so that any
    finite M, 10^300 included, counts rather than wraps around an integer type. N facts take
    :func:`long_tail_bytes`, refused before they are allocated when the machine lacks it.
    """
    s = finite_number(zipf, "zipf")
    if s < 0:
        raise DataError(f"simulate: zipf must be ≥ 0, not {s:g}")
    n_facts = count(facts, "facts")
    check_memory(
        long_tail_bytes(n_facts),
        f"simulate: --facts {n_facts:,}",
        "give fewer --facts",
        (long_tail_bytes(1), "facts"),
    )
    m_total = finite_number(mentions, "mentions")
    if m_total < 0:
        raise DataError(f"simulate: mentions must be ≥ 0, not {m_total:g}")
    tokens = positive(corpus_tokens, "corpus_tokens")
    per_step = positive(tokens_per_step, "tokens_per_step")
    threshold_level = positive(level, "level")
    total_steps = tokens / per_step
    weights = np.arange(1, n_facts + 1, dtype=np.float64) ** -s
    expected = m_total * weights / weights.sum()
    # rounded down, forgiving a few ulps so that an exact count is not lost to rounding
    n = np.floor(expected * (1 + 4 * np.finfo(np.float64).eps))
    seen = n > 0
    intervals = np.full(n_facts, np.inf)
    intervals[seen] = total_steps / n[seen]
    counts, facts_each = _runs(n)
    mentioned = counts > 0
    levels = np.zeros(len(counts))  # a fact never mentioned ends at 0
    delta = total_steps / counts[mentioned]
    levels[mentioned] = final_levels([params], counts[mentioned], delta)[0]
    final = np.repeat(levels, facts_each)
    above = final >= threshold_level
    rank_threshold = n_facts if above.all() else int(np.argmin(above))
    return LongTail(
        zipf=s,
        facts=n_facts,
        mentions=m_total,
        corpus_tokens=tokens,
        tokens_per_step=per_step,
        level=threshold_level,
        steps=total_steps,
        exposures=n,
        intervals=intervals,
        final_levels=final,
        fraction_above=float(above.mean()),
        rank_threshold=rank_threshold,
    )


def long_tail_bytes(facts: int) -> float:
    """Peak memory of :func:`long_tail` and :func:`learned` for ``facts`` facts: 200 bytes a
    fact, the float arrays over the ranks and, when every rank has its own exposure count,
    :func:`final_levels`' over the counts (tracemalloc's peak at 10^6 facts: 42-49 bytes a
    fact with 10^9 mentions, 172 with 10^30; :func:`learned` takes its replicates in blocks
    that hold no more)."""
    return 200.0 * facts


def learned(tail: LongTail, params: Sequence[ModelParams]) -> tuple[np.ndarray, np.ndarray]:
    """``tail``'s ``fraction_above`` and ``rank_threshold`` (B,) under each of ``params`` (a
    bootstrap's replicates), on the same corpus.

    The facts of one exposure count end alike and hold consecutive ranks, so the final levels
    are computed once per count. A fact mentioned every τ = 10^(b/a) steps or less often ends
    at 0, below any level, so each parameter set needs only the counts above S/τ, the most
    frequent ones: the sets go in blocks of similar τ, each computed over the counts its
    largest τ needs (B × counts floats at once would not fit for a long tail)."""
    counts, facts = _runs(tail.exposures)
    seen = counts > 0  # a fact never mentioned ends at 0, below any level
    counts, facts = counts[seen], facts[seen]
    delta = tail.steps / counts
    log_tau = np.array([p.intercept / p.decay_constant for p in params])
    shares = np.zeros(len(params))
    ranks = np.zeros(len(params), dtype=np.int64)
    order = np.argsort(log_tau)
    block = max(1, 2**18 // max(len(counts), 1))
    for start in range(0, len(params), block):
        rows = order[start : start + block]
        use = int(np.searchsorted(np.log10(delta), log_tau[rows].max()))  # Δ < τ: R(Δ) > 0
        levels = final_levels([params[r] for r in rows], counts[:use], delta[:use])
        above = levels >= tail.level
        shares[rows] = above @ facts[:use] / tail.facts
        ranks[rows] = (np.cumprod(above, axis=1) * facts[:use]).sum(axis=1)
    return shares, ranks


def _runs(exposures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct exposure counts of a long tail's facts, most first, and how many facts
    have each: the counts do not increase with the rank, so the facts of one count are
    consecutive ranks and end alike."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(exposures)) + 1])
    return exposures[starts], np.diff(np.append(starts, len(exposures)))
