"""Field tables: how each record's XML children become typed fields.

Each table lists ``(xml name, attribute, converter)``; ``_builders.builder``
turns a table into a function that converts the known children and keeps the
rest in the record's ``extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _convert as c
from ._builders import Spec
from ._models import CheckCounts
from ._vocab import PatchStatus, Plugin, SessionStatus, SessionType


def _spec(**fields: Callable[[Any], Any] | tuple[str, Callable[[Any], Any]]) -> Spec:
    """``attr=conv`` (same XML name) or ``attr=("xmlName", conv)``."""
    out = []
    for attr, conv in fields.items():
        xml, fn = conv if isinstance(conv, tuple) else (attr, conv)
        out.append((xml, attr, fn))
    return tuple(out)


#: For records that take nothing from outside themselves.
no_context = None


def _checks(raw: object) -> CheckCounts:
    f = raw if isinstance(raw, dict) else {}

    def num(key: str) -> int | None:
        v = f.get(key)
        return c.integer(v) if isinstance(v, str) and v else None

    return CheckCounts(
        dsc_247=num("dsc_247"), passed=num("pass"), cleared=num("clear"), failed=num("fail")
    )


def _patch_status(raw: str) -> PatchStatus | None:
    code = c.integer(raw)
    return None if code is None else PatchStatus(code)


CLIENT = _spec(
    client_id=("clientid", c.integer),
    name=c.name,
    view_dashboard=c.flag,
    view_wkstsn_assets=c.flag,
    dashboard_username=c.text,
    timezone=c.text,
    creation_date=c.day,
    server_count=c.integer,
    workstation_count=c.integer,
    mobile_device_count=c.integer,
    device_count=c.integer,
)
SITE = _spec(
    site_id=("siteid", c.integer),
    name=c.name,
    connection_ok=c.flag,
    creation_date=c.day,
    primary_router=c.text,
    secondary_router=c.text,
)
_DEVICE_COMMON: dict[str, Any] = dict(
    guid=c.text,
    name=c.name,
    description=c.text,
    install_date=c.day,
    last_boot_time=c.epoch,
    user=c.text,
    domain=c.text,
    manufacturer=c.text,
    model=c.text,
    ip=c.text,
    external_ip=c.text,
    mac1=c.text,
    mac2=c.text,
    mac3=c.text,
    os=c.text,
    os_details=c.text,
    agent_version=c.text,
    agent_mode=c.text,
    online=c.flag,
    active_247=c.flag,
    check_interval_247=c.integer,
    status_247=c.integer,
    assetid=c.integer,
    device_serial=c.text,
    total_memory=c.integer,
    last_scan_time=c.local_datetime,
    missed_247=c.integer,
    email_overdue_alert=c.flag,
)
SERVER = _spec(device_id=("serverid", c.integer), **_DEVICE_COMMON)
WORKSTATION = _spec(device_id=("workstationid", c.integer), **_DEVICE_COMMON)
DEVICE_AT_CLIENT = _spec(
    device_id=("id", c.integer),
    name=c.name,
    username=c.text,
    description=c.text,
    status=c.text,
    checks=("checkcount", _checks),
    **{f: c.flag0 for f in ("takecontrol", "patch", "mav", "mob", "systray", "mavbreck")},
    webprotection=c.flag0,
    riskintelligence=c.flag0,
)
PATCH = _spec(
    patch_id=("patchid", c.integer),
    status=("status", _patch_status),
    title=("patchTitle", c.text),
    product=c.text,
    status_label=("statusLabel", c.text),
    policy=c.integer,
    policy_label=("policyLabel", c.text),
    severity=c.integer,
    severity_label=("severityLabel", c.text),
    install_date=("installdate", c.day),
    release_date=("releaseDate", c.day),
)
MOB_SESSION = _spec(
    session_id=c.integer,
    type=c.Open(SessionType),
    plugin=c.Open(Plugin),
    status=c.Open(SessionStatus),
    start=c.utc_datetime,
    end=c.utc_datetime,
    storage_account_id=c.integer,
    selection_size=c.integer,
    selection_item_count=c.integer,
    size_change=c.integer,
    item_count_change=c.integer,
    removed_item_count=c.integer,
    processed_size=c.integer,
    processed_item_count=c.integer,
    transferred_size=c.integer,
    error_count=c.integer,
)
