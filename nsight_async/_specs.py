"""Field tables and record builders: how each record's XML children become typed fields.

Each table lists ``(xml name, attribute, converter)``; :func:`builder` turns a
table into a function that converts the known children and keeps the rest in
the record's ``extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _convert as c
from ._errors import ParseError
from ._models import CheckCounts
from ._parser import Fields, RecordBuilder
from ._vocab import PatchStatus, Plugin, SessionStatus, SessionType

T = TypeVar("T")
Spec = tuple[tuple[str, str, Callable[[Any], Any]], ...]


def _spec(**fields: Callable[[Any], Any] | tuple[str, Callable[[Any], Any]]) -> Spec:
    """``attr=conv`` (same XML name) or ``attr=("xmlName", conv)``."""
    out = []
    for attr, conv in fields.items():
        xml, fn = conv if isinstance(conv, tuple) else (attr, conv)
        out.append((xml, attr, fn))
    return tuple(out)


def builder(
    cls: Callable[..., T], spec: Spec, ident: str, fixed: Callable[[str, list[Fields]], Fields]
) -> RecordBuilder[T]:
    """Make a record builder: convert known children, keep the rest in ``extra``.

    The builder is generated as straight-line code (one ``try`` per field, ints
    converted inline): it runs once per record, and a loop over the spec cost
    about a third of the parser's time per record.
    """
    env: dict[str, Any] = {"cls": cls, "fixed": fixed, "Unreadable": c.Unreadable}
    lines = ["def build(name, fields, ancestors):", "    kw = fixed(name, ancestors)"]
    lines.append("    pop = fields.pop")
    for i, (xml, attr, conv) in enumerate(spec):
        env[f"conv{i}"] = conv
        call = "int(v)" if conv is c.integer else f"conv{i}(v)"
        lines += [
            f"    v = pop({xml!r}, None)",
            "    if v:",
            "        try:",
            f"            kw[{attr!r}] = {call}",
            "        except (Unreadable, ValueError, TypeError):",
            "            try:",
            f"                kw[{attr!r}] = conv{i}(v)",
            "            except (Unreadable, ValueError, TypeError):",
            f"                fields[{xml + '_raw'!r}] = v",
        ]
    lines += [
        f"    if kw.get({ident!r}) is None:",
        f"        missing(name, {ident!r}, fields)",
        "    kw['extra'] = fields",
        "    return cls(**kw)",
    ]
    env["missing"] = _missing
    exec(compile("\n".join(lines), f"<builder {getattr(cls, '__name__', cls)}>", "exec"), env)  # noqa: S102  # generated from our own spec tables, no outside input
    build: RecordBuilder[T] = env["build"]
    return build


def _missing(name: str, ident: str, fields: Fields) -> None:
    raise ParseError(f"a <{name}> record has no readable <{ident}>: {fields!r:.200}")


def _open(cls: Callable[[str], T]) -> Callable[[str], T]:
    """Fast lookup of an open vocabulary's members (the Enum call is slow)."""
    members: dict[str, T] = getattr(cls, "_value2member_map_")  # noqa: B009  # Enum's own cache

    def convert(value: str) -> T:
        member = members.get(value)
        return member if member is not None else cls(value)

    return convert


def no_context(name: str, ancestors: list[Fields]) -> Fields:
    return {}


def _checks(raw: object) -> CheckCounts:
    f = raw if isinstance(raw, dict) else {}

    def num(key: str) -> int | None:
        v = f.get(key)
        return c.integer(v) if isinstance(v, str) and v else None

    return CheckCounts(
        dsc_247=num("dsc_247"), passed=num("pass"), cleared=num("clear"), failed=num("fail")
    )


def _flag0(raw: str) -> bool:
    return bool(c.flag(raw))


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
    **{f: _flag0 for f in ("takecontrol", "patch", "mav", "mob", "systray", "mavbreck")},
    webprotection=_flag0,
    riskintelligence=_flag0,
)
PATCH = _spec(
    patch_id=("patchid", c.integer),
    status=("status", lambda v: PatchStatus(int(v))),
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
    type=_open(SessionType),
    plugin=_open(Plugin),
    status=_open(SessionStatus),
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
