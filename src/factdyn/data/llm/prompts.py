"""What the model is asked, and the shape its JSON reply must have.

The prompts are versioned: ``PROMPTS_VERSION`` is recorded in ``generation.json`` and changes
whenever a prompt's wording does (a changed prompt is a new request, so the cache cannot mix
them). Each part of an item is one request: the entity and its paragraph, then the probes,
then the paraphrases, then (optionally) the judge's verdict on the probes. A part asked again
after a rejection carries the reason, so the model can avoid it.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, ValidationError

PROMPTS_VERSION = "1"

SYSTEM = (
    "You write data for an experiment on how language models learn new facts. Everything you "
    "write is about invented entities that do not exist. Reply with one JSON object only, no "
    "other text."
)


class ReplyShape(BaseModel):
    """A reply's JSON object: strings stripped, unknown keys ignored."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")


class ParagraphReply(ReplyShape):
    entity: str
    category: str
    paragraph: str


class ProbeReply(ReplyShape):
    input: str
    target: str


class ProbesReply(ReplyShape):
    memorization: list[ProbeReply]
    semantic: list[ProbeReply]
    composition: list[ProbeReply]


class ParaphrasesReply(ReplyShape):
    paraphrases: list[str]


class JudgeReply(ReplyShape):
    accept: bool
    reason: str = ""


class ReplyError(ValueError):
    """The reply is not the JSON object asked for."""


def parse_reply(content: str, shape: type[ReplyShape]) -> ReplyShape:
    """The reply's JSON object (a Markdown code fence around it is tolerated)."""
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", content)
    try:
        return shape.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"])) or "reply"
        raise ReplyError(f"{where}: {first['msg']}") from None


def _messages(task: str, rejected: str | None) -> list[dict[str, str]]:
    if rejected:
        task += f"\n\nA previous answer was rejected: {rejected}. Do not repeat that mistake."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def paragraph(domain: str, number: int, prefix: str, rejected: str | None) -> list[dict]:
    """Ask for entity ``number`` of the collection, its name starting with ``prefix`` (drawn
    from the seed, so that the items of one collection differ)."""
    task = f"""Task: paragraph
Invent entity number {number} of a collection of fictional entities. Domain: {domain}.
Its name must start with "{prefix}" and must not be the name of anything real.
Write an encyclopedic paragraph of 10 to 14 sentences about it. Every sentence states one or
two specific facts (dates, places, people, numbers, names of things) and ends with a fact.
Name the entity in the first sentence.
Reply as {{"entity": "<its name>", "category": "<what kind of thing it is, a few words>",
"paragraph": "<the paragraph>"}}."""
    return _messages(task, rejected)


def probes(entity: str, text: str, n: int, rejected: str | None) -> list[dict]:
    """Ask for ``n`` probes of each depth about the paragraph ``text``."""
    task = f"""Task: probes
Entity: {entity}
Paragraph: {text}

Write cloze probes about this paragraph. Each probe is an "input" (the start of a sentence) and
a "target" (a short span of 1 to 6 words, copied exactly from the paragraph, with no final
punctuation) that completes it.
- "memorization": {n} probes. The input is a sentence of the paragraph copied exactly, cut
  just before its final fact; the target is the rest of that sentence without its final period.
- "semantic": {n} probes. The same facts as the memorization probes, the input reworded (not
  copied from the paragraph); the target is the same span.
- "composition": {n} probes. An input whose completion needs two facts of the paragraph
  combined, referring to the entity by its category or another fact, never by its name; the
  target is a span of the paragraph.
Reply as {{"memorization": [{{"input": "...", "target": "..."}}, ...], "semantic": [...],
"composition": [...]}}."""
    return _messages(task, rejected)


def paraphrases(text: str, keep: list[str], n: int, rejected: str | None) -> list[dict]:
    """Ask for ``n`` rewrites of ``text`` that keep each string of ``keep`` verbatim."""
    task = f"""Task: paraphrases
Paragraph: {text}

Write {n} different paraphrases of the whole paragraph. Each keeps every fact, changes the
wording and the order of sentences, and contains each of these strings exactly as written:
{json.dumps(keep, ensure_ascii=False)}
Reply as {{"paraphrases": ["...", ...]}} with {n} strings."""
    return _messages(task, rejected)


def judge(text: str, probe_sets: dict[str, list[tuple[str, str]]]) -> list[dict]:
    """Ask whether every probe's target is the paragraph's answer to its input."""
    listed = "\n".join(
        f"- {depth}: {inp} [{target}]" for depth, ps in probe_sets.items() for inp, target in ps
    )
    task = f"""Task: judge
Paragraph: {text}

Probes (input [target]):
{listed}

Accept only if every target is the one correct completion of its input according to the
paragraph, and every composition probe needs two facts of the paragraph combined.
Reply as {{"accept": true or false, "reason": "<the first problem, if any>"}}."""
    return _messages(task, None)
