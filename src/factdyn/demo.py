"""``factdyn demo``: the whole pipeline in one call, offline.

world (generated, cached) → tiny base model (pretrained, cached) → training runs with the
three scenarios and control items → analysis → report. The defaults of :class:`RunConfig`
*are* the demo's run, trained :data:`SEEDS` times with another order of the background text
(``data.seed``), side by side, and analysed pooled: one tiny run's decay constants are too
uncertain to decide much. ``--quick`` shrinks every stage to a smoke test of about a minute.
The world and the base come from factdyn's cache (:mod:`factdyn.train.cached`), built on
first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factdyn import progress
from factdyn.config import BaseConfig, RunConfig, updated
from factdyn.errors import DataError, TrainingError
from factdyn.rundir import Status, load_run, run_status
from factdyn.train.cached import cached_base, cached_world

# the demo's replicates: data.seed 0, 1, ... of the same run, pooled by the analysis
SEEDS = 4
# --quick: a small world, a 2-layer base trained briefly, a short run (what the tests use)
QUICK_WORLD = {"items": 9, "corpus_mb": 1.5, "entities": 300}
QUICK_BASE = BaseConfig(
    hidden_size=64, layers=2, intermediate_size=256, batch_size=8, steps=120, lr=3e-3
)
QUICK_RUN: dict[str, dict[str, int]] = {
    "train": {"steps": 50, "batch_size": 8, "checkpoint_every": 25},
    "injection": {"interval": 8, "n_controls": 3, "cohorts": 2},
    "eval": {"window": 5, "log_points": 10},
}


@dataclass
class DemoResult:
    run_dirs: list[Path]
    analysis_dir: Path
    report: Path
    summary: str


def run_dir_of(out: Path, seed: int) -> Path:
    """``out/run`` for data.seed 0, ``out/run-seed<k>`` for the others."""
    return out / ("run" if seed == 0 else f"run-seed{seed}")


def train_side_by_side(todo: list[tuple[RunConfig, Path]], out: Path, threads: int) -> None:
    """Train (or resume) the runs at once, one ``factdyn train`` process each with ``threads``
    torch threads: a sweep's local launcher (kill-safe; logs in ``out/logs``), under one bar
    over all their steps. On 2 cores, three one-thread runs side by side took 415 s where one
    after another with two threads they took 505 s. The caller derives ``threads`` from the
    seed count, not from the runs left, so a resumed run keeps the count it started with and
    its log stays bit-identical."""
    from factdyn.sweep.launch import run_local, with_step_bar, write_job
    from factdyn.sweep.state import failures

    jobs = [write_job(out, run_dir.name, run_dir, cfg, threads) for cfg, run_dir in todo]
    state = with_step_bar(jobs, lambda: run_local(jobs, len(jobs), lambda _: None))
    failed = failures(state)
    if failed:
        raise TrainingError(
            f"{'; '.join(failed)} (logs in {out / 'logs'}; run the same command again to resume)"
        )


def run_demo(out: Path, quick: bool = False, seeds: int = SEEDS, first_seed: int = 0) -> DemoResult:
    """Run (or resume, or reuse) the demo into ``out``: one run per seed ``first_seed ..
    first_seed + seeds - 1`` (see :func:`run_dir_of`; another first seed is a disjoint draw
    of the same experiment), their pooled analysis in ``out/analysis``, ``out/report``."""
    from factdyn.analyze.pool import pool_runs
    from factdyn.analyze.populations import analyze_run
    from factdyn.analyze.write import write_analysis
    from factdyn.report.html import write_report
    from factdyn.report.text import format_summary
    from factdyn.sweep.launch import local_threads
    from factdyn.train.resume import resume_config

    if seeds < 1:
        raise DataError(f"demo: --seeds must be at least 1, not {seeds}")
    if first_seed < 0:
        raise DataError(f"demo: --first-seed must be at least 0, not {first_seed}")
    world = cached_world(**(QUICK_WORLD if quick else {}))
    base = cached_base(world, QUICK_BASE if quick else None)
    seed_list = range(first_seed, first_seed + seeds)
    run_dirs = [run_dir_of(out, k) for k in seed_list]
    todo = []
    for k, run_dir in zip(seed_list, run_dirs, strict=True):
        cfg = updated(
            RunConfig(),
            "the demo",
            data={"path": str(world), "seed": k},
            model={"name": str(base)},
            **(QUICK_RUN if quick else {}),
        )
        status = run_status(run_dir)
        if status != Status.NEW:  # every existing run must be this demo's (not an older one's)
            resume_config(run_dir, cfg, source="this demo")
        if status != Status.DONE:
            todo.append((cfg, run_dir))
    if todo:
        progress.phase(f"training {len(todo)} run(s) side by side")
        train_side_by_side(todo, out, threads=local_threads(seeds))
    run = pool_runs(run_dirs) if seeds > 1 else load_run(run_dirs[0])
    progress.phase("analysing (bootstrap intervals) and writing the report")
    analysis = analyze_run(run)
    analysis_dir = write_analysis(analysis, out / "analysis")
    names = ", ".join(d.name for d in run_dirs)
    label = "demo" if seeds == 1 else f"demo: {names}, pooled"
    report = write_report(
        [out if seeds > 1 else run_dirs[0]],
        out / "report",
        analyses=[analysis],
        runs=[run],
        labels=[label],
    )
    return DemoResult(run_dirs, analysis_dir, report, format_summary(analysis))
