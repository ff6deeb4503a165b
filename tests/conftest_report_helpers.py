"""A realistic audit run for the report tests: rows shaped exactly as ``RunStore.outcomes()``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from nsight_async._audit import DAILY_DAYS, DeviceAudit, Health
from nsight_async._report import render_audit_report
from nsight_async._serial import jsonable

NOW = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)
GENERATED = NOW + timedelta(minutes=7)
SETTINGS = {"now": NOW.isoformat(), "stale_after_s": 3 * 86400.0, "window_s": 7 * 86400.0}
CLIENTS = [
    (101, "Acme & Sons"),
    (102, "<script>alert('client')</script> Ltd"),
    (103, 'Café Müller "Bäckerei"'),
    (104, "Northwind Traders — Международная Компания 株式会社 WMWMWMWM Holdings"),
    (105, "Zeta 'Quotes' GmbH"),
]
# 40 devices: every verdict, in uneven numbers, spread over the five clients.
VERDICTS = (
    [Health.HEALTHY] * 16
    + [Health.STALE] * 6
    + [Health.FAILING] * 5
    + [Health.NEVER] * 4
    + [Health.NOT_AUDITED] * 5
    + [Health.NOT_ENABLED] * 4
)
DANGEROUS_DEVICE = "<script>alert(1)</script>"


def _audit(i: int, health: Health) -> DeviceAudit:
    daily = {}
    for back in range(DAILY_DAYS):
        ok = (i + back) % 3 != 0 and health is not Health.NEVER
        failed = health in {Health.FAILING, Health.NEVER} or (i + back) % 11 == 0
        if ok or failed:
            daily[(NOW - timedelta(days=back)).date().isoformat()] = [int(ok) * 2, int(failed)]
    if health is Health.NEVER:
        return DeviceAudit(
            health=health,
            sessions=i,
            consecutive_failures=i % 7 + 1,
            window_failures=3,
            daily=daily,
        )
    age = 5.5 + i if health is not Health.STALE else 24.0 * (4 + i % 9) + i
    success = NOW - timedelta(hours=age)
    return DeviceAudit(
        health=health,
        sessions=100 + i,
        last_session_start=NOW - timedelta(hours=2),
        last_success=success,
        last_success_age_hours=round(age, 2),
        last_success_by_plugin={"FILE_SYSTEM": success},
        failing_plugins=("MSSQL", "EXCHANGE") if health is Health.FAILING else (),
        consecutive_failures=(i % 4 + 1) if health is not Health.HEALTHY else 0,
        window_sessions=14,
        window_failures=2 if health is Health.FAILING else 0,
        window_errors=i % 5,
        window_transferred_bytes=(i + 1) * 3 * 1024**3 // 2,
        daily=daily,
    )


def fleet_rows() -> list[dict[str, Any]]:
    """Return 40 outcome rows over five clients, with every verdict and hostile names."""
    rows = []
    for i in range(40):
        health = VERDICTS[(i * 7) % 40]  # 7 is coprime with 40: a permutation
        client_id, client_name = CLIENTS[i % len(CLIENTS)]
        status, detail, error_type, error = "ok", None, None, None
        if health is Health.NOT_AUDITED:
            status, error_type, error = (
                "error",
                "TransportError",
                "timed out <after> 30 s & gave up",
            )
        elif health is Health.NOT_ENABLED:
            status, error = "skipped", "Backup & Recovery is not enabled (mob=0)"
        else:
            detail = json.loads(json.dumps(jsonable(_audit(i, health))))
        rows.append(
            {
                "run_id": "run-1",
                "device_id": 5000 + i,
                "client_id": client_id,
                "client_name": client_name,
                "site_id": client_id * 10 + i % 2,
                "site_name": f"Site {i % 2} – Hôtel & Spa" if i % 2 else 'HQ "main" <floor 2>',
                "device_name": DANGEROUS_DEVICE if i == 3 else f"PC-{i:03d}-é",
                "device_kind": "server" if i % 4 == 0 else "workstation",
                "status": status,
                "verdict": health.value,
                "detail": detail,
                "error_type": error_type,
                "error": error,
                "recorded_at": NOW.isoformat(),
            }
        )
    return rows


def client_failure_rows() -> list[dict[str, Any]]:
    """Return two clients whose device listing failed."""
    return [
        {
            "client_id": 201,
            "client_name": "Broken <b>Co</b> & Partners",
            "device_type": "server",
            "error_type": "ApiError",
            "error": "Access denied for client 201",
        },
        {
            "client_id": 202,
            "client_name": None,
            "device_type": "workstation",
            "error_type": "TimeoutError",
            "error": "read timed out",
        },
    ]


def render(rows: list[dict[str, Any]] | None = None, **kwargs: Any) -> str:
    """Render the fleet (or the given rows) with the standard settings."""
    return render_audit_report(
        fleet_rows() if rows is None else rows, generated=GENERATED, settings=SETTINGS, **kwargs
    )


def parse(document: str) -> ET.Element:
    """Parse the report as XML (it is written to be well-formed), failing loudly if it is not."""
    return ET.fromstring(document)  # noqa: S314 - our own output, parsed to prove it well-formed


def by_id(root: ET.Element, element_id: str) -> ET.Element:
    """Return the one element with ``element_id``."""
    found = [e for e in root.iter() if e.get("id") == element_id]
    assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
    return found[0]
