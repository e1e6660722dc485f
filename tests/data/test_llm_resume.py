"""A generation killed mid-way resumes from its cache without asking anything twice, and a
rerun with the same seed and cache writes the same file without asking anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_llm import FakeLLM, knowledge_json
from typer.testing import CliRunner

import factdyn
from factdyn.cli import app
from factdyn.data.llm.client import request_key


def _args(fake: FakeLLM, tmp_path: Path, out: str, concurrency: int = 1) -> list[str]:
    return ["generate", "--llm", fake.url, "--llm-model", "planted-7b", "--items", "3",
            "--seed", "11", "--concurrency", str(concurrency), "--out", str(tmp_path / out),
            "--cache", str(tmp_path / "cache")]  # fmt: skip


def test_killed_generation_resumes_without_repeating_requests(tmp_path):
    fake = FakeLLM(hang_at=4)  # the fifth request never gets its reply
    try:
        env = {**os.environ, "PYTHONPATH": str(Path(factdyn.__file__).parents[1])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "factdyn", *_args(fake, tmp_path, "out")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert fake.hung.wait(60), proc.communicate()[0]
        finally:
            proc.kill()
            proc.wait()
        fake.hang_at = None
        fake.release.set()
        first = [e["body"] for e in fake.log]
        answered = {request_key(b) for b in first[:4]}
        assert len(first) == 5 and len(answered) == 4
        assert not (tmp_path / "out").exists()
        assert {p.stem for p in (tmp_path / "cache").rglob("*.json")} == answered

        r = CliRunner().invoke(app, _args(fake, tmp_path, "out"))
        assert r.exit_code == 0, r.output
        again = [request_key(e["body"]) for e in fake.log[5:]]
        assert not answered & set(again), "a cached request was sent again"
        assert again[0] == request_key(first[4])  # the one left unanswered, then the rest
        assert len(again) == 9 - 4
        record = json.loads((tmp_path / "out" / "generation.json").read_text())
        assert record["requests"] == {"asked": 9, "from_cache": 4, "sent": 5, "retries": 0}
        written = (tmp_path / "out" / "knowledge.json").read_bytes()
        assert json.loads(written) == [knowledge_json(k) for k in range(3)]

        # same seed and cache, another folder, items asked at once: nothing sent, the same file
        n = len(fake.log)
        r = CliRunner().invoke(app, _args(fake, tmp_path, "out2", concurrency=3))
        assert r.exit_code == 0, r.output
        assert len(fake.log) == n
        assert (tmp_path / "out2" / "knowledge.json").read_bytes() == written
        record = json.loads((tmp_path / "out2" / "generation.json").read_text())
        assert record["requests"] == {"asked": 9, "from_cache": 9, "sent": 0, "retries": 0}
    finally:
        fake.close()
