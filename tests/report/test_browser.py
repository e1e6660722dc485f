"""The report as a person sees it: opened in headless Chromium (Debian's ``chromium``;
``scripts/install-chromium.sh`` installs it).

Three loads. (1) The report itself, screenshotted: the console must stay silent (the only
scripts are the item explorer's, which log nothing, so any console line about the page is an
error, e.g. a blocked resource or a script error) and the screenshot must show drawn figures.
(2) A copy of the page with a small probe script appended, which records every image's decoded
size and every error event (failed resources included) into attributes of <body>;
``--dump-dom`` prints them. (3) The report driven through Playwright as a reader uses the
explorer: choose an item with the selectors, then with a click in the item table, and read
back the plot's traces; every request the page makes is recorded and must stay on the machine.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from types import ModuleType
from typing import NoReturn

import numpy as np
import pytest
from matplotlib.image import imread

from factdyn.rundir import load_run

CHROMIUM = shutil.which("chromium")
INSTALL = "run scripts/install-chromium.sh, or apt-get install chromium"


def missing(what: str) -> NoReturn:
    """Skip for want of ``what`` on a workstation; fail under CI (``CI`` set), where a browser
    test that skips is a browser test that never runs."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI is set: the browser tests must run", pytrace=False)
    pytest.skip(what)


def chromium_path() -> str:
    return CHROMIUM or missing(f"chromium not installed ({INSTALL})")


def playwright_api() -> ModuleType:
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        missing("playwright not installed (pip install -e '.[dev]')")


BROWSER = [  # a browser that keeps to the page: no sandbox (root), no GPU, no traffic of its own
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FLAGS = ["--headless", *BROWSER, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    errors.push(e.message || (e.target && (e.target.src || e.target.href)) || 'error');
    document.body.setAttribute('data-errors', errors.join(' | '));
  }, true);
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    document.body.setAttribute('data-images', String(imgs.length));
    document.body.setAttribute('data-sizes', imgs.map(function (i) {
      return (i.complete ? i.naturalWidth : 0) + 'x' + (i.complete ? i.naturalHeight : 0);
    }).join(' '));
    document.body.setAttribute('data-errors', errors.join(' | '));
  });
})();
</script>
"""


def chromium(page, tmp_path, *extra) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [chromium_path(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_lines(stderr: str, page) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line and page.name in line) or "Uncaught" in line
    ]


def test_report_renders_without_errors_and_shows_figures(report_one, tmp_path):
    shot = tmp_path / "shot.png"
    result = chromium(report_one, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000")
    assert shot.is_file(), result.stderr[-2000:]
    assert console_lines(result.stderr, report_one) == []
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (3000, 1200)
    grey = img.mean(axis=2)
    assert grey.std() > 0.05, "screenshot is blank"
    coloured = (img.max(axis=2) - img.min(axis=2)) > 0.2  # depth curves and bars
    assert coloured.mean() > 0.002, "no figure content visible"
    assert (grey < 0.3).mean() > 0.002, "no text visible"


def test_every_image_decodes_in_the_browser(report_one, tmp_path):
    html = report_one.read_text(encoding="utf-8")
    n_img = html.count("<img")
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium(probe, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body, result.stdout[:500]
    attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-images") == str(n_img), attrs
    assert attrs.get("data-errors") == "", attrs.get("data-errors", "")[:300]
    sizes = [tuple(map(int, s.split("x"))) for s in attrs["data-sizes"].split()]
    assert len(sizes) == n_img >= 3
    assert all(w > 300 and h > 200 for w, h in sizes), sizes
    # each image the browser decoded is the figure file its caption names, at full size
    named = re.findall(r"\(also figures/([^,]+\.png), ", html)
    files = [imread(report_one.parent / "figures" / name).shape[1::-1] for name in named]
    assert sizes == files, (sizes, named)
    assert console_lines(result.stderr, probe) == []


LOCAL = ("file:", "data:", "blob:", "about:")
TRACES = """() => document.getElementById('ex-plot').data.map(
  (t) => ({meta: t.meta, x: Array.from(t.x), y: Array.from(t.y)}))"""
SHAPES = "() => document.getElementById('ex-plot').layout.shapes.map((s) => s.x0)"


def _drawn(page, run, item: int, depth: str) -> None:
    """The plot shows ``item``'s probes at ``depth``: ℓ as the run logged it at every step,
    its injections as lines, and a t_LAM star on each probe's curve per injection."""
    rows = run.probes[(run.probes["item"] == item) & (run.probes["depth"] == depth)]
    ell = run.stat("target_mean")[:, rows.index].astype(np.float64)
    traces = page.evaluate(TRACES)
    lines = [t for t in traces if t["meta"] == "probe"]
    assert len(lines) == len(rows) > 0
    for t, col in zip(lines, ell.T, strict=True):
        assert t["x"] == run.steps.tolist()  # a short log: every step drawn
        y = np.array([np.nan if v is None else v for v in t["y"]], dtype=np.float64)
        np.testing.assert_allclose(y, col, rtol=5e-4)
    injections = sorted(run.injections.loc[run.injections["item"] == item, "step"].tolist())
    assert sorted(page.evaluate(SHAPES)) == injections
    stars = [t for t in traces if t["meta"] == "lam"]
    assert [len(t["x"]) for t in stars] == [len(injections)] * len(rows)
    assert page.text_content("#ex-summary").startswith(f"Item {item}, ")


def test_the_explorer_draws_the_chosen_items_trajectory(report_one, run_dirs):
    # Playwright drives Debian's chromium (it never downloads a browser of its own here)
    sync_api = playwright_api()
    run = load_run(run_dirs[0])
    requests, errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=BROWSER)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_one.as_uri())
            page.select_option("#ex-scenario", "duplicate")
            page.select_option("#ex-depth", "composition")
            options = page.eval_on_selector_all("#ex-item option", "os => os.map(o => o.value)")
            assert len(options) == run.items["scenario"].eq("duplicate").sum()
            item = int(options[-1])  # not the one shown first
            page.select_option("#ex-item", str(item))
            _drawn(page, run, item, "composition")
            page.select_option("#ex-sort", "decay")
            page.click(f"#ex-list tr[data-item='{options[0]}']")
            _drawn(page, run, int(options[0]), "composition")
            assert page.input_value("#ex-item") == options[0]
        finally:
            browser.close()
    assert errors == []
    assert requests and all(u.startswith(LOCAL) for u in requests), requests
