"""Tests for the HTML backup audit report (``nsight_async._report`` and ``_svg``)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from conftest_report_helpers import (
    CLIENTS,
    DANGEROUS_DEVICE,
    NOW,
    by_id,
    client_failure_rows,
    fleet_rows,
    parse,
    render,
)

from nsight_async._audit import Health
from nsight_async._report import CLIENT_LIMIT, WORST_LIMIT, human_bytes
from nsight_async._svg import fit, nice_step, text_width


def test_report_is_well_formed_xml_with_every_part() -> None:
    """The whole document parses as XML and holds every chart and table by its id."""
    root = parse(render(client_failures=client_failure_rows()))
    for element_id in ("chart-health", "chart-daily", "chart-clients", "table-worst"):
        by_id(root, element_id)
    by_id(root, "client-failures")


def test_health_chart_counts_match_rows() -> None:
    """Each verdict bar carries the number of rows with that verdict, worst first."""
    rows = fleet_rows()
    expected = Counter(row["verdict"] for row in rows)
    chart = by_id(parse(render(rows)), "chart-health")
    bars = [r for r in chart.iter("rect") if r.get("data-count") is not None]
    assert [b.get("data-verdict") for b in bars] == [h.value for h in Health]
    assert {b.get("data-verdict"): int(b.get("data-count", "")) for b in bars} == expected
    assert set(expected) == {h.value for h in Health}  # the fleet really has every verdict


def test_health_bar_lengths_are_proportional() -> None:
    """The longest verdict bar belongs to the most common verdict."""
    chart = by_id(parse(render()), "chart-health")
    bars = [r for r in chart.iter("rect") if r.get("data-count") is not None]
    widest = max(bars, key=lambda b: float(b.get("width", "0")))
    assert widest.get("data-verdict") == Health.HEALTHY.value


def test_daily_chart_sums_sessions_across_devices() -> None:
    """Each day's group carries the sum of ``detail.daily`` over all devices."""
    rows = fleet_rows()
    expected: dict[str, list[int]] = {}
    for row in rows:
        for day, (ok, failed) in ((row["detail"] or {}).get("daily") or {}).items():
            pair = expected.setdefault(day, [0, 0])
            pair[0] += ok
            pair[1] += failed
    chart = by_id(parse(render(rows)), "chart-daily")
    days = {g.get("data-day"): g for g in chart.iter("g") if g.get("data-day")}
    assert set(expected) <= set(days)
    for day, group in days.items():
        ok, failed = expected.get(str(day), [0, 0])
        assert (int(group.get("data-ok", "")), int(group.get("data-failed", ""))) == (ok, failed)
        drawn = {r.get("data-series"): int(r.get("data-count", "")) for r in group.iter("rect")}
        assert drawn == {k: v for k, v in (("ok", ok), ("failed", failed)) if v}


def test_daily_chart_spans_the_audit_window_in_order() -> None:
    """The day axis runs from 30 days before the reference time up to its day, oldest first."""
    chart = by_id(parse(render()), "chart-daily")
    days = [g.get("data-day") for g in chart.iter("g") if g.get("data-day")]
    assert days == sorted(days)
    assert days[0] == (NOW - timedelta(days=30)).date().isoformat()
    assert days[-1] == NOW.date().isoformat()
    texts = "".join(chart.itertext())
    assert "Backup sessions" in texts
    assert "Day (UTC" in texts


def test_every_client_has_a_stacked_bar() -> None:
    """Each client gets one bar whose segments add up to its devices, by verdict."""
    rows = fleet_rows()
    chart = by_id(parse(render(rows)), "chart-clients")
    groups = {g.get("data-client-id"): g for g in chart.iter("g") if g.get("data-client-id")}
    assert set(groups) == {str(cid) for cid, _ in CLIENTS}
    for client_id, group in groups.items():
        mine = Counter(r["verdict"] for r in rows if str(r["client_id"]) == client_id)
        drawn = {s.get("data-verdict"): int(s.get("data-count", "")) for s in group.iter("rect")}
        assert drawn == mine
        assert int(group.get("data-total", "")) == sum(mine.values())


def test_clients_are_sorted_most_unhealthy_first() -> None:
    """Clients with more never/stale/failing devices come first."""
    chart = by_id(parse(render()), "chart-clients")
    unhealthy = []
    for group in chart.iter("g"):
        if group.get("data-client-id"):
            counts = {
                s.get("data-verdict"): int(s.get("data-count", "")) for s in group.iter("rect")
            }
            unhealthy.append(sum(counts.get(h.value, 0) for h in Health if h.unhealthy))
    assert unhealthy == sorted(unhealthy, reverse=True)


def test_client_chart_is_capped_with_a_note() -> None:
    """Beyond the cap, clients are left out of the chart and a note says how many."""
    rows = fleet_rows()
    for i, row in enumerate(rows):
        row["client_id"], row["client_name"] = 900 + i, f"Client {i}"
    root = parse(render(rows))
    bars = [g for g in by_id(root, "chart-clients").iter("g") if g.get("data-client-id")]
    assert len(bars) == CLIENT_LIMIT
    assert "10 more clients" in "".join(by_id(root, "clients-more").itertext())


def test_worst_table_lists_worst_first() -> None:
    """The table holds every unhealthy device by verdict rank, then oldest last success."""
    rows = fleet_rows()
    table = by_id(parse(render(rows)), "table-worst")
    listed = [tr for tr in table.iter("tr") if tr.get("data-verdict")]
    flagged = [r for r in rows if r["verdict"] != Health.HEALTHY.value]
    assert len(listed) == min(len(flagged), WORST_LIMIT)
    ranks = [Health(tr.get("data-verdict")).rank for tr in listed]
    assert ranks == sorted(ranks)
    assert listed[0].get("data-verdict") == Health.NEVER.value
    stale = [
        float(tr.get("data-age-hours", "")) for tr in listed if tr.get("data-verdict") == "stale"
    ]
    assert stale == sorted(stale, reverse=True)


def test_worst_table_row_shows_the_facts() -> None:
    """A stale row shows its last success date, age in days, plugins and GiB transferred."""
    rows = fleet_rows()
    stale = max(
        (r for r in rows if r["verdict"] == "stale"),
        key=lambda r: r["detail"]["last_success_age_hours"],
    )
    table = by_id(parse(render(rows)), "table-worst")
    row = next(tr for tr in table.iter("tr") if tr.get("data-device-id") == str(stale["device_id"]))
    cells = ["".join(td.itertext()) for td in row.iter("td")]
    days = stale["detail"]["last_success_age_hours"] / 24
    assert cells[5] == f"{stale['detail']['last_success'][:10]}{days:.1f} d ago"
    assert cells[9].endswith("GiB")
    assert cells[4] == "Stale"


def test_worst_table_gives_the_reason_for_unaudited_devices() -> None:
    """Not audited and not enabled devices show the error or skip reason."""
    table = by_id(parse(render()), "table-worst")
    text = {tr.get("data-verdict"): "".join(tr.itertext()) for tr in table.iter("tr")}
    assert "TransportError: timed out <after> 30 s & gave up" in text["not_audited"]
    assert "Backup & Recovery is not enabled (mob=0)" in text["not_enabled"]


def test_table_is_capped_at_the_worst_fifty() -> None:
    """With more unhealthy devices than the cap, only the worst ones are listed."""
    rows = fleet_rows() * 3
    table = by_id(parse(render(rows)), "table-worst")
    assert len([tr for tr in table.iter("tr") if tr.get("data-verdict")]) == WORST_LIMIT


def test_dangerous_names_are_escaped() -> None:
    """Names with markup, ampersands and quotes are escaped; non-ASCII survives."""
    document = render(client_failures=client_failure_rows())
    assert "<script" not in document.lower()
    assert "<b>" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    text = "".join(parse(document).itertext())
    assert DANGEROUS_DEVICE in text
    assert "Acme & Sons" in text
    assert 'Café Müller "Bäckerei"' in text
    assert "Broken <b>Co</b> & Partners" in text


def test_control_characters_in_names_keep_the_document_well_formed() -> None:
    """A name with control characters still yields well-formed XML."""
    rows = fleet_rows()
    rows[0]["device_name"] = "bad\x00name\x1b[31m"
    parse(render(rows))


def test_no_external_resources() -> None:
    """The page references no URL, stylesheet import, script source or link."""
    document = render(client_failures=client_failure_rows()).lower()
    for needle in ("http:", "https:", "//", "src=", "href", "@import", "url(", "<link", "<script"):
        assert needle not in document, needle


def test_header_states_time_thresholds_and_count() -> None:
    """The header gives the generated time, reference time, thresholds in words and counts."""
    root = parse(render())
    header = "".join(next(root.iter("header")).itertext())
    assert "Generated 2024-05-31 12:07 UTC" in header
    assert "as of 2024-05-31 12:00 UTC" in header
    assert "older than 3 days" in header
    assert "last 7 days" in header
    assert "40 devices across 5 clients" in header
    assert by_id(root, "device-count").get("data-devices") == "40"


def test_empty_fleet_renders_cleanly() -> None:
    """No rows gives a well-formed page saying no devices matched, without charts."""
    root = parse(render([]))
    assert "No devices matched" in "".join(root.itertext())
    assert not [e for e in root.iter() if (e.get("id") or "").startswith(("chart-", "table-"))]
    assert by_id(root, "device-count").get("data-devices") == "0"


def test_client_failures_are_listed() -> None:
    """Each client whose listing failed appears with its device type and error."""
    table = by_id(parse(render([], client_failures=client_failure_rows())), "client-failures")
    text = ["".join(tr.itertext()) for tr in table.iter("tr") if tr.get("data-client-id")]
    assert text == [
        "Broken <b>Co</b> & PartnersserverApiError: Access denied for client 201",
        "Client 202workstationTimeoutError: read timed out",
    ]


def test_unknown_verdict_counts_as_not_audited() -> None:
    """A row without a recognised verdict is drawn as not audited rather than crashing."""
    rows = fleet_rows()[:1]
    rows[0].update(verdict=None, detail=None, status="error")
    chart = by_id(parse(render(rows)), "chart-health")
    counts = {r.get("data-verdict"): r.get("data-count") for r in chart.iter("rect")}
    assert counts["not_audited"] == "1"


def test_all_healthy_fleet_says_so() -> None:
    """A fleet with no unhealthy device shows a note instead of an empty table."""
    rows = [r for r in fleet_rows() if r["verdict"] == "healthy"]
    assert "All devices are healthy" in "".join(
        by_id(parse(render(rows)), "table-worst").itertext()
    )


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (3 * 1024**3, "3.0 GiB"),
        (5 * 1024**4, "5.0 TiB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    """Byte counts are shown in binary units."""
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("peak", "step"), [(0, 1), (4, 1), (9, 2), (23, 5), (180, 50), (1000, 200)]
)
def test_nice_step(peak: int, step: int) -> None:
    """Axis steps are 1, 2 or 5 times a power of ten, for about five ticks."""
    assert nice_step(peak) == step


def test_rendering_is_deterministic() -> None:
    """The same input renders byte-for-byte the same page."""
    assert render() == render()


def test_no_element_ids_repeat() -> None:
    """Every id in the document is unique."""
    ids = re.findall(r'\sid="([^"]+)"', render(client_failures=client_failure_rows()))
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", ["W" * 60, "株式会社" * 20, "Acme & Sons", "i" * 100])
def test_fit_keeps_labels_inside_their_column(name: str) -> None:
    """Labels are cut with an ellipsis only when their estimated width exceeds the column."""
    fitted = fit(name, 228)
    assert text_width(fitted, 12) <= 228
    assert fitted == name or fitted.endswith("…")
    assert fitted == name or text_width(name, 12) > 228
