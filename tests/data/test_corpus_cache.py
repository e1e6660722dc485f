"""The tokenized-corpus cache is keyed on everything that changes the tokens: the files, the
JSON field read and the tokenizer's whole serialization (not just its vocabulary)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from factdyn.data.corpus import cached_tokens


def _tokenizer(lowercase: bool = False):
    """A word-level tokenizer over a fixed vocabulary; ``lowercase`` adds a normalizer, which
    changes the tokens of capitalised words but not the vocabulary."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "<unk>", "alpha", "beta", "gamma", "delta", "Alpha", "Beta"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


def _expected(tok, texts: list[str]) -> list[int]:
    """The cached array's content, computed without factdyn: each text's ids, then EOS."""
    return [i for t in texts for i in [*tok(t, add_special_tokens=False)["input_ids"], 0]]


@pytest.fixture
def corpus(tmp_path):
    rows = [
        {"text": "alpha beta", "content": "gamma delta gamma"},
        {"text": "Alpha", "content": "delta"},
        {"text": "Beta gamma", "content": "alpha alpha"},
    ]
    f = tmp_path / "corpus.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f, rows


def test_another_text_field_is_tokenized_again(corpus, tmp_path):
    f, rows = corpus
    tok = _tokenizer()
    cache = tmp_path / "cache"
    text = cached_tokens([f], tok, cache, text_field="text")
    assert np.asarray(text).tolist() == _expected(tok, [r["text"] for r in rows])
    content = cached_tokens([f], tok, cache, text_field="content")
    assert np.asarray(content).tolist() == _expected(tok, [r["content"] for r in rows])
    # and the first is still served from its own entry
    assert np.asarray(cached_tokens([f], tok, cache)).tolist() == np.asarray(text).tolist()


def test_a_tokenizer_with_the_same_vocabulary_but_another_normalizer_is_another_entry(
    corpus, tmp_path
):
    f, rows = corpus
    plain, lower = _tokenizer(), _tokenizer(lowercase=True)
    assert plain.get_vocab() == lower.get_vocab()
    cache = tmp_path / "cache"
    texts = [r["text"] for r in rows]
    assert np.asarray(cached_tokens([f], plain, cache)).tolist() == _expected(plain, texts)
    got = np.asarray(cached_tokens([f], lower, cache)).tolist()
    assert got == _expected(lower, texts) != _expected(plain, texts)


def test_an_edited_corpus_is_tokenized_again(corpus, tmp_path):
    f, rows = corpus
    tok = _tokenizer()
    cache = tmp_path / "cache"
    cached_tokens([f], tok, cache)
    f.write_text(json.dumps({"text": "delta delta delta delta"}) + "\n")
    assert np.asarray(cached_tokens([f], tok, cache)).tolist() == [5, 5, 5, 5, 0]
