"""Every refusal that depends only on the config and the data comes before the model's
weights load, in one line naming the setting to change and how.

The model here is a directory with a real tokenizer and a config but garbage weights: loading
it fails, so a refusal that names a setting proves the weights were never read (and a spy on
the loader proves it again)."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer

from factdyn.config import load_config
from factdyn.data.items import load_items, save_items
from factdyn.errors import DataError
from factdyn.train.experiment import train


@pytest.fixture(scope="module")
def garbage_model(toy_world, tmp_path_factory):
    """A model folder whose tokenizer loads and whose weights do not."""
    d = tmp_path_factory.mktemp("model") / "model"
    shutil.copytree(toy_world / "tokenizer", d)
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": 400,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
    }
    (d / "config.json").write_text(json.dumps(config))
    (d / "model.safetensors").write_bytes(b"not a safetensors file" * 10)
    return d


@pytest.fixture
def loads(monkeypatch):
    """The calls that reached the model loader."""
    import factdyn.score.loading as loading

    calls: list[str] = []
    real = loading.load_model_and_tokenizer

    def spy(name, *a, **kw):
        calls.append(str(name))
        return real(name, *a, **kw)

    monkeypatch.setattr(loading, "load_model_and_tokenizer", spy)
    return calls


def _items(toy_world, tmp_path, n: int = 9, paraphrases: int = 9, name: str = "items.jsonl"):
    items = load_items(toy_world / "knowledge.json")[:n]
    items = [type(it)(it.train_context, it.probes, it.paraphrases[:paraphrases]) for it in items]
    save_items(items, tmp_path / name)
    return tmp_path / name


# a run a new user might write for 9 items of their own: a text corpus, their model
def _user(toy_world, model, items, *extra):
    return load_config(
        None,
        [
            "data.source=text",
            f"data.path={toy_world / 'corpus'}",
            "data.seq_len=64",
            f"model.name={model}",
            *([f"injection.items={items}"] if items else []),
            "injection.n_controls=3",
            "injection.cohorts=1",
            "train.steps=110",
            "train.batch_size=4",
            "optim.lr=1e-3",
            *extra,
        ],
    )


def _refused(cfg, tmp_path, loads) -> str:
    with pytest.raises(DataError) as e:
        train(cfg, tmp_path / "run")
    assert loads == [], "the model was loaded before the refusal"
    assert not (tmp_path / "run").exists()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_sound_config_reaches_the_model_and_its_loading_error(
    toy_world, garbage_model, tmp_path, loads
):
    # the harness's proof: with nothing wrong in the config, the garbage weights are read
    with pytest.raises(Exception) as e:  # noqa: PT011 (whatever the loader raises)
        train(_user(toy_world, garbage_model, _items(toy_world, tmp_path)), tmp_path / "run")
    assert loads == [str(garbage_model)]
    assert "injection" not in str(e.value) and "optim" not in str(e.value)


def test_items_are_required_for_a_corpus_of_ones_own(toy_world, garbage_model, tmp_path, loads):
    msg = _refused(_user(toy_world, garbage_model, None), tmp_path, loads)
    assert "field 'injection.items': required" in msg
    assert "--set injection.items=items.jsonl" in msg


def test_too_few_items_for_the_controls_names_n_controls(toy_world, garbage_model, tmp_path, loads):
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "injection.n_controls=30")
    msg = _refused(cfg, tmp_path, loads)
    assert "9 items cannot fill 3 scenarios" in msg and "30 controls (injection.n_controls)" in msg
    # 3 scenarios need 3 items; 9 - 3 = 6 may be controls
    assert "set injection.n_controls=6 or less" in msg and "give at least 33 items" in msg
    fixed = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "injection.n_controls=6")
    with pytest.raises(Exception):  # noqa: PT011,B017 (the advice works: on to the weights)
        train(fixed, tmp_path / "run2")
    assert loads == [str(garbage_model)]


def test_an_injection_after_the_last_step_names_train_steps(
    toy_world, garbage_model, tmp_path, loads
):
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "train.steps=20")
    msg = _refused(cfg, tmp_path, loads)
    # default interval 20, count 5, scenario offset 1: the last injection (the 'duplicate'
    # scenario's fifth) is at 1 + 4 × 20 = 81; its window of 10 steps needs 92
    assert "the last at step 81 (scenario 'duplicate'" in msg
    assert "train.steps=20" in msg and "set train.steps=92 or more" in msg


def test_a_missing_learning_rate_is_asked_for_before_the_model_loads(
    toy_world, garbage_model, tmp_path, loads
):
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "optim.lr=null")
    msg = _refused(cfg, tmp_path, loads)
    assert "field 'optim.lr': required" in msg and "--set optim.lr=" in msg


def test_too_few_paraphrases_names_the_scenario_and_its_count(
    toy_world, garbage_model, tmp_path, loads
):
    items = _items(toy_world, tmp_path, paraphrases=1)
    msg = _refused(_user(toy_world, garbage_model, items), tmp_path, loads)
    assert f"{items}, item 0, field 'paraphrases': 1 paraphrase," in msg
    assert "scenario 'paraphrase'" in msg
    assert "give that scenario count: 2 (or variant: duplicate) in injection.scenarios" in msg


def test_texts_sharing_a_row_are_told_apart_from_a_text_too_long(
    toy_world, garbage_model, tmp_path, loads
):
    # all 6 injected items at step 0 in 2 rows: 3 paraphrase/duplicate/once texts per row,
    # each fits 64 tokens alone, together they do not
    crowded = ["injection.scenario_offset=0", "train.batch_size=2"]
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), *crowded)
    msg = _refused(cfg, tmp_path, loads)
    assert "3 texts share row 0 of step 0 (items 0, 2, 4:" in msg
    assert "step 0 injects 6 texts into train.batch_size=2 rows" in msg
    assert "train.batch_size=6 or more" in msg and "allow_truncation" not in msg
    # one text longer than a row is that, and says which seq_len would hold it
    items = load_items(toy_world / "knowledge.json")[:9]
    long = items[0].train_context + " " + items[1].train_context + " " + items[2].train_context
    items[0] = type(items[0])(long, items[0].probes, items[0].paraphrases)
    save_items(items, tmp_path / "long.jsonl")
    tok = AutoTokenizer.from_pretrained(garbage_model)
    n = len(tok(long, add_special_tokens=False)["input_ids"]) + 1  # with its EOS
    assert n > 64
    msg = _refused(_user(toy_world, garbage_model, tmp_path / "long.jsonl"), tmp_path, loads)
    field = f"{tmp_path / 'long.jsonl'}, item 0, field 'train_context': injected at step 0"
    assert msg.startswith(f"{field}, the text alone is {n} tokens")
    assert f"set data.seq_len={n} or more" in msg and "share" not in msg


def test_a_probe_longer_than_seq_len_is_refused_from_the_tokenizer_alone(
    toy_world, garbage_model, tmp_path, loads
):
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "data.seq_len=8")
    msg = _refused(cfg, tmp_path, loads)
    assert "item 0, field 'memorization' probe 0" in msg and "data.seq_len=8" in msg


def test_a_corpus_without_the_text_field_names_data_text_field(
    toy_world, garbage_model, tmp_path, loads
):
    cfg = _user(toy_world, garbage_model, _items(toy_world, tmp_path), "data.text_field=body")
    msg = _refused(cfg, tmp_path, loads)
    assert "'body'" in msg and "data.text_field" in msg


def test_the_command_line_says_it_in_one_line_exit_2(
    toy_world, garbage_model, tmp_path, exits_2, loads
):
    config = tmp_path / "mine.yaml"
    items = _items(toy_world, tmp_path)
    config.write_text(
        f"model: {{name: {garbage_model}}}\n"
        f"data: {{source: text, path: {toy_world / 'corpus'}, seq_len: 64}}\n"
        f"injection: {{items: {items}}}\n"
        "optim: {lr: 1.0e-3}\n"
    )
    err = exits_2(["train", config, "--out", tmp_path / "run"])
    assert "injection.n_controls" in err and loads == []
