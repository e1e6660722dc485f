"""``factdyn demo``: the whole pipeline in one call, offline.

world (generated, cached) → tiny base model (pretrained, cached) → one training run with the
three scenarios and control items → analysis → report. The defaults of :class:`RunConfig`
*are* the demo's run; ``--quick`` shrinks every stage to a smoke test of about a minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from factdyn import cache
from factdyn.config import BaseConfig, load_config

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
    "eval.window=5",
    "eval.log_points=10",
    "train.checkpoint_every=25",
]


@dataclass
class DemoResult:
    run_dir: Path
    analysis_dir: Path
    report: Path
    summary: str


def run_demo(out: Path, quick: bool = False) -> DemoResult:
    """Run (or resume, or reuse) the demo into ``out``: ``out/run``, ``out/report``."""
    from factdyn.analyze.pipeline import analyze_run, format_summary, write_analysis
    from factdyn.report.html import write_report
    from factdyn.train.experiment import train

    world = cache.default_world(**(QUICK_WORLD if quick else {}))
    base = cache.default_base(world, QUICK_BASE if quick else None)
    cfg = load_config(
        None, [f"data.path={world}", f"model.name={base}", *(QUICK_RUN if quick else [])]
    )
    run_dir = out / "run"
    meta = run_dir / "meta.json"
    status = json.loads(meta.read_text()).get("status") if meta.is_file() else None
    if status != "done":
        train(cfg, run_dir, resume=status is not None)
    analysis = analyze_run(run_dir)
    analysis_dir = write_analysis(analysis, run_dir / "analysis")
    report = write_report([run_dir], out / "report", analyses=[analysis])
    return DemoResult(run_dir, analysis_dir, report, format_summary(analysis))
