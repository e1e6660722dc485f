"""``factdyn export --out FILE``: the file's extension picks the format (.parquet, .csv,
.jsonl), each holding the same table; any other extension is refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.rundir import STATS, export_long, init_logs, load_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run written by hand: 2 items (one a control) × 2 probes, 3 logged steps,
    one statistic missing."""
    root = tmp_path_factory.mktemp("run")
    probes = pd.DataFrame(
        [(0, "once", "memorization", 0), (0, "once", "semantic", 0)]
        + [(1, "control", "memorization", 0), (1, "control", "semantic", 0)],
        columns=["item", "scenario", "depth", "probe"],
    )
    probes.insert(0, "probe_id", np.arange(len(probes)))
    probes["input"], probes["target"] = "in", "out"
    probes.to_parquet(root / "probes.parquet", index=False)
    pd.DataFrame(
        {"item": [0, 1], "scenario": ["once", "control"], "n_injections": [1, 0]}
    ).to_parquet(root / "items.parquet", index=False)
    pd.DataFrame(
        [(0, 0, 0, "once", 0, 0, 5)],
        columns=["step", "row", "item", "scenario", "variant", "token_start", "token_end"],
    ).to_parquet(root / "injections.parquet", index=False)
    meta = {"tokens_per_step": 512, "window": 1, "status": "done", "steps_done": 2}
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "config.yaml").write_text("train: {steps: 2}\n")
    init_logs(root, np.arange(3), len(probes), 2)
    log = np.lib.format.open_memmap(root / "logprobs.npy", mode="r+")
    log[...] = np.random.default_rng(0).uniform(-9, -0.5, log.shape)
    log[1, 2, STATS.index("first")] = np.nan
    log.flush()
    del log
    return root


def _read(path):
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() == ".jsonl":
        return pd.read_json(path, lines=True)
    return pd.read_parquet(path)


@pytest.mark.parametrize("name", ["log.parquet", "log.csv", "log.jsonl", "LOG.CSV"])
def test_the_extension_picks_the_format(run, tmp_path, name):
    out = tmp_path / name
    result = CliRunner().invoke(app, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    want = export_long(load_run(run))
    got = _read(out)
    if out.suffix.lower() == ".csv":
        assert out.read_text().startswith(",".join(want.columns) + "\n")  # text, not Parquet
    if out.suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == len(want) and list(rows[0]) == list(want.columns)
        assert sum(r["first"] is None for r in rows) == 1  # a missing statistic is null
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for col in want.columns:
        if want[col].dtype.kind == "f":
            np.testing.assert_allclose(got[col], want[col], rtol=1e-6, equal_nan=True)
        else:
            assert got[col].tolist() == want[col].tolist(), col
    assert f"{len(want):,} rows written to {out}" in result.output


@pytest.mark.parametrize("name", ["log.tsv", "log", "log.json", "log.parquet.gz"])
def test_another_extension_is_refused_in_one_line(run, tmp_path, exits_2, name):
    out = tmp_path / name
    err = exits_2(["export", run, "--out", out])
    assert f"{out}: export writes .parquet, .csv or .jsonl files" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_context_log_of_an_older_run_is_not_read(run, tmp_path):
    """Runs written before hold a context.npy (each item's paragraph, never analysed): a new
    run writes none, and an older one loads whatever that file holds."""
    assert not (run / "context.npy").exists()
    older = shutil.copytree(run, tmp_path / "older")
    (older / "context.npy").write_bytes(b"not an array")
    pd.testing.assert_frame_equal(export_long(load_run(older)), export_long(load_run(run)))
