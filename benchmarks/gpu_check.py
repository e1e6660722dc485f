"""GPU check: does the real-scale path (1B-parameter model, bf16, per-step probe scoring,
torch.compile, FSDP2) run on a GPU, and how fast? One command, a few minutes of GPU time.

GPU machines reach no model hub, so OLMo-1B- and Pythia-1B-shaped models are built from their
architecture configs with random weights and saved with ``save_pretrained`` (the offline
world's tokenizer beside them; its ids are below the models' vocabularies), and every run loads
them through factdyn's own loading code, as it would a hub id. Each run is
``factdyn.train.experiment.train`` itself, on a generated world of 120 items × 15 probes, with
three injection scenarios, bf16 autocast and a 2,048-token batch sized to fill the GPU (the
peak memory of one and of two sequences per step, measured with factdyn's ``train_step``,
extrapolated to 85% of the GPU's memory).

What is timed: a callback passed to ``train`` (it runs after factdyn's probe logger,
checkpointer and training log at every hook, synchronising the GPU first). A step's training
time runs from its ``on_step_start`` to its ``on_step_end`` (batch, injections, forward,
backward, clipping, AdamW, the ``train.npy`` write); its scoring time is the gap before it,
from the previous step's ``on_step_end`` to its ``on_step_start``: the probe logger scoring
θ_t (nothing at a step that is not logged). The first ``WARMUP`` steps (CUDA start-up, and
compilation with ``model.compile=true``) are left out. After the last update is logged the
callback stops the run, so θ_T's scoring and the final checkpoint (weights and AdamW state,
~14 GB at 1B) are not part of it.

Figures per run: tokens/s (training time only, and with scoring), MFU = tokens/s × FLOPs per
token ÷ the GPU's dense bf16 peak (FLOPs from ``factdyn.train.estimate``: 6·N + attention, the
``--dry-run`` estimate; peak looked up from the device name, "unknown" otherwise), the share of
step time spent scoring probes, peak memory (``torch.cuda.max_memory_allocated``; on CPU the
process's peak RSS). Runs: each model with ``eval.schedule=sparse`` and ``every`` and with
``model.compile=true``; FSDP2 (``model.fsdp=true``) over the available GPUs (one GPU: a
one-process group initialised here; several: ``torchrun`` of this script), whose losses must
equal the plain run's to 1e-3. Then factdyn's scorer against the paper's three-pass scorer
(``bench_scoring.paper_way``) on the OLMo-shaped model in bf16, and ``analyze_run`` on the
paper-scale synthetic log of ``bench_analysis``. Sections run in that order until
``--budget-s`` is spent; the rest are recorded as skipped.

    python benchmarks/gpu_check.py --out gpu.json [--budget-s 450]   # on the GPU machine
    python benchmarks/gpu_check.py --toy --out toy.json              # CPU, tiny shapes, < 1 min

``--toy`` compiles with the ``aot_eager`` backend: it traces the model as Inductor would, without
generating kernels (Inductor's CPU kernels are C++, not the GPU's Triton, and cost a minute).

Targets (OLMo-1B shape): MFU ≥ 40%, probe scoring ≤ 5% of step time under ``sparse``, FSDP2
loss equal to the plain run's.
"""

from __future__ import annotations

import argparse
import contextlib
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NoReturn  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from factdyn.files import write_json_atomic  # noqa: E402
from factdyn.train.callbacks import Callback  # noqa: E402

WARMUP = 2  # steps left out of every timing
MEMORY_FRACTION = 0.85  # of the GPU's memory the batch is sized to fill
MAX_BATCH = 64
LOSS_ATOL = 1e-3
# dense bf16 tensor-core peaks (FLOP/s), by a substring of torch.cuda.get_device_name
PEAKS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
)
TARGETS = {"mfu": 0.40, "scoring_share_sparse": 0.05, "fsdp_loss_diff": LOSS_ATOL}

OLMO_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "intermediate_size": 8192,
    "vocab_size": 50304,  # embedding rows; the OLMo tokenizer has 50,280
    "max_position_embeddings": 2048,
    "attention_bias": False,
    "clip_qkv": None,
    "tie_word_embeddings": True,
}
PYTHIA_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 50304,
    "max_position_embeddings": 2048,
    "rotary_pct": 0.25,
    "use_parallel_residual": True,
    "tie_word_embeddings": False,
}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 2048}
FULL = {
    "models": {"olmo": OLMO_1B, "pythia": PYTHIA_1B},
    "seq_len": 2048,
    "world": {"n_items": 120, "corpus_mb": 4, "entities": 500},
    "steps": 30,
    "interval": 10,
    "window": 3,
    "n_controls": 15,
    "probes": 1800,
    "score_reps": 3,
    "score_dtype": "bf16",  # as ``factdyn score --dtype bf16`` on a GPU
    "resamples": 1000,
    "compile_backend": "inductor",
}
TOY = {
    "models": {
        "olmo": OLMO_1B | TINY | {"num_attention_heads": 4, "num_key_value_heads": 4},
        "pythia": PYTHIA_1B | TINY | {"num_attention_heads": 4},
    },
    "seq_len": 256,  # the world's paragraphs are up to ~210 tokens
    "world": {"n_items": 8, "corpus_mb": 0.3, "entities": 200},
    "steps": 7,
    "interval": 3,
    "window": 1,
    "n_controls": 2,
    "probes": 120,
    "score_reps": 1,
    "score_dtype": "fp32",  # bf16 matmuls are slow on most CPUs
    "resamples": 10,
    "compile_backend": "aot_eager",  # the module doc
}


class BudgetSpent(Exception):
    """The time budget ran out inside a run."""


class RunMeasured(Exception):
    """The last update is logged: the run is stopped before θ_T's scoring and final save."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(Callback):
    """Training and scoring time of each step (see the module doc); stops the run after its
    last update, or at the deadline."""

    def __init__(self, total: int, deadline: float, device: torch.device):
        self.total, self.deadline, self.device = total, deadline, device
        self.train_s: list[float] = []
        self.score_s: list[float] = []
        self.loss: list[float] = []  # what the training log writes to train.npy
        self.mark = self.t0 = 0.0

    def on_train_start(self, step: int) -> None:
        sync(self.device)
        self.mark = time.perf_counter()

    def on_step_start(self, step: int, model) -> None:
        sync(self.device)
        self.t0 = time.perf_counter()
        self.score_s.append(self.t0 - self.mark)
        if time.time() > self.deadline:
            raise BudgetSpent(f"budget spent before step {step} of {self.total}")

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        sync(self.device)
        self.mark = time.perf_counter()
        self.train_s.append(self.mark - self.t0)
        self.loss.append(loss)
        if step == self.total - 1:
            raise RunMeasured


def device_info(device: torch.device) -> dict:
    """The machine, and the bf16 peak the MFU figures divide by (None: unknown)."""
    info = {
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }
    if device.type != "cuda":
        return info | {"name": platform.processor() or "cpu", "peak_bf16_flops": None}
    name = torch.cuda.get_device_name(device)
    peak = next((p for key, p in PEAKS if key in name), None)
    props = torch.cuda.get_device_properties(device)
    return info | {
        "name": name,
        "gpus": torch.cuda.device_count(),
        "memory_bytes": props.total_memory,
        "cuda": torch.version.cuda,
        "peak_bf16_flops": peak,
    }


def peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def free_memory(device: torch.device) -> None:
    """Drop what the previous section left (compiled graphs, cached blocks)."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def build_model_dir(arch: str, shape: dict, world: Path, out: Path, device: torch.device) -> int:
    """A random-weight model of ``shape`` and the world's tokenizer, saved as a hub model
    would be; returns its parameter count."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTNeoXConfig, OlmoConfig

    tok = AutoTokenizer.from_pretrained(world / "tokenizer")
    config_class = {"olmo": OlmoConfig, "pythia": GPTNeoXConfig}[arch]
    ids = {"eos_token_id": tok.eos_token_id, "pad_token_id": tok.eos_token_id}
    config = config_class(**shape, **ids)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    free_memory(device)
    return n


def fit_batch(model_dir: Path, seq_len: int, device: torch.device, multiple: int) -> dict:
    """Sequences per step that fill MEMORY_FRACTION of the GPU: the peak of factdyn's
    train_step (bf16 autocast, AdamW state allocated) at one and two sequences, extrapolated."""
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.train.distributed import World
    from factdyn.train.loop import make_optimizer, train_step

    free_memory(device)
    model, tok = load_model_and_tokenizer(str(model_dir), dtype="fp32", device=str(device))
    opt = make_optimizer(model, (0.9, 0.95), 1e-8, 0.0)
    ids = np.random.default_rng(0).integers(0, len(tok), (2, seq_len))
    world = World(0, 1, device)

    def peak(b: int) -> int:
        torch.cuda.reset_peak_memory_stats(device)
        kw = {"lr": 0.0, "micro_batch": b, "grad_clip": 1.0, "world": world}
        train_step(model, opt, ids[:b], ids[:b], autocast_dtype=torch.bfloat16, **kw)
        return int(torch.cuda.max_memory_allocated(device))

    peak(1)  # allocates AdamW's moments
    one, two = peak(1), peak(2)
    per_seq = max(two - one, 1)
    total = torch.cuda.get_device_properties(device).total_memory
    batch = 1 + int((MEMORY_FRACTION * total - one) // per_seq)
    batch = max(multiple, min(MAX_BATCH, batch) // multiple * multiple)
    return {"batch": batch, "peak_one_seq": one, "per_sequence": per_seq, "gpu_memory": total}


def run_overrides(spec: dict, world: Path, model_dir: Path, batch: int) -> list[str]:
    """The runs' configuration: factdyn's defaults but for these (paper's protocol: one
    cohort, scenarios together; bf16; no optimizer state beside a random model)."""
    steps = spec["steps"]
    return [
        f"data.path={world}",
        f"model.name={model_dir}",
        "model.dtype=bf16",
        f"data.seq_len={spec['seq_len']}",
        f"train.steps={steps}",
        f"train.batch_size={batch}",
        f"train.checkpoint_every={steps}",
        "optim.lr=1e-4",
        f"injection.interval={spec['interval']}",
        "injection.cohorts=1",
        "injection.scenario_offset=0",
        "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 2},"
        " {name: duplicate, variant: duplicate, count: 2}, {name: once, count: 1}]",
        "injection.allow_truncation=true",
        f"injection.n_controls={spec['n_controls']}",
        f"eval.window={spec['window']}",
        "eval.log_points=3",
    ]


def timed_run(overrides: list[str], run_dir: Path, deadline: float) -> dict:
    """One ``train`` run with the step timer; the figures of the module doc."""
    from factdyn.config import load_config
    from factdyn.rundir import load_run
    from factdyn.train.distributed import resolve_device
    from factdyn.train.estimate import estimate
    from factdyn.train.experiment import train

    cfg = load_config(None, overrides)
    device = resolve_device(cfg.model.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    free_memory(device)
    timer = StepTimer(cfg.train.steps, deadline, device)
    t0 = time.perf_counter()
    with contextlib.suppress(RunMeasured):
        train(cfg, run_dir, callbacks=[timer])
    wall = time.perf_counter() - t0
    mem, mem_kind = peak_memory(device)
    if int(os.environ.get("RANK", "0")):
        return {}
    run = load_run(run_dir)
    procs = int(os.environ.get("WORLD_SIZE", "1"))
    est = estimate(cfg, procs)
    tokens = est["tokens_per_step"]
    train_s, score_s = np.array(timer.train_s[WARMUP:]), np.array(timer.score_s[WARMUP:])
    logged = score_s[np.isin(np.arange(WARMUP, cfg.train.steps), run.steps)]
    peak = device_info(device)["peak_bf16_flops"]
    peak = peak * procs if peak else None  # the run's GPUs together
    flops_per_token = est["flops_per_step"] / tokens
    tps, tps_all = (
        tokens * len(train_s) / train_s.sum(),
        tokens * len(train_s) / (train_s.sum() + score_s.sum()),
    )
    return {
        "schedule": cfg.eval.schedule,
        "compile": cfg.model.compile,
        "compile_backend": cfg.model.compile_backend if cfg.model.compile else None,
        "fsdp": cfg.model.fsdp,
        "processes": procs,
        "steps": cfg.train.steps,
        "measured_steps": len(train_s),
        "batch": cfg.train.batch_size,
        "seq_len": cfg.data.seq_len,
        "tokens_per_step": tokens,
        "n_parameters": est["parameters"],
        "flops_per_token": flops_per_token,
        "first_step_s": timer.train_s[0],
        "train_s_per_step": float(np.median(train_s)),
        "tokens_per_s": tps,
        "tokens_per_s_with_scoring": tps_all,
        "mfu": tps * flops_per_token / peak if peak else None,
        "mfu_with_scoring": tps_all * flops_per_token / peak if peak else None,
        "scoring_share": float(score_s.sum() / (score_s.sum() + train_s.sum())),
        "logged_steps_measured": len(logged),
        # a short run logs a larger share of its steps than a long one with the same windows
        "logged_fraction": len(logged) / len(train_s),
        "score_s_per_logged_step": float(np.median(logged)) if len(logged) else None,
        "probes": int(run.logprobs.shape[1]),
        "peak_memory_bytes": mem,
        "peak_memory_kind": mem_kind,
        "wall_s": wall,
        "loss": timer.loss,
    }


def fsdp_run(overrides: list[str], run_dir: Path, deadline: float, procs: int, tmp: Path) -> dict:
    """The run with ``model.fsdp=true``: in this process over a one-process group (one GPU,
    or the CPU), else ``torchrun`` of this script on ``procs`` GPUs."""
    import torch.distributed as dist

    overrides = [*overrides, "model.fsdp=true"]
    if procs > 1:
        spec, out = tmp / "fsdp-spec.json", tmp / "fsdp-result.json"
        spec.write_text(json.dumps({"overrides": overrides, "run_dir": str(run_dir)}))
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launcher, f"--nproc_per_node={procs}", __file__, "--fsdp-worker", str(spec)]
        cmd += ["--out", str(out), "--deadline", str(deadline)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            lines = r.stderr.strip().splitlines() or ["no output"]
            raise RuntimeError(f"torchrun exited {r.returncode}: {lines[-1]}")
        result = json.loads(out.read_text())
        if "budget_spent" in result:
            raise BudgetSpent(result["budget_spent"])
        return result
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    store = f"file://{tmp / 'pg-store'}"
    if device.type == "cuda":
        torch.cuda.set_device(0)
    dist.init_process_group(backend, init_method=store, rank=0, world_size=1)
    try:
        return timed_run(overrides, run_dir, deadline)
    finally:
        dist.destroy_process_group()


def scoring_check(
    model_dir: Path, n_probes: int, reps: int, dtype: str, device: torch.device
) -> dict:
    """factdyn's scorer vs the paper's three-pass scorer on the OLMo-shaped model, on
    bench_scoring's probe-like requests."""
    from bench_scoring import make_requests, paper_way, timed
    from factdyn.score.loading import load_model_and_tokenizer
    from factdyn.score.loglik import score_requests

    free_memory(device)
    model, tok = load_model_and_tokenizer(str(model_dir), dtype=dtype, device=str(device))
    model.eval()
    reqs = make_requests(n_probes, len(tok))
    ours = score_requests(model, reqs, full=True)  # warm-up, and the numbers to compare
    few = np.arange(0, len(reqs), 8)
    theirs = paper_way(model, reqs.subset(few), width=int(reqs.lengths.max()))
    fns = {
        "factdyn": lambda: score_requests(model, reqs, full=True),
        "paper": lambda: paper_way(model, reqs),
    }
    t = timed(fns, reps)
    return {
        "probes": len(reqs),
        "dtype": dtype,
        "reps": reps,
        "factdyn_s": t["factdyn"],
        "paper_s": t["paper"],
        "speedup": t["paper"] / t["factdyn"],
        "max_abs_diff": float(np.abs(ours[few, :4] - theirs).max()),
    }


def analysis_check(resamples: int) -> dict:
    """``analyze_run`` (what ``factdyn analyze`` computes) on the paper-scale synthetic log."""
    from bench_analysis import synthetic_run
    from factdyn.analyze.populations import analyze_run

    run = synthetic_run()
    t0 = time.perf_counter()
    analysis = analyze_run(run, resamples=resamples)
    return {
        "probes": int(run.logprobs.shape[1]),
        "steps": int(run.logprobs.shape[0]),
        "resamples": resamples,
        "seconds": time.perf_counter() - t0,
        "populations": len(analysis.populations),
        "finished": True,
    }


def run_sections(sections: list[tuple[str, Callable[[], object]]], budget_s: float, out: dict):
    """Each section in order while the budget lasts; results, skips and errors into ``out``."""
    start = time.time()
    done, skipped, failed, seconds = [], {}, {}, {}
    for name, fn in sections:
        elapsed = time.time() - start
        if elapsed >= budget_s:
            skipped[name] = f"budget of {budget_s:g} s spent ({elapsed:.0f} s)"
            continue
        print(f"[{elapsed:6.1f} s] {name}", file=sys.stderr, flush=True)
        t0 = time.time()
        try:
            fn()
            done.append(name)
        except BudgetSpent as e:
            skipped[name] = str(e)
        except Exception as e:  # one failing section must not cost the others' GPU time
            failed[name] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        seconds[name] = round(time.time() - t0, 1)
    out["sections"] = {"done": done, "skipped": skipped, "failed": failed, "seconds": seconds}
    out["elapsed_s"] = time.time() - start


def check(spec: dict, work: Path, budget_s: float, procs: int, skip: set[str]) -> dict:
    """Every section of the module doc; the JSON document."""
    from factdyn.data.generator import generate_world

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    deadline = time.time() + budget_s
    out: dict = {"machine": device_info(device), "budget_s": budget_s, "targets": TARGETS}
    out |= {"models": {}, "runs": {}, "fsdp": None, "scoring": None, "analysis": None}
    world, dirs, batches = work / "world", {}, {}

    def setup() -> None:
        generate_world(world, **spec["world"])
        for arch, shape in spec["models"].items():
            dirs[arch] = work / arch
            n = build_model_dir(arch, shape, world, dirs[arch], device)
            fit = (
                fit_batch(dirs[arch], spec["seq_len"], device, procs)
                if device.type == "cuda"
                else {}
            )
            batches[arch] = fit.get("batch", 4 * procs)
            out["models"][arch] = {"config": shape, "n_parameters": n, "batch_fit": fit}

    def plain(arch: str, schedule: str, compiled: bool = False) -> Callable[[], None]:
        def go() -> None:
            label = f"{arch}/{schedule}" + ("/compile" if compiled else "")
            ov = run_overrides(spec, world, dirs[arch], batches[arch])
            ov += [f"eval.schedule={schedule}", f"model.compile={str(compiled).lower()}"]
            ov += [f"model.compile_backend={spec['compile_backend']}"]
            out["runs"][label] = timed_run(ov, work / "runs" / label.replace("/", "-"), deadline)

        return go

    def fsdp() -> None:
        base = out["runs"].get("olmo/sparse")
        if base is None:
            raise RuntimeError("needs the plain olmo/sparse run, which did not finish")
        ov = [*run_overrides(spec, world, dirs["olmo"], batches["olmo"]), "eval.schedule=sparse"]
        r = fsdp_run(ov, work / "runs" / "olmo-sparse-fsdp", deadline, procs, work)
        out["runs"]["olmo/sparse/fsdp"] = r
        diff = float(np.max(np.abs(np.subtract(r["loss"], base["loss"]))))
        out["fsdp"] = {"processes": procs, "max_abs_loss_diff": diff, "ok": diff <= LOSS_ATOL}

    def scoring() -> None:
        out["scoring"] = scoring_check(
            dirs["olmo"], spec["probes"], spec["score_reps"], spec["score_dtype"], device
        )

    def analysis() -> None:
        out["analysis"] = analysis_check(spec["resamples"])

    sections = [
        ("setup", setup),
        ("olmo/sparse", plain("olmo", "sparse")),
        ("olmo/every", plain("olmo", "every")),
        ("olmo/sparse/fsdp", fsdp),
        ("olmo/sparse/compile", plain("olmo", "sparse", True)),
        ("scoring", scoring),
        ("analysis", analysis),
        ("pythia/sparse", plain("pythia", "sparse")),
        ("pythia/every", plain("pythia", "every")),
        ("pythia/sparse/compile", plain("pythia", "sparse", True)),
    ]
    unknown = skip - {name for name, _ in sections}
    if unknown:
        fail(f"--skip {sorted(unknown)[0]}: no such section")
    run_sections([s for s in sections if s[0] not in skip], budget_s, out)
    out["sections"]["skipped"] |= {name: "--skip" for name, _ in sections if name in skip}
    out["verdicts"] = verdicts(out)
    return out


def verdicts(out: dict) -> dict:
    """met / MISSED / unknown for each target (OLMo-1B shape)."""

    def judge(value, ok: Callable[[float], bool]) -> str:
        return "unknown" if value is None else ("met" if ok(value) else "MISSED")

    run = out["runs"].get("olmo/sparse") or {}
    fsdp = out["fsdp"] or {}
    return {
        "mfu": judge(run.get("mfu"), lambda v: v >= TARGETS["mfu"]),
        "scoring_share_sparse": judge(
            run.get("scoring_share"), lambda v: v <= TARGETS["scoring_share_sparse"]
        ),
        "fsdp_loss_diff": judge(fsdp.get("max_abs_loss_diff"), lambda v: v <= LOSS_ATOL),
    }


def table(out: dict) -> str:
    """The short text summary printed on stdout."""
    m = out["machine"]
    peak = m["peak_bf16_flops"]
    lines = [
        f"{m['name']} ({m['device']}), torch {m['torch']}; bf16 peak "
        + (f"{peak / 1e12:.0f} TFLOP/s (from the device name)" if peak else "unknown"),
        f"{'run':<24}{'batch':>6}{'tok/s':>10}{'MFU':>7}{'+score':>8}{'score%':>8}"
        f"{'peak GiB':>10}{'loss':>8}",
    ]
    for label, r in out["runs"].items():
        pct = lambda v: f"{100 * v:.1f}" if v is not None else "n/a"  # noqa: E731
        lines.append(
            f"{label:<24}{r['batch']:>6}{r['tokens_per_s']:>10,.0f}{pct(r['mfu']):>7}"
            f"{pct(r['mfu_with_scoring']):>8}{pct(r['scoring_share']):>8}"
            f"{r['peak_memory_bytes'] / 2**30:>10.1f}{r['loss'][-1]:>8.3f}"
        )
    if out["fsdp"]:
        f = out["fsdp"]
        lines.append(
            f"FSDP2 ({f['processes']} process(es)) vs plain: max |loss difference| "
            f"{f['max_abs_loss_diff']:.2e} ({'ok' if f['ok'] else 'MISMATCH'})"
        )
    if out["scoring"]:
        s = out["scoring"]
        lines.append(
            f"scorer, {s['probes']} probes ({s['dtype']}): factdyn {s['factdyn_s']:.3f} s, paper's "
            f"three passes {s['paper_s']:.3f} s ({s['speedup']:.1f}x); max |diff| {s['max_abs_diff']:.2e}"
        )
    if out["analysis"]:
        a = out["analysis"]
        lines.append(
            f"analyze, {a['probes']} probes × {a['steps']} steps, {a['resamples']} resamples: "
            f"{a['seconds']:.1f} s"
        )
    sec = out["sections"]
    for name, why in {**sec["skipped"], **sec["failed"]}.items():
        lines.append(f"not done: {name}: {why}")
    lines.append(
        f"targets: MFU ≥ 40% {out['verdicts']['mfu']}, scoring ≤ 5% (sparse) "
        f"{out['verdicts']['scoring_share_sparse']}, FSDP2 loss = plain "
        f"{out['verdicts']['fsdp_loss_diff']}; {out['elapsed_s']:.0f} s in all"
    )
    return "\n".join(lines)


def fail(message: str) -> NoReturn:
    """Bad input: one line, exit code 2, nothing written."""
    print(f"gpu_check: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the JSON file written")
    ap.add_argument("--budget-s", type=float, default=450, help="sections stop past this")
    ap.add_argument("--toy", action="store_true", help="tiny shapes, runs on the CPU")
    ap.add_argument(
        "--fsdp-procs", type=int, default=None, help="processes of the FSDP2 run (default: GPUs)"
    )
    ap.add_argument("--skip", default="", help="sections left out, comma-separated")
    ap.add_argument("--fsdp-worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fsdp_worker:  # one rank of the torchrun FSDP2 run
        spec = json.loads(args.fsdp_worker.read_text())
        try:
            result = timed_run(spec["overrides"], Path(spec["run_dir"]), args.deadline)
        except BudgetSpent as e:
            result = {"budget_spent": str(e)}
        if int(os.environ.get("RANK", "0")) == 0:
            args.out.write_text(json.dumps(result))
        return
    if args.out.exists():  # an earlier machine's figures are not overwritten
        fail(f"--out {args.out}: exists; give another file")
    if not args.toy and not torch.cuda.is_available():
        fail("no CUDA device here (use --toy for the tiny CPU version)")
    procs = args.fsdp_procs or max(1, torch.cuda.device_count())
    with tempfile.TemporaryDirectory(prefix="factdyn-gpu-check-") as tmp:
        os.environ.setdefault("FACTDYN_CACHE", str(Path(tmp) / "cache"))
        out = check(
            TOY if args.toy else FULL,
            Path(tmp),
            args.budget_s,
            procs,
            set(filter(None, args.skip.split(","))),
        )
    out["toy"] = args.toy
    write_json_atomic(args.out, out)
    print(table(out))


if __name__ == "__main__":
    main()
