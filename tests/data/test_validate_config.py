"""``factdyn data validate FILE --config CFG`` checks the items against what that run asks of
them, with the very checks ``factdyn train`` makes: the two refuse in the same words."""

from __future__ import annotations

import shutil

import pytest

from factdyn.data.items import load_items, save_items


@pytest.fixture(scope="module")
def tokenizer_only(toy_world, tmp_path_factory):
    """A model folder with a tokenizer and no weights: train refuses before it needs them."""
    d = tmp_path_factory.mktemp("model") / "model"
    shutil.copytree(toy_world / "tokenizer", d)
    return d


def _items(toy_world, path, paraphrases: int = 9):
    items = load_items(toy_world / "knowledge.json")
    save_items(
        [type(it)(it.train_context, it.probes, it.paraphrases[:paraphrases]) for it in items],
        path,
    )
    return path


def _config(path, toy_world, model, **extra: str):
    lines = {
        "model": f"{{name: {model}}}" if model else "{}",
        "data": f"{{source: text, path: {toy_world / 'corpus'}, seq_len: 64}}",
        "injection": "{n_controls: 3, cohorts: 1}",
        "optim": "{lr: 1.0e-3}",
        "train": "{steps: 110, batch_size: 4}",
        **extra,
    }
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return path


def test_one_paraphrase_per_item_is_refused_as_train_refuses_it(
    toy_world, tokenizer_only, tmp_path, exits_2
):
    items = _items(toy_world, tmp_path / "items.jsonl", paraphrases=1)
    config = _config(
        tmp_path / "mine.yaml",
        toy_world,
        tokenizer_only,
        injection=f"{{items: {items}, n_controls: 3, cohorts: 1}}",
    )
    refused = exits_2(["data", "validate", items, "--config", config])
    assert "field 'paraphrases': 1 paraphrase," in refused and "scenario 'paraphrase'" in refused
    assert exits_2(["train", config, "--out", tmp_path / "run"]) == refused
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    # without --config the file itself is well formed: valid
    from typer.testing import CliRunner

    from factdyn.cli import app

    plain = CliRunner().invoke(app, ["data", "validate", str(items)])
    assert plain.exit_code == 0 and f"{items}: valid" in plain.output


def test_set_overrides_the_config_as_train_does(toy_world, tokenizer_only, tmp_path, exits_2):
    items = _items(toy_world, tmp_path / "items.jsonl")
    config = _config(tmp_path / "mine.yaml", toy_world, tokenizer_only)
    over = ["--set", "injection.n_controls=30"]
    refused = exits_2(["data", "validate", items, "--config", config, *over])
    assert "9 items cannot fill 3 scenarios" in refused
    assert "set injection.n_controls=6 or less" in refused
    trained = exits_2(
        ["train", config, *over, "--set", f"injection.items={items}", "--out", tmp_path / "r"]
    )
    assert trained == refused


def test_a_run_the_items_suit_is_described(toy_world, tokenizer_only, tmp_path):
    from typer.testing import CliRunner

    from factdyn.cli import app

    items = _items(toy_world, tmp_path / "items.jsonl")
    config = _config(tmp_path / "mine.yaml", toy_world, tokenizer_only)
    r = CliRunner().invoke(app, ["data", "validate", str(items), "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert f"{items}: valid for {config}" in r.output
    # 9 items, 3 controls: 2 per scenario, in scenario order (split_items' blocks)
    assert "items per scenario: paraphrase 2, duplicate 2, once 2, control 3" in r.output
    # paraphrase and duplicate: 5 injections each of 2 items; once: 1 each
    assert "22 injections at steps 0 to 81, train.steps=110" in r.output
    assert "fits data.seq_len=64" in r.output
    assert f"corpus: {toy_world / 'corpus'} (text, field 'text'): " in r.output
    # no model named: the token lengths are said to be unchecked, the rest is checked
    bare = _config(tmp_path / "bare.yaml", toy_world, None)
    r = CliRunner().invoke(app, ["data", "validate", str(items), "--config", str(bare)])
    assert r.exit_code == 0, r.output
    assert "tokens: not checked against data.seq_len" in r.output


def test_a_corpus_without_the_text_field_is_refused_as_train_refuses_it(
    toy_world, tokenizer_only, tmp_path, exits_2
):
    items = _items(toy_world, tmp_path / "items.jsonl")
    config = _config(tmp_path / "mine.yaml", toy_world, tokenizer_only)
    over = ["--set", "data.text_field=content"]
    refused = exits_2(["data", "validate", items, "--config", config, *over])
    assert "no field 'content' (set data.text_field" in refused
    trained = exits_2(
        ["train", config, *over, "--set", f"injection.items={items}", "--out", tmp_path / "r"]
    )
    assert trained == refused
