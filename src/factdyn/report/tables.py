"""The report page's tables and lists (HTML fragments): the fit, the alternative estimators,
effectivity, the learnability threshold, the analysis settings and the findings. Every value
is escaped here, so that a run's names cannot alter the page."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from factdyn.analyze.bootstrap import LEVEL
from factdyn.analyze.estimators import ESTIMATORS, GAIN_FLOOR
from factdyn.analyze.result import Analysis, Population
from factdyn.report import learnability as L
from factdyn.report.findings import Finding
from factdyn.report.numbers import MISSING, fmt_estimate, fmt_interval, fmt_per_depth
from factdyn.report.text import batch_switch, logged_steps, residual_drift

VERDICT_CSS = {"reproduced": "yes", "contradicted": "no", "inconclusive": "unsure"}


def table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 0) -> str:
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


def fit_table(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
    """The forgetting fit of every population: a, b, R², τ in steps and tokens, the counts."""
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
    return table(head, rows, left=3)


def estimators_section(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
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
{table(head, rows, left=3)}"""


def effectivity_table(analyses: Sequence[Analysis], labels: Sequence[str]) -> str:
    """Effectivity and SNR of every population, and its first injections' effectivities."""
    head = ("run", "scenario", "depth", "effectivity [95% CI]", "SNR [95% CI]",
            "per injection [95% CI]")  # fmt: skip
    rows = []
    for lab, p in _entries(analyses, labels):
        per = list(zip(p.effectivity_per_injection, p.effectivity_per_injection_ci, strict=True))
        shown = "; ".join(fmt_estimate(v, ci) for v, ci in per[:12])
        shown += f"; … ({len(per)} in all)" if len(per) > 12 else ""
        effectivity = fmt_estimate(p.effectivity, p.effectivity_ci, ".4g")
        rows.append((lab, p.scenario, p.depth, effectivity, fmt_estimate(p.snr, p.snr_ci), shown))
    return table(head, rows, left=3)


def learnability_section(analyses: Sequence[Analysis], labels: Sequence[str], figs: str) -> str:
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
{table(head, rows, left=2)}
"""


def settings_table(a: Analysis) -> str:
    """How one run's numbers were computed, and what its log did not allow."""
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
        ("residual drift after correction (half the controls by the other half's mean, 10 splits)",
         residual_drift(m) or MISSING),
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
    return table(("setting", "value"), [(k, str(v)) for k, v in rows], left=2)


def findings_list(found: Sequence[Finding]) -> str:
    """The findings as a list: each one's mark, claim, verdict (and what a contradiction rests
    on: a reversal or no difference within ±δ), deciding interval, evidence."""
    items = []
    for f in found:
        css = VERDICT_CSS.get(f.verdict, "na")
        interval = (
            "" if f.interval is None else f", {LEVEL:.0%} interval {fmt_interval(f.interval)}"
        )
        why = f": {f.contradiction}" if f.contradiction else ""
        items.append(
            f'<li><span class="mark {css}" title="{f.verdict}">'
            f"{f.mark}</span> <b>finding {html.escape(f.ref)}</b> {html.escape(f.claim)} "
            f"<i>({f.verdict}{html.escape(why + interval)})</i>"
            f'<div class="ev">{html.escape(f.evidence)}</div></li>'
        )
    return '<ul class="findings">\n' + "\n".join(items) + "\n</ul>"
