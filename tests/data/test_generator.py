"""The generated world, checked from its files with plain string operations (not the
generator's own helpers)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from factdyn.cli import app


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "world"
    r = CliRunner().invoke(
        app,
        ["generate", "--out", str(out), "--items", "12", "--seed", "3", "--corpus-mb", "0.6",
         "--entities", "150", "--vocab-size", "600"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def _corpus(world) -> str:
    return "".join(p.read_text() for p in sorted((world / "corpus").glob("*.jsonl")))


def test_layout_and_validator(world):
    from factdyn.data.items import load_items

    assert {p.name for p in world.iterdir()} == {
        "knowledge.json", "corpus", "tokenizer", "world.json",
    }  # fmt: skip
    items = load_items(world / "knowledge.json")
    assert len(items) == 12
    raw = json.loads((world / "knowledge.json").read_text())
    assert set(raw[0]) >= {"train_context", "mem_input", "mem_target", "gen_input",
                           "gen_target", "hard_gen_input", "hard_gen_target", "paraphrases"}  # fmt: skip
    manifest = json.loads((world / "corpus" / "manifest.json").read_text())
    assert manifest["bytes"] >= 0.6e6
    assert sum(s["bytes"] for s in manifest["shards"]) == manifest["bytes"]


def test_item_shape(world):
    for obj in json.loads((world / "knowledge.json").read_text()):
        assert 8 <= len(_sentences(obj["train_context"])) <= 20
        for key in ("mem", "gen", "hard_gen"):
            assert len(obj[f"{key}_input"]) == len(obj[f"{key}_target"]) == 5
        assert len(obj["paraphrases"]) >= 9
        assert len(set(obj["paraphrases"])) == len(obj["paraphrases"])


def test_memorization_and_semantic_probes_come_from_the_paragraph(world):
    for obj in json.loads((world / "knowledge.json").read_text()):
        sentences = _sentences(obj["train_context"])
        for inp, tgt in zip(obj["mem_input"], obj["mem_target"], strict=True):
            # a paragraph sentence cut before its final phrase
            assert f"{inp} {tgt}." in sentences
            assert any(s.startswith(inp) for s in sentences)
        for inp, tgt in zip(obj["gen_input"], obj["gen_target"], strict=True):
            assert tgt in obj["train_context"]
            assert f"{inp} {tgt}." not in sentences  # reworded, not copied
        assert obj["gen_target"] == obj["mem_target"]


def test_paraphrases_keep_every_fact_and_change_wording(world):
    for obj in json.loads((world / "knowledge.json").read_text()):
        facts = set(obj["mem_target"]) | set(obj["hard_gen_target"])
        original = set(_sentences(obj["train_context"])[1:])
        for para in obj["paraphrases"]:
            assert all(f in para for f in facts)
            assert len(_sentences(para)) == len(_sentences(obj["train_context"]))
            assert not original & set(_sentences(para)[1:])


def test_composition_probes_never_name_the_entity(world):
    meta = json.loads((world / "world.json").read_text())
    for obj, info in zip(json.loads((world / "knowledge.json").read_text()), meta["items"],
                         strict=True):  # fmt: skip
        assert obj["train_context"].startswith(info["name"]) or info["name"] in obj["train_context"]
        for inp, tgt in zip(obj["hard_gen_input"], obj["hard_gen_target"], strict=True):
            assert info["name"] not in inp
            assert tgt in obj["train_context"]
            # at least one other fact of the paragraph identifies the entity
            assert any(v in inp for k, v in info["facts"].items() if v != tgt)


def test_injected_names_never_in_background_corpus(world):
    corpus = _corpus(world)
    meta = json.loads((world / "world.json").read_text())
    names = [it["name"] for it in meta["items"]]
    assert len(set(names)) == len(names) == 12
    for name in names:
        assert name not in corpus
    # ...while the corpus does state facts of the same kind, in several wordings
    assert corpus.count("was founded by") > 10 and corpus.count("The founder of") > 10


def test_deterministic_from_seed(world, tmp_path):
    from factdyn.data.generator import generate_world

    args = dict(n_items=12, seed=3, corpus_mb=0.6, entities=150, vocab_size=600)
    again = generate_world(tmp_path / "again", **args)
    for rel in ("knowledge.json", "world.json", "corpus/shard-00000.jsonl"):
        assert (again / rel).read_bytes() == (world / rel).read_bytes()
    other = generate_world(tmp_path / "other", **{**args, "seed": 4})
    assert (other / "knowledge.json").read_bytes() != (world / "knowledge.json").read_bytes()


def test_tokenizer_loads_with_eos(world):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(world / "tokenizer")
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id is not None
    text = "The founder of Somewhere was Someone."
    assert tok.decode(tok(text)["input_ids"]) == text
    assert len(tok) <= 600


def test_existing_output_is_refused(world):
    r = CliRunner().invoke(app, ["generate", "--out", str(world), "--items", "2"])
    assert r.exit_code != 0


def test_same_world_as_before_for_a_seed(world):
    """The wording tables are package data: an edit to them (or to the generator's draws)
    changes every world, so it must be deliberate; update these hashes when it is."""
    import hashlib

    expected = {
        "knowledge.json": "348c0d4b3c10f7918d745d9f06405a7f9c65d3dd44131000999909dac3e1d35e",
        "world.json": "63f863fd72e13eaa4c8f1de683f13df4d427c5bea2cccf86ea0387666fe76069",
        "corpus/shard-00000.jsonl": "cd90b5dcd0c6fd249cbd37b01ced11b18fa96cc756a73794d17e10832d2c9a78",
    }
    for rel, digest in expected.items():
        assert hashlib.sha256((world / rel).read_bytes()).hexdigest() == digest, rel


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda w: w["attributes"]["founded"]["forms"].append("In {v} {s} was founded"),
            "at the end",
        ),
        (
            lambda w: w["attributes"]["founded"].update(forms=["{s} was founded in {v}"]),
            "at least 2",
        ),
        (lambda w: w["attributes"]["founded"].update(clue="founded"), "clue"),
        (lambda w: w["attributes"]["founded"].update(pool="weekday"), "unknown pool"),
        (lambda w: w["kinds"]["place"]["attributes"].append("colour"), "repeated"),
        (lambda w: w["kinds"]["place"]["attributes"].append("altitude"), "altitude"),
        (lambda w: w["kinds"]["place"].update(attributes=["founded", "river"]), "at least 8"),
        (lambda w: w["values"]["colour"].append(False), "string"),  # an unquoted YAML `no`
        (lambda w: w["intros"].append("{s} is a thing"), "noun"),
        (lambda w: w["name_pools"]["city"].update(syllables=[3, 2]), "(min, max)"),
        (lambda w: w.update(values={**w["values"], "city": ["Rome"]}), "used twice"),
    ],
)
def test_wording_file_is_validated(edit, message):
    """Mistakes in wording.yaml that would break generation (or silently change it) fail on
    load, naming the entry."""
    from importlib.resources import files

    import yaml
    from pydantic import ValidationError

    from factdyn.data.templates import WORDING_FILE, Wording

    raw = yaml.safe_load(files("factdyn.data").joinpath(WORDING_FILE).read_text())
    Wording.model_validate(raw)  # the packaged file is valid
    edit(raw)
    with pytest.raises(ValidationError, match=re.escape(message)):
        Wording.model_validate(raw)
