"""Inline SVG charts for the backup audit report, drawn as text with no library.

Each chart is one ``<svg>`` element with a stable ``id`` and ``data-*``
attributes carrying the numbers it draws (``data-verdict``, ``data-count``,
``data-day``, ...), so tests and scripts can read the drawing back. Every
piece of text goes through :func:`esc`: client and device names are customer
data. The output is well-formed XML as well as HTML.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence

from ._audit import Health

#: One colour per verdict, used by every chart and the table badges.
COLOURS: dict[Health, str] = {
    Health.NEVER: "#7f1d1d",
    Health.STALE: "#f97316",
    Health.FAILING: "#dc2626",
    Health.NOT_AUDITED: "#6b7280",
    Health.NOT_ENABLED: "#d1d5db",
    Health.HEALTHY: "#16a34a",
}
LABELS: dict[Health, str] = {
    Health.NEVER: "Never backed up",
    Health.STALE: "Stale",
    Health.FAILING: "Failing",
    Health.NOT_AUDITED: "Not audited",
    Health.NOT_ENABLED: "Not enabled",
    Health.HEALTHY: "Healthy",
}
OK_COLOUR = COLOURS[Health.HEALTHY]
FAILED_COLOUR = COLOURS[Health.FAILING]
WIDTH = 900
# Characters XML 1.0 forbids even when escaped; browsers cope, parsers do not.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(value: object) -> str:
    """Return ``value`` as text safe inside HTML/XML content and quoted attributes."""
    return html.escape(_INVALID_XML.sub("\ufffd", str(value)), quote=True)


def text_width(text: str, font_px: float) -> float:
    """Estimate the rendered width of ``text`` generously (SVG text cannot be measured here)."""
    em = 0.0
    for char in text:
        if unicodedata.east_asian_width(char) in "WF":
            em += 1.0
        elif char in "MWmw@%&#":
            em += 0.95
        elif char.isupper() or char in "—–":
            em += 0.76
        elif char in "iljtfr.,:;'|!()[] ":
            em += 0.34
        else:
            em += 0.66
    return em * font_px * 1.05  # DejaVu Sans, the usual fallback, runs wide


def fit(text: str, width_px: float, font_px: float = 12) -> str:
    """Return ``text``, cut with an ellipsis where needed so it fits in ``width_px``."""
    if text_width(text, font_px) <= width_px:
        return text
    while text and text_width(text + "…", font_px) > width_px:
        text = text[:-1]
    return text.rstrip() + "…"


def _attrs(attributes: Mapping[str, object]) -> str:
    # data_verdict="x" becomes data-verdict="x"; floats are rounded for stable output.
    parts = []
    for key, value in attributes.items():
        if value is None:
            continue
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        parts.append(f' {key.rstrip("_").replace("_", "-")}="{esc(text)}"')
    return "".join(parts)


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", **data: object) -> str:
    geometry = {"x": x, "y": y, "width": w, "height": h, "fill": fill}
    end = f"><title>{esc(tip)}</title></rect>" if tip else "/>"
    return f"<rect{_attrs(geometry)}{_attrs(data)}{end}"


def _text(x: float, y: float, content: str, *, anchor: str = "start", **extra: object) -> str:
    return f"<text{_attrs({'x': x, 'y': y, 'text_anchor': anchor, **extra})}>{esc(content)}</text>"


def _svg(chart_id: str, height: float, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg id="{chart_id}" role="img"'
        f' viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}"'
        f' aria-label="{esc(label)}"><title>{esc(label)}</title>' + "".join(body) + "</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], y: float, x: float = 0, step: float = 140) -> str:
    parts = ['<g class="legend">']
    for i, (colour, label) in enumerate(items):
        left = x + i * step
        parts.append(_rect(left, y - 10, 12, 12, colour, stroke="#555", stroke_width="0.5"))
        parts.append(_text(left + 17, y, label))
    return "".join(parts) + "</g>"


def nice_step(maximum: int, ticks: int = 5) -> int:
    """Return a round axis step (1, 2 or 5 times a power of ten) for about ``ticks`` ticks."""
    raw = max(maximum, 1) / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def health_chart(counts: Mapping[Health, int]) -> str:
    """Draw one horizontal bar per verdict, worst first, with its count and share."""
    total = sum(counts.values())
    biggest = max(counts.values(), default=0) or 1
    label_w, row_h, top = 170, 30, 10
    span = WIDTH - label_w - 130
    body = []
    for i, health in enumerate(Health):
        n = counts.get(health, 0)
        y = top + i * row_h
        share = f"{100 * n / total:.0f}%" if total else "0%"
        body.append(f'<g class="verdict"{_attrs({"data_verdict": health.value})}>')
        body.append(_rect(0, y + 5, 14, 14, COLOURS[health], stroke="#555", stroke_width="0.5"))
        body.append(_text(22, y + 17, LABELS[health]))
        width = span * n / biggest
        tip = f"{LABELS[health]}: {n} of {total} devices"
        body.append(
            _rect(
                label_w,
                y + 2,
                width,
                row_h - 8,
                COLOURS[health],
                tip,
                class_="bar",
                data_verdict=health.value,
                data_count=n,
            )
        )
        body.append(_text(label_w + width + 8, y + 17, f"{n} ({share})", class_="num"))
        body.append("</g>")
    label = f"Devices per verdict, {total} devices"
    return _svg("chart-health", top + 6 * row_h + 6, label, body)


def daily_chart(days: Sequence[tuple[str, int, int]]) -> str:
    """Draw stacked bars of successful and failed sessions per day, with axes and a legend.

    Args:
        days: ``(YYYY-MM-DD, ok, failed)`` in date order, one per day on the axis.
    """
    left, right, top, bottom, height = 64, 16, 40, 58, 320
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max((ok + bad for _, ok, bad in days), default=0)
    step = nice_step(peak)
    y_max = max(step * math.ceil(peak / step), step)
    scale = plot_h / y_max
    base = top + plot_h
    body = [_legend([(OK_COLOUR, "Succeeded"), (FAILED_COLOUR, "Failed")], 18, left, 120)]
    for tick in range(0, y_max + 1, step):
        y = base - tick * scale
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, y + 4, str(tick), anchor="end", class_="tick"))
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1)
    for i, (day, ok, bad) in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        tip = f"{day}: {ok} succeeded, {bad} failed"
        body.append(
            f"<g{_attrs({'class': 'day', 'data_day': day, 'data_ok': ok, 'data_failed': bad})}>"
        )
        if ok:
            body.append(
                _rect(
                    x,
                    base - ok * scale,
                    bar_w,
                    ok * scale,
                    OK_COLOUR,
                    tip,
                    data_series="ok",
                    data_count=ok,
                )
            )
        if bad:
            top_y = base - (ok + bad) * scale
            body.append(
                _rect(
                    x,
                    top_y,
                    bar_w,
                    bad * scale,
                    FAILED_COLOUR,
                    tip,
                    data_series="failed",
                    data_count=bad,
                )
            )
        if i % 5 == 0 or i == len(days) - 1:
            body.append(
                _text(
                    left + i * slot + slot / 2, base + 16, day[5:], anchor="middle", class_="tick"
                )
            )
        body.append("</g>")
    body.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}" class="axis"/>')
    body.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{base}" class="axis"/>')
    body.append(_text(left + plot_w / 2, height - 10, "Day (UTC, month-day)", anchor="middle"))
    mid = top + plot_h / 2
    body.append(
        _text(16, mid, "Backup sessions", anchor="middle", transform=f"rotate(-90 16 {mid:.0f})")
    )
    return _svg("chart-daily", height, "Backup sessions per day, succeeded and failed", body)


def clients_chart(clients: Sequence[tuple[str, str, Mapping[Health, int]]]) -> str:
    """Draw one horizontal stacked bar per client: its devices by verdict, in the given order.

    Args:
        clients: ``(client_id, client_name, counts)`` already sorted and capped.
    """
    label_w, row_h, top = 240, 24, 36
    span = WIDTH - label_w - 60
    biggest = max((sum(c.values()) for _, _, c in clients), default=0) or 1
    body = [_legend([(COLOURS[h], LABELS[h]) for h in Health], 16, 0, WIDTH / 6)]
    for i, (client_id, name, counts) in enumerate(clients):
        y = top + i * row_h
        total = sum(counts.values())
        attrs = {
            "class": "client",
            "data_client_id": client_id,
            "data_client": name,
            "data_total": total,
        }
        body.append(f"<g{_attrs(attrs)}><title>{esc(name)}</title>")
        body.append(_text(label_w - 8, y + 16, fit(name, label_w - 12), anchor="end"))
        x = float(label_w)
        for health in Health:
            n = counts.get(health, 0)
            if not n:
                continue
            width = span * n / biggest
            tip = f"{name}: {n} {LABELS[health].lower()}"
            body.append(
                _rect(
                    x,
                    y + 3,
                    width,
                    row_h - 6,
                    COLOURS[health],
                    tip,
                    data_verdict=health.value,
                    data_count=n,
                )
            )
            x += width
        body.append(_text(x + 6, y + 16, str(total), class_="num") + "</g>")
    height = top + len(clients) * row_h + 6
    return _svg("chart-clients", height, "Devices per client by verdict, worst first", body)
