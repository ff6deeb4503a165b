"""Render a backup audit run as one self-contained HTML page.

:func:`render_audit_report` takes the rows of :meth:`RunStore.outcomes` and
draws a header, three inline SVG charts (from :mod:`._svg`), a table of the
worst devices and the clients that could not be listed. The page loads
nothing: no script, no font, no stylesheet from elsewhere, and it never holds
a URL or any environment data. Every name is customer data and is escaped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from . import _svg
from ._audit import DAILY_DAYS, AuditSummary, Health, age_hours, verdict_of, worst_first
from ._svg import COLOURS, LABELS, esc

#: How many devices the worst-devices table lists, and how many clients the client chart draws.
WORST_LIMIT = 50
CLIENT_LIMIT = 30

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1f2937;background:#fff;margin:0 auto;padding:24px;max-width:1200px}
h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px}
header p{margin:2px 0;color:#374151}.facts{color:#111827;font-weight:600}
section{break-inside:avoid;page-break-inside:avoid}
svg{display:block;max-width:100%;height:auto;overflow:visible}
svg text{font-size:12px;fill:#1f2937}svg .num{font-weight:600}svg .tick{fill:#4b5563;font-size:11px}
svg .grid{stroke:#e5e7eb;stroke-width:1}svg .axis{stroke:#6b7280;stroke-width:1}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nw{white-space:nowrap}td.name{min-width:8em;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;white-space:nowrap}
.badge.light{color:#1f2937}.note,.empty{color:#4b5563;font-style:italic}
.wide{overflow-x:auto}.err{min-width:12em;overflow-wrap:anywhere;color:#4b5563}
@media print{body{padding:0;max-width:none;font-size:11px}
 .wide{overflow:visible}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render_audit_report(
    rows: Sequence[Mapping[str, Any]],
    *,
    generated: datetime,
    settings: Mapping[str, Any],
    client_failures: Sequence[Mapping[str, Any]] = (),
    title: str = "Backup audit",
) -> str:
    """Return a complete, self-contained HTML document (no network, no CDN, no external fonts).

    Args:
        rows: Outcomes as :meth:`RunStore.outcomes` yields them.
        generated: When the report is made (shown in the header).
        settings: ``{"now": iso, "stale_after_s": float, "window_s": float}`` of the run.
        client_failures: Rows of :meth:`RunStore.client_failures`.
        title: The page's heading.
    """
    now = _reference(settings.get("now"), generated)
    verdicts = [verdict_of(row) for row in rows]
    counts = AuditSummary.of_rows(rows).by_health
    parts = [_header(title, generated, now, settings, counts, rows)]
    if rows:
        parts.append(_section("Fleet health", _svg.health_chart(counts)))
        days = _svg.daily_chart(_daily(rows, now))
        parts.append(_section(f"Backup sessions per day, last {DAILY_DAYS} days", days))
        parts.append(_clients_section(rows, verdicts))
        parts.append(_worst_section(rows, verdicts))
    else:
        parts.append('<p class="empty" id="no-devices">No devices matched.</p>')
    if client_failures:
        parts.append(_failures_section(client_failures))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _reference(value: Any, fallback: datetime) -> datetime:
    try:
        when = datetime.fromisoformat(str(value)) if value else fallback
    except ValueError:
        when = fallback
    return when if when.tzinfo is None else when.astimezone(UTC)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _stamp(when: datetime) -> str:
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: Any) -> str:
    """Return a duration in words: ``3 days``, ``36 hours``, ``90 minutes``."""
    total = float(seconds) if isinstance(seconds, int | float) else 0.0
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if total >= size and total % size == 0:
            n = int(total // size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{total:g} seconds"


def human_bytes(size: int) -> str:
    """Return a byte count in binary units: ``0 B``, ``512 KiB``, ``1.5 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def _section(heading: str, content: str, section_id: str = "") -> str:
    attr = f' id="{section_id}"' if section_id else ""
    return f"<section{attr}><h2>{esc(heading)}</h2>\n{content}\n</section>"


def _header(
    title: str,
    generated: datetime,
    now: datetime,
    settings: Mapping[str, Any],
    counts: Counter[Health],
    rows: Sequence[Mapping[str, Any]],
) -> str:
    total = sum(counts.values())
    clients = len({_client_key(row) for row in rows})
    unhealthy = sum(n for h, n in counts.items() if h.unhealthy)
    return (
        f"<header><h1>{esc(title)}</h1>"
        f"<p>Generated {esc(_stamp(generated))}. Verdicts as of {esc(_stamp(now))}.</p>"
        f"<p>A device is stale when its last successful backup is older than"
        f" {esc(_duration(settings.get('stale_after_s')))}; window figures cover the last"
        f" {esc(_duration(settings.get('window_s')))}.</p>"
        f'<p class="facts" id="device-count" data-devices="{total}" data-clients="{clients}">'
        f"{total} device{'' if total == 1 else 's'} across {clients}"
        f" client{'' if clients == 1 else 's'}; {unhealthy} need{'s' if unhealthy == 1 else ''}"
        " attention.</p></header>"
    )


def _daily(rows: Sequence[Mapping[str, Any]], now: datetime) -> list[tuple[str, int, int]]:
    """Sum ``detail.daily`` across devices over the days the audit counts, oldest first."""
    first = (now - timedelta(days=DAILY_DAYS)).date()
    keys = [(first + timedelta(days=i)).isoformat() for i in range((now.date() - first).days + 1)]
    sums = {key: [0, 0] for key in keys}
    for row in rows:
        daily = (row.get("detail") or {}).get("daily") or {}
        for day, pair in daily.items():
            if day in sums and isinstance(pair, Sequence) and len(pair) == 2:
                sums[day][0] += _int(pair[0])
                sums[day][1] += _int(pair[1])
    return [(key, ok, bad) for key, (ok, bad) in sums.items()]


def _client_key(row: Mapping[str, Any]) -> tuple[str, str]:
    return str(row.get("client_id")), str(row.get("client_name") or f"Client {row['client_id']}")


def _clients_section(rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Health]) -> str:
    per_client: dict[tuple[str, str], Counter[Health]] = {}
    for row, health in zip(rows, verdicts, strict=True):
        per_client.setdefault(_client_key(row), Counter())[health] += 1

    def badness(item: tuple[tuple[str, str], Counter[Health]]) -> tuple[Any, ...]:
        (_, name), counts = item
        worst = tuple(-counts[h] for h in Health if h is not Health.HEALTHY)
        return (-sum(n for h, n in counts.items() if h.unhealthy), worst, name.casefold())

    ordered = sorted(per_client.items(), key=badness)
    shown = [(cid, name, counts) for (cid, name), counts in ordered[:CLIENT_LIMIT]]
    note = ""
    if len(ordered) > CLIENT_LIMIT:
        hidden = len(ordered) - CLIENT_LIMIT
        note = f'<p class="note" id="clients-more">{hidden} more clients not shown.</p>'
    heading = "Devices per client, most unhealthy first"
    return _section(heading, _svg.clients_chart(shown) + note)


def _worst_section(rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Health]) -> str:
    flagged = [p for p in zip(rows, verdicts, strict=True) if p[1] is not Health.HEALTHY]
    worst = sorted(flagged, key=lambda pair: worst_first(pair[0]))[:WORST_LIMIT]
    if not worst:
        return _section(
            "Worst devices", '<p class="empty" id="table-worst">All devices are healthy.</p>'
        )
    heads = (
        "Client",
        "Site",
        "Device",
        "Kind",
        "Verdict",
        "Last success",
        "Consecutive failures",
        "Failing plugins",
        "Window errors",
        "Transferred in window",
        "Error / reason",
    )
    head = "".join(f"<th>{h}</th>" for h in heads)
    lines = [f'<div class="wide"><table id="table-worst"><thead><tr>{head}</tr></thead><tbody>']
    for rank, (row, health) in enumerate(worst, 1):
        lines.append(_worst_row(rank, row, health))
    lines.append("</tbody></table></div>")
    caption = (
        f'<p class="note">The {len(worst)} worst of {len(flagged)} devices that are not'
        f" healthy, worst verdict first, then oldest last success.</p>"
    )
    return _section("Worst devices", caption + "".join(lines))


def _worst_row(rank: int, row: Mapping[str, Any], health: Health) -> str:
    detail = row.get("detail") or {}
    age = age_hours(row)
    last = detail.get("last_success")
    if last:
        ago = "" if age == math.inf else f"<br/><small>{age / 24:.1f} d ago</small>"
        success = esc(str(last)[:10]) + ago
    else:
        success = "never" if detail else "—"
    plugins = ", ".join(str(p) for p in detail.get("failing_plugins") or ()) or "—"
    reason = row.get("error") if health in {Health.NOT_AUDITED, Health.NOT_ENABLED} else None
    if reason and row.get("error_type"):
        reason = f"{row['error_type']}: {reason}"
    light = " light" if health in {Health.STALE, Health.NOT_ENABLED} else ""
    hours = "" if age == math.inf else f"{age:.2f}"
    data = (
        f' data-rank="{rank}" data-verdict="{health.value}"'
        f' data-device-id="{esc(row.get("device_id"))}" data-age-hours="{hours}"'
    )
    badge = (
        f'<span class="badge{light}" style="background:{COLOURS[health]}">{LABELS[health]}</span>'
    )
    cells = [
        ("name", esc(row.get("client_name") or "")),
        ("name", esc(row.get("site_name") or "")),
        ("name", esc(row.get("device_name") or "")),
        ("nw", esc(row.get("device_kind") or "")),
        ("nw", badge),
        ("nw", success),
        ("n", str(_int(detail.get("consecutive_failures")))),
        ("", esc(plugins)),
        ("n", str(_int(detail.get("window_errors")))),
        ("n", esc(human_bytes(_int(detail.get("window_transferred_bytes"))))),
        ("err", esc(reason or "")),
    ]
    tds = "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for c, v in cells)
    return f"<tr{data}>{tds}</tr>"


def _failures_section(failures: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        '<table id="client-failures"><thead><tr><th>Client</th><th>Device type</th>'
        "<th>Error</th></tr></thead><tbody>"
    ]
    for row in failures:
        name = row.get("client_name") or f"Client {row.get('client_id')}"
        error = f"{row.get('error_type') or 'Error'}: {row.get('error') or ''}"
        lines.append(
            f'<tr data-client-id="{esc(row.get("client_id"))}"><td>{esc(name)}</td>'
            f'<td>{esc(row.get("device_type") or "")}</td><td class="err">{esc(error)}</td></tr>'
        )
    lines.append("</tbody></table>")
    note = (
        f'<p class="note">{len(failures)} client listing(s) failed; their devices are missing'
        " from every figure above.</p>"
    )
    return _section("Clients that could not be listed", note + "".join(lines), "failures")
