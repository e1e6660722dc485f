"""Probe evaluation during training: which steps (and items) are logged, and the logger.

Evaluation is a side concern of the loop, a callback (OLMo-core's idea): the loop hands
θ_t to :meth:`ProbeLogger.on_step_start` before update t, and the logger decides. The logger
is also :class:`~factdyn.train.checkpoint.Stateful`: restored, its log fits the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from factdyn.files import atomic_file
from factdyn.rundir import open_log
from factdyn.score.loglik import score_requests
from factdyn.train.callbacks import Callback, resize_log
from factdyn.train.distributed import World, gather_rows


def _own_steps(injections: Sequence[int], window: int, total: int, log_points: int) -> set[int]:
    """θ_0, the last step, every step of each window [t_i, t_i + t_w], then ``log_points``
    log-spaced steps from the end of the last window to ``total``."""
    steps = {0, total}
    for t in injections:
        steps.update(range(t, min(t + window, total) + 1))
    last = min(max(injections, default=0) + window, total)
    if total > last:
        tail = np.geomspace(1, total - last, num=log_points)
        steps.update((last + np.round(tail)).astype(int).tolist())
    return {s for s in steps if 0 <= s <= total}


def eval_schedule(
    kind: str,
    item_injections: Sequence[Sequence[int]],
    window: int,
    total: int,
    log_points: int,
    per_item: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Logged steps in ``[0, total]`` (L,) and which items are scored at each (L, I).

    ``item_injections[i]`` are item i's injection steps (empty: never injected, a control).
    ``every``: all steps, all items. ``sparse``: each injected item at its own steps —
    θ_0, every step of each of its windows, log-spaced steps after its last window
    (retainability is fitted in log t, so later steps carry less new information) and the
    last step; items never injected at every logged step, as the drift correction needs
    them wherever any probe is read. With ``per_item=False`` every item is scored at every
    logged step (full trajectories, at the cost of scoring items outside their windows).
    """
    n_items = len(item_injections)
    if kind == "every":
        steps = np.arange(total + 1, dtype=np.int64)
        return steps, np.ones((len(steps), n_items), dtype=bool)
    patterns = {tuple(sorted(set(s))) for s in item_injections if len(s)} or {()}
    own = {p: _own_steps(p, window, total, log_points) for p in patterns}
    steps = np.array(sorted(set().union(*own.values())), dtype=np.int64)
    mask = np.ones((len(steps), n_items), dtype=bool)
    if per_item:
        for i, inj in enumerate(item_injections):
            if len(inj):
                mask[:, i] = np.isin(steps, sorted(own[tuple(sorted(set(inj)))]))
    return steps, mask


def fit_probe_log(run_dir: Path, steps: np.ndarray, keep: int) -> None:
    """Size the probe log for the logged ``steps`` (after train.steps was extended), with its
    first ``keep`` rows, the same in the old and the new schedule; later ones are NaN until
    the resumed run writes them; ``steps.npy`` last, so a kill midway is finished by the next
    resume. A no-op when the log fits."""
    log = run_dir / "logprobs.npy"
    fits = np.load(log, mmap_mode="r").shape[0] == len(steps)
    if fits and np.array_equal(np.load(run_dir / "steps.npy"), steps):
        return
    resize_log(log, len(steps), keep)
    with atomic_file(run_dir / "steps.npy") as tmp, tmp.open("wb") as f:
        np.save(f, np.asarray(steps, dtype=np.int64))


class ProbeLogger(Callback):
    """Scores the scheduled items' probes at the logged steps into the run's
    ``logprobs.npy``; what is not scored at a step stays NaN. Its state is the rows logged
    up to the step a checkpoint holds."""

    def __init__(
        self,
        run_dir: Path,
        steps: np.ndarray,
        mask: np.ndarray,
        probes,
        probe_item: np.ndarray,
        world: World,
        batch_tokens: int,
        split: bool = True,
        full_text: bool = False,
    ):
        self.run_dir, self.steps, self.step = run_dir, np.asarray(steps), 0
        self.row_of = {int(s): i for i, s in enumerate(steps)}
        self.mask = mask
        self.probe_item = np.asarray(probe_item, dtype=np.int64)
        self.world = world if split else World(0, 1, world.device)
        self.main = world.main
        self.batch_tokens, self.full_text = batch_tokens, full_text
        self.probes = probes
        self.n_probes = len(probes)
        self._subsets: dict[bytes, tuple] = {}
        # the preallocated log, opened once; only rank 0 writes
        self.log = open_log(run_dir, "logprobs.npy") if self.main else None

    def requests_at(self, row: int) -> tuple:
        """This rank's (probe ids, probe requests) for a logged row. Each rank scores an
        interleaved share of the scheduled rows and rank 0 gathers; sharded (FSDP) models need
        every rank in every forward pass, so then each rank scores them all. Few distinct item
        sets occur, so they are built once each."""
        items = self.mask[row]
        key = np.packbits(items).tobytes()
        if key not in self._subsets:
            w = self.world
            p_idx = np.flatnonzero(items[self.probe_item])[w.rank :: w.size]
            self._subsets[key] = (p_idx, self.probes.subset(p_idx))
        return self._subsets[key]

    def state_dict(self) -> dict:
        return {"step": self.step, "rows": int((self.steps <= self.step).sum())}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        if self.main:
            keep = int(state.get("rows", (self.steps <= self.step).sum()))
            fit_probe_log(self.run_dir, self.steps, keep)
            self.log = open_log(self.run_dir, "logprobs.npy")  # the fitted file

    def on_step_start(self, step: int, model) -> None:
        self.step = step
        self.maybe_log(step, model)

    def maybe_log(self, step: int, model) -> bool:
        """Score θ_``step`` if it is a logged step; whether it was."""
        row = self.row_of.get(step)
        if row is None:
            return False
        dev = self.world.device
        p_idx, probes = self.requests_at(row)
        local = score_requests(
            model, probes, batch_tokens=self.batch_tokens, device=dev, full=self.full_text
        )
        scores = gather_rows(local, p_idx, self.n_probes, self.world)
        if self.log is not None:
            self.log[row] = scores[:, : self.log.shape[2]]  # a log older than greedy: 4
            self.log.flush()
        return True
