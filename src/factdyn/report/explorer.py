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
from dataclasses import dataclass
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
    """Numbers for JSON: rounded to :data:`DIGITS` significant digits, None where undefined.
    Vectorised (a paper-scale page has a million values): x is rounded at its own power of
    ten, multiplying or dividing by an exact power of ten, so each result is the double
    nearest its short decimal and JSON writes it with at most DIGITS digits."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x) & (x != 0)
    power = np.floor(np.log10(np.abs(np.where(finite, x, 1.0)))).astype(np.int64)
    shift = power - (DIGITS - 1)
    scale = 10.0 ** np.abs(shift).astype(np.float64)
    rounded = np.where(shift < 0, np.round(x * scale) / scale, np.round(x / scale) * scale)
    return [v if math.isfinite(v) else None for v in rounded.tolist()]


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
        # each dataclass as its fields (asdict would deep-copy a million values first)
        text = json.dumps(self, default=vars, ensure_ascii=False, separators=(",", ":"))
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


def build(run: Run, analysis: Analysis, label: str, cap: int = CAP) -> Explorer:
    """The explorer's data for ``run`` from its ``analysis`` (of that same run)."""
    settings = analysis.settings
    ell = np.asarray(run.stat(settings.stat), dtype=np.float64)
    steps = np.asarray(run.steps, dtype=np.int64)
    outcome = {int(r["probe_id"]): r for r in analysis.per_probe.to_dict("records")}
    acq = analysis.acquisition.sort_values(["probe_id", "injection"])
    ids, starts = np.unique(acq["probe_id"].to_numpy(), return_index=True)

    def per_probe(column: str) -> dict[int, np.ndarray]:  # a column of the acquisition table
        return dict(zip(ids.tolist(), np.split(acq[column].to_numpy(), starts[1:]), strict=True))

    injected, lam, gain = per_probe("step"), per_probe("lam_step"), per_probe("gain")
    texts = paragraphs(run)
    table = run.probes.assign(column=np.arange(len(run.probes)))
    table = table[table["probe_id"].isin(list(outcome))]  # the probes of a population
    items = []
    for scenario in analysis.scenarios():
        for item, rows in table[table["scenario"] == scenario].groupby("item", sort=True):
            first = int(rows["probe_id"].iloc[0])
            injections = injected[first].tolist()
            lams = np.concatenate([lam[p] for p in rows["probe_id"]])
            scored = ~np.isnan(ell[:, rows["column"]]).all(axis=1)
            keep = np.concatenate([injections, np.add(injections, 1), lams[lams >= 0]])
            shown = np.flatnonzero(scored)[thin(steps[scored], np.array(injections), keep, cap)]
            views: dict[str, DepthView] = {}
            for depth in analysis.depths(scenario):
                at = rows[rows["depth"] == depth].to_dict("records")
                if not at:
                    continue
                probes = [
                    ProbeView(
                        probe=int(r["probe"]),
                        input=str(r["input"]),
                        target=str(r["target"]),
                        y=_round(ell[shown, r["column"]]),
                        lam=lam[r["probe_id"]].tolist(),
                        gain=_round(gain[r["probe_id"]]),
                        retainability=_number(outcome[r["probe_id"]]["retainability"]),
                        retainability_t=int(outcome[r["probe_id"]]["retainability_t"]),
                        excluded=bool(outcome[r["probe_id"]]["excluded"]),
                        n_retainability=int(outcome[r["probe_id"]]["n_retainability"]),
                        gain_outliers=int(outcome[r["probe_id"]]["n_gain_outliers"]),
                        retainability_outliers=int(
                            outcome[r["probe_id"]]["n_retainability_outliers"]
                        ),
                    )
                    for r in at
                ]
                views[depth] = _summary(
                    probes,
                    np.concatenate([gain[r["probe_id"]] for r in at]),
                    [outcome[r["probe_id"]] for r in at],
                )
            items.append(
                ItemView(
                    item=int(item),
                    scenario=scenario,
                    injections=injections,
                    paragraph=texts.get(int(item)),
                    steps=steps[shown].tolist(),
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


def _summary(probes: list[ProbeView], gains: np.ndarray, outcomes: list[dict]) -> DepthView:
    """An item's depth from its probes' unrounded ``gains`` and per-probe ``outcomes``."""
    kept = np.array([o["retainability"] for o in outcomes if not o["excluded"]], dtype=float)
    return DepthView(
        effectivity=_mean(gains),
        retainability=_mean(kept),
        gains=int(np.isfinite(gains).sum()),
        gain_outliers=sum(p.gain_outliers for p in probes),
        n_retainability=sum(p.n_retainability for p in probes),
        retainability_outliers=sum(p.retainability_outliers for p in probes),
        probes=probes,
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

  if (!D.items.length) {
    $('ex-summary').textContent = 'This run has no injected items to show.';
    return;
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
