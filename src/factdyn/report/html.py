"""``factdyn report``: one self-contained HTML page (figures as data URIs, the item explorer's
script and plotting library inlined, no network) plus every figure as PNG and PDF under
``figures/``.

Only ``out_dir/report.html`` and the figures' files in ``out_dir/figures/`` are written: all
of them are made in a staging folder, then each is renamed over its old version (the page
last), so a reader never sees a half-written file and files of anyone else stay.

The page's parts live beside it: its tables in :mod:`factdyn.report.tables`, its figures in
:mod:`factdyn.report.page_figures`, the item explorer in :mod:`factdyn.report.explorer` (the
data) and :mod:`factdyn.report.explorer_page` (its block of the page).
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from factdyn.analyze.bootstrap import LEVEL
from factdyn.analyze.inputs import reported
from factdyn.analyze.result import Analysis
from factdyn.errors import DataError
from factdyn.files import output_dir
from factdyn.report import explorer_page
from factdyn.report import tables as T
from factdyn.report.explorer import build
from factdyn.report.findings import Finding, compute_findings, findings_document
from factdyn.report.page_figures import Figures, make_figures
from factdyn.report.verdicts import CONTRADICTED, NO_DIFFERENCE, REVERSAL
from factdyn.rundir import Run

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1250px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.82em}
ul.findings{list-style:none;padding-left:0}ul.findings li{margin:.5em 0}
.mark{display:inline-block;width:1.4em;font-weight:bold}
.yes{color:#1a7f37}.no{color:#c62828}.unsure{color:#b26a00}.na{color:#888}
.ev{color:#555;font-size:.88em;margin-left:1.4em}
"""


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short distinct run names: the directory names, widened with parents when they clash."""
    resolved = [p.resolve() for p in paths]
    for depth in range(1, 6):
        names = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(names)) == len(names):
            return names
    return [f"{n} ({k + 1})" for k, n in enumerate(names)]


def _img(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    pdf = png.with_suffix(".pdf").name
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)} (also figures/{html.escape(png.name)}, "
        f"figures/{html.escape(pdf)})</figcaption></figure>"
    )


def _runs_list(labels: Sequence[str], paths: Sequence[Path]) -> str:
    return "".join(
        f"<li><b>{html.escape(lab)}</b>: {html.escape(str(p))}</li>"
        for lab, p in zip(labels, paths, strict=True)
    )


def _per_run(analyses: Sequence[Analysis], labels: Sequence[str]) -> tuple[str, str]:
    """Sections 5 and 6: each run's analysis settings and its configuration."""
    settings = "\n".join(
        f"<h3>{html.escape(lab)}</h3>\n{T.settings_table(a)}"
        for a, lab in zip(analyses, labels, strict=True)
    )
    configs = "\n".join(
        f"<h3>{html.escape(lab)}</h3>\n<pre>"
        + html.escape(yaml.safe_dump(a.config, sort_keys=False, allow_unicode=True) or "{}")
        + "</pre>"
        for a, lab in zip(analyses, labels, strict=True)
    )
    return settings, configs


def verdict_counts(found: Sequence[Finding]) -> str:
    """How many findings got each verdict, the contradicted ones by kind (reversed, or no
    difference within their δ)."""
    n = Counter(f.verdict for f in found)
    kinds = Counter(f.kind for f in found if f.verdict == CONTRADICTED)
    how = f" ({kinds[REVERSAL]} reversed, {kinds[NO_DIFFERENCE]} no difference)" if kinds else ""
    return (
        f"{n['reproduced']} reproduced (✓), {n['contradicted']} contradicted (✗){how}, "
        f"{n['inconclusive']} inconclusive (?), {n['not testable']} not testable with these "
        "runs (–)"
    )


def render(
    analyses: Sequence[Analysis],
    labels: Sequence[str],
    paths: Sequence[Path],
    figs: Figures,
    found: Sequence[Finding],
    grid_intro: str = "",
    explorer: str = "",
) -> str:
    """The page: the runs and a count of the verdicts, then the paper's figures and tables
    section by section, the findings, each run's settings and configuration."""

    def section(name: str) -> str:
        return "\n".join(_img(png, cap) for sec, png, cap in figs if sec == name)

    settings, configs = _per_run(analyses, labels)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>factdyn report</title>
<style>{CSS}{explorer_page.CSS}</style>
</head>
<body>
<h1>factdyn report: acquisition and forgetting of injected knowledge</h1>
<p>Generated {stamp}. Runs:</p>
<ul>{_runs_list(labels, paths)}</ul>
<p>Findings of the paper (numbered as in factdyn's docs/method.md) checked on these numbers,
each decided by the
{LEVEL:.0%} bootstrap interval of what it compares: {verdict_counts(found)}.</p>
{grid_intro}
{section("grid")}

<h2>1. Log probability over training (Fig. 2)</h2>
<p>Mean change of the probes' log probability ℓ since the start, per depth; dotted lines are the
injection steps. A rise after each injection is acquisition, the sag between them forgetting.
Where the run logged it, next to it: the share of probes whose target the model produces as its
greedy (argmax) continuation, the fact learned in words.</p>
{section("trajectories")}

<h2>1b. Item explorer</h2>
{explorer}

<h2>2. Effectivity (Fig. 3)</h2>
<p>Effectivity of an injection: the rise of ℓ from the injection step to its local maximum
within the window t_w.</p>
{section("effectivity")}
{T.effectivity_table(analyses, labels)}

<h2>3. Retainability and the forgetting fit (Figs. 4–5)</h2>
<p>Share of the acquired gain still present t steps after the last acquisition maximum, fitted by
R̄(t) = b − a·log10 t: a is the decay constant, τ = 10^(b/a) the x-intercept (steps until the
gain is lost; in tokens the learnability threshold).</p>
{section("retainability")}
{T.fit_table(analyses, labels)}
{T.estimators_section(analyses, labels)}
{T.learnability_section(analyses, labels, section("learnability"))}

<h2>4. The paper's findings</h2>
{T.findings_list(found)}

<h2>5. Analysis settings</h2>
{settings}

<h2>6. Run configuration</h2>
{configs}
</body>
</html>
"""


@dataclass(frozen=True)
class Grid:
    """A sweep's report (:mod:`factdyn.sweep.report`): the single-run findings on the
    reference point (``single``), a page section of the grid's own figures drawn by
    ``figures(fig_dir)``, and its intro text (HTML)."""

    single: Sequence[int]
    figures: Callable[[Path], Figures]
    intro: str


def write_report(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    analyses: Sequence[Analysis] | None = None,
    *,
    runs: Sequence[Run] | None = None,
    labels: Sequence[str] | None = None,
    grid: Grid | None = None,
) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/findings.json`` and ``out_dir/figures/`` for
    ``run_dirs`` (runs, analysis folders or folders holding one), showing their saved analyses
    (:func:`~factdyn.analyze.inputs.reported`) unless ``analyses`` and ``runs`` are given (the
    demo has just computed them; a sweep gives its pooled ``runs``, their ``labels`` and
    ``grid``)."""
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise DataError("report: give at least one run directory")
    if analyses is None or runs is None:
        found_inputs = [reported(p) for p in paths]
        runs = [r.run for r in found_inputs]
        analyses = [r.analysis for r in found_inputs]
    runs, analyses = list(runs), list(analyses)
    labels = list(labels) if labels is not None else _labels(paths)
    found = compute_findings(analyses, labels, grid.single if grid else None)
    out_dir = Path(out_dir)
    with output_dir(out_dir) as stage:
        fig_dir = stage / "figures"
        fig_dir.mkdir()
        figs = make_figures(runs, analyses, labels, fig_dir)
        if grid is not None:
            figs = grid.figures(fig_dir) + figs
        # one run's items (a sweep: its reference point's): each run would add megabytes
        k = grid.single[0] if grid else 0
        explorer = explorer_page.section(build(runs[k], analyses[k], labels[k]), len(runs) - 1)
        page = render(analyses, labels, paths, figs, found, grid.intro if grid else "", explorer)
        (stage / "report.html").write_text(page, encoding="utf-8")
        doc = json.dumps(findings_document(found), indent=2, ensure_ascii=False, allow_nan=False)
        (stage / "findings.json").write_text(doc, encoding="utf-8")
    return out_dir / "report.html"
