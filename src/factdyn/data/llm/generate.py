"""Knowledge items from a language model: each item asked part by part, each part filtered and
asked again when rejected, the whole set validated and written with a record of what was asked.

Everything an item asks follows from (seed, item, round, part, attempt): the request's seed,
the name prefix that keeps a collection's entities apart, the rejection reason carried into a
repeated request. With the cache of :mod:`.client` a rerun therefore asks nothing new and
writes the same ``knowledge.json``, and a killed run resumes where it stopped. Items are asked
concurrently; rejections and entities repeated across items are settled in item order, so the
result does not depend on which reply came first.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from factdyn.data.generator import PROBES_PER_DEPTH
from factdyn.data.items import DEPTHS, KnowledgeItem, Probe, parse_items, save_items
from factdyn.data.llm import prompts, rules
from factdyn.data.llm.client import ChatClient, check_number, is_text
from factdyn.data.llm.net import printable
from factdyn.data.llm.prompts import (
    JudgeReply,
    ParagraphReply,
    ParaphrasesReply,
    ProbesReply,
    ReplyError,
)
from factdyn.data.llm.rules import Violation
from factdyn.errors import DataError
from factdyn.files import atomic_dir, write_json_atomic

_ONSETS = "BCDFGHKLMNPRSTVZ"
_VOWELS = "aeiou"

R = TypeVar("R", bound=prompts.ReplyShape)
# Bounds of the settings: items asked at once (each 3 requests or more), paraphrases and
# attempts per item, threads (each holding one connection).
MAX_ITEMS, MAX_PARAPHRASES, MAX_ATTEMPTS, MAX_CONCURRENCY = 100_000, 100, 100, 256
DETAIL = 300  # characters of a rejection's detail in an error line (a judge's reason is free text)


@dataclass(frozen=True)
class Settings:
    """What to generate: ``items`` items about ``domain``, each part asked at most
    ``max_attempts`` times, probes judged by the model when ``judge``."""

    items: int
    seed: int = 0
    domain: str = "institutions, places, people and artifacts of an invented world"
    paraphrases: int = 9
    concurrency: int = 4
    max_attempts: int = 4
    judge: bool = False

    def __post_init__(self) -> None:
        check_number("--items", self.items, 1, MAX_ITEMS)
        check_number("--paraphrases", self.paraphrases, 1, MAX_PARAPHRASES)
        check_number("--concurrency", self.concurrency, 1, MAX_CONCURRENCY)
        check_number("max_attempts", self.max_attempts, 1, MAX_ATTEMPTS)
        if not is_text(self.domain):
            raise DataError(f"generate: --domain: not UTF-8 text: '{printable(self.domain)}'")


@dataclass
class Rejections:
    """Every rejection, counted by rule (thread-safe)."""

    by_rule: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, rule: str) -> None:
        with self._lock:
            self.by_rule[rule] += 1

    def to_json(self) -> dict:
        return {"total": sum(self.by_rule.values()), **dict(sorted(self.by_rule.items()))}


@dataclass(frozen=True)
class Generated:
    item: KnowledgeItem
    entity: str
    category: str


def request_seed(seed: int, item: int, round_: int, part: str, attempt: int) -> int:
    """The request's ``seed``: a 31-bit number drawn from where it sits in the generation."""
    key = f"factdyn-llm/{seed}/{item}/{round_}/{part}/{attempt}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) & 0x7FFFFFFF


def name_prefix(seed: int, item: int, round_: int) -> str:
    """Two letters the entity's name starts with, so the items of one seed differ."""
    rng = random.Random(f"factdyn-llm-name/{seed}/{item}/{round_}")
    return rng.choice(_ONSETS) + rng.choice(_VOWELS)


class _Maker:
    """Asks the parts of items: one instance per generation, shared by the worker threads."""

    def __init__(self, client: ChatClient, settings: Settings) -> None:
        self.client, self.s = client, settings
        self.rejections = Rejections()

    def _part(
        self,
        item: int,
        round_: int,
        part: str,
        ask: Callable[[str | None], list[dict]],
        shape: type[R],
        check: Callable[[R, int], Violation | None],
    ) -> R:
        """Ask ``part`` until a reply passes ``check``, at most ``max_attempts`` times."""
        rejected: Violation | None = None
        for attempt in range(self.s.max_attempts):
            seed = request_seed(self.s.seed, item, round_, part, attempt)
            what = f"item {item} ({part}, attempt {attempt + 1})"
            content = self.client.ask(ask(rejected and rejected.detail), seed, what).content
            try:
                reply = prompts.parse_reply(content, shape)
            except ReplyError as e:
                rejected = Violation("reply.malformed", f"not the JSON asked for ({e})")
            else:
                rejected = check(reply, attempt)
            if rejected is None:
                return reply
            self.rejections.add(rejected.rule)
        raise DataError(
            printable(
                f"{self.client.endpoint}: item {item}: {part} rejected {self.s.max_attempts} "
                f"times, last by rule {rejected.rule}: {rejected.detail[:DETAIL]} (replies are kept in "
                f"{self.client.cache})"
            )
        )

    def _judge(
        self, item: int, round_: int, paragraph: str, reply: ProbesReply, attempt: int
    ) -> Violation | None:
        """The model's verdict on probes that passed the rules (a rejection or None)."""
        sets = {d: [(p.input, p.target) for p in getattr(reply, d)] for d in DEPTHS}
        seed = request_seed(self.s.seed, item, round_, "judge", attempt)
        what = f"item {item} (judge, attempt {attempt + 1})"
        content = self.client.ask(prompts.judge(paragraph, sets), seed, what).content
        try:
            verdict = prompts.parse_reply(content, JudgeReply)
        except ReplyError as e:
            return Violation(
                "judge.malformed", f"the judge's reply is not the JSON asked for ({e})"
            )
        return None if verdict.accept else Violation("judge", f"the judge: {verdict.reason}")

    def item(self, item: int, round_: int = 0) -> Generated:
        """Item ``item`` of round ``round_``: paragraph, then probes, then paraphrases."""
        s = self.s
        prefix = name_prefix(s.seed, item, round_)
        para = self._part(
            item, round_, "paragraph",
            lambda why: prompts.paragraph(s.domain, item + 1, prefix, why),
            ParagraphReply, lambda r, _: rules.check_paragraph(r),
        )  # fmt: skip
        text, entity = para.paragraph, para.entity

        def check_probes(r: ProbesReply, attempt: int) -> Violation | None:
            v = rules.check_probes(text, entity, r, PROBES_PER_DEPTH)
            if v is None and s.judge:
                v = self._judge(item, round_, text, r, attempt)
            return v

        probes = self._part(
            item, round_, "probes",
            lambda why: prompts.probes(entity, text, PROBES_PER_DEPTH, why),
            ProbesReply, check_probes,
        )  # fmt: skip
        keep = sorted({p.target for d in DEPTHS for p in getattr(probes, d)})
        paraphrases = self._part(
            item, round_, "paraphrases",
            lambda why: prompts.paraphrases(text, keep, s.paraphrases, why),
            ParaphrasesReply,
            lambda r, _: rules.check_paraphrases(text, entity, r.paraphrases, keep, s.paraphrases),
        )  # fmt: skip
        knowledge = KnowledgeItem(
            train_context=text,
            probes={d: tuple(Probe(p.input, p.target) for p in getattr(probes, d)) for d in DEPTHS},
            paraphrases=tuple(paraphrases.paraphrases),
        )
        return Generated(knowledge, entity, para.category)


def generate_items(client: ChatClient, settings: Settings) -> tuple[list[Generated], Rejections]:
    """``settings.items`` items, concurrently; an entity (or paragraph) another item already
    has sends the later item back for a new round, in item order."""
    maker = _Maker(client, settings)
    with ThreadPoolExecutor(settings.concurrency) as pool:
        futures = [pool.submit(maker.item, i) for i in range(settings.items)]
        try:
            made = [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    seen: set[str] = set()
    for i in range(len(made)):
        round_ = 0
        while {rules.norm(made[i].entity), made[i].item.train_context} & seen:
            maker.rejections.add("item.duplicate")
            round_ += 1
            if round_ >= settings.max_attempts:
                raise DataError(
                    printable(
                        f"{client.endpoint}: item {i}: the entity '{made[i].entity}' repeats "
                        f"an earlier item's {settings.max_attempts} times"
                    )
                )
            made[i] = maker.item(i, round_)
        seen |= {rules.norm(made[i].entity), made[i].item.train_context}
    return made, maker.rejections


def write_llm_items(out: str | Path, client: ChatClient, settings: Settings) -> Path:
    """Generate, validate (as ``factdyn data validate`` does) and write ``knowledge.json`` and
    ``generation.json`` into the new directory ``out``, which appears whole or not at all."""
    out = Path(out)
    made, rejections = generate_items(client, settings)
    try:
        items = parse_items([g.item.to_json() for g in made], str(out / "knowledge.json"))
    except DataError as e:  # it may quote the model's text
        raise DataError(printable(str(e))) from None
    record = {
        "endpoint": client.endpoint,
        "model": client.model,
        "prompts_version": prompts.PROMPTS_VERSION,
        "seed": settings.seed,
        "items": settings.items,
        "domain": settings.domain,
        "paraphrases": settings.paraphrases,
        "judge": settings.judge,
        "max_attempts": settings.max_attempts,
        "temperature": client.temperature,
        "cache": str(client.cache),
        **client.counts.to_json(),
        "rejections": rejections.to_json(),
        "entities": [
            {"item": i, "name": g.entity, "category": g.category} for i, g in enumerate(made)
        ],
    }
    with atomic_dir(out) as tmp:
        save_items(items, tmp / "knowledge.json")
        write_json_atomic(tmp / "generation.json", record)
    return out
