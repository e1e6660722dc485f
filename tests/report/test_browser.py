"""The report as a person sees it: opened in headless Chromium (Debian's ``chromium``;
``scripts/install-chromium.sh`` installs it).

Two loads. (1) The report itself, screenshotted: the console must stay silent (the page has no
scripts, so any console line about it is an error, e.g. a blocked resource) and the screenshot
must show drawn figures. (2) A copy of the page with a small probe script appended, which
records every image's decoded size and every error event (failed resources included) into
attributes of <body>; ``--dump-dom`` prints them. The report itself stays script-free.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from matplotlib.image import imread

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (run scripts/install-chromium.sh, or apt-get install chromium)",
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]

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
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
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
