"""The item explorer's block of the report page (:func:`section`): the data of
:func:`factdyn.report.explorer.build` as one embedded JSON document, plotly.js inlined (no
network), and a small script for the selectors, the sortable item table and the plot."""

from __future__ import annotations

import html

from plotly.offline import get_plotlyjs

from factdyn.report.explorer import Explorer

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
