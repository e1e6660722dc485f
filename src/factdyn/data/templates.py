"""The fictional world's vocabulary (entity kinds, their attributes, the sentence forms that
state each attribute, value and name pools), read from the package file ``wording.yaml``.

The tables are data, so they live in YAML; this module checks on import what the generator
relies on (every form names its subject and ends with its value, every pool and attribute a
kind uses exists), so a bad edit fails here with the entry at fault, not mid-generation.
"""

from __future__ import annotations

import string
from importlib.resources import files
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from factdyn.errors import DataError

WORDING_FILE = "wording.yaml"
MIN_FACTS = 8  # make_item states 8 or more of an entity's facts
NUMERIC_POOLS = ("year", "number")  # drawn as random numbers, not from a list

# strict strings: a YAML ``no``/``on``/``1`` that is not quoted must not slip in as a bool/int
Word = Annotated[StrictStr, Field(min_length=1)]
Words = Annotated[tuple[Word, ...], Field(min_length=1)]
Count = Annotated[StrictInt, Field(ge=1)]


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attribute(_Strict):
    pool: Word  # a list in ``values``, a name pool, or one of NUMERIC_POOLS
    # statements with {s} (subject) and {v} (value), ending in {v}; two or more, so a fact can
    # be reworded (semantic probes, paraphrases)
    forms: Annotated[tuple[Word, ...], Field(min_length=2)]
    clue: Word  # "the {noun} <clue>" identifies the entity by this fact

    @model_validator(mode="after")
    def _placeholders(self) -> Attribute:
        for form in self.forms:
            if sorted(_fields(form)) != ["s", "v"] or not form.endswith("{v}"):
                raise ValueError(f"form {form!r}: needs one {{s}} and one {{v}}, at the end")
        if _fields(self.clue) != ["v"]:
            raise ValueError(f"clue {self.clue!r}: needs exactly one {{v}}")
        return self


class Kind(_Strict):
    nouns: Words
    attributes: Annotated[tuple[Word, ...], Field(min_length=MIN_FACTS)]


class NamePool(_Strict):
    count: Count
    syllables: tuple[Count, Count]  # (min, max) per word
    words: Count


class Syllables(_Strict):
    onsets: Words
    vowels: Words
    # "" allowed: a word may end in its vowel
    codas: Annotated[tuple[StrictStr, ...], Field(min_length=1)]


class Wording(_Strict):
    attributes: dict[Word, Attribute]
    kinds: Annotated[dict[Word, Kind], Field(min_length=1)]
    intros: Words
    values: dict[Word, Words]
    name_pools: dict[Word, NamePool]
    syllables: Syllables

    @model_validator(mode="after")
    def _references(self) -> Wording:
        pools = {*self.values, *self.name_pools, *NUMERIC_POOLS}
        if len(pools) != len(self.values) + len(self.name_pools) + len(NUMERIC_POOLS):
            raise ValueError("a pool name is used twice (values, name_pools, year/number)")
        for name, a in self.attributes.items():
            if a.pool not in pools:
                raise ValueError(f"attribute {name!r}: unknown pool {a.pool!r}")
        for name, k in self.kinds.items():
            unknown = sorted(set(k.attributes) - set(self.attributes))
            if unknown or len(set(k.attributes)) != len(k.attributes):
                raise ValueError(f"kind {name!r}: unknown or repeated attributes {unknown}")
        for intro in self.intros:
            if sorted(_fields(intro)) != ["noun", "s"]:
                raise ValueError(f"intro {intro!r}: needs one {{s}} and one {{noun}}")
        for name, p in self.name_pools.items():
            if p.syllables[0] > p.syllables[1]:
                raise ValueError(f"name pool {name!r}: syllables must be (min, max)")
        return self


def load_wording() -> Wording:
    """The validated tables from the installed package; a bad file raises :class:`DataError`."""
    text = files(__package__).joinpath(WORDING_FILE).read_text(encoding="utf-8")
    try:
        return Wording.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as e:
        raise DataError(f"factdyn/data/{WORDING_FILE}: {e}") from e


_W = load_wording()
ATTRIBUTES: dict[str, Attribute] = _W.attributes
# kind: (nouns used for it, its attributes)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    k: (v.nouns, v.attributes) for k, v in _W.kinds.items()
}
INTROS: tuple[str, ...] = _W.intros
VALUES: dict[str, tuple[str, ...]] = _W.values
# invented-name pools: (how many, syllables per word, words per name)
NAME_POOLS: dict[str, tuple[int, tuple[int, int], int]] = {
    k: (p.count, p.syllables, p.words) for k, p in _W.name_pools.items()
}
ONSETS: tuple[str, ...] = _W.syllables.onsets
VOWELS: tuple[str, ...] = _W.syllables.vowels
CODAS: tuple[str, ...] = _W.syllables.codas
