"""Probe evaluation during training: which steps are logged, and the logger that writes them.

Evaluation is a side concern of the loop (OLMo-core's callback idea): the loop calls
:meth:`ProbeLogger.maybe_log` with θ_t before update t, and the logger decides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factdyn.rundir import open_log
from factdyn.train.distributed import World, gather_rows


def eval_steps(
    kind: str, injection_steps: list[int], window: int, total: int, log_points: int
) -> np.ndarray:
    """Logged steps in ``[0, total]``.

    ``every``: all of them. ``sparse``: θ_0, every step of each window ``[t_i, t_i + t_w]``,
    then ``log_points`` log-spaced steps from the end of the last window to ``total``
    (retainability is fitted in log t, so later steps carry less new information).
    """
    if kind == "every":
        return np.arange(total + 1, dtype=np.int64)
    steps = {0, total}
    for t in injection_steps:
        steps.update(range(t, min(t + window, total) + 1))
    last = min(max(injection_steps, default=0) + window, total)
    if total > last:
        tail = np.geomspace(1, total - last, num=log_points)
        steps.update((last + np.round(tail)).astype(int).tolist())
    return np.array(sorted(s for s in steps if 0 <= s <= total), dtype=np.int64)


class ProbeLogger:
    """Scores all probes (and item contexts) at the logged steps into the run's ``.npy`` logs."""

    def __init__(
        self,
        run_dir: Path,
        steps: np.ndarray,
        probes,
        contexts,
        world: World,
        batch_tokens: int,
        split: bool = True,
    ):
        self.row_of = {int(s): i for i, s in enumerate(steps)}
        self.world = world if split else World(0, 1, world.device)
        self.main = world.main
        self.batch_tokens = batch_tokens
        # Each rank scores an interleaved share; rank 0 gathers and writes. Sharded (FSDP)
        # models need every rank in every forward pass, so then each rank scores everything.
        w = self.world
        self.p_idx = np.arange(w.rank, len(probes), w.size)
        self.c_idx = np.arange(w.rank, len(contexts), w.size) if contexts is not None else None
        self.n_probes = len(probes)
        self.n_items = len(contexts) if contexts is not None else 0
        self.probes = probes.subset(self.p_idx)
        self.contexts = contexts.subset(self.c_idx) if contexts is not None else None
        # the preallocated logs, opened once; only rank 0 writes
        self.log = open_log(run_dir, "logprobs.npy") if self.main else None
        self.clog = open_log(run_dir, "context.npy") if self.main and contexts is not None else None

    def maybe_log(self, step: int, model) -> bool:
        row = self.row_of.get(step)
        if row is None:
            return False
        from factdyn.score.loglik import score_requests

        dev = self.world.device
        local = score_requests(model, self.probes, batch_tokens=self.batch_tokens, device=dev)
        scores = gather_rows(local, self.p_idx, self.n_probes, self.world)
        ctx = None
        if self.contexts is not None:
            local_c = score_requests(
                model, self.contexts, batch_tokens=self.batch_tokens, device=dev
            )
            ctx = gather_rows(local_c, self.c_idx, self.n_items, self.world)
        if self.log is not None:
            self.log[row] = scores
            self.log.flush()
            if ctx is not None:
                self.clog[row] = ctx[:, 3]  # mean log prob over the whole paragraph ("full")
                self.clog.flush()
        return True
