"""Benchmark: what factdyn adds to a step of a Hugging Face Trainer, and to its own loop.

Four arms on the tiny world and base of ``bench_training.py`` (hidden 128, 4 layers, batch
4 × 128 tokens), the same sequences, AdamW at a constant learning rate:

- ``trainer``: a plain ``transformers.Trainer`` (no factdyn);
- ``trainer+factdyn``: the same Trainer with ``factdyn.integrations.hf.attach`` (injections,
  probes scored after every update: ``eval.schedule=every``, the most scoring a run does);
- ``factdyn loop``: ``factdyn train``'s loop with the same settings, its probe logging on;
- ``factdyn loop, no probe logging``: the same run's steps timed without the probe logger
  (the interval from after the logger has scored θ_t to the end of update t).

A step's time is the interval between two consecutive ``on_step_end`` hooks of a timer that
runs after every other callback (scoring of θ_t included where it happens); the scoring
share is the time inside the probe logger's scoring over the step time. The arms run in
turn, ``--reps`` times, each a fresh run of ``--warmup`` untimed then ``--steps`` timed
steps, in an order that rotates, so the machine's load falls on all of them alike; medians over the repetitions, and
the ratios to the plain Trainer (and to the loop without logging) of the same repetition.

    python benchmarks/bench_integration.py [--reps 6] [--steps 20] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_training import BATCH, SEQ_LEN, THREADS, machine_info, tiny_setup  # noqa: E402
from factdyn.train.callbacks import Callback  # noqa: E402


def settings(world: Path, base: Path, steps: int) -> list[str]:
    return [
        f"data.path={world}",
        f"model.name={base}",
        f"data.seq_len={SEQ_LEN}",
        "data.start=0",
        f"train.steps={steps}",
        f"train.batch_size={BATCH}",
        f"train.threads={THREADS}",
        f"train.checkpoint_every={steps + 1}",
        f"injection.interval={max(1, steps // 4)}",  # injections at 0, steps/4, steps/2
        "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 3},"
        " {name: duplicate, variant: duplicate, count: 3}, {name: once, count: 1}]",
        "injection.cohorts=1",
        "injection.scenario_offset=0",
        "injection.n_controls=3",
        "injection.allow_truncation=true",
        "eval.schedule=every",
        "eval.window=2",
        "optim.lr=1e-3",
        "optim.load_state=false",
    ]


class Clock:
    """Times between consecutive step ends, and the time spent scoring in each step."""

    def __init__(self):
        self.ends: list[float] = []
        self.scoring: list[float] = []
        self.pending = 0.0

    def scored(self, seconds: float) -> None:
        self.pending += seconds

    def step_end(self) -> None:
        self.ends.append(time.perf_counter())
        self.scoring.append(self.pending)
        self.pending = 0.0

    def steps(self, warmup: int) -> tuple[np.ndarray, np.ndarray]:
        """(step times, scoring times) of the steps after ``warmup``."""
        return np.diff(self.ends)[warmup:], np.asarray(self.scoring[1:])[warmup:]


def timed(obj, name: str, clock: Clock) -> None:
    """Wrap ``obj.name`` so that its time counts as scoring."""
    inner = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            clock.scored(time.perf_counter() - t0)

    setattr(obj, name, wrapper)


def run_trainer(cfg, base: Path, out: Path, with_factdyn: bool, warmup: int):
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from factdyn.integrations.hf import Sequences, attach
    from factdyn.train.plan import load_tokenizer

    clock = Clock()

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.step_end()

    tok = load_tokenizer(str(base))

    args = TrainingArguments(
        output_dir=str(out / "ckpt"),
        max_steps=cfg.train.steps,
        per_device_train_batch_size=BATCH,
        learning_rate=cfg.optim.lr,
        lr_scheduler_type="constant",
        adam_beta2=0.95,
        optim="adamw_torch",
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
    )
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        args=args,
        train_dataset=Sequences(cfg, tok),
        processing_class=tok,
    )
    if with_factdyn:
        cb = attach(trainer, cfg, out / "run")
        timed(cb.session, "score", clock)
    trainer.add_callback(Timer())
    trainer.train()
    return clock.steps(warmup)


def run_own(cfg, out: Path, warmup: int):
    """factdyn's loop: (step times, scoring times, training-only times)."""
    from factdyn.train import experiment

    clock = Clock()
    train_only: list[float] = []

    class Timer(Callback):
        def on_step_start(self, step, model):
            self.t0 = time.perf_counter()

        def on_step_end(self, step, loss, lr):
            train_only.append(time.perf_counter() - self.t0)
            clock.step_end()

    real = experiment.probe_logger

    def logger(*args, **kwargs):
        made = real(*args, **kwargs)
        timed(made, "maybe_log", clock)
        return made

    experiment.probe_logger = logger
    try:
        experiment.train(cfg, out / "run", callbacks=[Timer()])
    finally:
        experiment.probe_logger = real
    steps, scoring = clock.steps(warmup)
    return steps, scoring, np.asarray(train_only[warmup + 1 :])


ARMS = ["hf", "fd", "own"]


def run_arm(name: str, cfg, base: Path, out: Path, warmup: int):
    """One arm's run: the plain Trainer, the Trainer with factdyn, or factdyn's loop."""
    if name == "own":
        return run_own(cfg, out, warmup)
    return run_trainer(cfg, base, out, name == "fd", warmup)


def ratio(num: list[float], den: list[float]) -> str:
    """The per-repetition ratios' median with their range: ``2.71× [1.92, 4.05]``."""
    r = np.divide(num, den)
    return f"{np.median(r):.2f}× [{r.min():.2f}, {r.max():.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per run")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 rep of 4 steps")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.steps, args.warmup = 1, 4, 1
    torch.set_num_threads(THREADS)
    print(machine_info())
    world, base = tiny_setup()
    from factdyn.config import load_config

    cfg = load_config(None, settings(world, base, args.warmup + args.steps + 1))
    rows: dict[str, list[float]] = {
        k: [] for k in ("hf", "hf_fd", "hf_score", "own", "own_score", "own_bare")
    }
    for rep in range(args.reps):
        tmp = Path(tempfile.mkdtemp(prefix="factdyn-bench-integration-"))
        order = ARMS[rep % 3 :] + ARMS[: rep % 3]  # no arm always first
        try:
            got = {name: run_arm(name, cfg, base, tmp / name, args.warmup) for name in order}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        (hf, _), (fd, fd_score), (own, own_score, bare) = got["hf"], got["fd"], got["own"]
        for key, v in (("hf", hf), ("hf_fd", fd), ("own", own), ("own_bare", bare)):
            rows[key].append(float(np.median(v)))
        rows["hf_score"].append(float(fd_score.sum() / fd.sum()))
        rows["own_score"].append(float(own_score.sum() / own.sum()))
        print(
            f"rep {rep}: step ms: trainer {1e3 * rows['hf'][-1]:.1f}, trainer+factdyn "
            f"{1e3 * rows['hf_fd'][-1]:.1f} (scoring {100 * rows['hf_score'][-1]:.0f}%), "
            f"factdyn loop {1e3 * rows['own'][-1]:.1f} (scoring {100 * rows['own_score'][-1]:.0f}%), "
            f"its steps without logging {1e3 * rows['own_bare'][-1]:.1f}"
        )
    med = {k: float(np.median(v)) for k, v in rows.items()}
    print(
        f"setup: batch {BATCH} × {SEQ_LEN} tokens, eval.schedule=every, {args.reps} reps × "
        f"({args.warmup} warm-up + {args.steps} timed steps) per arm; ratios: the median of "
        "the repetitions' [lowest, highest]"
    )
    print(
        f"Trainer + factdyn / Trainer: {ratio(rows['hf_fd'], rows['hf'])} "
        f"(scoring {100 * med['hf_score']:.0f}% of a step)"
    )
    print(
        f"factdyn loop with / without probe logging: {ratio(rows['own'], rows['own_bare'])} "
        f"(scoring {100 * med['own_score']:.0f}% of a step)"
    )
    print(f"factdyn loop without logging / plain Trainer: {ratio(rows['own_bare'], rows['hf'])}")


if __name__ == "__main__":
    main()
