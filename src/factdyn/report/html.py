"""``factdyn report``: one self-contained HTML page (figures as data URIs, the item explorer's
script and plotting library inlined, no network) plus every figure as PNG and PDF under
``figures/``.

Only ``out_dir/report.html`` and the figures' files in ``out_dir/figures/`` are written: all
of them are made in a staging folder, then each is renamed over its old version (the page
last), so a reader never sees a half-written file and files of anyone else stay.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from factdyn.analyze.bootstrap import LEVEL
from factdyn.analyze.estimators import ESTIMATORS, GAIN_FLOOR
from factdyn.analyze.inputs import reported
from factdyn.analyze.result import Analysis, Population
from factdyn.errors import DataError
from factdyn.files import output_dir
from factdyn.report import explorer as X
from factdyn.report import figures as F
from factdyn.report import learnability as L
from factdyn.report.findings import Finding, compute_findings, findings_document
from factdyn.report.numbers import MISSING, fmt_estimate, fmt_interval, fmt_per_depth
from factdyn.report.text import batch_switch, logged_steps
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "run"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 0) -> str:
    """An HTML table; the first ``left`` columns are text (left-aligned), values escaped."""

    def cells(row, tag):
        return "".join(
            f"<{tag}{' class=l' if k < left else ''}>{html.escape(str(c))}</{tag}>"
            for k, c in enumerate(row)
        )

    body = "\n".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table>\n<tr>{cells(head, 'th')}</tr>\n{body}\n</table>"


def _entries(
    analyses: Sequence[Analysis], labels: Sequence[str]
) -> Iterator[tuple[str, Population]]:
    """(run label, population) of every run, in display order."""
    for a, lab in zip(analyses, labels, strict=True):
        for p in a.populations:
            yield lab, p


def _fit_table(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
    head = ("run", "scenario", "depth", "a [95% CI]", "b [95% CI]", "R² [95% CI]",
            "τ steps [95% CI]", "τ tokens [95% CI]", "probes", "excluded", "outliers")  # fmt: skip
    rows = []
    for lab, p in _entries(analyses, labels):
        rows.append((
            lab, p.scenario, p.depth, fmt_estimate(p.decay_constant, p.decay_constant_ci, ".4g"),
            fmt_estimate(p.intercept, p.intercept_ci, ".4g"), fmt_estimate(p.r2, p.r2_ci, ".3f"),
            fmt_estimate(p.x_intercept_steps, p.x_intercept_steps_ci, ".4g"),
            fmt_estimate(p.x_intercept_tokens, p.x_intercept_tokens_ci), str(p.n_probes),
            str(p.n_excluded), str(p.n_outliers),
        ))  # fmt: skip
    return _table(head, rows, left=3)


def _estimators_html(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
    """The fit under the two alternative estimators of R̄(t), beside the paper's a and R²."""
    names = {"gain_floor": f"gain floor (g > {GAIN_FLOOR:g} noise floors)",
             "ratio_of_means": "ratio of means"}  # fmt: skip
    head = ("run", "scenario", "depth", "paper: a", "R²",
            *(f"{names[n]}: {x}" for n in ESTIMATORS for x in ("a", "R²")))  # fmt: skip
    rows = []
    for lab, p in _entries(analyses, labels):
        cells = [lab, p.scenario, p.depth, fmt_estimate(p.decay_constant, p.decay_constant_ci),
                 fmt_estimate(p.r2, p.r2_ci, ".2f")]  # fmt: skip
        for n in ESTIMATORS:
            f = p.alternatives.get(n)
            cells += [fmt_estimate(f.decay_constant, f.decay_constant_ci),
                      fmt_estimate(f.r2, f.r2_ci, ".2f")] if f else ["", ""]  # fmt: skip
        rows.append(cells)
    return f"""<p>Beside the paper's estimator (never instead of it: every finding above uses the
paper's), the same fit with R̄(t) estimated two other ways, each with its 95% interval: over the
probes whose gain exceeds {GAIN_FLOOR:g} × the depth's noise floor only (a small gain makes a
probe's ratio swing), and as a ratio of means, Σ(ℓ(t_LAM + t) − ℓ_pre) ÷ Σ gain, which divides by
no single small gain. Where they agree with the paper's, its numbers are not an artefact of
dividing by small gains; where they differ, probes with small gains move the paper's mean
(estimators.csv in the analysis folder has all three, with intercepts).</p>
{_table(head, rows, left=3)}"""


def _effectivity_table(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
    head = ("run", "scenario", "depth", "effectivity [95% CI]", "SNR [95% CI]",
            "per injection [95% CI]")  # fmt: skip
    rows = []
    for lab, p in _entries(analyses, labels):
        per = list(zip(p.effectivity_per_injection, p.effectivity_per_injection_ci, strict=True))
        shown = "; ".join(fmt_estimate(v, ci) for v, ci in per[:12])
        shown += f"; … ({len(per)} in all)" if len(per) > 12 else ""
        effectivity = fmt_estimate(p.effectivity, p.effectivity_ci, ".4g")
        rows.append((lab, p.scenario, p.depth, effectivity, fmt_estimate(p.snr, p.snr_ci), shown))
    return _table(head, rows, left=3)


def _learnability(analyses: Sequence[Analysis], labels: Sequence[str], figs: str) -> str:
    """Section 3b for runs of the interval experiment ('' for others)."""
    head = ("run", "depth", "retained up to Δ", "rises up to Δ", "τ predicted (steps) [95% CI]",
            "prediction inside the measured 95% interval")  # fmt: skip
    rows = [(lab, *r) for a, lab in zip(analyses, labels, strict=True) for r in L.rows(a)]
    if not rows:
        return ""
    return f"""<h2>3b. The learnability threshold, measured and predicted</h2>
<p>Each item of the interval scenarios is exposed K times, every Δ steps; the level it keeps one
interval after the last exposure (relative to before the first) is measured per Δ, with its 95%
bootstrap interval. The simulator predicts it from the run's single-exposure items: their gain
and power-law forgetting, each exposure fading on its own clock and the fades added. The paper's
threshold τ = 10^(b/a) predicts that nothing is retained above it; "retained up to" is the
largest Δ whose kept level is above 0, "rises up to" the largest whose kept level still grows
over the exposures (under superposed fading that happens only below τ/2).</p>
{figs}
{_table(head, rows, left=2)}
"""


def _settings(a: Analysis) -> str:
    m = a.settings
    drift = "applied" if m.drift_corrected else "not applied"
    if m.drift_corrected:
        drift += " (control probes' mean ℓ subtracted, depths: "
        drift += ", ".join(m.drift_corrected_depths) + ")"
    elif not len(a.control_drift):
        drift += " (the run has no control probes)"

    rows = [
        ("options", f"{a.options.describe()} (as factdyn analyze takes them)"),
        ("drift correction", drift),
        ("control drift at the last step (mean Δℓ, 95% CI)",
         fmt_per_depth(m.control_drift_last, m.control_drift_last_ci, "+.3f") or MISSING),
        ("noise floor (median one-step |Δℓ| of a control probe, 95% CI)",
         fmt_per_depth(m.noise_floor, m.noise_floor_ci, ".3f") or MISSING),
        ("statistic", m.stat),
        ("window t_w", m.window),
        ("IQR factor", f"{m.iqr_factor:g}"),
        ("bootstrap resamples", f"{m.resamples:,}"),
        ("tokens per step", f"{m.tokens_per_step:,}"),
        ("logged steps", logged_steps(m)),
        ("run status", m.status),
    ]  # fmt: skip
    switch = batch_switch(a.run_info)
    if switch:
        rows.append(("batch switch", switch))
    if m.incomplete_windows:
        rows.append(("windows past the log end", str(dict(m.incomplete_windows))))
    if m.unlogged_injection_steps:
        rows.append(("injections at unlogged steps", m.unlogged_injection_steps))
    return _table(("setting", "value"), [(k, str(v)) for k, v in rows], left=2)


VERDICT_CSS = {"reproduced": "yes", "contradicted": "no", "inconclusive": "unsure"}


def _findings_html(found: Sequence[Finding]) -> str:
    items = []
    for f in found:
        css = VERDICT_CSS.get(f.verdict, "na")
        interval = (
            "" if f.interval is None else f", {LEVEL:.0%} interval {fmt_interval(f.interval)}"
        )
        items.append(
            f'<li><span class="mark {css}" title="{f.verdict}">'
            f"{f.mark}</span> <b>§{html.escape(f.ref)}</b> {html.escape(f.claim)} "
            f"<i>({f.verdict}{html.escape(interval)})</i>"
            f'<div class="ev">{html.escape(f.evidence)}</div></li>'
        )
    return '<ul class="findings">\n' + "\n".join(items) + "\n</ul>"


def _img(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    pdf = png.with_suffix(".pdf").name
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)} (also figures/{html.escape(png.name)}, "
        f"figures/{html.escape(pdf)})</figcaption></figure>"
    )


def make_figures(
    runs: Sequence[Run], analyses: Sequence[Analysis], labels: Sequence[str], fig_dir: Path
) -> list[tuple[str, Path, str]]:
    """Draw and save every figure; returns (section, PNG path, caption) in page order."""
    many = len(analyses) > 1
    out: list[tuple[str, Path, str]] = []

    def keep(fig, name: str, section: str, caption: str) -> None:
        png, _ = F.save(fig, fig_dir, name)
        out.append((section, png, caption))

    for run, a, lab in zip(runs, analyses, labels, strict=True):
        suffix = f"-{_slug(lab)}" if many else ""
        keep(
            F.trajectory_figure(a, run.injections, title=lab if many else None),
            f"fig2-trajectories{suffix}",
            "trajectories",
            f"Mean Δℓ per depth over steps, injections dotted, control drift grey ({lab}).",
        )
        if not a.greedy.empty:
            keep(
                F.greedy_figure(a, run.injections, title=lab if many else None),
                f"fig2b-greedy{suffix}",
                "trajectories",
                f"Share of probes whose target is the greedy continuation, per depth over "
                f"steps, injections dotted ({lab}).",
            )
    keep(
        F.effectivity_figure(analyses, labels),
        "fig3-effectivity",
        "effectivity",
        "Effectivity by depth × scenario (bars: mean over injections; whiskers: SD over "
        "injections)" + (", runs side by side." if many else "."),
    )
    for a, lab in zip(analyses, labels, strict=True):
        suffix = f"-{_slug(lab)}" if many else ""
        ret = a.retainability
        drawn = set(ret.loc[ret["t"] >= 1, "scenario"].astype(str)) if len(ret) else set()
        none = [s for s in a.scenarios() if s not in drawn]
        why = (
            f" There is no retainability to draw for {', '.join(none)}: no probe has a logged step after "
            "its last acquisition maximum (the run ends too soon after its injections)."
            if none
            else ""
        )
        keep(
            F.retainability_figure(a, title=lab if many else None),
            f"fig4-retainability{suffix}",
            "retainability",
            f"Retainability R̄(t) on a log axis with the fit R̄ = b − a·log10 t ({lab}).{why}",
        )
    for a, lab in zip(analyses, labels, strict=True):
        if L.curves_by_depth(a):
            suffix = f"-{_slug(lab)}" if many else ""
            keep(
                L.figure(a, title=lab if many else None),
                f"fig6-learnability{suffix}",
                "learnability",
                "Kept Δℓ one interval after the last of K exposures, against the interval Δ "
                f"(points: measured, 95% intervals; line: simulated from the run's '{L.SOURCE}' "
                f"items; dashed: predicted τ; dotted: largest Δ still retained) ({lab}).",
            )
    if len({a.settings.tokens_per_step for a in analyses}) > 1:
        keep(
            F.retainability_tokens_figure(analyses, labels),
            "fig5-retainability-tokens",
            "retainability",
            "Fitted forgetting over tokens for runs with different batch sizes "
            "(line style = run, τ in tokens in the legend).",
        )
    return out


def render(
    analyses: Sequence[Analysis],
    labels: Sequence[str],
    paths: Sequence[Path],
    figs: Sequence[tuple[str, Path, str]],
    found: Sequence[Finding],
    grid_intro: str = "",
    explorer: str = "",
) -> str:
    def section(name: str) -> str:
        return "\n".join(_img(png, cap) for sec, png, cap in figs if sec == name)

    n = Counter(f.verdict for f in found)
    runs_list = "".join(
        f"<li><b>{html.escape(lab)}</b>: {html.escape(str(p))}</li>"
        for lab, p in zip(labels, paths, strict=True)
    )
    settings = "\n".join(
        f"<h3>{html.escape(lab)}</h3>\n{_settings(a)}"
        for a, lab in zip(analyses, labels, strict=True)
    )
    configs = "\n".join(
        f"<h3>{html.escape(lab)}</h3>\n<pre>"
        + html.escape(yaml.safe_dump(a.config, sort_keys=False, allow_unicode=True) or "{}")
        + "</pre>"
        for a, lab in zip(analyses, labels, strict=True)
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>factdyn report</title>
<style>{CSS}{X.CSS}</style>
</head>
<body>
<h1>factdyn report: acquisition and forgetting of injected knowledge</h1>
<p>Generated {stamp}. Runs:</p>
<ul>{runs_list}</ul>
<p>Findings of the paper (SPEC §6) checked on these numbers, each decided by the
{LEVEL:.0%} bootstrap interval of what it compares: {n["reproduced"]} reproduced (✓),
{n["contradicted"]} contradicted (✗), {n["inconclusive"]} inconclusive (?),
{n["not testable"]} not testable with these runs (–).</p>
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
{_effectivity_table(analyses, labels)}

<h2>3. Retainability and the forgetting fit (Figs. 4–5)</h2>
<p>Share of the acquired gain still present t steps after the last acquisition maximum, fitted by
R̄(t) = b − a·log10 t: a is the decay constant, τ = 10^(b/a) the x-intercept (steps until the
gain is lost; in tokens the learnability threshold).</p>
{section("retainability")}
{_fit_table(analyses, labels)}
{_estimators_html(analyses, labels)}
{_learnability(analyses, labels, section("learnability"))}

<h2>4. The paper's findings</h2>
{_findings_html(found)}

<h2>5. Analysis settings</h2>
{settings}

<h2>6. Run configuration</h2>
{configs}
</body>
</html>
"""


Figures = list[tuple[str, Path, str]]  # (section, PNG path, caption) in page order


@dataclass(frozen=True)
class Grid:
    """A sweep's report (:mod:`factdyn.report.grid`): the single-run findings on the
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
        explorer = X.section(X.build(runs[k], analyses[k], labels[k]), len(runs) - 1)
        page = render(analyses, labels, paths, figs, found, grid.intro if grid else "", explorer)
        (stage / "report.html").write_text(page, encoding="utf-8")
        doc = json.dumps(findings_document(found), indent=2, ensure_ascii=False, allow_nan=False)
        (stage / "findings.json").write_text(doc, encoding="utf-8")
    return out_dir / "report.html"
