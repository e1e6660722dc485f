"""``factdyn reproduce``: a grid (:mod:`.grid`) as one resumable sweep of ordinary runs.

``DIR/sweep.json`` records the grid; ``DIR/runs/<name>`` is each run, ``DIR/configs/<name>.yaml``
the config it was started with, ``DIR/logs/<name>.log`` its output, ``DIR/report`` the grid's
report. Re-running the command skips finished runs and resumes the others, so a sweep killed
at any moment finishes with the numbers of an uninterrupted one; an interrupted driver says
which runs it stopped and prints that command (:func:`interrupted_line`). One sweep at a time
runs into a directory: it holds ``DIR/.lock`` (:func:`sweep_lock`), and a second is refused,
naming the first. The offline tiny model's
world and bases (one per size, with its earlier stages) are built here first, once, into
factdyn's cache.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from factdyn.config import RunConfig, dump_config, updated, with_absolute_paths
from factdyn.errors import DataError
from factdyn.files import prepare_output, write_json_atomic
from factdyn.rundir import Status, run_status
from factdyn.sweep.grid import (
    NAME,
    Grid,
    RunSpec,
    expand,
    is_slurm_override,
    load_grid,
    with_slurm_overrides,
    with_start,
)
from factdyn.sweep.launch import Job, LocalPool, local_threads, run_local, with_step_bar, write_job
from factdyn.sweep.slurm import require_slurm, run_slurm, slurm_parameters
from factdyn.sweep.state import WAITING, States, counts, named
from factdyn.sweep.stopping import Interrupted, signal_name
from factdyn.train.cached import cached_base, cached_world
from factdyn.train.lock import LOCK, FolderLock

SWEEP = "sweep.json"


@dataclass(frozen=True)
class Sweep:
    """A grid expanded into runs under ``out``."""

    grid: Grid
    source: str
    quick: bool
    specs: tuple[RunSpec, ...]
    out: Path
    overrides: tuple[str, ...] = ()  # --set, as given

    def run_dir(self, spec: RunSpec) -> Path:
        return self.out / "runs" / spec.name

    def record(self) -> dict:
        return {
            "grid": self.source,
            "quick": self.quick,
            "spec": self.grid.model_dump(mode="json"),
            "runs": [
                {"name": s.name, "point": s.point, "axis": s.axis, "replicate": s.replicate}
                for s in self.specs
            ],
        }


def plan_sweep(
    grid_name: str | Path, out: Path, quick: bool = False, overrides: Sequence[str] = ()
) -> Sweep:
    """The grid's runs under ``out``; ``overrides`` (``--set``) apply to every run after the
    grid's own (the data paths of a cluster, say) and are part of the recorded grid, but for
    ``slurm.KEY=VALUE``, which set the grid's ``slurm`` section (validated here)."""
    grid, source = load_grid(grid_name)
    slurm = with_slurm_overrides(grid.slurm, [o for o in overrides if is_slurm_override(o)])
    runs = [o for o in overrides if not is_slurm_override(o)]
    specs = tuple(expand(grid, source, quick, runs))
    grid = grid.model_copy(update={"set": [*grid.set, *runs], "slurm": slurm})
    return Sweep(grid, source, quick, specs, Path(out), tuple(overrides))


def reproduce_command(
    grid: str | Path,
    out: Path,
    quick: bool = False,
    launcher: str = "local",
    jobs: int = 1,
    overrides: Sequence[str] = (),
) -> str:
    """The ``factdyn reproduce`` command line (quoted for a POSIX shell) that runs, or
    resumes, this sweep."""
    args = ["factdyn", "reproduce", str(grid), *(["--quick"] if quick else []), "--out", str(out)]
    if launcher != "local":
        args += ["--launcher", launcher]
    elif jobs != 1:
        args += ["--jobs", str(jobs)]
    for o in overrides:
        args += ["--set", o]
    return shlex.join(args)


def _runs_part(spec: dict | None) -> dict | None:
    """A recorded grid but for its ``slurm`` section, which changes where runs run, not
    what they compute (a sweep can be resumed on another partition)."""
    return {k: v for k, v in spec.items() if k != "slurm"} if isinstance(spec, dict) else spec


def read_record(out: Path) -> dict:
    """``out/sweep.json``, checked: a damaged or hand-edited record is one line naming it."""
    found = Path(out) / SWEEP
    try:
        record = json.loads(found.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # truncated, not UTF-8, not JSON
        reason = " ".join(str(e).split())[:120]
        raise DataError(f"{found}: damaged, cannot be read ({reason})") from None
    runs = record.get("runs") if isinstance(record, dict) else None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("grid"), str)
        and isinstance(record.get("quick"), bool)
        and isinstance(record.get("spec"), dict)
        and isinstance(runs, list)
        and all(_is_run_record(r) for r in runs)
    ):
        raise DataError(
            f"{found}: not a sweep record (expected grid, quick, spec and runs, each run "
            "with its name, point and axis); give another --out"
        )
    return record


def _is_run_record(r: object) -> bool:
    return (
        isinstance(r, dict)
        and all(isinstance(r.get(k), str) for k in ("name", "point", "axis"))
        and re.fullmatch(NAME, r["name"]) is not None
    )


def sweep_lock(out: Path) -> FolderLock:
    """``out``'s lock (``out/.lock``), held for as long as a sweep runs into it: a second
    ``factdyn reproduce`` into it is refused, naming the first."""
    return FolderLock(
        out,
        lambda holder, path: (
            f"{out}: another sweep is running into this folder: {holder} (it holds {path}); "
            "wait for it to end or stop it, then run the command again"
        ),
    )


def claim_output(sweep: Sweep) -> None:
    """``out`` new or empty (but for its lock), or the same grid's sweep (resumed); anything
    else is refused."""
    found = sweep.out / SWEEP
    if found.is_file():
        old = read_record(sweep.out)
        new = sweep.grid.model_dump(mode="json")
        if (_runs_part(old.get("spec")), old.get("quick")) != (_runs_part(new), sweep.quick):
            raise DataError(
                f"{sweep.out}: holds the sweep of another grid ({old.get('grid')}"
                f"{', --quick' if old.get('quick') else ''}); give another --out"
            )
        return
    prepare_output(sweep.out, overwrite=True)  # not a file, not in a run; emptiness here:
    if sweep.out.is_dir() and any(p.name != LOCK for p in sweep.out.iterdir()):
        raise DataError(
            f"{sweep.out}: exists, is not empty and holds no sweep (no {SWEEP}); give "
            "reproduce a new or empty --out"
        )
    write_json_atomic(found, sweep.record())


def _tiny_model(spec: RunSpec) -> tuple[str, str, int]:
    """The tiny world and base (or stage snapshot) of ``spec``, built on first use, and the
    base's data position."""
    from factdyn.train import checkpoint as ckpt
    from factdyn.train.base import stage_path

    world = Path(spec.config.data.path) if spec.config.data.path else cached_world(**spec.world)
    base = cached_base(world, spec.base)
    if spec.stage not in (None, 1.0):
        base = stage_path(base, round(spec.stage * spec.base.steps))
    return str(world), str(base), int(ckpt.read_state(base).get("data_position", 0))


def resolve(spec: RunSpec) -> RunConfig:
    """The config ``spec`` runs with: cached inputs filled in, the replicate's data block,
    local input paths absolute (as ``factdyn train`` records them, so that a re-run's check
    of each run's config.yaml finds the grid's own)."""
    cfg = spec.config
    position = cfg.data.start or 0
    if spec.base is not None:
        world, model, position = _tiny_model(spec)
        cfg = updated(cfg, data={"path": world}, model={"name": model})
    return with_absolute_paths(with_start(cfg, position, spec.replicate))


def check_run(cfg: RunConfig, where: str) -> None:
    """What ``factdyn train`` would refuse at its start (inputs, schedule, lengths), refused
    now, before any run of the sweep starts; a hub model's plan is checked by its run."""
    from factdyn.train.plan import check_inputs, make_plan

    try:
        check_inputs(cfg)
        if Path(str(cfg.model.name)).is_dir():
            from transformers import AutoTokenizer

            make_plan(cfg, AutoTokenizer.from_pretrained(cfg.model.name))
    except DataError as e:
        raise DataError(f"{where}: {e}") from None


def prepare(sweep: Sweep, threads: int | None = None, processes: int = 1) -> list[Job]:
    """Build the inputs, check every run, then claim ``out`` and write each run's config;
    a run started with another config is refused."""
    configs = {}
    for spec in sweep.specs:
        configs[spec.name] = cfg = resolve(spec)
        check_run(cfg, f"{sweep.source}, run {spec.name}")
    claim_output(sweep)
    jobs = []
    for spec in sweep.specs:
        text = dump_config(configs[spec.name])
        run_dir = sweep.run_dir(spec)
        if run_status(run_dir) != Status.NEW and (run_dir / "config.yaml").read_text() != text:
            raise DataError(
                f"{run_dir}: was started with another configuration than the grid's "
                f"({sweep.out / 'configs' / (spec.name + '.yaml')}); give another --out"
            )
        jobs.append(
            write_job(sweep.out, spec.name, run_dir, configs[spec.name], threads, processes)
        )
    return jobs


class ProgressLine:
    """One line each time the sweep's state changes: done, running (named), waiting."""

    def __init__(self, echo) -> None:
        self.echo, self.last, self.lock = echo, "", threading.Lock()

    def __call__(self, state: States) -> None:
        with self.lock:
            n, running = counts(state), named(state, Status.RUNNING)
            ended = (Status.FAILED, Status.STOPPED, Status.CANCELLED)
            line = (
                f"runs: {n[Status.DONE]}/{len(state)} done · {n[Status.RUNNING]} running"
                f"{' (' + ', '.join(running) + ')' if running else ''}"
                f" · {n[Status.WAITING]} waiting"
            ) + "".join(f" · {n[k]} {k}" for k in ended if n[k])
            if line != self.last:
                self.last = line
                with tqdm.external_write_mode():  # above the steps' bar, if one is drawn
                    self.echo(line)


def run_sweep(
    sweep: Sweep,
    launcher: str = "local",
    jobs: int = 1,
    echo=print,
    test_executor: str | None = None,
) -> States:
    """Every run of the sweep to its end (skipping finished ones); returns each run's state.

    ``slurm`` needs Slurm here, checked before anything is built; ``test_executor``
    (``local``/``debug``, tests only) runs its submission with submitit's executor of that
    name on this machine instead. SIGINT (or SIGTERM, under
    :func:`~factdyn.sweep.stopping.sigterm_interrupts`) stops the local runs and starts no
    other, or cancels the Slurm jobs, and raises :class:`Interrupted` with their states."""
    if launcher == "local" and test_executor is not None:
        raise DataError("reproduce: a test executor runs the Slurm path: --launcher slurm")
    if launcher == "slurm" and test_executor is None:
        require_slurm()
    if launcher not in ("local", "slurm"):
        raise DataError(f"reproduce: --launcher must be local or slurm, not {launcher!r}")
    lock = sweep_lock(sweep.out)  # held until every run has ended
    try:
        if launcher == "local":
            return _run_here(sweep, jobs, echo)
        todo = prepare(sweep, processes=max(1, sweep.grid.slurm.gpus_per_node))
        params = slurm_parameters(sweep.grid.slurm, f"factdyn-{Path(sweep.source).stem}")
        return run_slurm(todo, sweep.out / "slurm", params, ProgressLine(echo), test_executor)
    finally:
        lock.release()


def _run_here(sweep: Sweep, jobs: int, echo) -> States:
    """The local launcher: ``jobs`` runs at once under one progress bar."""
    todo = prepare(sweep, threads=local_threads(jobs))
    pool = LocalPool()
    try:
        return with_step_bar(
            todo, lambda: run_local(todo, jobs, ProgressLine(echo), pool), stop=pool.stop
        )
    except (KeyboardInterrupt, Interrupted) as e:
        state = {j.name: pool.state.get(j.name, WAITING) for j in todo}
        raise Interrupted(signal_name(e), state, "local") from None


def interrupted_line(e: Interrupted, command: str) -> str:
    """One line for an interrupted sweep: what was stopped, what never started, and the
    command that resumes it."""
    state = e.state
    if state is None:
        what = "no run had been launched"
    else:
        n = counts(state)
        halted = named(state, Status.RUNNING, Status.STOPPED, Status.CANCELLED)
        parts = []
        if halted:
            verb = "cancelled the Slurm jobs of" if e.launcher == "slurm" else "stopped"
            parts.append(f"{verb} {', '.join(halted)} (each resumes from its last checkpoint)")
        if e.launcher == "local":
            waiting = n[Status.WAITING]
            parts.append(f"{waiting} run{'' if waiting == 1 else 's'} not started")
        if n[Status.FAILED]:
            parts.append(f"{n[Status.FAILED]} failed")
        parts.append(f"{n[Status.DONE]} of {len(state)} done")
        what = "; ".join(parts)
    return f"interrupted ({e.signal_name}): {what}; resume with: {command}"


def dry_run(sweep: Sweep, launcher: str = "local", jobs: int = 1) -> str:
    """The runs with their size, tokens and estimated time, and the command that runs them
    (with its ``--set``s, and for Slurm what each array task asks for); nothing is built or
    downloaded."""
    from factdyn.sweep.estimate import spec_estimate

    rows = [spec_estimate(s, sweep.grid) for s in sweep.specs]
    width = max(len(s.name) for s in sweep.specs)
    lines = [
        f"{'run':<{width}}  {'axis':<10}  {'parameters':>13}  {'tokens':>10}  {'hours':>8}  "
        f"{'device-hours':>12}"
    ]
    for s, e in zip(sweep.specs, rows, strict=True):
        lines.append(
            f"{s.name:<{width}}  {s.axis:<10}  {e.parameters:>13,}  {e.tokens:>10.3g}  "
            f"{e.hours:>8.3g}  {e.hours * e.devices:>12.3g}"
        )
    total = sum(e.hours * e.devices for e in rows)
    lines.append(
        f"{len(rows)} runs, {total:.3g} device-hours in all (at {sweep.grid.flops_per_second:.3g} "
        "FLOP/s per device: 6·N per trained token, 2·N per scored probe token)"
    )
    if launcher == "slurm":
        name = f"factdyn-{Path(sweep.source).stem}"
        lines.append(f"one Slurm array task per run: {slurm_parameters(sweep.grid.slurm, name)}")
    lines.append("to launch this grid:")
    command = reproduce_command(
        sweep.source, sweep.out, sweep.quick, launcher, jobs, sweep.overrides
    )
    lines.append(f"  {command}")
    return "\n".join(lines)


def grid_runs(out: Path) -> tuple[dict, dict[str, list[Path]]]:
    """A sweep directory's record and its finished runs by point (in the grid's order)."""
    if not (Path(out) / SWEEP).is_file():
        raise DataError(f"{out}: not a sweep directory (no {SWEEP})")
    record = read_record(out)
    by_point: dict[str, list[Path]] = {}
    for r in record["runs"]:
        run_dir = Path(out) / "runs" / r["name"]
        if run_status(run_dir) == Status.DONE:
            by_point.setdefault(r["point"], []).append(run_dir)
    return record, by_point
