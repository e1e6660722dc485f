"""The report's item explorer: pick a scenario, depth and item, see that item's probes.

The figures of the report average over items; a reader who doubts an average wants to look at
the items behind it. :func:`build` gathers, for every injected item of one run, its probes' ℓ
at the logged steps (the analysed statistic, as logged), its injection steps, its paragraph,
and what the analysis decided about each probe (t_LAM and gain per injection from the
acquisition table; exclusion, retainability and IQR removals from the per-probe table), so
the page shows the analysis's own numbers rather than a second computation of them.
:func:`section` turns that into one block of the page: the data as one embedded JSON
document, plotly.js inlined (no network), and a small script for the selectors, the sortable
item table and the plot.

A long sparse log would make the page large, so each item's series is thinned to about
:data:`CAP` steps (:func:`thin`); values are rounded to 4 significant digits.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from factdyn.analyze.result import Analysis
from factdyn.data.items import KnowledgeItem, load_items
from factdyn.errors import DataError
from factdyn.rundir import Run

CAP = 600  # steps drawn per item at most (beyond those always kept: see thin)
DIGITS = 4  # significant digits of every number in the page's data


def _round(values: Sequence[float] | np.ndarray) -> list[float | None]:
    """Numbers for JSON: rounded to :data:`DIGITS` significant digits, None where undefined."""
    return [
        float(f"{v:.{DIGITS}g}") if math.isfinite(v) else None
        for v in np.asarray(values, dtype=np.float64).tolist()
    ]


def _number(v: float) -> float | None:
    return _round([v])[0]


@dataclass(frozen=True)
class ProbeView:
    """One probe of an item at one depth: its series and what the analysis decided."""

    probe: int
    input: str
    target: str
    y: list[float | None]  # ℓ at the item's steps (None: not scored there)
    lam: list[int]  # t_LAM per injection (-1: none in the log)
    gain: list[float | None]  # effectivity of each injection
    retainability: float | None  # R at retainability_t, the last t of its population's range
    retainability_t: int
    excluded: bool  # no acquisition: left out of retainability
    n_retainability: int  # t at which it has R
    gain_outliers: int  # injections whose gain the IQR filter removed
    retainability_outliers: int  # t whose R the IQR filter removed


@dataclass(frozen=True)
class DepthView:
    """An item's probes at one depth and their summary: the mean gain over probes and
    injections, the mean R of its probes, and how many of their gains and R values the IQR
    filter removed (of how many)."""

    effectivity: float | None
    retainability: float | None
    gains: int
    gain_outliers: int
    n_retainability: int
    retainability_outliers: int
    probes: list[ProbeView]


@dataclass(frozen=True)
class ItemView:
    item: int
    scenario: str
    injections: list[int]
    paragraph: str | None  # None: the run's items file is not at hand (or has changed)
    steps: list[int]
    depths: dict[str, DepthView]


@dataclass(frozen=True)
class Explorer:
    """Everything the explorer shows about one run."""

    run: str
    stat: str
    window: int
    iqr_factor: float
    drift_corrected: bool
    retainability_unit: str
    cap: int
    items: list[ItemView]

    def to_json(self) -> str:
        """The page's data, safe inside ``<script type="application/json">``."""
        text = json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def paragraphs(run: Run) -> dict[int, str]:
    """Each item's train_context, from the items file the run's config names (the run
    directory keeps only the probes): only a local file, and only for items whose probes are
    the run's, so a file changed since the run shows nothing rather than a wrong paragraph."""
    inj, data = run.config.get("injection") or {}, run.config.get("data") or {}
    source = inj.get("items")
    if source is None and data.get("source", "world") == "world" and data.get("path"):
        source = str(Path(data["path"]) / "knowledge.json")  # as training reads it
    if source is None or not Path(source).is_file():
        return {}
    try:
        items = load_items(source)
    except DataError:
        return {}
    per_run = run.meta.get("pooled_items")  # pooled seeds: item i of every run is item i
    out = {}
    for item, probes in run.probes.groupby("item"):
        k = int(item) % per_run if per_run else int(item)
        if k < len(items) and _same_probes(items[k], probes):
            out[int(item)] = items[k].train_context
    return out


def _same_probes(item: KnowledgeItem, probes: pd.DataFrame) -> bool:
    have = item.probes
    return all(
        r.depth in have and r.probe < len(have[r.depth]) and have[r.depth][r.probe].input == r.input
        for r in probes.itertuples()
    )


def thin(steps: np.ndarray, injections: np.ndarray, keep: np.ndarray, cap: int) -> np.ndarray:
    """Mask of the rows of ``steps`` to draw: all of them when there are at most ``cap``;
    else the ``keep`` steps, the first and the last, and as many more as fit in ``cap``,
    spaced evenly in log(1 + steps since the latest injection): dense where ℓ moves fast
    (just after each injection), sparse along the slow forgetting tail."""
    if len(steps) <= cap:
        return np.ones(len(steps), dtype=bool)
    inj = np.unique(injections)
    segment = np.searchsorted(inj, steps, side="right")  # 0: before the first injection
    since = steps - np.where(segment > 0, inj[np.maximum(segment - 1, 0)], steps[0])
    age = np.log1p(since)
    must = np.isin(steps, keep)
    must[[0, -1]] = True

    def pick(k: float) -> np.ndarray:
        bins = np.floor(k * age)
        new = np.r_[True, (bins[1:] != bins[:-1]) | (segment[1:] != segment[:-1])]
        return new | must

    lo, hi = 0.0, float(since.max() + 2)  # at hi every row is its own bin: more than cap
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if pick(mid).sum() <= cap else (lo, mid)
    return pick(lo)


def _probe_view(row, ell: np.ndarray, acq: pd.DataFrame, outcome) -> ProbeView:
    """``row`` of the run's probe table, its drawn ``ell``, its rows of the acquisition table
    and its row of the per-probe table."""
    return ProbeView(
        probe=int(row.probe),
        input=str(row.input),
        target=str(row.target),
        y=_round(ell),
        lam=[int(v) for v in acq["lam_step"]],
        gain=_round(acq["gain"]),
        retainability=_number(outcome.retainability),
        retainability_t=int(outcome.retainability_t),
        excluded=bool(outcome.excluded),
        n_retainability=int(outcome.n_retainability),
        gain_outliers=int(outcome.n_gain_outliers),
        retainability_outliers=int(outcome.n_retainability_outliers),
    )


def build(run: Run, analysis: Analysis, label: str, cap: int = CAP) -> Explorer:
    """The explorer's data for ``run`` from its ``analysis`` (of that same run)."""
    settings = analysis.settings
    ell = np.asarray(run.stat(settings.stat), dtype=np.float64)
    steps = np.asarray(run.steps, dtype=np.int64)
    column = {int(p): k for k, p in enumerate(run.probes["probe_id"])}
    probes = run.probes.set_index("probe_id", drop=False)
    acq = analysis.acquisition.sort_values(["probe_id", "injection"])
    acq_of = dict(tuple(acq.groupby("probe_id")))
    texts = paragraphs(run)
    outcomes = analysis.per_probe.copy()
    outcomes["scenario"] = outcomes["scenario"].astype(str)
    outcomes["depth"] = outcomes["depth"].astype(str)
    items = []
    for scenario in analysis.scenarios():
        depths = analysis.depths(scenario)
        mine = outcomes[outcomes["scenario"] == scenario]
        for item, rows in mine.groupby("item", sort=True):
            cols = [column[int(p)] for p in rows["probe_id"]]
            first = acq_of[int(rows["probe_id"].iloc[0])]
            injections = [int(s) for s in first["step"]]
            lams = np.concatenate([acq_of[int(p)]["lam_step"].to_numpy() for p in rows["probe_id"]])
            scored = ~np.isnan(ell[:, cols]).all(axis=1)
            keep = np.concatenate([injections, np.add(injections, 1), lams[lams >= 0]])
            shown = np.flatnonzero(scored)[thin(steps[scored], np.array(injections), keep, cap)]
            views: dict[str, DepthView] = {}
            for depth in depths:
                at = rows[rows["depth"] == depth].sort_values("probe_id")
                if at.empty:
                    continue
                pv = [
                    _probe_view(
                        probes.loc[int(o.probe_id)],
                        ell[shown, column[int(o.probe_id)]],
                        acq_of[int(o.probe_id)],
                        o,
                    )
                    for o in at.itertuples()
                ]
                gains = np.concatenate([acq_of[int(p)]["gain"].to_numpy() for p in at["probe_id"]])
                kept = at.loc[~at["excluded"], "retainability"].to_numpy(dtype=np.float64)
                views[depth] = DepthView(
                    effectivity=_mean(gains),
                    retainability=_mean(kept),
                    gains=int(np.isfinite(gains).sum()),
                    gain_outliers=int(at["n_gain_outliers"].sum()),
                    n_retainability=int(at["n_retainability"].sum()),
                    retainability_outliers=int(at["n_retainability_outliers"].sum()),
                    probes=pv,
                )
            items.append(
                ItemView(
                    item=int(item),
                    scenario=scenario,
                    injections=injections,
                    paragraph=texts.get(int(item)),
                    steps=[int(s) for s in steps[shown]],
                    depths=views,
                )
            )
    return Explorer(
        run=label,
        stat=settings.stat,
        window=settings.window,
        iqr_factor=settings.iqr_factor,
        drift_corrected=settings.drift_corrected,
        retainability_unit=settings.retainability_unit,
        cap=cap,
        items=items,
    )


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return _number(float(x.mean())) if len(x) else None


CSS = """
.explorer .controls{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;margin:.6em 0}
.explorer .panes{display:grid;grid-template-columns:minmax(260px,330px) 1fr;gap:1em}
.explorer .list{max-height:440px;overflow:auto;border:1px solid #ddd}
.explorer .list table{margin:0;width:100%}
.explorer .list tr{cursor:pointer}.explorer .list tr.on td{background:#dbe9f6}
.explorer .list tr:hover td{background:#eef4fa}
.explorer #ex-plot{min-height:420px}
.explorer blockquote{background:#f7f7f7;margin:.6em 0;padding:.6em 1em;font-size:.88em}
.explorer td.l{max-width:38em}
"""

# The explorer's behaviour: everything it shows is read from the JSON document; strings are
# inserted as text (never as HTML), so the page cannot be altered by an item's content.
SCRIPT = r"""
(function () {
  const D = JSON.parse(document.getElementById('explorer-data').textContent);
  const $ = (id) => document.getElementById(id);
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
    '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const fmt = (v) => (v === null || v === undefined ? '\u2013' : Number(v).toPrecision(3));
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const row = (cells, tag, left) => {
    const tr = document.createElement('tr');
    cells.forEach((c, k) => tr.appendChild(el(tag || 'td', c, k < (left || 0) ? 'l' : '')));
    return tr;
  };
  const options = (select, values, labels) => {
    select.replaceChildren(...values.map((v, k) => {
      const o = el('option', labels ? labels[k] : String(v));
      o.value = String(v);
      return o;
    }));
  };
  const scenarios = [...new Set(D.items.map((it) => it.scenario))];
  const S = { scenario: scenarios[0], depth: null, item: null, sort: 'effectivity' };

  function candidates() {
    const key = {
      effectivity: (it) => -(it.depths[S.depth].effectivity ?? -Infinity),
      decay: (it) => it.depths[S.depth].retainability ?? Infinity,
      item: (it) => it.item,
    }[S.sort];
    return D.items.filter((it) => it.scenario === S.scenario && it.depths[S.depth])
      .sort((a, b) => key(a) - key(b) || a.item - b.item);
  }

  function setScenario(s) {
    S.scenario = s;
    const depths = [...new Set(D.items.filter((it) => it.scenario === s)
      .flatMap((it) => Object.keys(it.depths)))];
    options($('ex-depth'), depths);
    setDepth(depths.includes(S.depth) ? S.depth : depths[0]);
  }

  function setDepth(d) {
    S.depth = d;
    $('ex-depth').value = d;
    const list = candidates();
    options($('ex-item'), list.map((it) => it.item), list.map((it) => 'item ' + it.item));
    const body = $('ex-list').tBodies[0];
    body.replaceChildren(...list.map((it) => {
      const v = it.depths[d];
      const tr = row([String(it.item), fmt(v.effectivity), fmt(v.retainability),
        v.gain_outliers + ' / ' + v.retainability_outliers]);
      tr.dataset.item = String(it.item);
      tr.addEventListener('click', () => setItem(it.item));
      return tr;
    }));
    const still = list.find((it) => it.item === S.item);
    setItem(still ? still.item : list[0].item);
  }

  function setItem(id) {
    S.item = id;
    $('ex-item').value = String(id);
    for (const tr of $('ex-list').tBodies[0].rows) {
      tr.classList.toggle('on', tr.dataset.item === String(id));
    }
    draw(D.items.find((it) => it.scenario === S.scenario && it.item === id));
  }

  function draw(it) {
    const v = it.depths[S.depth];
    const traces = [];
    v.probes.forEach((p, k) => {
      const color = COLORS[k % COLORS.length];
      const group = 'probe ' + p.probe;
      traces.push({ x: it.steps, y: p.y, name: group + ': ' + p.target, meta: 'probe',
        legendgroup: group, mode: 'lines', connectgaps: true, line: { color: color, width: 1.6 } });
      const lam = p.lam.filter((t) => t >= 0);
      traces.push({ x: lam, y: lam.map((t) => p.y[it.steps.indexOf(t)]), name: group + ' t_LAM',
        meta: 'lam', legendgroup: group, showlegend: false, mode: 'markers',
        marker: { color: color, symbol: 'star', size: 10 },
        hovertemplate: 't_LAM %{x}<br>\u2113 %{y}<extra>' + group + '</extra>' });
    });
    const shapes = it.injections.map((t) => ({ type: 'line', xref: 'x', yref: 'paper',
      x0: t, x1: t, y0: 0, y1: 1, line: { color: '#777', width: 1, dash: 'dot' } }));
    Plotly.react('ex-plot', traces, {
      title: { text: 'item ' + it.item + ' (' + it.scenario + ', ' + S.depth + ')' },
      xaxis: { title: { text: 'step (dotted: injections; stars: t_LAM)' } },
      yaxis: { title: { text: '\u2113 (' + D.stat + ')' } },
      shapes: shapes, margin: { t: 40, r: 10, b: 50, l: 60 }, height: 440,
      legend: { orientation: 'h', y: -0.18 }, hovermode: 'closest',
    }, { displaylogo: false, responsive: true });
    $('ex-summary').textContent = 'Item ' + it.item + ', ' + it.scenario + ', injected at step'
      + (it.injections.length > 1 ? 's ' : ' ') + it.injections.join(', ') + '. ' + S.depth
      + ': mean gain ' + fmt(v.effectivity) + ', retainability ' + fmt(v.retainability)
      + '; the IQR filter removed ' + v.gain_outliers + ' of its ' + v.gains + ' gains and '
      + v.retainability_outliers + ' of its ' + v.n_retainability + ' R values.';
    const table = $('ex-probes');
    const head = ['probe', 'input', 'target', 't_LAM per injection', 'gain per injection',
      'R (at t)', 'IQR filter removed'];
    table.replaceChildren(row(head, 'th', 3), ...v.probes.map((p) => row([
      String(p.probe), p.input, p.target, p.lam.map((t) => (t < 0 ? '\u2013' : t)).join(', '),
      p.gain.map(fmt).join(', '),
      p.excluded ? 'excluded (no acquisition)' : fmt(p.retainability) + ' (t = ' + p.retainability_t + ')',
      p.gain_outliers + ' of ' + p.gain.filter((g) => g !== null).length + ' gains, '
        + p.retainability_outliers + ' of ' + p.n_retainability + ' R values',
    ], 'td', 3)));
    $('ex-paragraph').textContent = it.paragraph === null
      ? '(the paragraph is not available: the run\u2019s items file is not a local file here, or has changed)'
      : it.paragraph;
  }

  options($('ex-scenario'), scenarios);
  $('ex-scenario').addEventListener('change', (e) => setScenario(e.target.value));
  $('ex-depth').addEventListener('change', (e) => setDepth(e.target.value));
  $('ex-item').addEventListener('change', (e) => setItem(Number(e.target.value)));
  $('ex-sort').addEventListener('change', (e) => { S.sort = e.target.value; setDepth(S.depth); });
  setScenario(S.scenario);
})();
"""


def section(data: Explorer, others: int = 0) -> str:
    """The explorer's block of the page: controls, item table, plot, the chosen item's probes
    and paragraph, with plotly.js inlined (the page loads nothing); ``others``: the report's
    runs it does not show."""
    rest = (
        f" The report's {others} other run{'s are' if others > 1 else ' is'} not shown here "
        "(each would add its items' data to the page): <code>factdyn report RUN</code> "
        "explores one."
        if others
        else ""
    )
    drift = (
        "; t_LAM and the gains were found on ℓ relative to the control probes (drift "
        "correction), so a star need not sit on the drawn curve's highest point"
        if data.drift_corrected
        else ""
    )
    unit = " (in percent)" if data.retainability_unit == "percent" else ""
    return f"""<div class="explorer">
<p>Every injected item of <b>{html.escape(data.run)}</b>: choose a scenario, a depth and an item
(or click a row) to see ℓ ({html.escape(data.stat)}, as logged) of each of its probes at that
depth at every logged step, up to {data.cap} steps per item (the others thinned out evenly in
log time since the latest injection; injection steps and t_LAM always kept). Dotted lines are
its injections, stars each probe's local acquisition maximum t_LAM within t_w =
{data.window}{drift}. The table lists, per item, the mean gain of its probes over all
injections, their mean retainability{unit} at the end of the population's range (R at t, as in
§3), and how many of their gains and R values the IQR filter (factor {data.iqr_factor:g})
removed before the population's means.{rest}</p>
<div class="controls">
<label>scenario <select id="ex-scenario"></select></label>
<label>depth <select id="ex-depth"></select></label>
<label>item <select id="ex-item"></select></label>
<label>sort items by <select id="ex-sort">
<option value="effectivity">effectivity (largest first)</option>
<option value="decay">decay (least retained first)</option>
<option value="item">item number</option>
</select></label>
</div>
<div class="panes">
<div class="list"><table id="ex-list"><thead><tr><th>item</th><th>gain</th><th>R</th>
<th>IQR removed (gains / R)</th></tr></thead><tbody></tbody></table></div>
<div id="ex-plot"></div>
</div>
<p id="ex-summary"></p>
<table id="ex-probes"></table>
<h3>Paragraph (train_context)</h3>
<blockquote id="ex-paragraph"></blockquote>
</div>
<script>{get_plotlyjs()}</script>
<script type="application/json" id="explorer-data">{data.to_json()}</script>
<script>{SCRIPT}</script>"""
