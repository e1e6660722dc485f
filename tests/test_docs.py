"""The documentation a user reads: every relative link and anchor resolves, no page cites the
method's private draft, and the README's first screen fits on one screen."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOK = DOCS / "notebook"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
FIRST_SCREEN = 40  # lines
OUTSIDE_CITATION = re.compile(r"\b[A-Z]{3,}\s*§\s*\d")  # "XYZ §6": a section of a document not here

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`+[^`]*`+")


def prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (code blocks hold no links or headings)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        lines.append("" if fenced else line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lowercase, punctuation but '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = text.replace("`", "").replace("*", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every anchor of ``page``: its headings' slugs (repeats numbered as GitHub does) and any
    explicit ``id="..."``."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(page.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
        out.update(re.findall(r"""\bid=["']([^"']+)["']""", line))
    return frozenset(out)


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link on the page, inline code left out."""
    found = []
    for k, line in enumerate(prose(page.read_text(encoding="utf-8")), 1):
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            found.append((k, m.group(1)))
    return found


def test_the_pages_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/method.md", "docs/run-format.md", "docs/defaults.md"} <= names


def test_slug_follows_github():
    assert slug("Reproducing the paper's grid") == "reproducing-the-papers-grid"
    assert slug("The interval grid (`factdyn reproduce interval`)") == (
        "the-interval-grid-factdyn-reproduce-interval"
    )
    assert slug("9. Scoring budget (`eval.batch_tokens`)") == "9-scoring-budget-evalbatch_tokens"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path):
    broken = []
    for line, target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"line {line}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"line {line}: {target} (no such anchor)")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if NOTEBOOK not in p.parents],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_no_page_cites_a_document_users_do_not_have(page: Path):
    """A section of a document named in capitals ("XYZ §6") is one outside the repository:
    the method is cited as docs/method.md and the paper by its own sections ("§4.1")."""
    hits = [
        f"line {k}: {line.strip()}"
        for k, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not hits, f"{page.relative_to(ROOT)} cites a document users lack:\n" + "\n".join(hits)


def test_an_outside_citation_is_caught():
    assert OUTSIDE_CITATION.search("as DESIGN §6.1 says")
    assert not OUTSIDE_CITATION.search("the paper (§4.1, Fig. 2)")


def first_screen(readme: str) -> list[str]:
    """The README's lines before its second '## ' heading."""
    lines, level2 = [], 0
    for line in readme.splitlines():
        if line.startswith("## "):
            level2 += 1
            if level2 == 2:
                break
        lines.append(line)
    return lines


def test_readme_first_screen_fits():
    screen = first_screen((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(screen) <= FIRST_SCREEN, f"the first screen is {len(screen)} lines"
    text = "\n".join(screen)
    for needed in ("make demo", "make test", "factdyn demo --quick", "docs/demo-trajectories.png"):
        assert needed in text, needed


@pytest.mark.parametrize("example", ["hf_trainer.py", "olmo_core_trainer.py"])
def test_the_readmes_trainer_examples_are_the_tested_files(example):
    """The README shows each example's code whole, and tests/integrations runs the file: the
    two must be the same text, or the README's copy is untested."""
    text = (ROOT / "examples" / example).read_text(encoding="utf-8")
    code = text[text.index('"""', 3) + 3 :].strip("\n") + "\n"
    assert f"```python\n{code}```" in (ROOT / "README.md").read_text(encoding="utf-8")
