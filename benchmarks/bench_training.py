"""Benchmark: training throughput of ``factdyn train`` against a plain PyTorch loop, and MFU.

factdyn side: ``factdyn.train.experiment.train`` (what ``factdyn train`` runs) on a tiny
generated world and a tiny Llama base (hidden 128, 4 layers, vocabulary 2,048), batch 4 × 128
tokens, with knowledge injection (three scenarios, injections at three steps, prepended and
truncated to the row) and the per-step training log (``train.npy``, flushed every step).
factdyn has no switch that turns probe evaluation off, so the run uses ``eval.schedule=sparse``
with the fewest logged steps (window 1, one log point, no contexts), and only the training
steps are timed, by a callback passed to ``train`` (it runs after factdyn's own callbacks at
every hook): a step's time runs from its ``on_step_start`` (after the probe logger and the
checkpointer have seen θ_t) to its ``on_step_end`` (after the training log has written the
update). That interval holds the learning rate, the batch (injections included), forward,
backward, clipping, AdamW and the ``train.npy`` write.

Baseline: a hand-written loop in the same process — the same model class and size
(``factdyn.train.base.build_model``), the same data sequences (pre-built tensors, no
injection), AdamW with the same betas and learning rate, ``clip_grad_norm_(1.0)``, token-mean
cross-entropy, ``loss.item()`` once per step.

To share the (busy, 2-core) machine's load evenly, the two are interleaved step by step: one
baseline step runs before every factdyn step, from inside the timing callback's
``on_step_start`` and outside factdyn's timed interval. After ``--warmup`` steps per side, each
repetition is ``--chunk`` consecutive steps per side; tokens/s per repetition, median over
repetitions.

MFU = achieved FLOP/s ÷ measured peak, with FLOPs per token = 6·N + 12·L·s·d (N parameters,
the run's meta.json ``n_parameters``, tied embedding counted once; L layers, s sequence
length, d hidden size: attention scores and values, forward + backward, no causal discount),
and the peak the median FLOP/s (2n³ per product) of a 2048 × 2048 fp32 ``torch.mm`` with the
same thread count.

    python benchmarks/bench_training.py [--reps 7] [--chunk 8] [--quick]

The last line printed is factdyn's overhead over the plain loop, in per cent.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from factdyn.train.callbacks import Callback  # noqa: E402

THREADS = 2
BATCH, SEQ_LEN = 4, 128
WORLD_SETTINGS = {"n_items": 15, "corpus_mb": 2, "entities": 300, "seed": 0}
BASE_SETTINGS = {"hidden_size": 128, "layers": 4, "heads": 4, "intermediate_size": 512}
BASE_SETTINGS |= {"seq_len": SEQ_LEN, "batch_size": BATCH, "steps": 20, "warmup_steps": 2}


def machine_info() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {model}, {os.cpu_count()} logical cores, load average {load:.2f}; "
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )


def tiny_setup(root: Path | None = None) -> tuple[Path, Path]:
    """A tiny generated world and a tiny base pretrained on it for a few steps, cached under
    ``$TMPDIR/factdyn-bench`` (shared by the benchmarks that import this)."""
    from factdyn.config import BaseConfig
    from factdyn.data.generator import generate_world
    from factdyn.train.base import pretrain

    root = root or Path(tempfile.gettempdir()) / "factdyn-bench"
    key = "-".join(str(v) for v in (*WORLD_SETTINGS.values(), *BASE_SETTINGS.values()))
    world, base = root / f"world-{key}", root / f"base-{key}"
    if not (world / "knowledge.json").is_file():
        shutil.rmtree(world, ignore_errors=True)
        generate_world(world, **WORLD_SETTINGS)
    if not (base / "state.json").is_file():
        pretrain(world, base, BaseConfig(**BASE_SETTINGS, threads=torch.get_num_threads()))
    return world, base


def tiny_sets(
    world: Path, base: Path, steps: int, batch: int = BATCH, seq_len: int = SEQ_LEN
) -> list[str]:
    """The ``--set`` lines every tiny benchmark run shares: inputs, shape, no checkpoint
    but the last."""
    return [
        f"data.path={world}",
        f"model.name={base}",
        f"data.seq_len={seq_len}",
        f"train.steps={steps}",
        f"train.batch_size={batch}",
        f"train.threads={THREADS}",
        f"train.checkpoint_every={steps + 1}",
    ]


def flops_per_token(n_params: int, layers: int, seq_len: int, hidden: int) -> int:
    return 6 * n_params + 12 * layers * seq_len * hidden


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Median FLOP/s of an n × n fp32 matrix product (after one warm-up)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times))


class PlainLoop:
    """The baseline: a textbook PyTorch training loop over pre-built batches."""

    def __init__(
        self, base: Path, world: Path, n_steps: int, batch: int = BATCH, seq_len: int = SEQ_LEN
    ):
        from transformers import AutoTokenizer

        from factdyn.config import BaseConfig, DataConfig
        from factdyn.data.sources import build_source
        from factdyn.train.base import build_model

        state = json.loads((base / "state.json").read_text())
        tok = AutoTokenizer.from_pretrained(world / "tokenizer")
        self.model = build_model(BaseConfig(**state["config"]), len(tok), tok.eos_token_id)
        self.model.train()
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=state["lr"], betas=(0.9, 0.95), eps=1e-8, weight_decay=0
        )
        source = build_source(DataConfig(path=str(world), seq_len=seq_len), tok)
        first = state["data_position"]
        self.batches = [
            torch.as_tensor(
                np.stack([source.sequence(first + s * batch + r) for r in range(batch)]),
                dtype=torch.long,
            )
            for s in range(n_steps)
        ]
        self.next = 0

    def run(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            x = self.batches[self.next % len(self.batches)]
            self.next += 1
            t0 = time.perf_counter()
            logits = self.model(input_ids=x).logits
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            loss.item()
            times.append(time.perf_counter() - t0)
        return times


class InterleavedTimer(Callback):
    """Times each factdyn step (hook after hook, see the module doc) and runs one baseline
    step before it."""

    def __init__(self, plain: PlainLoop, total: int):
        self.plain, self.total = plain, total
        self.fd_steps: list[float] = []
        self.plain_steps: list[float] = []
        self.t0 = 0.0

    def on_step_start(self, step: int, model) -> None:
        if step < self.total:  # one baseline step before each factdyn step
            self.plain_steps.extend(self.plain.run(1))
        self.t0 = time.perf_counter()

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        self.fd_steps.append(time.perf_counter() - self.t0)


def run_interleaved(
    world: Path, base: Path, out: Path, warmup: int, reps: int, chunk: int
) -> tuple[list[list[float]], list[list[float]], int, int]:
    """One factdyn run of warmup + reps·chunk steps, one baseline step before each factdyn
    step. Returns both sides' per-rep step times, the number of injection steps and the
    model's parameter count."""
    import pandas as pd

    from factdyn.config import load_config
    from factdyn.train.experiment import train

    total = warmup + reps * chunk
    interval = max(1, total // 3)  # injections at 0, interval, 2·interval
    cfg = load_config(
        None,
        [
            *tiny_sets(world, base, total),
            f"injection.interval={interval}",
            "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 3},"
            " {name: duplicate, variant: duplicate, count: 3}, {name: once, count: 1}]",
            "injection.allow_truncation=true",
            "injection.n_controls=3",
            "eval.schedule=sparse",
            "eval.window=1",
            "eval.log_points=1",
        ],
    )
    plain = PlainLoop(base, world, total)
    timer = InterleavedTimer(plain, total)
    train(cfg, out, callbacks=[timer])
    fd_reps = [timer.fd_steps[warmup + r * chunk : warmup + (r + 1) * chunk] for r in range(reps)]
    plain_reps = [
        timer.plain_steps[warmup + r * chunk : warmup + (r + 1) * chunk] for r in range(reps)
    ]
    n_inj = pd.read_parquet(out / "injections.parquet").step.nunique()
    n_params = json.loads((out / "meta.json").read_text())["n_parameters"]
    return fd_reps, plain_reps, int(n_inj), n_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=8, help="steps per repetition and side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per side")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1-step chunks")
    args = parser.parse_args()
    if args.quick:
        args.chunk, args.warmup = 1, 1
    reps = max(args.reps, 5)
    torch.set_num_threads(THREADS)
    print(machine_info())

    t0 = time.perf_counter()
    world, base = tiny_setup()
    print(f"tiny world + base: {base} ({time.perf_counter() - t0:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="factdyn-bench-train-") as tmp:
        t0 = time.perf_counter()
        fd_reps, plain_reps, n_inj, n_params = run_interleaved(
            world, base, Path(tmp) / "run", args.warmup, reps, args.chunk
        )
        wall = time.perf_counter() - t0
    tokens = BATCH * SEQ_LEN
    fd_tps = [len(r) * tokens / sum(r) for r in fd_reps]
    pl_tps = [len(r) * tokens / sum(r) for r in plain_reps]
    fd, pl = float(np.median(fd_tps)), float(np.median(pl_tps))
    print(
        f"setup: batch {BATCH} × {SEQ_LEN} tokens, {args.warmup} warm-up + {reps} reps × "
        f"{args.chunk} steps per side, interleaved step by step; factdyn run with injections at {n_inj} "
        f"steps ({wall:.1f} s in all, probe evaluation and setup included)"
    )
    print(
        "factdyn train tokens/s per rep: "
        + ", ".join(f"{v:,.0f}" for v in fd_tps)
        + f"; median {fd:,.0f}"
    )
    print(
        "plain loop    tokens/s per rep: "
        + ", ".join(f"{v:,.0f}" for v in pl_tps)
        + f"; median {pl:,.0f}"
    )
    paired = [p / f - 1 for f, p in zip(fd_tps, pl_tps, strict=True)]
    print(f"overhead per rep (paired): {', '.join(f'{100 * v:+.1f}%' for v in paired)}")

    bc = json.loads((base / "state.json").read_text())["config"]
    fpt = flops_per_token(n_params, bc["layers"], SEQ_LEN, bc["hidden_size"])
    peak = matmul_peak()
    print(
        f"FLOPs/token = 6·N + 12·L·s·d = 6·{n_params:,} + 12·{bc['layers']}·{SEQ_LEN}·"
        f"{bc['hidden_size']} = {fpt / 1e6:.2f} MFLOP"
    )
    print(f"measured peak: 2048² fp32 torch.mm, {THREADS} threads: {peak / 1e9:.1f} GFLOP/s")
    print(
        f"MFU: factdyn {100 * fd * fpt / peak:.1f}% ({fd * fpt / 1e9:.2f} GFLOP/s), "
        f"plain loop {100 * pl * fpt / peak:.1f}% ({pl * fpt / 1e9:.2f} GFLOP/s)"
    )
    overhead = 100 * (pl / fd - 1)
    ok = "met" if overhead <= 5 else "MISSED"
    print(f"target overhead ≤ 5%: {ok}")
    print(f"overhead of factdyn train over the plain loop: {overhead:+.1f}%")


if __name__ == "__main__":
    main()
