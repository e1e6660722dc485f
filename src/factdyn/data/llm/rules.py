"""The filter's rule checks: pure functions of a reply, each returning the first
:class:`Violation` found (its rule's name and what is wrong) or None.

What passing them guarantees (the README repeats it): a paragraph names its entity in 8-16
sentences; each depth has exactly ``n`` distinct probes with short targets (1-8 words, no final
punctuation); every target is stated in the paragraph; each memorization probe's input and
target, joined by a space, are one whole sentence of the paragraph (so the target ends it);
each semantic input is not copied from the paragraph; no composition input names the entity;
there are exactly ``n`` distinct paraphrases, each different from the paragraph, naming the
entity and containing every target verbatim. Text is compared case-insensitively with runs of
whitespace made one space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from factdyn.data.llm.prompts import ParagraphReply, ProbesReply

SENTENCES = (8, 16)
TARGET_WORDS = 8
_END = re.compile(r"[.!?][\"')\]]*$")
_BOUNDARY = re.compile(r"[.!?][\"')\]]*(?= [\"'(\[]?[A-Z0-9])")
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str


def norm(text: str) -> str:
    """Lower case, one space for any run of whitespace: how the rules compare text."""
    return " ".join(text.split()).casefold()


def sentences(text: str) -> list[str]:
    """The paragraph cut after ., ! or ? (and closing quotes) where a capital letter or digit
    starts the next sentence; an initial ("J. Smith") does not end one."""
    text = " ".join(text.split())
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if not _INITIAL.search(text, start, m.start() + 1):
            out.append(text[start : m.end()])
            start = m.end() + 1
    return [*out, text[start:]] if text[start:] else out


def check_paragraph(reply: ParagraphReply) -> Violation | None:
    if not reply.entity or not reply.category:
        return Violation("paragraph.fields", "the entity's name or category is empty")
    if norm(reply.entity) not in norm(reply.paragraph):
        return Violation("paragraph.names_entity", f"the paragraph never names '{reply.entity}'")
    n = len(sentences(reply.paragraph))
    if not SENTENCES[0] <= n <= SENTENCES[1]:
        return Violation(
            "paragraph.sentences", f"{n} sentences, not {SENTENCES[0]} to {SENTENCES[1]}"
        )
    return None


def _sentence_with(text: str, probe: str) -> bool:
    """``probe`` is one whole sentence of ``text``, its final punctuation aside."""
    want = norm(probe)
    return any(_END.sub("", norm(s)) == want for s in sentences(text))


def check_probes(paragraph: str, entity: str, reply: ProbesReply, n: int) -> Violation | None:
    text = norm(paragraph)
    for depth in ("memorization", "semantic", "composition"):
        ps = getattr(reply, depth)
        if len(ps) != n:
            return Violation("probes.count", f"{len(ps)} {depth} probes, not {n}")
        if len({norm(p.input) for p in ps}) != n:
            return Violation("probes.distinct", f"two {depth} probes have the same input")
        for i, p in enumerate(ps):
            where = f"{depth} probe {i + 1} ('{p.input} | {p.target}')"
            words = len(p.target.split())
            if not p.input or not 1 <= words <= TARGET_WORDS or _END.search(p.target):
                return Violation(
                    "probes.span",
                    f"{where}: the target must be 1 to {TARGET_WORDS} words, no final punctuation",
                )
            if norm(p.target) not in text:
                return Violation(
                    "target.in_paragraph", f"{where}: the target is not in the paragraph"
                )
            if depth == "memorization" and not _sentence_with(paragraph, f"{p.input} {p.target}"):
                return Violation(
                    "memorization.sentence_end",
                    f"{where}: input + target is not a sentence of the paragraph ending with the target",
                )
            if depth == "semantic" and norm(p.input) in text:
                return Violation(
                    "semantic.reworded", f"{where}: the input is copied from the paragraph"
                )
            if depth == "composition" and norm(entity) in norm(p.input):
                return Violation("composition.names_entity", f"{where}: the input names '{entity}'")
    return None


def check_paraphrases(
    paragraph: str, entity: str, paraphrases: list[str], keep: list[str], n: int
) -> Violation | None:
    if len(paraphrases) != n:
        return Violation("paraphrases.count", f"{len(paraphrases)} paraphrases, not {n}")
    normed = [norm(p) for p in paraphrases]
    if len(set(normed)) != n or norm(paragraph) in normed:
        return Violation(
            "paraphrases.distinct", "two paraphrases, or one and the paragraph, are the same"
        )
    for i, p in enumerate(normed):
        for s in (entity, *keep):
            if norm(s) not in p:
                return Violation("paraphrases.keep_targets", f"paraphrase {i + 1} lacks '{s}'")
    return None
