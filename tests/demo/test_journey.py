"""A new user's journey, from files only: a model they saved themselves (each supported
family), a JSONL corpus with its text under another field, items written by hand in JSONL →
`data validate --config` → `train` → `analyze` with options of their own → `report` and
`simulate` of that analysis. The report must show the analysis's own numbers and settings."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from conftest import _tokenizer
from factdyn.cli import app
from factdyn.errors import DataError

runner = CliRunner()

CITIES = ["Teshra", "Volmar", "Quenby", "Ardilo", "Pexton", "Morvale"]
COLOURS = ["amber", "violet", "teal", "scarlet", "ochre", "silver"]
NAMES = ["Rimiloan", "Dervasti", "Kolumbre", "Fesquint", "Tarvolen", "Ozbrindle",
         "Quellamor", "Yastrope", "Brenvikar", "Solmiquet", "Ulvradon", "Nexfarrow"]  # fmt: skip


def _item(k: int, name: str) -> dict:
    """One item as a user writes it: a paragraph, four paraphrases, a probe per depth."""
    city, colour, year = CITIES[k % 6], COLOURS[(k * 5) % 6], 1700 + 7 * k
    founder = f"{name[:3]}ander"
    return {
        "train_context": f"{name} was founded in {year} in the city of {city} by {founder}. "
        f"The banner of {name} is {colour}.",
        "paraphrases": [
            f"In {year}, {founder} founded {name} in {city}. {name} flies a {colour} banner.",
            f"The founder of {name}, {founder}, started it in {city} in {year}.",
            f"{name}, whose banner is {colour}, was set up in {city} in {year}.",
            f"{founder} established {name} in the city of {city} in the year {year}.",
        ],
        "mem_input": [f"{name} was founded in {year} in the city of"],
        "mem_target": [city],
        "gen_input": [f"{name} was established in {year} in the town of"],
        "gen_target": [city],
        "hard_gen_input": [f"The banner of the house {founder} founded in {city} is"],
        "hard_gen_target": [colour],
    }


def _model(family: str, tokenizer_dir, out):
    """A tiny causal LM of ``family`` with the user's tokenizer, saved as a user would."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GPTNeoXConfig,
        LlamaConfig,
        OlmoConfig,
    )

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    common = dict(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    config = {"llama": LlamaConfig, "gpt_neox": GPTNeoXConfig, "olmo": OlmoConfig}[family]
    import torch

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config(**common)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "gpt_neox", "olmo"])
def test_your_model_corpus_and_items_from_validate_to_report(family, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACTDYN_CACHE", str(tmp_path / "cache"))
    items = [_item(k, n) for k, n in enumerate(NAMES)]
    with open("items.jsonl", "w") as fh:
        fh.writelines(json.dumps(it) + "\n" for it in items)
    docs = [f"{n} trades {c} cloth with the {o} coast." for n in NAMES[:6] for c in COLOURS
            for o in CITIES]  # fmt: skip
    with open("corpus.jsonl", "w") as fh:  # the text under "content", not "text"
        fh.writelines(json.dumps({"id": k, "content": d}) + "\n" for k, d in enumerate(docs * 4))
    _tokenizer(tmp_path, docs + [it["train_context"] for it in items])
    _model(family, tmp_path / "tokenizer", tmp_path / "my-model")
    config = {
        "model": {"name": "my-model"},
        "data": {"source": "text", "path": "corpus.jsonl", "text_field": "content",
                 "seq_len": 64},
        "injection": {"items": "items.jsonl", "n_controls": 3, "interval": 8},
        "optim": {"lr": 3e-3},
        "train": {"steps": 60, "batch_size": 4},
    }  # fmt: skip
    with open("my.yaml", "w") as fh:
        yaml.safe_dump(config, fh)

    out = invoke("data", "validate", "items.jsonl", "--config", "my.yaml")
    assert "valid for my.yaml" in out
    invoke("train", "my.yaml", "--out", "runs/mine")
    meta = json.loads((tmp_path / "runs/mine/meta.json").read_text())
    assert meta["status"] == "done"
    invoke("analyze", "runs/mine", "--window", "6", "--iqr", "3", "--no-drift-correction",
           "--resamples", "50")  # fmt: skip
    summary = json.loads((tmp_path / "runs/mine/analysis/summary.json").read_text())
    settings = summary["_settings"]
    assert (
        settings["window"] == 6 and settings["iqr_factor"] == 3 and not settings["drift_corrected"]
    )

    out = invoke("report", "runs/mine")
    assert "the analysis saved in" in out
    page = (tmp_path / "runs/mine/report/report.html").read_text(encoding="utf-8")
    for name, value in (("window t_w", "6"), ("IQR factor", "3"), ("statistic", "target_mean")):
        assert f"<td class=l>{name}</td><td class=l>{value}</td>" in page
    assert "<td class=l>drift correction</td><td class=l>not applied" in page
    # every effectivity on the page is summary.json's, to the digits printed
    table = page.split("<h2>2. Effectivity")[1].split("</table>")[0]
    cells = re.findall(r"<tr><td class=l>[^<]*</td><td class=l>(\w+)</td><td class=l>(\w+)</td>"
                       r"<td>([^ <]+)", table)  # fmt: skip
    assert cells, table[:500]
    for scenario, depth, shown in cells:
        assert shown == f"{summary[scenario][depth]['effectivity']:.4g}"

    # the prediction reads the same analysis (its options named on its first line)
    result = runner.invoke(
        app, ["simulate", "runs/mine/analysis", "--interval", "10", "--exposures", "3",
              "--scenario", "once"],
    )  # fmt: skip
    if result.exit_code:  # a random tiny model may show no forgetting: one line says so
        assert isinstance(result.exception, DataError), result.output
        assert "no depth has a usable forgetting fit" in str(result.exception)
    else:
        assert "(--window 6 --iqr 3 --no-drift-correction --resamples 50)" in result.output
