"""The offline fictional world: knowledge items to inject and a background corpus to pretrain on.

Deterministic from a seed, no network, no model. Both halves are drawn from one world, so the
base model learns what kind of facts the world has and how they are said; the injected items
are entities whose names never occur in the corpus. Background facts recur in many documents,
each time in a new wording (Zipf-distributed popularity), which makes a small model store
facts without re-reading any text (docs/defaults.md#the-world).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from factdyn.data.items import KnowledgeItem, Probe, save_items
from factdyn.data.templates import (
    ATTRIBUTES,
    CODAS,
    INTROS,
    KINDS,
    NAME_POOLS,
    ONSETS,
    VALUES,
    VOWELS,
)
from factdyn.errors import DataError
from factdyn.files import atomic_dir, write_json_atomic

PROBES_PER_DEPTH = 5
SHARD_BYTES = 8_000_000


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    noun: str
    facts: dict[str, str]  # attribute -> value, in the kind's attribute order


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(CODAS)).capitalize()


def _names(rng: random.Random, n: int, syl: tuple[int, int], words: int, taken: set[str]):
    out: list[str] = []
    while len(out) < n:
        name = " ".join(_word(rng, rng.randint(*syl)) for _ in range(words))
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def _value(rng: random.Random, pool: str, pools: dict[str, list[str]]) -> str:
    if pool == "year":
        return str(rng.randint(1020, 1980))
    if pool == "number":
        return str(
            rng.choice((rng.randint(12, 99), rng.randint(100, 999), rng.randint(1000, 9000)))
        )
    if pool == "language":
        return pools["language"][rng.randrange(len(pools["language"]))] + "ish"
    return rng.choice(pools[pool])


def _entity(rng: random.Random, name: str, kind: str, pools: dict[str, list[str]]) -> Entity:
    nouns, attrs = KINDS[kind]
    facts = {a: _value(rng, ATTRIBUTES[a].pool, pools) for a in attrs}
    return Entity(name, kind, rng.choice(nouns), facts)


def _sentence(form: str, subject: str, value: str) -> str:
    text = form.format(s=subject, v=value)
    return text[0].upper() + text[1:] + "."


def _prefix(form: str, subject: str) -> str:
    """The statement cut before its final phrase (the value): a cloze input."""
    text = form.split("{v}")[0].format(s=subject).rstrip()
    return text[0].upper() + text[1:]


def _render(
    rng: random.Random, e: Entity, attrs: list[str], avoid: dict[str, int] | None = None
) -> tuple[str, dict[str, int]]:
    """A paragraph stating ``attrs`` of ``e`` (shuffled after an intro), and the form used per
    attribute; ``avoid`` names forms not to reuse, so paraphrases change every wording."""
    chosen: dict[str, int] = {}
    for a in attrs:
        n = len(ATTRIBUTES[a].forms)
        options = [i for i in range(n) if avoid is None or i != avoid.get(a)]
        chosen[a] = rng.choice(options)
    order = list(attrs)
    rng.shuffle(order)
    intro = _sentence(rng.choice(INTROS).replace("{noun}", e.noun), e.name, "")
    body = [_sentence(ATTRIBUTES[a].forms[chosen[a]], e.name, e.facts[a]) for a in order]
    return " ".join([intro, *body]), chosen


def _composition(rng: random.Random, e: Entity, attrs: list[str], k: int) -> list[Probe]:
    """Sentences that identify the entity by one fact (never its name) and ask for another."""
    pairs = [(a, b) for a in attrs for b in attrs if a != b and e.facts[a] != e.facts[b]]
    rng.shuffle(pairs)
    out: list[Probe] = []
    used: set[str] = set()
    for a, b in pairs:
        if b in used:
            continue
        used.add(b)
        desc = f"the {e.noun} {ATTRIBUTES[a].clue.format(v=e.facts[a])}"
        out.append(Probe(_prefix(rng.choice(ATTRIBUTES[b].forms), desc), e.facts[b]))
        if len(out) == k:
            break
    return out


def make_item(
    rng: random.Random, e: Entity, n_paraphrases: int
) -> tuple[KnowledgeItem, dict[str, str]]:
    """Paragraph of 9–14 sentences, 5 probes per depth, ``n_paraphrases`` full rewordings;
    also the facts the paragraph states."""
    attrs = list(e.facts)
    n_facts = rng.randint(8, len(attrs))
    picked = set(rng.sample(attrs, n_facts))
    chosen_attrs = [a for a in attrs if a in picked]
    context, forms = _render(rng, e, chosen_attrs)
    probed = rng.sample(chosen_attrs, PROBES_PER_DEPTH)
    mem = [Probe(_prefix(ATTRIBUTES[a].forms[forms[a]], e.name), e.facts[a]) for a in probed]
    sem = []
    for a in probed:
        others = [f for i, f in enumerate(ATTRIBUTES[a].forms) if i != forms[a]]
        sem.append(Probe(_prefix(rng.choice(others), e.name), e.facts[a]))
    paraphrases: list[str] = []
    while len(paraphrases) < n_paraphrases:
        text, _ = _render(rng, e, chosen_attrs, avoid=forms)
        if text != context and text not in paraphrases:
            paraphrases.append(text)
    probes = {
        "memorization": tuple(mem),
        "semantic": tuple(sem),
        "composition": tuple(_composition(rng, e, chosen_attrs, PROBES_PER_DEPTH)),
    }
    facts = {a: e.facts[a] for a in chosen_attrs}
    return KnowledgeItem(context, probes, tuple(paraphrases)), facts


def _documents(rng: random.Random, entities: list[Entity], zipf: float) -> Iterator[str]:
    """An endless stream of renderings of background entities, popular ones more often."""
    weights = [1.0 / (r + 1) ** zipf for r in range(len(entities))]
    while True:
        for e in rng.choices(entities, weights=weights, k=1024):
            attrs = list(e.facts)
            k = rng.randint(max(3, len(attrs) // 2), len(attrs))
            yield _render(rng, e, rng.sample(attrs, k))[0]


def _write_corpus(docs: Iterator[str], out: Path, corpus_mb: float) -> dict:
    out.mkdir(parents=True)
    target = int(corpus_mb * 1e6)
    shards: list[dict] = []
    written = n_docs = 0
    fh = None
    bar = tqdm(total=target, unit="B", unit_scale=True, desc="writing corpus", leave=False)
    while written < target:
        if fh is None:
            path = out / f"shard-{len(shards):05d}.jsonl"
            fh, digest, size = path.open("w", encoding="utf-8"), hashlib.sha256(), 0
        line = json.dumps({"text": next(docs)}, ensure_ascii=False) + "\n"
        data = line.encode()
        fh.write(line)
        digest.update(data)
        size += len(data)
        written += len(data)
        n_docs += 1
        bar.update(len(data))
        if size >= SHARD_BYTES or written >= target:
            fh.close()
            fh = None
            shards.append({"file": path.name, "bytes": size, "sha256": digest.hexdigest()})
    bar.close()
    manifest = {"documents": n_docs, "bytes": written, "shards": shards}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


VOCAB_SIZE = 2048  # the BPE vocabulary of a generated world


# a byte-level BPE holds the 256 bytes and the end-of-text token before any merge; the
# tokenizers library counts the vocabulary in 32 bits
VOCAB_RANGE = (257, 2**31 - 1)


def _check_sizes(
    n_items: int, entities: int, corpus_mb: float, n_paraphrases: int, vocab_size: int
) -> None:
    """Each size in its range, refused in one line naming its option, before anything is made."""
    for option, value in (
        ("--items", n_items),
        ("--entities", entities),
        ("--corpus-mb", corpus_mb),
        ("--paraphrases", n_paraphrases),
    ):
        if not value > 0:
            raise DataError(f"generate: {option} must be positive, not {value:g}")
    low, high = VOCAB_RANGE
    if not low <= vocab_size <= high:
        raise DataError(
            f"generate: --vocab-size must be from {low} (the 256 bytes and end-of-text) to "
            f"{high:,}, not {vocab_size}"
        )


def generate_world(
    out: str | Path,
    n_items: int = 36,
    seed: int = 0,
    corpus_mb: float = 20.0,
    entities: int = 2000,
    n_paraphrases: int = 9,
    zipf: float = 0.8,
    vocab_size: int = VOCAB_SIZE,
) -> Path:
    """Write ``knowledge.json``, ``corpus/``, ``tokenizer/`` and ``world.json`` into ``out``
    (built in a temporary sibling directory and renamed, so a killed run leaves nothing)."""
    from factdyn.data.tokenizer import train_bpe

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: output directory exists and is not empty")
    _check_sizes(n_items, entities, corpus_mb, n_paraphrases, vocab_size)
    # separate streams: the corpus (and so the tokenizer and a cached base model) does not
    # change with the number of items drawn
    rng = random.Random(f"factdyn-world-{seed}")
    item_rng = random.Random(f"factdyn-items-{seed}")
    taken: set[str] = set()
    pools: dict[str, list[str]] = {k: list(v) for k, v in VALUES.items()}
    for pool, (n, syl, words) in NAME_POOLS.items():
        pools[pool] = _names(rng, n, syl, words, taken)
    kinds = list(KINDS)
    names = _names(rng, entities, (2, 3), 1, taken)
    background = [_entity(rng, nm, kinds[i % len(kinds)], pools) for i, nm in enumerate(names)]
    # injected names: never a substring of any name or value the corpus can contain
    lexicon = "\n".join([*taken, *(v for vs in VALUES.values() for v in vs)])
    injected: list[Entity] = []
    while len(injected) < n_items:
        nm = _names(item_rng, 1, (3, 3), 1, taken)[0]
        if nm not in lexicon and not any(nm in e.name for e in injected):
            injected.append(_entity(item_rng, nm, kinds[len(injected) % len(kinds)], pools))
    items, facts = zip(*(make_item(item_rng, e, n_paraphrases) for e in injected), strict=True)

    with atomic_dir(out) as tmp:
        save_items(items, tmp / "knowledge.json")
        manifest = _write_corpus(_documents(rng, background, zipf), tmp / "corpus", corpus_mb)
        train_bpe(sorted((tmp / "corpus").glob("shard-*.jsonl")), tmp / "tokenizer", vocab_size)
        world = {
            "seed": seed,
            "n_items": n_items,
            "background_entities": entities,
            "corpus_mb": corpus_mb,
            "zipf": zipf,
            "vocab_size": vocab_size,
            "corpus": {k: manifest[k] for k in ("documents", "bytes")},
            "items": [
                {"item": k, "name": e.name, "kind": e.kind, "noun": e.noun, "facts": f}
                for k, (e, f) in enumerate(zip(injected, facts, strict=True))
            ],
        }
        write_json_atomic(tmp / "world.json", world)
    return out
