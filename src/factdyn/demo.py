"""``factdyn demo``: the whole pipeline in one call, offline.

world (generated, cached) → tiny base model (pretrained, cached) → training runs with the
three scenarios and control items → analysis → report. The defaults of :class:`RunConfig`
*are* the demo's run, trained :data:`SEEDS` times with another order of the background text
(``data.seed``), side by side, and analysed pooled: one tiny run's decay constants are too
uncertain to decide much (docs/tiny-regime.md, rounds 4, 5 and 8). ``--quick`` shrinks every stage to a smoke test of
about a minute.
The cached world and base are built here (and by ``factdyn train`` without a world or model,
through :func:`with_cached_inputs`), never inside training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from factdyn import cache, progress
from factdyn.config import BaseConfig, RunConfig, load_config
from factdyn.errors import DataError, TrainingError

# the demo's replicates: data.seed 0, 1, ... of the same run, pooled by the analysis
SEEDS = 4
# --quick: a small world, a 2-layer base trained briefly, a short run (what the tests use)
QUICK_WORLD = {"items": 9, "corpus_mb": 1.5, "entities": 300}
QUICK_BASE = BaseConfig(
    hidden_size=64, layers=2, intermediate_size=256, batch_size=8, steps=120, lr=3e-3
)
QUICK_RUN = [
    "train.steps=50",
    "train.batch_size=8",
    "injection.interval=8",
    "injection.n_controls=3",
    "injection.cohorts=2",
    "eval.window=5",
    "eval.log_points=10",
    "train.checkpoint_every=25",
]


def _single_process(what: Path) -> None:
    """Several processes would build the same cache entry at once."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DataError(
            f"{what}: not built yet; build it in one process first ('factdyn pretrain')"
        )


def cached_world(**overrides: object) -> Path:
    """The demo world (generator settings ``overrides``), generated on first use."""
    spec = cache.world_spec(**overrides)
    out = cache.world_path(spec)
    if not cache.world_built(out):
        from factdyn.data.generator import generate_world

        _single_process(out)
        progress.phase("building the offline world (first use; cached afterwards)")
        generate_world(
            out,
            n_items=spec["items"],
            seed=spec["seed"],
            corpus_mb=spec["corpus_mb"],
            entities=spec["entities"],
        )
    return out


def cached_base(world: Path, cfg: BaseConfig | None = None) -> Path:
    """The tiny base pretrained on ``world``, trained on first use per (world, config)."""
    cfg = cfg or BaseConfig()
    out = cache.base_path(world, cfg)
    if not cache.base_built(out):
        from factdyn.train.base import pretrain

        _single_process(out)
        pretrain(world, out, cfg)
    return out


def with_cached_inputs(cfg: RunConfig) -> RunConfig:
    """``cfg`` with a missing world (data.path) and base model (model.name) filled from
    factdyn's cache, built on first use (a world-sourced run only)."""
    cfg = cfg.model_copy(deep=True)
    if cfg.data.source == "world" and cfg.data.path is None:
        cfg.data.path = str(cached_world())
    if cfg.data.source == "world" and cfg.model.name is None:
        cfg.model.name = str(cached_base(Path(cfg.data.path)))
    return cfg


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
    after another with two threads they took 505 s (docs/tiny-regime.md, round 6). The caller
    derives ``threads`` from the seed count, not from the runs left, so a resumed run keeps the
    count it started with and its log stays bit-identical."""
    from factdyn.sweep.launch import run_local, with_step_bar, write_job
    from factdyn.sweep.sweep import failures

    jobs = [write_job(out, run_dir.name, run_dir, cfg, threads) for cfg, run_dir in todo]
    state = with_step_bar(jobs, lambda: run_local(jobs, len(jobs), lambda _: None))
    failed = failures(state)
    if failed:
        raise TrainingError(
            f"{'; '.join(failed)} (logs in {out / 'logs'}; run the same command again to resume)"
        )


def run_demo(out: Path, quick: bool = False, seeds: int = SEEDS) -> DemoResult:
    """Run (or resume, or reuse) the demo into ``out``: one run per seed (see
    :func:`run_dir_of`), their pooled analysis in ``out/analysis``, ``out/report``."""
    from factdyn.analyze.pool import pool_runs
    from factdyn.analyze.populations import analyze_run
    from factdyn.analyze.write import write_analysis
    from factdyn.report.html import write_report
    from factdyn.report.text import format_summary
    from factdyn.rundir import load_run, run_status
    from factdyn.sweep.launch import local_threads
    from factdyn.train.resume import resume_config

    if seeds < 1:
        raise DataError(f"demo: --seeds must be at least 1, not {seeds}")
    world = cached_world(**(QUICK_WORLD if quick else {}))
    base = cached_base(world, QUICK_BASE if quick else None)
    run_dirs = [run_dir_of(out, k) for k in range(seeds)]
    todo = []
    for k, run_dir in enumerate(run_dirs):
        cfg = load_config(
            None,
            [f"data.path={world}", f"model.name={base}", f"data.seed={k}"]
            + (QUICK_RUN if quick else []),
        )
        status = run_status(run_dir)
        if status != "new":  # every existing run must be this demo's (not an older version's)
            resume_config(run_dir, cfg, source="this demo")
        if status != "done":
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
