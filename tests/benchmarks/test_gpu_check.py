"""benchmarks/gpu_check.py at toy size on the CPU: every section runs, and the JSON it writes
holds sane figures (the GPU machine gets one try, so its script is checked here first)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"
SECTIONS = [
    "setup",
    "olmo/sparse",
    "olmo/every",
    "olmo/sparse/fsdp",
    "olmo/sparse/compile",
    "scoring",
    "analysis",
    "pythia/sparse",
    "pythia/every",
    "pythia/sparse/compile",
]


def _check(out: Path, *args: str) -> tuple[dict, str]:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--toy", "--out", str(out), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def test_toy_run_measures_every_section(tmp_path):
    doc, stdout = _check(tmp_path / "toy.json")
    sections = doc["sections"]
    assert sections["failed"] == {} and sections["skipped"] == {}
    assert sections["done"] == SECTIONS
    assert doc["toy"] is True and doc["machine"]["peak_bf16_flops"] is None  # CPU: no peak
    assert set(doc["models"]) == {"olmo", "pythia"}
    assert all(m["n_parameters"] > 0 for m in doc["models"].values())

    runs = doc["runs"]
    assert set(runs) == {s for s in SECTIONS if "/" in s}
    for label, r in runs.items():
        assert r["tokens_per_s"] > 0 and r["tokens_per_s_with_scoring"] <= r["tokens_per_s"]
        assert 0 <= r["scoring_share"] <= 1, label
        assert r["mfu"] is None  # unknown peak, never a made-up figure
        assert r["peak_memory_bytes"] > 0
        assert r["tokens_per_step"] == r["batch"] * r["seq_len"]
        assert r["flops_per_token"] > 6 * r["n_parameters"]
        assert len(r["loss"]) == r["steps"] and all(math.isfinite(x) for x in r["loss"])
        assert r["measured_steps"] == r["steps"] - 2  # warm-up left out
        assert r["probes"] % 15 == 0 and r["probes"] >= 15 * 8
        assert 0 < r["logged_steps_measured"] <= r["measured_steps"]
        if r["schedule"] == "every":
            assert r["logged_steps_measured"] == r["measured_steps"]
    assert runs["olmo/sparse/compile"]["compile"] and runs["olmo/sparse/fsdp"]["fsdp"]
    assert runs["pythia/sparse/compile"]["compile_backend"] == "aot_eager"  # --toy's (no C++)
    # the same data and weights: the plain runs of a model agree on the loss
    assert runs["olmo/every"]["loss"] == runs["olmo/sparse"]["loss"]

    fsdp = doc["fsdp"]
    assert fsdp["processes"] == 1 and fsdp["ok"] and fsdp["max_abs_loss_diff"] <= 1e-3

    scoring = doc["scoring"]
    assert scoring["probes"] == 120 and scoring["max_abs_diff"] < 1e-3
    assert scoring["factdyn_s"] > 0 and scoring["paper_s"] > 0

    analysis = doc["analysis"]
    assert analysis["finished"] and analysis["probes"] == 1800 and analysis["seconds"] > 0
    assert analysis["populations"] > 0

    assert doc["verdicts"]["mfu"] == "unknown" and doc["verdicts"]["fsdp_loss_diff"] == "met"
    assert "olmo/sparse/fsdp" in stdout and "targets:" in stdout


def test_spent_budget_skips_every_section_and_says_so(tmp_path):
    doc, stdout = _check(tmp_path / "none.json", "--budget-s", "0")
    assert doc["sections"]["done"] == [] and list(doc["sections"]["skipped"]) == SECTIONS
    assert doc["runs"] == {} and doc["fsdp"] is None
    assert set(doc["verdicts"].values()) == {"unknown"}
    assert "not done: setup: budget of 0 s spent" in stdout


def test_unknown_section_is_one_line(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--toy", "--out", str(tmp_path / "x.json")]
    r = subprocess.run([*cmd, "--skip", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == (
        "gpu_check: error: --skip nonsense: no such section"
    )
    assert not (tmp_path / "x.json").exists()


def test_an_existing_out_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "gpu.json"
    out.write_text("earlier figures")
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--toy", "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.strip() == (
        f"gpu_check: error: --out {out}: exists; give another file"
    )
    assert out.read_text() == "earlier figures"
