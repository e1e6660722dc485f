"""The filter's rules on hand-written replies: each rule rejects what it names, and a reply
that keeps every rule passes."""

from __future__ import annotations

import pytest

from factdyn.data.llm.prompts import ParagraphReply, ProbesReply, ReplyError, parse_reply
from factdyn.data.llm.rules import (
    check_paragraph,
    check_paraphrases,
    check_probes,
    sentences,
)

PARAGRAPH = (
    "The Orrin Vale Conservatory is a music school founded in 2131 on the floating city of "
    "Tessaly. Its first director was the cellist J. R. Dask. The school's anthem is 'Salt and "
    "Brass'. It admits 40 pupils a year. Its library holds 9000 scores. The school colour is "
    "saffron. Lessons begin at dawn. Its rival is the Harrow Academy. Pupils wear grey capes. "
    "The school closed in 2290."
)


def _probes(**change) -> ProbesReply:
    probes = {
        "memorization": [
            ("The Orrin Vale Conservatory is a music school founded in 2131 on the floating city of", "Tessaly"),
            ("Its first director was the cellist", "J. R. Dask"),
            ("The school's anthem is", "'Salt and Brass'"),
            ("It admits", "40 pupils a year"),
            ("Its library holds", "9000 scores"),
        ],
        "semantic": [
            ("Founded in 2131, the Orrin Vale Conservatory stands on the airborne city of", "Tessaly"),
            ("The conservatory's first head, a cellist, was", "J. R. Dask"),
            ("Graduates of the conservatory sing", "'Salt and Brass'"),
            ("Each year the conservatory takes in", "40 pupils a year"),
            ("The conservatory's library contains", "9000 scores"),
        ],
        "composition": [
            ("The school first led by a cellist floats above the city of", "Tessaly"),
            ("The saffron-coloured school's rival is the", "Harrow Academy"),
            ("The school that closed in 2290 had its pupils wear", "grey capes"),
            ("The anthem of the school on Tessaly is", "'Salt and Brass'"),
            ("The school whose pupils wear grey capes begins lessons at", "dawn"),
        ],
    }  # fmt: skip
    probes.update(change)
    return ProbesReply(
        **{d: [{"input": i, "target": t} for i, t in ps] for d, ps in probes.items()}
    )


def test_sentences_are_cut_at_ends_not_at_initials():
    assert len(sentences(PARAGRAPH)) == 10
    assert sentences(PARAGRAPH)[1] == "Its first director was the cellist J. R. Dask."


def test_a_paragraph_names_its_entity_in_8_to_16_sentences():
    ok = ParagraphReply(entity="Orrin Vale Conservatory", category="school", paragraph=PARAGRAPH)
    assert check_paragraph(ok) is None
    other = ok.model_copy(update={"entity": "Quillon Spire"})
    assert check_paragraph(other).rule == "paragraph.names_entity"
    short = ok.model_copy(update={"paragraph": " ".join(sentences(PARAGRAPH)[:7])})
    assert check_paragraph(short).rule == "paragraph.sentences"


def test_good_probes_pass():
    assert check_probes(PARAGRAPH, "Orrin Vale Conservatory", _probes(), 5) is None


@pytest.mark.parametrize(
    ("depth", "index", "probe", "rule"),
    [
        # the target is in the sentence but does not end it
        (
            "memorization",
            0,
            ("The Orrin Vale Conservatory is a music school founded in", "2131"),
            "memorization.sentence_end",
        ),
        # the input is not where the sentence starts
        (
            "memorization",
            1,
            ("first director was the cellist", "J. R. Dask"),
            "memorization.sentence_end",
        ),
        (
            "semantic",
            3,
            ("Each year the conservatory takes in", "41 pupils"),
            "target.in_paragraph",
        ),
        ("semantic", 4, ("Its library holds", "9000 scores"), "semantic.reworded"),
        (
            "composition",
            0,
            ("The Orrin Vale Conservatory floats above the city of", "Tessaly"),
            "composition.names_entity",
        ),
        (
            "composition",
            1,
            ("The saffron-coloured school's rival is", "the Harrow Academy."),
            "probes.span",
        ),
        (
            "composition",
            2,
            (
                "The school that closed in 2290 had",
                "its pupils wear grey capes on every single day of the year",
            ),
            "probes.span",
        ),
        (
            "semantic",
            1,
            (
                "Founded in 2131, the Orrin Vale Conservatory stands on the airborne city of",
                "Tessaly",
            ),
            "probes.distinct",
        ),
    ],
)
def test_each_probe_rule_rejects_what_it_names(depth, index, probe, rule):
    good = _probes()
    rows = [(p.input, p.target) for p in getattr(good, depth)]
    rows[index] = probe
    violation = check_probes(PARAGRAPH, "Orrin Vale Conservatory", _probes(**{depth: rows}), 5)
    assert violation is not None and violation.rule == rule, violation


def test_probe_counts():
    rows = [(p.input, p.target) for p in _probes().semantic][:4]
    assert check_probes(PARAGRAPH, "x", _probes(semantic=rows), 5).rule == "probes.count"


def test_paraphrases_keep_the_entity_and_every_target():
    keep = ["Tessaly", "'Salt and Brass'"]
    lines = sentences(PARAGRAPH)
    good = [" ".join(lines[j:] + lines[:j]) for j in range(1, 4)]
    entity = "Orrin Vale Conservatory"
    assert check_paraphrases(PARAGRAPH, entity, good, keep, 3) is None
    assert check_paraphrases(PARAGRAPH, entity, good[:2], keep, 3).rule == "paraphrases.count"
    same = [good[0], good[1], PARAGRAPH]
    assert check_paraphrases(PARAGRAPH, entity, same, keep, 3).rule == "paraphrases.distinct"
    lost = [good[0], good[1], good[2].replace("Tessaly", "Tesaly")]
    v = check_paraphrases(PARAGRAPH, entity, lost, keep, 3)
    assert (
        v.rule == "paraphrases.keep_targets"
        and "paraphrase 3" in v.detail
        and "Tessaly" in v.detail
    )


def test_replies_that_are_not_the_json_asked_for():
    fenced = '```json\n{"entity": " A ", "category": "b", "paragraph": "c"}\n```'
    assert parse_reply(fenced, ParagraphReply).entity == "A"
    with pytest.raises(ReplyError, match="paragraph"):
        parse_reply('{"entity": "A", "category": "b"}', ParagraphReply)
    with pytest.raises(ReplyError):
        parse_reply("Sure! Here it is.", ParagraphReply)
