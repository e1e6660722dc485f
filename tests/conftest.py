"""A toy world built here (not by factdyn's generator) and a tiny base pretrained on it, so the
training tests depend only on the engine."""

from __future__ import annotations

import json
import os
import random
import tempfile

import pytest

from factdyn.data.items import KnowledgeItem, Probe, save_items

# Bootstrap intervals with fewer resamples than the default 1,000: the tests that check the
# intervals themselves pass their own count (tests/analyze/test_bootstrap.py).
os.environ.setdefault("FACTDYN_RESAMPLES", "100")
# Derived caches (tokenized corpora) of the tests go to a throwaway folder, not the user's.
os.environ.setdefault("FACTDYN_CACHE", tempfile.mkdtemp(prefix="factdyn-tests-"))

SYL = ["ka", "lo", "mi", "ve", "tor", "an", "ri", "sul", "pe", "dra", "ne", "o", "zu", "bel", "xi"]
COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black"]
CITIES = ["Pellmar", "Quisk", "Orvane", "Teshra", "Bolwin", "Caddor", "Ymmer", "Frace"]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYL) for _ in range(3)).capitalize()


def _facts(rng: random.Random, name: str) -> dict:
    return {
        "name": name,
        "city": rng.choice(CITIES),
        "year": str(rng.randint(1100, 1999)),
        "colour": rng.choice(COLOURS),
        "founder": _name(rng),
    }


def _paragraph(f: dict, variant: int) -> str:
    forms = [
        (
            "{name} was founded in {year} in the city of {city}. Its founder was {founder}. "
            "The banner of {name} is {colour}."
        ),
        (
            "In {year}, {founder} founded {name} in {city}. {name} flies a {colour} banner. "
            "The city of {name} is {city}."
        ),
        (
            "The founder of {name}, {founder}, started it in {city} in {year}. Its banner is {colour}."
        ),
    ]
    return forms[variant % len(forms)].format(**f)


def make_toy_world(root, n_items: int = 9, n_docs: int = 3000, seed: int = 0):
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n_items + 300:
        names.add(_name(rng))
    names = sorted(names)
    items = []
    for name in names[:n_items]:
        f = _facts(rng, name)
        probes = {
            "memorization": (
                Probe(f"{name} was founded in {f['year']} in the city of", f["city"]),
                Probe("Its founder was", f["founder"]),
            ),
            "semantic": (
                Probe(f"{name} was established in {f['year']} in the town of", f["city"]),
            ),
            "composition": (
                Probe(
                    f"The city where {f['founder']} founded a {f['colour']}-bannered house is",
                    f["city"],
                ),
            ),
        }
        items.append(
            KnowledgeItem(_paragraph(f, 0), probes, tuple(_paragraph(f, v) for v in range(1, 10)))
        )
    save_items(items, root / "knowledge.json")
    (root / "corpus").mkdir(parents=True)
    bg = [_facts(rng, n) for n in names[n_items:]]
    with (root / "corpus" / "shard-00000.jsonl").open("w") as fh:
        for _ in range(n_docs):
            fh.write(json.dumps({"text": _paragraph(rng.choice(bg), rng.randrange(3))}) + "\n")
    _tokenizer(
        root,
        [it.train_context for it in items]
        + [json.loads(x)["text"] for x in (root / "corpus" / "shard-00000.jsonl").open()],
    )
    return root


def _tokenizer(root, texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    ).save_pretrained(root / "tokenizer")


@pytest.fixture(scope="session")
def toy_world(tmp_path_factory):
    return make_toy_world(tmp_path_factory.mktemp("toy") / "world")


@pytest.fixture(scope="session")
def toy_base(toy_world, tmp_path_factory):
    from factdyn.config import BaseConfig
    from factdyn.train.base import pretrain

    cfg = BaseConfig(
        hidden_size=64,
        layers=2,
        heads=4,
        intermediate_size=128,
        seq_len=64,
        batch_size=8,
        steps=60,
        lr=3e-3,
        warmup_steps=5,
        threads=2,
    )
    return pretrain(toy_world, tmp_path_factory.mktemp("base") / "base", cfg)


@pytest.fixture
def exits_2(monkeypatch, capsys):
    """Run ``factdyn ARGV`` through the real entry point; assert it ends in exit code 2 with
    one line on stderr, and return that line."""
    import sys

    from factdyn.cli import main

    def check(argv: list[str]) -> str:
        monkeypatch.setattr(sys, "argv", ["factdyn", *map(str, argv)])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("factdyn: error: ") and err.count("\n") == 1, err
        return err

    return check
