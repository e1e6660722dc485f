"""An :class:`~factdyn.analyze.result.Analysis` as plain text (what ``factdyn analyze``
prints)."""

from __future__ import annotations

from factdyn.analyze.estimators import GAIN_FLOOR
from factdyn.analyze.result import Analysis, RunInfo, Settings
from factdyn.report.numbers import fmt, fmt_estimate, fmt_per_depth


def logged_steps(m: Settings) -> str:
    """'N (first..last, every step)' or '..., sparse)': how much of the run the log covers."""
    return f"{m.n_logged_steps} ({m.first_step}..{m.last_step}, " + (
        "every step)" if m.every_step_logged else "sparse)"
    )


def residual_drift(m: Settings) -> str | None:
    """Per depth, what the drift correction leaves on the controls themselves (half of them
    corrected by the other half's mean, over several splits): its mean |residual| and the share
    of logged steps whose interval holds zero, beside the share chance alone gives; None
    without controls."""
    parts = [
        f"{d} mean |r| {fmt_estimate(v, m.residual_drift_mean_abs_ci[d], '.3f')}, 0 in CI at "
        f"{fmt(m.residual_drift_zero_share[d], '.0%')} of steps "
        f"[{', '.join(fmt(x, '.0%') for x in m.residual_drift_zero_share_range[d])} over the "
        f"splits] (chance {fmt(m.residual_drift_chance_share[d], '.0%')})"
        for d, v in m.residual_drift_mean_abs.items()
    ]
    parts += [f"{d} undefined ({why})" for d, why in m.residual_drift_undefined.items()]
    return "; ".join(parts) or None


def batch_switch(info: RunInfo) -> str | None:
    """A warning when the run continues the tiny base at another batch size than the base's
    last updates had: the measurement then includes the switch."""
    run, base = info.batch_size, info.base_batch_size
    if run is None or base is None or run == base:
        return None
    return (
        f"{run} sequences per update, continuing a base whose last updates had {base}: its "
        "AdamW moments fit the other batch, and on the demo the switch costs a loss spike in "
        "the run's first updates that pulls the controls down (factdyn pretrain --set "
        "settle_steps=100 avoids it)"
    )


HEAD = ("scenario", "depth", "effectivity", "a", "R²", "τ steps", "τ tokens", "SNR", "n/excl/outl")


def _table(analysis: Analysis) -> list[str]:
    """One row per population under :data:`HEAD`, names left- and numbers right-aligned."""
    rows = [HEAD]
    for p in analysis.populations:
        rows.append(
            (
                p.scenario,
                p.depth,
                fmt_estimate(p.effectivity, p.effectivity_ci),
                fmt_estimate(p.decay_constant, p.decay_constant_ci),
                fmt_estimate(p.r2, p.r2_ci, ".2f"),
                fmt_estimate(p.x_intercept_steps, p.x_intercept_steps_ci),
                fmt_estimate(p.x_intercept_tokens, p.x_intercept_tokens_ci),
                fmt_estimate(p.snr, p.snr_ci),
                f"{p.n_probes}/{p.n_excluded}/{p.n_outliers}",
            )
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(HEAD))]
    lines = []
    for k, r in enumerate(rows):
        cells = [r[j].ljust(w) if j < 2 else r[j].rjust(w) for j, w in enumerate(widths)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not analysis.populations:
        lines.append("(no injected probes in the log)")
    return lines


def _alternatives(analysis: Analysis) -> list[str]:
    """The fit under the alternative estimators, one line per population that has them."""
    alternatives = [
        f"{p.scenario}/{p.depth} "
        + ", ".join(
            f"{name} a {fmt_estimate(f.decay_constant, f.decay_constant_ci)}"
            f" R² {fmt_estimate(f.r2, f.r2_ci, '.2f')}"
            for name, f in p.alternatives.items()
        )
        for p in analysis.populations
        if p.alternatives
    ]
    if not alternatives:
        return []
    return [
        "beside the paper's R̄(t) (not used by any finding; estimators.csv): "
        f"gain_floor = only probes with gain > {GAIN_FLOOR:g} noise floors, "
        "ratio_of_means = Σ(ℓ − ℓ_pre) ÷ Σ gain",
        *(f"  {line}" for line in alternatives),
    ]


def _notes(m: Settings) -> list[str]:
    """The controls' drift and noise floor, what the log did not allow, and the legend."""
    lines = []
    if m.control_drift_last:
        drift = fmt_per_depth(m.control_drift_last, m.control_drift_last_ci, "+.3f")
        lines.append(f"control drift (mean Δℓ of control probes at the last step): {drift}")
    if m.control_drift_max:
        drift = fmt_per_depth(m.control_drift_max, m.control_drift_max_ci, ".3f")
        lines.append(f"control drift, largest |mean Δℓ| at any logged step: {drift}")
    residual = residual_drift(m)
    if residual:
        lines.append(f"residual drift after correction (half the controls): {residual}")
    if m.noise_floor:
        noise = fmt_per_depth(m.noise_floor, m.noise_floor_ci, ".3f")
        lines.append(
            f"noise floor (median |Δℓ| of a control probe in one step): {noise}; "
            "SNR = effectivity ÷ noise floor"
        )
    if m.incomplete_windows:
        inc = ", ".join(f"{s} {n}" for s, n in m.incomplete_windows.items())
        lines.append(f"windows running past the end of the log (partial windows used): {inc}")
    if m.unlogged_injection_steps:
        lines.append(f"injections whose step was not logged: {m.unlogged_injection_steps}")
    lines.append("n/excl/outl: probes / excluded (no acquisition) / retainability values removed")
    if m.resamples:
        lines.append(
            f"CI: {m.confidence_level:.0%} bootstrap intervals over items ({m.resamples} resamples)"
        )
    return lines


def format_summary(analysis: Analysis) -> str:
    """A plain-text table per scenario × depth, with the settings that produced it."""
    m = analysis.settings
    lines = [
        f"source: {m.source}",
        f"stat {m.stat} · window {m.window} · IQR factor {m.iqr_factor} · "
        f"drift correction {'on' if m.drift_corrected else 'off'}"
        + (" · reference mode (retainability in %)" if m.reference else ""),
        f"logged steps: {logged_steps(m)}",
    ]
    switch = batch_switch(analysis.run_info)
    if switch:
        lines.append(f"batch switch: {switch}")
    lines += _table(analysis) + _alternatives(analysis) + _notes(m)
    return "\n".join(lines)
