"""Render the audit report in headless Chromium: the charts must really be drawn.

Skipped when Debian's ``chromium`` is not installed at ``/usr/bin/chromium``.
The screenshot is kept in ``artifacts/report.png`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest_report_helpers import client_failure_rows, render

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHART_IDS = ("chart-health", "chart-daily", "chart-clients", "table-worst")
# Appended to a *copy* of the report only: the report itself carries no script.
MEASURE = """<script>
const out = {scripts: document.scripts.length, charts: {}};
for (const id of CHART_IDS) {
  const el = document.getElementById(id), box = el.getBoundingClientRect();
  const rects = [...el.querySelectorAll("rect[data-count], tr[data-verdict]")].map((r) => {
    const b = r.getBoundingClientRect();
    return [b.width, b.height];
  });
  const texts = [...el.querySelectorAll("text:not([transform])")].map((t) => {
    const b = t.getBBox();
    return [b.x, b.x + b.width];
  });
  out.charts[id] = {width: box.width, height: box.height, items: rects, texts: texts};
}
document.body.setAttribute("data-rendered", JSON.stringify(out));
</script>""".replace("CHART_IDS", json.dumps(CHART_IDS))

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium not found at /usr/bin/chromium (apt-get install chromium)",
)


def _chromium(work: Path, *args: str) -> str:
    """Run headless Chromium with a fresh profile and no network chatter; return its stdout."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # we run as root in CI containers
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _BodyAttributes(HTMLParser):
    """Collect the attributes of ``<body>`` from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.body = dict(attrs)


def _png_pixels_bytes(data: bytes) -> tuple[int, int, bytes]:
    """Return width, height and the decompressed (still filtered) scanlines of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def test_screenshot_shows_the_charts(tmp_path: Path) -> None:
    """Chromium renders the report to a large, many-coloured PNG kept in artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / "report.html"
    report.write_text(render(client_failures=client_failure_rows()), encoding="utf-8")
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri())
    data = shot.read_bytes()
    assert len(data) > 20_000
    width, height, raw = _png_pixels_bytes(data)
    assert (width, height) == (1280, 2400)
    # Filtered scanlines of a one-colour image hold a handful of byte values; a chart, hundreds.
    assert len(set(raw)) > 100


def test_dom_has_drawn_charts(tmp_path: Path) -> None:
    """After layout every bar, segment and table row has a size, and no label leaves its chart."""
    page = tmp_path / "measure.html"
    page.write_text(render().replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(
        tmp_path, "--run-all-compositor-stages-before-draw", "--dump-dom", page.as_uri()
    )
    parser = _BodyAttributes()
    parser.feed(dom)
    rendered = json.loads(parser.body["data-rendered"] or "{}")
    assert rendered["scripts"] == 1  # only ours: no customer name became a script
    for chart_id in CHART_IDS:
        chart = rendered["charts"][chart_id]
        assert chart["width"] > 300, chart_id
        assert chart["height"] > 100, chart_id
        assert chart["items"], chart_id
        for width, height in chart["items"]:
            assert width > 0, chart_id
            assert height > 0, chart_id
        for left, right in chart.get("texts", ()):
            assert left >= 0, (chart_id, left)
            assert right <= 900, (chart_id, right)  # the charts' viewBox width
    assert len(rendered["charts"]["chart-health"]["items"]) == 6
