"""Benchmark: peak resident memory of ``factdyn train`` and ``factdyn analyze``.

Every measurement is one fresh subprocess (the installed ``factdyn`` command, or the venv's
python for the floors), started by a bare python launcher and reaped there with ``os.wait4``,
whose ``ru_maxrss`` is that process's peak resident set (Linux: KiB). Measured, median of
``--reps`` repetitions (``--train-reps`` for train, the slowest):

* floor (train): python importing torch, transformers' Llama and factdyn's training modules,
  i.e. the libraries alone, before any model or data;
* ``factdyn train`` on the tiny setup of bench_training.py (tiny world, tiny Llama base, the
  tiny run's batch 16 × 128 tokens, injections at steps 0 and 1, truncated to the row; every
  step logged with item contexts; 3 updates; final checkpoint written);
* baseline (train): bench_training.py's plain PyTorch loop, same model and batch, 3 updates;
* floor (analyze): ``factdyn --help`` (the command line without torch);
* ``factdyn analyze`` on the tiny run just trained;
* ``factdyn analyze`` on a paper-scale synthetic run directory (1,800 probes × 2,500 logged
  steps, built with bench_analysis.py's ``synthetic_run`` and written as a run directory;
  its ``logprobs.npy`` alone is 72 MB).

    python benchmarks/bench_memory.py [--reps 5] [--train-reps 3] [--quick]

The last line printed is the peak resident memory of ``factdyn analyze`` at paper scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BIN = Path(sys.executable).parent
THREADS = 2


# A forked child starts with its parent's resident pages, and ru_maxrss counts them: so the
# measured command is started by this small launcher (a bare python, ~10 MiB), never by the
# benchmark process itself (torch imported, hundreds of MiB).
# The train baseline: bench_training.py's hand-written loop, same model, batch 16 × 128.
PLAIN = """
import sys
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(2)
from pathlib import Path
from bench_training import PlainLoop
PlainLoop(Path({base!r}), Path({world!r}), 3, batch=16, seq_len=128).run(3)
"""

LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(peak resident MiB, wall s) of one subprocess; fails loudly if it fails."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *cmd], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    rc, kib = (int(v) for v in res.stdout.split()) if res.returncode == 0 else (1, 0)
    if rc:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return kib / 1024, wall


def measure(label: str, make_cmd, reps: int, env: dict | None = None) -> float:
    values, walls = [], []
    for r in range(reps):
        mib, wall = peak_rss(make_cmd(r), env)
        values.append(mib)
        walls.append(wall)
    med = float(np.median(values))
    print(
        f"{label:<44} peak RSS median {med:7.1f} MiB of {reps} (min {min(values):.1f}, "
        f"max {max(values):.1f}; {np.median(walls):.1f} s per run)"
    )
    return med


def write_synthetic_run(path: Path) -> int:
    """bench_analysis.py's paper-scale synthetic Run, written as a run directory."""
    from bench_analysis import synthetic_run

    run = synthetic_run()
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({}))
    (path / "meta.json").write_text(json.dumps({**run.meta, "status": "done", "steps_done": 0}))
    np.save(path / "steps.npy", run.steps)
    np.save(path / "logprobs.npy", run.logprobs)
    np.save(path / "train.npy", np.zeros((0, 3)))
    for name in ("probes", "items", "injections"):
        getattr(run, name).to_parquet(path / f"{name}.parquet", index=False)
    return run.logprobs.nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--train-reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repetition each")
    args = parser.parse_args()
    reps, train_reps = (1, 1) if args.quick else (max(args.reps, 5), args.train_reps)

    import torch

    torch.set_num_threads(THREADS)
    from bench_training import machine_info, tiny_setup

    print(machine_info())
    world, base = tiny_setup()
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    py, fd = str(Path(sys.executable)), str(BIN / "factdyn")

    with tempfile.TemporaryDirectory(prefix="factdyn-bench-mem-") as tmp:
        tmp = Path(tmp)
        floor_train = measure(
            "floor: python + torch + transformers + factdyn",
            lambda r: [
                py,
                "-c",
                "import torch, factdyn.train.experiment, factdyn.score.loading\n"
                "from transformers import LlamaForCausalLM",
            ],
            reps,
            env,
        )
        scenarios = (
            "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 2},"
            " {name: duplicate, variant: duplicate, count: 2}, {name: once, count: 1}]"
        )

        def train_cmd(r: int) -> list[str]:
            return [
                *(fd, "train", "--out", str(tmp / f"run{r}"), "--world", str(world)),
                *("--model", str(base), "--steps", "3", "-s", f"train.threads={THREADS}"),
                *("-s", "injection.interval=1", "-s", "injection.allow_truncation=true"),
                *("-s", "injection.n_controls=3"),
                *("-s", scenarios),
            ]

        train_mib = measure(
            "factdyn train (tiny, 3 steps, every step logged)", train_cmd, train_reps, env
        )
        plain_mib = measure(
            "plain PyTorch loop (same model, batch, 3 steps)",
            lambda r: [py, "-c", PLAIN.format(here=str(HERE), world=str(world), base=str(base))],
            train_reps,
            env,
        )
        floor_an = measure("floor: factdyn --help", lambda r: [fd, "--help"], reps, env)
        tiny_an = measure(
            "factdyn analyze (the tiny run)",
            lambda r: [fd, "analyze", str(tmp / "run0"), "--out", str(tmp / f"an{r}")],
            reps,
            env,
        )
        t0 = time.perf_counter()
        nbytes = write_synthetic_run(tmp / "paper")
        print(
            f"paper-scale synthetic run written ({time.perf_counter() - t0:.1f} s); "
            f"logprobs.npy {nbytes / 2**20:.1f} MiB"
        )
        paper_an = measure(
            "factdyn analyze (paper scale: 1,800 × 2,500)",
            lambda r: [fd, "analyze", str(tmp / "paper"), "--out", str(tmp / f"pan{r}")],
            reps,
            env,
        )
    print(
        f"above the floor: plain loop +{plain_mib - floor_train:.0f} MiB, "
        f"factdyn train +{train_mib - floor_train:.0f} MiB, analyze tiny "
        f"+{tiny_an - floor_an:.0f} MiB, analyze paper scale +{paper_an - floor_an:.0f} MiB"
    )
    print(f"peak RSS of factdyn analyze at paper scale: {paper_an:.0f} MiB")


if __name__ == "__main__":
    main()
