"""factdyn's side of a run that another trainer drives: the loop-agnostic Session.

Another trainer (Hugging Face's, OLMo-core's) owns the model, the optimizer and the data; the
Session owns what factdyn adds: the plan (:func:`factdyn.train.plan.make_plan`, from a
RunConfig whose train.steps, train.batch_size and optim.lr the trainer supplies), the run
directory (written as ``factdyn train`` writes it, so ``factdyn analyze`` and ``report`` read
it unchanged), the injections placed into the trainer's micro-batches, their provenance, the
probe log and the training log. Everything it must carry across a restart is in
:meth:`Session.state_dict`, which the trainer saves inside its own checkpoints.

Global row numbering: row r of a step is the r-th sequence the trainer reads for that step,
in its data order. Each integration maps a micro-batch's rows to it: accelerate (the Hugging
Face Trainer) lays a step out micro-batch-major, micro-batch k on rank q holding rows
``(k * W + q) * per`` .. ``+ per - 1`` (:func:`first_row`); OLMo-core deals sequence j of a
step to rank j mod W (:func:`factdyn.integrations.olmo_core.global_rows`). For one process
both are factdyn's own loop's numbering, so the same plan puts the same text in the same row.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from factdyn.config import RunConfig, changed_fields, load_config, updated
from factdyn.errors import DataError
from factdyn.inject.placement import IGNORE, apply_placements
from factdyn.inject.provenance import ProvenanceLog, item_texts, placed_records
from factdyn.rundir import Status, update_meta
from factdyn.score.requests import encode_probes
from factdyn.train.callbacks import TrainLog
from factdyn.train.distributed import World, barrier, gather_objects
from factdyn.train.estimate import check_log_space
from factdyn.train.experiment import continue_run, data_order, probe_logger, write_run_dir
from factdyn.train.lock import FolderLock, claim_new_run
from factdyn.train.plan import Plan, make_plan
from factdyn.train.resume import RunLock, resume_config


def first_row(micro: int, rank: int, per: int, world_size: int) -> int:
    """The global row of the first sequence of micro-batch ``micro`` on ``rank`` (``per``
    sequences per micro-batch per rank), in accelerate's micro-batch-major layout."""
    return (micro * world_size + rank) * per


# What the trainer decides in a run it drives: factdyn's values for these are not used.
TRAINER_OWNED = frozenset(
    [f"train.{k}" for k in ("micro_batch_size", "seed", "checkpoint_every", "keep_checkpoints")]
    + ["train.threads", "train.trackers", "optim.grad_clip"]
    + [f"optim.{k}" for k in ("schedule", "warmup_steps", "schedule_start", "schedule_total")]
    + [f"optim.{k}" for k in ("min_lr_ratio", "betas", "eps", "weight_decay", "decay_exclude")]
    + [f"model.{k}" for k in ("revision", "dtype", "device", "gradient_checkpointing")]
    + [f"model.{k}" for k in ("compile", "compile_backend", "shape")]
)


def unused_settings(cfg: RunConfig, decided: RunConfig) -> list[str]:
    """The settings ``cfg`` gives another value than factdyn's default, that the trainer
    decides instead: what it owns, and the steps, batch, model and learning rate it gave
    ``decided`` where they differ from ``cfg``'s."""
    default, given = RunConfig().model_dump(mode="json"), cfg.model_dump(mode="json")
    final = decided.model_dump(mode="json")
    set_here = changed_fields(default, given)
    replaced = set(changed_fields(given, final)) - {"optim.load_state"}
    return [f for f in set_here if f in TRAINER_OWNED or f in replaced]


def run_config(
    config: RunConfig | str | Path,
    *,
    steps: int,
    batch_size: int,
    model_name: str,
    lr: float | None = None,
) -> RunConfig:
    """The run's configuration: ``config`` (a YAML path or a RunConfig) for the items, the
    injections and the evaluation, with what the trainer decides (its steps, global batch,
    model and peak learning rate) written in, so config.yaml and meta.json say what ran."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    # the trainer's optimizer starts as the trainer starts it: never from the base's moments
    optim = {"load_state": False} | ({"lr": lr} if lr is not None else {})
    decided = updated(
        cfg,
        "the trainer's arguments",
        train={"steps": steps, "batch_size": batch_size},
        model={"name": model_name},
        optim=optim,
    )
    if unused := unused_settings(cfg, decided):
        warnings.warn(
            f"factdyn: the trainer decides {', '.join(unused)}: the factdyn config's values "
            "are not used (set them in the trainer)",
            stacklevel=3,
        )
    return decided


def carry(
    original: np.ndarray, placed: np.ndarray, spans: dict[int, int], mode: str, fill: int
) -> np.ndarray:
    """A per-token array of the batch (labels, attention mask) moved with the injections:
    prepend puts ``placed[row, :n]`` in front of the row's own values; replace keeps
    ``placed`` for the text's ``n`` positions and ``fill`` after them. ``spans``: row ->
    n, the injected tokens at its front."""
    out = original.copy()
    for row, n in spans.items():
        if mode == "prepend":
            out[row] = np.concatenate([placed[row, :n], original[row]])[: original.shape[1]]
        else:
            out[row, :n] = placed[row, :n]
            out[row, n:] = fill
    return out


class Session:
    """factdyn inside another trainer's loop: made by :meth:`prepare`, which checks everything
    and writes nothing, then :meth:`open` once the trainer knows whether it resumes; the
    trainer calls :meth:`inject` on each micro-batch, :meth:`end_step` after each update,
    :meth:`score` with θ_t, and :meth:`finish` at the end."""

    def __init__(self, plan: Plan, out: Path, tokenizer, world: World):
        self.plan, self.out, self.world = plan, Path(out), world
        self.cfg = plan.cfg
        self.mode, self.eos = self.cfg.injection.placement, tokenizer.eos_token_id
        self.by_step = {int(s): g for s, g in plan.placements.groupby("step")}
        self.texts = item_texts(plan.items)
        self.probes = encode_probes(tokenizer, plan.items)
        self.step = 0
        self.pending: list = []  # this rank's provenance records of the current step
        self.lock: FolderLock | None = None
        self.loop = "external"  # meta.json's loop: the trainer that alone resumes it

    @classmethod
    def prepare(
        cls,
        config: RunConfig | str | Path,
        out: Path,
        *,
        tokenizer,
        world: World,
        batch_size: int,
        steps: int,
        model_name: str = "external",
        lr: float | None = None,
        loop: str = "external",
    ) -> Session:
        """Everything checked (the config, the items against the tokenizer and
        ``data.seq_len``, the schedule against ``steps`` and ``batch_size``, the disk), nothing
        written: a bad input is one line before the trainer starts."""
        cfg = run_config(config, steps=steps, batch_size=batch_size, model_name=model_name, lr=lr)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        session = cls(make_plan(cfg, tokenizer), out, tokenizer, world)
        session.loop = loop
        check_log_space(Path(out), len(session.plan.steps), len(session.probes), steps)
        return session

    def open(self, resume: bool, n_parameters: int | None = None) -> Session:
        """Write the run directory (a new run: refused where a folder with anything in it
        is), or take a resumed run's lock and check it was started with this configuration."""
        plan, out, world = self.plan, self.out, self.world
        if world.main:
            if resume:
                self.lock = RunLock(out)
                resume_config(out, self.cfg, "the session's configuration")
            else:
                claim = claim_new_run(out)
                order = data_order(self.cfg, plan)
                try:
                    self.lock = write_run_dir(
                        plan, out, len(self.probes), world, n_parameters, order, self.loop
                    )
                finally:
                    claim.release()
        barrier(world)
        self.logger = probe_logger(plan, out, self.probes, world)
        self.train_log = TrainLog(out, plan.tokens_per_step, self.cfg.train.steps, world)
        self.provenance = ProvenanceLog(out, world.main)
        self.train_log.on_train_start(0)
        return self

    def components(self) -> dict:
        return {
            "probe_log": self.logger,
            "train_log": self.train_log,
            "provenance": self.provenance,
        }

    def state_dict(self) -> dict:
        """The step of θ the log has reached and every component's state (small, JSON)."""
        return {"step": self.step, **{k: c.state_dict() for k, c in self.components().items()}}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a trainer checkpoint of θ_step: the logs cut back to what an
        uninterrupted run had then, meta.json saying the run goes on."""
        self.step = int(state["step"])
        for name, component in self.components().items():
            component.load_state_dict(state.get(name) or {"step": self.step})
        if self.world.main:
            continue_run(self.out, self.plan, self.step, data_order(self.cfg, self.plan, self.out))
        self.train_log.on_train_start(self.step)
        barrier(self.world)

    def inject(self, step: int, micro: int, rows, input_ids, labels, attention_mask=None) -> tuple:
        """Place the injections of update ``step`` that fall in this micro-batch and record
        where they went. ``rows``: the global row of each of its rows (a sequence), or the
        first of consecutive ones (an int). Torch tensors in and out: ``(input_ids,
        labels)``, with ``attention_mask`` too when one is given. Labels are IGNORE (-100)
        where replace pads; the mask is 1 on injected tokens."""
        n, width = input_ids.shape
        rows = range(rows, rows + n) if isinstance(rows, int) else [int(r) for r in rows]
        seq_len = self.cfg.data.seq_len
        if width != seq_len:
            raise DataError(
                f"step {step}, micro-batch {micro}: the trainer's batch is {width} tokens wide, "
                f"but data.seq_len={seq_len}: give the trainer sequences of data.seq_len "
                "tokens (or set data.seq_len to their length)"
            )
        if max(rows, default=0) >= self.cfg.train.batch_size:
            raise DataError(
                f"step {step}, micro-batch {micro}: row {max(rows)}, past the global batch of "
                f"train.batch_size={self.cfg.train.batch_size} sequences: the trainer read "
                "more sequences per update than its arguments say"
            )
        plan = self.by_step.get(step)
        mine = None if plan is None else plan[plan.row.isin(list(rows))]
        if mine is None or mine.empty:
            return (
                (input_ids, labels)
                if attention_mask is None
                else (input_ids, labels, attention_mask)
            )
        ids = input_ids.detach().cpu().numpy()
        local_of = {g: i for i, g in enumerate(rows)}
        local = mine.assign(row=mine.row.map(local_of))
        placed, _ = apply_placements(ids, local, self.plan.tokens, self.mode, self.eos)
        spans = {int(r): int(g.token_end.max()) for r, g in local.groupby("row")}
        out = [placed, carry(labels.detach().cpu().numpy(), placed, spans, self.mode, IGNORE)]
        if attention_mask is not None:
            mask = attention_mask.detach().cpu().numpy()
            out.append(carry(mask, np.ones_like(mask), spans, self.mode, 1))
        self.pending += placed_records(
            step, self.world.rank, micro, plan, rows, placed, self.mode, self.texts
        )
        like = (input_ids, labels) + (() if attention_mask is None else (attention_mask,))
        return tuple(
            torch.as_tensor(a).to(t.device, t.dtype) for a, t in zip(out, like, strict=True)
        )

    def end_step(self, step: int, loss: float, lr: float) -> None:
        """After update ``step`` (every rank calls): its loss and lr into train.npy, and at a
        step with injections every rank's records gathered into provenance.parquet, each
        planned injection checked to have been placed."""
        self.train_log.on_step_end(step, loss, lr)
        plan = self.by_step.get(step)
        if plan is None:
            return
        parts = gather_objects(self.pending, self.world)
        self.pending = []
        if parts is None:
            return
        records = [r for p in parts for r in p]  # the log stores them in row order
        if len(records) != len(plan):
            placed = {(r.row, r.item) for r in records}
            missed = plan[[(int(r.row), int(r.item)) not in placed for r in plan.itertuples()]]
            where = (
                f"none in row {int(missed.row.iloc[0])}, item {int(missed.item.iloc[0])}"
                if len(missed)
                else "some more than once"
            )
            raise DataError(
                f"step {step}: {len(records)} placements of the {len(plan)} planned "
                f"injections ({where}): the trainer's batches do not cover train.batch_size "
                "rows per update once each"
            )
        self.provenance.add(records)

    def score(self, step: int, model) -> bool:
        """Score θ_``step`` if it is a logged step (every rank calls: each scores a share);
        whether it was."""
        self.step = self.logger.step = step
        return self.logger.maybe_log(step, model)

    def saved(self, step: int) -> None:
        """The trainer committed a checkpoint of θ_``step`` holding :meth:`state_dict`."""
        if self.world.main:
            update_meta(self.out, steps_done=step)

    def finish(self, done: bool) -> None:
        """meta.json's status: done after the last update; else the run stays resumable
        (``running``, as a killed ``factdyn train``). The run's lock is released."""
        try:
            if done and self.world.main:
                update_meta(self.out, status=Status.DONE, steps_done=self.cfg.train.steps)
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None
