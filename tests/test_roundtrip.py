"""Property tests for nsight_async._shapes: records rendered to XML parse back equal.

Records are generated, rendered as N-sight would (CDATA or escaped text at
random, ``<x/>`` or ``<x></x>`` or a missing element for empty values, UTF-8 or
ISO-8859-1 when representable), fed in pieces cut at random points, and
compared with what the documented rules predict: text is stripped, sentinels
and empty text become None.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsight_async import (
    CheckCounts,
    Client,
    DeviceAtClient,
    DeviceKind,
    MobSession,
    Patch,
    PatchStatus,
    Plugin,
    SessionStatus,
    SessionType,
    parser_for,
)
from nsight_async._convert import SENTINELS

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- value strategies -------------------------------------------------------

# XML 1.0 characters, minus \r (expat normalises it to \n) and surrogates.
_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\ufeff"
) | st.sampled_from("\t\n &<>]]>éüß€\u00a0")
RAW_TEXT = st.text(_CHARS, max_size=30) | st.sampled_from(
    ["", "  ", "none", "Not Available", "0000-00-00 00:00:00", "a]]>b", " trailing  "]
)
INT64 = st.integers(min_value=0, max_value=2**63)
SIGNED = st.integers(min_value=-(2**63), max_value=2**63)
MAYBE_INT = st.none() | INT64
UTC_SECOND = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
DAY = st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31))
ENUM_WORD = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=14)


def expect_text(raw: str | None) -> str | None:
    """What a ``text`` field reads as: stripped, None when empty or a sentinel."""
    value = (raw or "").strip()
    return None if not value or value in SENTINELS else value


def expect_name(raw: str | None) -> str | None:
    """What a ``name`` field reads as: stripped, None only when empty."""
    return (raw or "").strip() or None


# -- rendering ------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class Renderer:
    """Render elements with style choices from a hypothesis-seeded ``random.Random``.

    One seeded generator instead of a draw per choice keeps examples cheap.
    """

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self.draw = draw
        self.rng: random.Random = draw(st.randoms(use_true_random=False))

    def leaf(self, tag: str, value: object) -> str:
        """Render one leaf element; None renders empty or leaves the element out."""
        indent = self.rng.choice(["", "\n  ", " "])
        if value is None or value == "":
            form = self.rng.choice(["<{t}/>", "<{t}></{t}>", "", "<{t}> </{t}>"])
            return indent + form.format(t=tag)
        text = value if isinstance(value, str) else _wire(value)
        body = _cdata(text) if self.rng.random() < 0.5 else _escape(text)
        return f"{indent}<{tag}>{body}</{tag}>"

    def leaves(self, fields: Sequence[tuple[str, object]]) -> str:
        return "".join(self.leaf(tag, value) for tag, value in fields)


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _encode(draw: Callable[[Any], Any], body: str) -> bytes:
    """Encode as ISO-8859-1 (declared) when every character fits, else UTF-8; maybe random."""
    latin1 = all(ord(ch) < 256 for ch in body) and draw(st.booleans())
    encoding = "ISO-8859-1" if latin1 else "UTF-8"
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{body}'.encode(encoding.lower())


def _parse_in_pieces(
    draw: Callable[[Any], Any], service: str, data: bytes, params: dict[str, str] | None = None
) -> list[Any]:
    cuts = sorted(
        draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=8, unique=True))
    )
    parser = parser_for(service, params)
    out: list[Any] = []
    start = 0
    for cut in [*cuts, len(data)]:
        out += parser.feed(data[start:cut])
        start = cut
    return out + parser.close()


def _envelope(inner: str, *, root: str = "result") -> str:
    if root == "result":
        return f'<result created="2024-03-18T09:12:44-06:00" host="h" status="OK">{inner}</result>'
    return f"<{root}>{inner}</{root}>"


# -- MOB sessions ------------------------------------------------------------

_MOB_INTS = (
    "storage_account_id",
    "selection_size",
    "selection_item_count",
    "item_count_change",
    "removed_item_count",
    "processed_size",
    "processed_item_count",
    "transferred_size",
    "error_count",
)


@st.composite
def mob_sessions(draw: Callable[[Any], Any], session_id: int) -> MobSession:
    ints = {name: draw(MAYBE_INT) for name in _MOB_INTS}
    return MobSession(
        session_id=session_id,
        type=draw(st.none() | st.sampled_from(list(SessionType)) | ENUM_WORD.map(SessionType)),
        plugin=draw(st.none() | st.sampled_from(list(Plugin)) | ENUM_WORD.map(Plugin)),
        status=draw(
            st.none() | st.sampled_from(list(SessionStatus)) | ENUM_WORD.map(SessionStatus)
        ),
        start=draw(st.none() | UTC_SECOND),
        end=draw(st.none() | UTC_SECOND),
        size_change=draw(st.none() | SIGNED),
        **ints,
    )


def _mob_xml(r: Renderer, s: MobSession) -> str:
    fields: list[tuple[str, object]] = [
        ("session_id", s.session_id),
        ("type", s.type and str(s.type)),
        ("plugin", s.plugin and str(s.plugin)),
        ("status", s.status and str(s.status)),
        ("start", s.start),
        ("end", s.end),
        ("size_change", s.size_change),
        *((name, getattr(s, name)) for name in _MOB_INTS),
    ]
    r.rng.shuffle(fields)
    return "<session>" + r.leaves(fields) + "</session>"


@BOUNDED
@given(st.data())
def test_mob_sessions_roundtrip(data: st.DataObject) -> None:
    """Generated MOB sessions rendered to XML and fed in random pieces parse back equal."""
    draw = data.draw
    ids = draw(st.lists(INT64, max_size=6, unique=True))
    sessions = [draw(mob_sessions(i)) for i in ids]
    r = Renderer(draw)
    body = _encode(draw, _envelope("".join(_mob_xml(r, s) for s in sessions)))
    assert _parse_in_pieces(draw, "list_mob_sessions", body) == sessions


# -- clients -------------------------------------------------------------------


@st.composite
def client_fields(draw: Callable[[Any], Any], client_id: int) -> dict[str, object]:
    return {
        "clientid": client_id,
        "name": draw(RAW_TEXT),
        "view_dashboard": draw(st.none() | st.booleans()),
        "view_wkstsn_assets": draw(st.none() | st.booleans()),
        "dashboard_username": draw(RAW_TEXT),
        "timezone": draw(RAW_TEXT),
        "creation_date": draw(st.none() | DAY),
        "server_count": draw(MAYBE_INT),
        "workstation_count": draw(MAYBE_INT),
        "mobile_device_count": draw(MAYBE_INT),
        "device_count": draw(MAYBE_INT),
    }


def _expected_client(f: dict[str, Any]) -> Client:
    return Client(
        client_id=f["clientid"],
        name=expect_name(f["name"]),
        view_dashboard=f["view_dashboard"],
        view_wkstsn_assets=f["view_wkstsn_assets"],
        dashboard_username=expect_text(f["dashboard_username"]),
        timezone=expect_text(f["timezone"]),
        creation_date=f["creation_date"],
        server_count=f["server_count"],
        workstation_count=f["workstation_count"],
        mobile_device_count=f["mobile_device_count"],
        device_count=f["device_count"],
    )


@BOUNDED
@given(st.data())
def test_clients_roundtrip(data: st.DataObject) -> None:
    """Generated clients (non-ASCII, ``&``, ``<``, trailing spaces) parse back equal."""
    draw = data.draw
    ids = draw(st.lists(INT64, max_size=5, unique=True))
    clients = [draw(client_fields(i)) for i in ids]
    r = Renderer(draw)
    inner = "".join("<client>" + r.leaves(list(c.items())) + "</client>" for c in clients)
    items = f"<items>{inner}</items>" if inner or draw(st.booleans()) else "<items/>"
    body = _encode(draw, _envelope(items))
    assert _parse_in_pieces(draw, "list_clients", body) == [_expected_client(c) for c in clients]


# -- devices at client ----------------------------------------------------------

_FLAGS = (
    "takecontrol",
    "patch",
    "mav",
    "mob",
    "systray",
    "mavbreck",
    "webprotection",
    "riskintelligence",
)


@st.composite
def device_fields(draw: Callable[[Any], Any], device_id: int) -> dict[str, object]:
    return {
        "id": device_id,
        "name": draw(RAW_TEXT),
        "username": draw(RAW_TEXT),
        "description": draw(RAW_TEXT),
        "status": draw(st.sampled_from(["ok", "fail", "offline", " ok "])),
        "checks": draw(st.lists(MAYBE_INT, min_size=4, max_size=4)),
        **{flag: draw(st.booleans()) for flag in _FLAGS},
    }


def _device_xml(r: Renderer, kind: DeviceKind, d: dict[str, Any]) -> str:
    checks = r.leaves(list(zip(("dsc_247", "pass", "clear", "fail"), d["checks"], strict=True)))
    leaves = [(k, v) for k, v in d.items() if k != "checks"]
    return f"<{kind.value}>{r.leaves(leaves)}<checkcount>{checks}</checkcount></{kind.value}>"


@BOUNDED
@given(st.data())
def test_devices_at_client_roundtrip(data: st.DataObject) -> None:
    """A generated client → site → device tree parses back to devices carrying their context."""
    draw = data.draw
    kind = draw(st.sampled_from([DeviceKind.SERVER, DeviceKind.WORKSTATION]))
    r = Renderer(draw)
    expected: list[DeviceAtClient] = []
    clients_xml = []
    next_id = iter(range(1, 10_000))
    for _ in range(draw(st.integers(0, 3))):
        client_id, client_name = draw(INT64), draw(RAW_TEXT)
        sites_xml = []
        for _ in range(draw(st.integers(0, 3))):
            site_id, site_name = draw(INT64), draw(RAW_TEXT)
            devices = [draw(device_fields(next(next_id))) for _ in range(draw(st.integers(0, 3)))]
            for d in devices:
                c = d["checks"]
                expected.append(
                    DeviceAtClient(
                        kind=kind,
                        device_id=d["id"],
                        name=expect_name(d["name"]),
                        client_id=client_id,
                        client_name=expect_name(client_name),
                        site_id=site_id,
                        site_name=expect_name(site_name),
                        username=expect_text(d["username"]),
                        description=expect_text(d["description"]),
                        status=d["status"].strip(),
                        checks=CheckCounts(dsc_247=c[0], passed=c[1], cleared=c[2], failed=c[3]),
                        **{flag: d[flag] for flag in _FLAGS},
                    )
                )
            site_head = r.leaves([("id", site_id), ("name", site_name)])
            devices_xml = "".join(_device_xml(r, kind, d) for d in devices)
            sites_xml.append(f"<site>{site_head}{devices_xml}</site>")
        head = r.leaves([("id", client_id), ("name", client_name)])
        clients_xml.append(f"<client>{head}{''.join(sites_xml)}</client>")
    body = _encode(draw, _envelope(f"<items>{''.join(clients_xml)}</items>"))
    got = _parse_in_pieces(draw, "list_devices_at_client", body)
    assert got == expected


# -- patches --------------------------------------------------------------------


@st.composite
def patches(draw: Callable[[Any], Any], patch_id: int) -> tuple[dict[str, object], Patch]:
    status = draw(st.none() | st.sampled_from(list(PatchStatus)) | st.integers(0, 1000))
    fields: dict[str, object] = {
        "patchid": patch_id,
        "policy": draw(st.none() | st.sampled_from([1, 2, 4, 65, 66, 68])),
        "policyLabel": draw(RAW_TEXT),
        "status": None if status is None else int(status),
        "patchTitle": draw(RAW_TEXT),
        "product": draw(RAW_TEXT),
        "statusLabel": draw(RAW_TEXT),
        "severity": draw(MAYBE_INT),
        "severityLabel": draw(RAW_TEXT),
        "installdate": draw(st.none() | DAY),
        "releaseDate": draw(st.none() | DAY),
    }
    record = Patch(
        patch_id=patch_id,
        status=None if status is None else PatchStatus(int(status)),
        title=expect_text(fields["patchTitle"]),  # type: ignore[arg-type]  # drawn from RAW_TEXT
        product=expect_text(fields["product"]),  # type: ignore[arg-type]  # drawn from RAW_TEXT
        status_label=expect_text(fields["statusLabel"]),  # type: ignore[arg-type]  # RAW_TEXT
        policy=fields["policy"],  # type: ignore[arg-type]  # drawn as int | None
        policy_label=expect_text(fields["policyLabel"]),  # type: ignore[arg-type]  # RAW_TEXT
        severity=fields["severity"],  # type: ignore[arg-type]  # drawn as int | None
        severity_label=expect_text(fields["severityLabel"]),  # type: ignore[arg-type]  # RAW_TEXT
        install_date=fields["installdate"],  # type: ignore[arg-type]  # drawn as date | None
        release_date=fields["releaseDate"],  # type: ignore[arg-type]  # drawn as date | None
    )
    return fields, record


@BOUNDED
@given(st.data())
def test_patches_roundtrip(data: st.DataObject) -> None:
    """Generated patches in a bare ``<patches>`` root (often ISO-8859-1) parse back equal."""
    draw = data.draw
    ids = draw(st.lists(INT64, max_size=5, unique=True))
    drawn = [draw(patches(i)) for i in ids]
    r = Renderer(draw)
    inner = "".join("<patch>" + r.leaves(list(f.items())) + "</patch>" for f, _ in drawn)
    body = _encode(draw, _envelope(inner, root="patches"))
    got = _parse_in_pieces(draw, "patch_list_all", body)
    assert got == [record for _, record in drawn]
    assert all(attrs.has(type(p)) for p in got)
