"""Benchmark: probe-evaluation compute of ``eval.schedule=sparse`` against ``every``, and what
the sparser log does to the decay constants.

The same short run (tiny generated world and base as in bench_training.py; 7 items: 2
paraphrase, 2 duplicate, 2 once, 1 control; batch 2 × 256 tokens, so every injected paragraph
fits its row untruncated; injections at steps 0 (once), 1, 6, 11 (paraphrase) and 2, 7, 12
(duplicate); window t_w = 2; ``--steps`` updates) is trained twice in this process, once with
``eval.schedule=every`` and once with ``sparse`` (``--log-points`` log-spaced steps after the
last window). Training is deterministic and evaluation does not touch the weights, so the two
runs see the same model at every step they share (checked below).

Evaluation compute is measured by wrapping ``ProbeLogger.maybe_log`` (the only place the loop
scores probes): the number of logged steps, the forward tokens each evaluation runs (probes
and item contexts, as ``score_requests`` batches and pads them) and the wall time of every
evaluation (per-evaluation median and total). Both runs are then analysed with
``factdyn.analyze.pipeline.analyze_run`` and the decay constants ``a`` compared over every
scenario × depth.

The tiny model barely learns in 100 updates, so its decay constants are mostly noise (their
standard errors are printed). The schedule's effect on ``a`` is therefore also measured where
the dynamics are clean: bench_analysis.py's paper-scale synthetic log (1,800 probes, 2,500
steps, injections every 100 steps, t_w 50), analysed at every step and at only the steps
``sparse`` would log for it (30 log points).

For scale, the logged-step ratio of the paper's schedule (2,000 updates, injections every 100
steps, 10 per item, t_w = 50, 30 log points) is printed too: evaluation compute per logged
step is fixed, so it is the compute ratio.

    python benchmarks/bench_eval_schedule.py [--steps 100] [--log-points 10] [--quick]

The last line printed is the evaluation-compute ratio every / sparse.
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import dataclasses  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import THREADS, machine_info, tiny_setup  # noqa: E402
from factdyn.analyze.pipeline import analyze_run  # noqa: E402
from factdyn.config import load_config  # noqa: E402
from factdyn.rundir import Run, load_run  # noqa: E402
from factdyn.score.loglik import length_batches  # noqa: E402
from factdyn.train import evaluation  # noqa: E402
from factdyn.train.evaluation import eval_steps  # noqa: E402
from factdyn.train.experiment import train  # noqa: E402

SEQ_LEN, BATCH, WINDOW = 256, 2, 2


def forward_tokens(requests, batch_tokens: int) -> int:
    """Tokens (padding included) that ``score_requests`` runs through the model."""
    lengths = requests.lengths
    return int(sum(len(b) * lengths[b].max() for b in length_batches(lengths, batch_tokens)))


class EvalMeter:
    """Wraps ProbeLogger.maybe_log: counts evaluations, forward tokens and wall time."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens = 0

    def __enter__(self) -> EvalMeter:
        self.saved = evaluation.ProbeLogger.maybe_log
        meter, original = self, self.saved

        def maybe_log(logger, step: int, model) -> bool:
            t0 = time.perf_counter()
            logged = original(logger, step, model)
            if logged:
                meter.times.append(time.perf_counter() - t0)
                meter.tokens += forward_tokens(logger.probes, logger.batch_tokens)
                if logger.contexts is not None:
                    meter.tokens += forward_tokens(logger.contexts, logger.batch_tokens)
            return logged

        evaluation.ProbeLogger.maybe_log = maybe_log
        return self

    def __exit__(self, *exc: object) -> None:
        evaluation.ProbeLogger.maybe_log = self.saved


def run_once(world: Path, base: Path, out: Path, schedule: str, steps: int, log_points: int):
    cfg = load_config(
        None,
        [
            f"data.path={world}",
            f"model.name={base}",
            f"data.seq_len={SEQ_LEN}",
            f"train.steps={steps}",
            f"train.batch_size={BATCH}",
            f"train.threads={THREADS}",
            f"train.checkpoint_every={steps + 1}",
            "injection.max_items=7",
            "injection.n_controls=1",
            "injection.interval=5",
            "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 3, first_step: 1},"
            " {name: duplicate, variant: duplicate, count: 3, first_step: 2},"
            " {name: once, count: 1, first_step: 0}]",
            f"eval.schedule={schedule}",
            f"eval.window={WINDOW}",
            f"eval.log_points={log_points}",
        ],
    )
    with EvalMeter() as meter:
        t0 = time.perf_counter()
        train(cfg, out)
        wall = time.perf_counter() - t0
    return meter, wall


def compare_decay(every, sparse, label: str) -> tuple[float, tuple[str, str] | None]:
    """Print a per scenario × depth for both analyses; return the largest |Δa| and where."""
    worst, worst_at = 0.0, None
    print(f"decay constant a per scenario × depth, {label} (every → sparse):")
    for scen, by_depth in every.summary.items():
        for depth, e in by_depth.items():
            f = sparse.summary.get(scen, {}).get(depth, {})
            a_e, a_s = e["decay_constant"], f.get("decay_constant", math.nan)
            d = abs(a_s - a_e)
            print(
                f"  {scen:>10} {depth:>13}: {a_e:+.4f} → {a_s:+.4f}  |Δa| {d:.4f}  (every: "
                f"s.e. {e['decay_constant_se']:.4f}, r² {e['r2']:.3f}; R̄ at "
                f"{len(e['retainability_steps'])} → {len(f.get('retainability_steps', []))} t)"
            )
            if not d <= worst:
                worst, worst_at = d, (scen, depth)
    return worst, worst_at


def synthetic_pair() -> tuple[Run, Run]:
    """bench_analysis.py's paper-scale synthetic log at every step, and at the steps that
    ``sparse`` would log for its schedule (t_w 50, 30 log points)."""
    from bench_analysis import synthetic_run

    run = synthetic_run()
    injections = sorted(set(run.injections.step.tolist()))
    keep = eval_steps("sparse", injections, run.window, int(run.steps[-1]), 30)
    rows = np.searchsorted(run.steps, keep)
    sub = dataclasses.replace(
        run, steps=run.steps[rows], logprobs=run.logprobs[rows], context=run.context[rows]
    )
    return run, sub


def paper_ratio() -> tuple[int, int]:
    total, injections = 2000, list(range(0, 1000, 100))
    return total + 1, len(eval_steps("sparse", injections, 50, total, 30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--log-points", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke test: 24 steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.log_points = 24, 4
    torch.set_num_threads(THREADS)
    print(machine_info())
    t0 = time.perf_counter()
    world, base = tiny_setup()
    print(f"tiny world + base: {base} ({time.perf_counter() - t0:.1f} s)")

    results = {}
    with tempfile.TemporaryDirectory(prefix="factdyn-bench-eval-") as tmp:
        for schedule in ("every", "sparse"):
            out = Path(tmp) / schedule
            meter, wall = run_once(world, base, out, schedule, args.steps, args.log_points)
            run = load_run(out)
            analysis = analyze_run(run)
            results[schedule] = (meter, run, analysis)
            print(
                f"{schedule:>6}: {len(meter.times)} logged steps, {meter.tokens:,} probe forward "
                f"tokens, evaluation {sum(meter.times):.1f} s (median {np.median(meter.times):.3f} s "
                f"per logged step), whole run {wall:.1f} s"
            )
        (m_e, run_e, an_e), (m_s, run_s, an_s) = results["every"], results["sparse"]

        # the sparse run's log is the every run's log at its steps (same model at every step)
        rows = np.searchsorted(run_e.steps, run_s.steps)
        diff = np.nanmax(np.abs(run_e.logprobs[rows] - run_s.logprobs))
        print(f"same model check: max |Δℓ| at the {len(rows)} shared logged steps {diff:.2e}")

        worst = compare_decay(an_e, an_s, "tiny run")

    synth_every, synth_sparse = synthetic_pair()
    worst_synth = compare_decay(
        analyze_run(synth_every), analyze_run(synth_sparse), "paper-scale synthetic log"
    )
    total, sparse = paper_ratio()
    print(
        f"paper schedule (2,000 updates, t_w 50, 10 injections every 100, 30 log points): "
        f"{total:,} → {sparse} logged steps, {total / sparse:.1f}× less evaluation; synthetic "
        f"log: {len(synth_every.steps):,} → {len(synth_sparse.steps)} logged steps, "
        f"{len(synth_every.steps) / len(synth_sparse.steps):.1f}×"
    )
    ratio_tokens = m_e.tokens / m_s.tokens
    ratio_time = sum(m_e.times) / sum(m_s.times)
    ratio_median = len(m_e.times) * np.median(m_e.times) / (len(m_s.times) * np.median(m_s.times))
    for label, (d, at) in (("tiny run", worst), ("paper-scale synthetic log", worst_synth)):
        ok = "met" if d <= 0.01 else "MISSED"
        print(f"max |Δa| over scenario × depth, {label}: {d:.4f} at {at} (target ≤ 0.01: {ok})")
    print(
        f"evaluation wall time every / sparse: {ratio_time:.1f}× (totals), "
        f"{ratio_median:.1f}× (logged steps × median time per evaluation)"
    )
    ok_c = "met" if ratio_tokens >= 5 else "MISSED"
    print(f"target ≥ 5× less evaluation compute: {ok_c}")
    print(f"evaluation compute (forward tokens) every / sparse: {ratio_tokens:.1f}×")


if __name__ == "__main__":
    main()
