"""``factdyn train``: a knowledge-injection run from a config, into a run directory.

Wires the pieces (items, schedule, placement, data source, model, optimizer) and the loop's
callbacks (probe logger, checkpoints, training log) and hands them to
:func:`factdyn.train.loop.run_loop`. Inputs are concrete paths or hub ids (the CLI and the
demo resolve factdyn's cache, never this module), and all input is validated before the run
directory is created, so bad input never leaves a half-written run behind; a new run's
folder is claimed first (:func:`factdyn.train.lock.claim_new_run`), so that a second run of
it is refused while the first loads. A resume continues the run's own configuration
(:mod:`factdyn.train.resume`) from its newest verified checkpoint
(:func:`factdyn.train.checkpoint.choose_checkpoint`), holding the run's lock.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
import yaml

from factdyn.config import RunConfig, dump_config
from factdyn.data.sources import data_start
from factdyn.errors import DataError, TrainingError
from factdyn.files import atomic_dir, write_json_atomic, write_text_atomic
from factdyn.inject.provenance import ProvenanceLog, item_texts
from factdyn.rundir import (
    Status,
    init_logs,
    read_meta,
    run_meta,
    run_tables,
    update_meta,
    write_run_tables,
)
from factdyn.score.requests import probe_table
from factdyn.train import checkpoint as ckpt
from factdyn.train.callbacks import Callback, Checkpointer, TrainLog
from factdyn.train.distributed import World, barrier, setup, teardown, wrap
from factdyn.train.estimate import check_log_space
from factdyn.train.evaluation import ProbeLogger
from factdyn.train.lock import FolderLock, claim_new_run
from factdyn.train.loop import Batcher, LoopConfig, make_optimizer, run_loop
from factdyn.train.lr import lr_at
from factdyn.train.plan import Plan, check_extension, check_inputs, load_tokenizer, make_plan
from factdyn.train.resume import RunLock, config_record, resume_config
from factdyn.train.tracking import Readouts, Tracking, check_trackers

T = TypeVar("T")


def data_order(cfg: RunConfig, plan: Plan, resumed: Path | None = None) -> dict:
    """The order of the background data the run reads, as meta.json records it (pooling
    compares it: :func:`factdyn.analyze.pool.data_order`): ``data.seed`` and the first
    position. A resumed run keeps its own: one begun before data.seed ordered the ``hf`` and
    ``olmo`` sources (no record) read them in their own order, that of seed 0."""
    start = data_start(cfg.data, plan.base_state)
    if resumed is not None:
        rec = read_meta(resumed).get("data_order")
        if isinstance(rec, dict) and {"seed", "start"} <= set(rec):
            return {"seed": int(rec["seed"]), "start": int(rec["start"])}
        if cfg.data.source in ("hf", "olmo"):
            return {"seed": 0, "start": start}
    return {"seed": cfg.data.seed, "start": start}


# meta.json's ``loop`` of a run factdyn's own loop trains (the integrations name theirs)
OWN_LOOP = "factdyn"


def write_run_dir(
    plan: Plan,
    run_dir: Path,
    n_probes: int,
    world: World,
    n_parameters: int,
    order: dict,
    loop: str = OWN_LOOP,
) -> RunLock:
    """Create the run directory (config, tables, preallocated logs, meta) atomically. It is
    locked before it gets its name (the flock stays on the renamed file), so no resume can
    slip in between. ``loop``: the training loop that runs it, which alone can resume it."""
    cfg = plan.cfg
    with atomic_dir(run_dir) as tmp:
        lock = RunLock(tmp)
        try:
            (tmp / "config.yaml").write_text(dump_config(cfg))
            tables = run_tables(probe_table(plan.items), plan.scenarios, plan.placements)
            write_run_tables(tmp, tables)
            init_logs(tmp, plan.steps, n_probes, cfg.train.steps)
            meta = run_meta(
                plan.tokens_per_step,
                batch_size=cfg.train.batch_size,
                seq_len=cfg.data.seq_len,
                window=cfg.eval.window,
                n_parameters=n_parameters,
                lr_first=lr_at(plan.schedule_start, **plan.lr_kwargs),
                base_step=plan.base_step,
                model_lineage=plan.base_state.get("lineage", cfg.model.name),
                status=Status.RUNNING,
                steps_done=0,
                total_steps=cfg.train.steps,
                world_size=world.size,
                model=plan.model_path,
                base_state=plan.base_state,
                data_order=order,
                loop=loop,
                **config_record(cfg),
            )
            write_json_atomic(tmp / "meta.json", meta)
        except BaseException:
            lock.release()
            raise
    return lock


def check_own_loop(run_dir: Path) -> None:
    """A run another trainer drove (meta.json's ``loop``) resumes in that trainer, from its
    own checkpoints: factdyn's loop has none of them to continue from."""
    loop = read_meta(run_dir).get("loop") or OWN_LOOP
    if loop != OWN_LOOP:
        raise DataError(
            f"{run_dir}: trained inside {loop}, not by factdyn train: resume it there, from "
            "that trainer's own checkpoints (factdyn's state is saved in them)"
        )


def _main_decides(world: World, decide: Callable[[], T]) -> T:
    """``decide()`` on the main rank only, its result (or its DataError) handed to every
    rank: all ranks resume from the same checkpoint, or all stop with the same line."""
    if world.size == 1:
        return decide()
    box: list = [None]
    if world.main:
        try:
            box[0] = (decide(), None)
        except DataError as e:
            box[0] = (None, str(e))
    dist.broadcast_object_list(box, src=0)
    result, error = box[0]
    if error is not None:
        raise DataError(error)
    return result


def _claim(run_dir: Path, held: list[RunLock], allow_missing_optimizer: bool) -> ckpt.Choice:
    """The main rank's first acts on resume: take the run's lock, then pick the newest
    verified checkpoint, telling stderr what was passed over."""
    held.append(RunLock(run_dir))
    done = int(read_meta(run_dir).get("steps_done") or 0)
    choice = ckpt.choose_checkpoint(run_dir / "checkpoints", done, allow_missing_optimizer)
    if choice.notice:
        print(f"factdyn: {choice.notice}", file=sys.stderr)
    return choice


def continue_run(run_dir: Path, plan: Plan, start: int, order: dict) -> None:
    """The main rank's records before a resume runs: config.yaml and meta.json naming what
    the run continues with, and the steps after θ_start no longer counted as done (the logs
    fit themselves to the plan when the checkpointer restores them)."""
    cfg = plan.cfg
    on_disk = (run_dir / "config.yaml").read_text(encoding="utf-8")
    if dump_config(RunConfig.model_validate(yaml.safe_load(on_disk))) != dump_config(cfg):
        write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
    update_meta(
        run_dir,
        **config_record(cfg),
        total_steps=cfg.train.steps,
        status=Status.RUNNING,
        steps_done=start,
        error=None,
        data_order=order,
    )


def train(
    cfg: RunConfig | None,
    run_dir: Path,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    allow_missing_optimizer: bool = False,
    readouts: Readouts | None = None,
) -> Path:
    """Run (or resume) an injection experiment; returns the run directory.

    On resume ``cfg`` is what the caller asks for (None: the run's config.yaml): the run's own
    configuration, but for a longer train.steps (:func:`resume_config`); a checkpoint without
    its optimizer.pt is used only with ``allow_missing_optimizer``. ``callbacks`` run after
    factdyn's own (probe logger, checkpointer, training log) at every hook. ``readouts``
    gives the trackers the analysis's numbers (:class:`~factdyn.train.tracking.Readout`).
    """
    from factdyn.data.sources import build_source
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.requests import encode_probes

    recorded = None
    if resume:
        check_own_loop(run_dir)
        recorded, cfg = resume_config(run_dir, cfg)
    else:
        check_inputs(cfg)
    check_trackers(cfg.train.trackers)
    world = setup(cfg.model.device)
    held: list[FolderLock] = []  # the run's lock (and a new run's claim), on the main rank
    try:
        if not resume:  # a second `train --out` of this folder is refused from now on
            _main_decides(world, lambda: held.append(claim_new_run(run_dir)))
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.batch_size % world.size:
            raise DataError(
                f"config, field 'train.batch_size': {cfg.train.batch_size} not divisible by {world.size} processes"
            )
        choice = ckpt.Choice(None)
        if resume:
            choice = _main_decides(world, lambda: _claim(run_dir, held, allow_missing_optimizer))
        last = choice.path
        if last is None:
            ckpt.verify_model_dir(Path(cfg.model.name))
        # everything that depends only on the config and the data, before the weights load:
        # the plan needs the tokenizer alone, the data source its first sequence
        tokenizer = load_tokenizer(
            str(last) if last else cfg.model.name, revision=None if last else cfg.model.revision
        )
        plan = make_plan(cfg, tokenizer)
        start = int(ckpt.read_state(last).get("step", 0)) if last else 0
        if recorded is not None and recorded.train.steps != cfg.train.steps:
            check_extension(make_plan(recorded, tokenizer), plan, start)
        order = data_order(cfg, plan, run_dir if resume else None)
        source = build_source(cfg.data.model_copy(update={"seed": order["seed"]}), tokenizer)
        source.sequence(0)  # an unreadable corpus or a missing text field: said now
        probes = encode_probes(tokenizer, plan.items)
        check_log_space(run_dir, len(plan.steps), len(probes), cfg.train.steps)
        model, _ = load_model_and_tokenizer(
            str(last) if last else cfg.model.name,
            revision=None if last else cfg.model.revision,
            dtype="fp32",
            device=str(world.device),
        )
        n_parameters = sum(p.numel() for p in model.parameters())  # before any wrapping
        if world.main:
            if resume:
                continue_run(run_dir, plan, start, order)
            else:
                held.append(write_run_dir(plan, run_dir, len(probes), world, n_parameters, order))
        barrier(world)
        return _run(
            plan, run_dir, model, tokenizer, source, probes, world, last, callbacks, readouts
        )
    finally:
        for lock in held:
            lock.release()
        teardown(world)


def _prepare(model, plan: Plan, world: World, resuming: bool) -> tuple:
    """(the module the optimizer steps, wrapped for DDP/FSDP; what the update runs through,
    compiled if asked; AdamW, with the base's moments if asked and not resuming: a resume's
    come from its checkpoint)."""
    cfg = plan.cfg
    if cfg.model.gradient_checkpointing:
        # transformers renamed it; the old name still exists on older releases we support
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
    model.train()
    wrapped = wrap(model, world, fsdp=cfg.model.fsdp)
    net = (
        torch.compile(wrapped, backend=cfg.model.compile_backend) if cfg.model.compile else wrapped
    )
    opt = make_optimizer(
        wrapped, cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay, cfg.optim.decay_exclude
    )
    if cfg.optim.load_state and not resuming:
        ckpt.load_optimizer_state(Path(plan.model_path), wrapped, opt)
    return wrapped, net, opt


def _batcher(
    plan: Plan, source, tokenizer, world: World, micro_batch: int, provenance: ProvenanceLog
) -> Batcher:
    """The batches of every step, read from the data position the config or the base gives;
    where each injection landed goes to ``provenance``."""
    cfg = plan.cfg
    return Batcher(
        source,
        data_start(cfg.data, plan.base_state),
        cfg.train.batch_size,
        {int(s): g for s, g in plan.placements.groupby("step")},
        plan.tokens,
        cfg.injection.placement,
        tokenizer.eos_token_id,
        world,
        micro_batch,
        item_texts(plan.items),
        provenance,
    )


def probe_logger(plan: Plan, run_dir: Path, probes, world: World) -> ProbeLogger:
    """The logger of the plan's probes at its logged steps into ``run_dir``'s logprobs.npy
    (every loop that trains a plan scores it the same way)."""
    cfg = plan.cfg
    return ProbeLogger(
        run_dir,
        plan.steps,
        plan.mask,
        probes,
        probe_table(plan.items)["item"].to_numpy(),
        world,
        cfg.eval.batch_tokens,
        split=not cfg.model.fsdp,
        full_text=cfg.eval.full_text,
    )


def _loop_config(plan: Plan, world: World) -> LoopConfig:
    cfg = plan.cfg
    return LoopConfig(
        total_steps=cfg.train.steps,
        micro_batch=cfg.train.micro_batch_size or cfg.train.batch_size // world.size,
        grad_clip=cfg.optim.grad_clip,
        lr_kwargs=plan.lr_kwargs,
        schedule_start=plan.schedule_start,
        tokens_per_step=plan.tokens_per_step,
        autocast_dtype=torch.bfloat16 if cfg.model.dtype == "bf16" else None,
    )


def _run(
    plan: Plan,
    run_dir: Path,
    model,
    tokenizer,
    source,
    probes,
    world: World,
    resume_from: Path | None,
    extra: Sequence[Callback],
    readouts: Readouts | None,
) -> Path:
    """Train from θ_0, or from the checkpoint ``resume_from`` with every component that must
    survive a restart restored by the checkpointer; meta.json says how it ended."""
    cfg = plan.cfg
    wrapped, net, opt = _prepare(model, plan, world, resume_from is not None)
    loop_cfg = _loop_config(plan, world)
    provenance = ProvenanceLog(run_dir, world.main)
    batcher = _batcher(plan, source, tokenizer, world, loop_cfg.micro_batch, provenance)
    logger = probe_logger(plan, run_dir, probes, world)
    train_log = TrainLog(run_dir, plan.tokens_per_step, cfg.train.steps, world)
    components: dict[str, ckpt.Stateful] = {
        "data": batcher,
        "provenance": provenance,
        "probe_log": logger,
        "train_log": train_log,
    }
    tail: list[Callback] = []
    if cfg.train.trackers:  # after the probe logger: it reads the row just scored
        components["trackers"] = Tracking(
            cfg.train.trackers,
            run_dir,
            cfg.model_dump(mode="json"),
            plan.steps,
            plan.tokens_per_step,
            world,
            readouts,
        )
        tail.append(components["trackers"])
    checkpointer = Checkpointer(
        run_dir,
        wrapped,
        opt,
        cfg.train.checkpoint_every,
        cfg.train.steps,
        cfg.train.keep_checkpoints,
        world,
        tokenizer,
        components,
    )
    start = checkpointer.restore(resume_from) if resume_from is not None else 0
    # in this order at every hook: θ_t is scored, then saved
    callbacks = [logger, checkpointer, train_log, *extra, *tail]
    try:
        run_loop(model, opt, batcher, start, loop_cfg, world, callbacks, net)
    except TrainingError as e:
        if world.main:
            update_meta(run_dir, status=Status.FAILED, error=str(e))
        raise
    if world.main:
        update_meta(run_dir, status=Status.DONE, steps_done=cfg.train.steps)
    return run_dir
