"""Benchmark: probe-evaluation compute of ``eval.schedule=sparse`` against ``every``, and what
the sparser log does to the decay constants.

The same short run (tiny generated world and base as in bench_training.py; 7 items: 2
paraphrase, 2 duplicate, 2 once, 1 control; batch 2 × 256 tokens, so every injected paragraph
fits its row untruncated; injections at steps 0 (once), 1, 6, 11 (paraphrase) and 2, 7, 12
(duplicate); window t_w = 2; ``--steps`` updates) is trained twice in this process, once with
``eval.schedule=every`` and once with ``sparse`` (each item scored at θ_0, in its own
windows, at ``--log-points`` log-spaced steps after its last window and at the last step;
the control at every logged step). Training is deterministic and evaluation does not touch
the weights, so the two runs see the same model at every step they share (checked below).

Evaluation compute is measured by a callback passed to ``train``, which runs after factdyn's
own at every hook: at a logged step t, the time from the previous update's end (its
``on_step_end``; ``on_train_start`` for θ_0) to its own ``on_step_start`` is the probe
logger's evaluation of θ_t (at the last step also the final checkpoint, once in either run).
The forward tokens are counted from the run's logs: at each logged step, the probes and item
contexts that were scored (non-NaN), padded as ``score_requests`` batches them. Both runs are
then analysed with ``factdyn.analyze.populations.analyze_run`` and the decay constants ``a``
compared over every scenario × depth.

The tiny model barely learns in 100 updates, so its decay constants are mostly noise (their
standard errors are printed). The schedule's effect on ``a`` is therefore also measured where
the dynamics are clean: bench_analysis.py's paper-scale synthetic log (1,800 probes, 2,500
steps, injections every 100 steps, t_w 50), analysed at every step and as ``sparse`` would
have logged it (30 log points).

For scale, the probe-evaluation ratio of the paper's schedule (2,000 updates, 120 items,
injections every 100 steps, 10 per item, t_w = 50, 30 log points) is printed too.

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
from bench_training import THREADS, machine_info, tiny_sets, tiny_setup  # noqa: E402
from factdyn.analyze.populations import analyze_run  # noqa: E402
from factdyn.config import load_config  # noqa: E402
from factdyn.data.items import load_items  # noqa: E402
from factdyn.rundir import Run, load_run  # noqa: E402
from factdyn.score.loglik import length_batches  # noqa: E402
from factdyn.score.requests import encode_probes  # noqa: E402
from factdyn.train.callbacks import Callback  # noqa: E402
from factdyn.train.evaluation import eval_schedule  # noqa: E402
from factdyn.train.experiment import train  # noqa: E402

SEQ_LEN, BATCH, WINDOW, N_ITEMS = 256, 2, 2, 7


def forward_tokens(requests, batch_tokens: int) -> int:
    """Tokens (padding included) that ``score_requests`` runs through the model."""
    lengths = requests.lengths
    return int(sum(len(b) * lengths[b].max() for b in length_batches(lengths, batch_tokens)))


class EvalTimer(Callback):
    """Wall time of the hooks before each logged step (the probe evaluation, see the module
    doc); the logged steps are read from the run's steps.npy when training starts."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.times: list[float] = []
        self.logged: set[int] = set()
        self.t0 = 0.0

    def on_train_start(self, step: int) -> None:
        self.logged = set(np.load(self.run_dir / "steps.npy").tolist())
        self.t0 = time.perf_counter()  # θ_0 is scored right after this

    def on_step_start(self, step: int, model) -> None:
        if step in self.logged:
            self.times.append(time.perf_counter() - self.t0)

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        self.t0 = time.perf_counter()


@dataclasses.dataclass
class EvalCost:
    times: list[float]  # seconds per logged step
    tokens: int  # forward tokens of everything scored


def scored_tokens(run: Run, base: Path, world: Path, n_items: int, batch_tokens: int) -> int:
    """Forward tokens (padding included) of every probe the run scored."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    items = load_items(world / "knowledge.json")[:n_items]
    probes = encode_probes(tokenizer, items)
    total = 0
    for row in range(len(run.steps)):
        idx = np.flatnonzero(~np.isnan(run.logprobs[row, :, 0]))
        if len(idx):
            total += forward_tokens(probes.subset(idx), batch_tokens)
    return total


def run_once(world: Path, base: Path, out: Path, schedule: str, steps: int, log_points: int):
    cfg = load_config(
        None,
        [
            *tiny_sets(world, base, steps, BATCH, SEQ_LEN),
            f"injection.max_items={N_ITEMS}",
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
    timer = EvalTimer(out)
    t0 = time.perf_counter()
    train(cfg, out, callbacks=[timer])
    wall = time.perf_counter() - t0
    tokens = scored_tokens(load_run(out), base, world, N_ITEMS, cfg.eval.batch_tokens)
    return EvalCost(timer.times, tokens), wall


def compare_decay(every, sparse, label: str) -> tuple[float, tuple[str, str] | None]:
    """Print a per scenario × depth for both analyses; return the largest |Δa| and where."""
    worst, worst_at = 0.0, None
    print(f"decay constant a per scenario × depth, {label} (every → sparse):")
    for e in every.populations:
        scen, depth = e.scenario, e.depth
        f = sparse.get(scen, depth)
        a_e, a_s = e.decay_constant, f.decay_constant if f else math.nan
        d = abs(a_s - a_e)
        print(
            f"  {scen:>10} {depth:>13}: {a_e:+.4f} → {a_s:+.4f}  |Δa| {d:.4f}  (s.e. "
            f"{e.decay_constant_se:.4f} → {f.decay_constant_se if f else math.nan:.4f}; "
            f"every: r² {e.r2:.3f}; R̄ at "
            f"{len(e.retainability_steps)} → {len(f.retainability_steps) if f else 0} t)"
        )
        if not d <= worst:
            worst, worst_at = d, (scen, depth)
    return worst, worst_at


def item_injections(run: Run) -> list[list[int]]:
    by_item = run.injections.groupby("item").step.apply(sorted).to_dict()
    return [list(by_item.get(i, [])) for i in range(len(run.items))]


def synthetic_pair() -> tuple[Run, Run]:
    """bench_analysis.py's paper-scale synthetic log at every step, and as ``sparse`` would
    have logged it for its schedule (t_w 50, 30 log points): only its steps, and at each
    only the items it scores there (the rest NaN, as in a real sparse run)."""
    from bench_analysis import synthetic_run

    run = synthetic_run()
    keep, mask = eval_schedule("sparse", item_injections(run), run.window, int(run.steps[-1]), 30)
    rows = np.searchsorted(run.steps, keep)
    logprobs = run.logprobs[rows].copy()
    logprobs[~mask[:, run.probes["item"].to_numpy()]] = np.nan
    sub = dataclasses.replace(run, steps=run.steps[rows], logprobs=logprobs)
    return run, sub


def paper_ratio(n_controls: int) -> float:
    """Probe evaluations every / sparse for the paper's schedule (2,000 updates; 120 items, a
    third each paraphrase and duplicate injected every 100 steps from 0 to 900 and once at
    0; t_w 50; 30 log points), with ``n_controls`` never-injected items; every item has
    the same probes, so this is the compute ratio."""
    total = 2000
    items = [list(range(0, 1000, 100))] * 80 + [[0]] * 40 + [[]] * n_controls
    steps, mask = eval_schedule("sparse", items, 50, total, 30)
    return (total + 1) * len(items) / mask.sum()


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
    n_every = np.isfinite(synth_every.logprobs[:, :, 0]).sum()
    n_sparse = np.isfinite(synth_sparse.logprobs[:, :, 0]).sum()
    print(
        f"paper schedule (2,000 updates, 120 items, t_w 50, 10 injections every 100, 30 log "
        f"points): {paper_ratio(0):.1f}× fewer probe evaluations without controls, "
        f"{paper_ratio(15):.1f}× with 15 controls; synthetic log (2,500 steps): "
        f"{len(synth_every.steps):,} → {len(synth_sparse.steps)} logged steps, "
        f"{n_every / n_sparse:.1f}× fewer probe evaluations"
    )
    ratio_tokens = m_e.tokens / m_s.tokens
    ratio_time = sum(m_e.times) / sum(m_s.times)
    ratio_median = len(m_e.times) * np.median(m_e.times) / (len(m_s.times) * np.median(m_s.times))
    in_se = [
        abs(f.decay_constant - e.decay_constant)
        / math.hypot(e.decay_constant_se, f.decay_constant_se)
        for e in an_e.populations
        for f in [an_s.get(e.scenario, e.depth)]
    ]
    print(
        f"tiny run: its decay constants are noise (every-step s.e. up to "
        f"{max(e.decay_constant_se for e in an_e.populations):.2f}); "
        f"|Δa| is a median {np.median(in_se):.1f}× the two fits' combined standard error"
    )
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
