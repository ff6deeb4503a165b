"""Property-based fuzz of the parser: nothing but typed parse errors, whatever the bytes.

Inputs are random bytes, XML-ish token soup, and mutations (flips, inserts of
hostile tokens, deletions, duplications, truncation, deep nesting) of realistic
documents — ``tests/samples/`` and bodies rendered by the simulator — fed through
``parser_for(service)`` for every response shape, split at random points.

Properties: only :class:`NsightError` subclasses are raised; after an error every
later call raises that same error; every record handed out is a well-typed record
of the shape's class; and (h11's rule) splitting the input never changes the result.

Bounded for CI (a few hundred examples per property); ``NSIGHT_CHAOS_FULL=1``
runs thousands.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from chaos_support import FULL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsight_async import (
    CheckCounts,
    Client,
    Device,
    DeviceAtClient,
    MobSession,
    NsightError,
    Patch,
    PatchRetryResult,
    ServiceDescription,
    Site,
    parser_for,
)
from nsight_async.testing import SimulatedFleet, Simulator

pytestmark = pytest.mark.chaos

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
EXAMPLES = 4000 if FULL else 250
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@attrs.frozen
class ShapeCase:
    """One response shape: how to get its parser and what its records must be."""

    service: str
    params: Mapping[str, str]
    record_types: tuple[type, ...]
    describe: bool = False
    generic: bool = False

    def parser(self) -> Any:
        """Return a fresh parser for this shape."""
        return parser_for(
            self.service, dict(self.params), describe=self.describe, generic=self.generic
        )


DEVICE = {"deviceid": "1000001"}
SHAPES = (
    ShapeCase("list_clients", {}, (Client,)),
    ShapeCase("list_sites", {"clientid": "100"}, (Site,)),
    ShapeCase("list_servers", {"siteid": "200000"}, (Device,)),
    ShapeCase("list_workstations", {"siteid": "200000"}, (Device,)),
    ShapeCase("list_devices_at_client", {"clientid": "100", "devicetype": "server"},
              (DeviceAtClient,)),
    ShapeCase("list_mob_sessions", DEVICE, (MobSession,)),
    ShapeCase("patch_list_all", DEVICE, (Patch,)),
    ShapeCase("patch_retry", {**DEVICE, "patchids": "1,2"}, (PatchRetryResult,)),
    ShapeCase("list_mob_sessions", {}, (ServiceDescription,), describe=True),
    ShapeCase("list_checks", DEVICE, (dict,)),
    ShapeCase("list_clients", {}, (dict,), generic=True),
)  # fmt: skip

#: Hostile or tricky fragments spliced into documents.
TOKENS = (
    b"<", b"</", b">", b"/>", b"&", b"&amp;", b"&lt;", b"&#0;", b"&#x110000;", b"&#65;",
    b"&undefined;", b"<![CDATA[", b"]]>", b"<!-- ", b" -->", b"<?pi x?>", b"\x00", b"\xff",
    b"\xc3", b"\xe9", b"\xef\xbb\xbf", b"<!DOCTYPE result [<!ENTITY a 'b'>]>",
    b"<!DOCTYPE html>", b"<html>", b"<?xml version='1.0' encoding='ISO-8859-1'?>",
    b"<?xml version='1.0' encoding='bogus'?>", b"<?xml version='1.0' encoding='UTF-16'?>",
    b' status="FAIL"', b' status="OK"',
    b"<error><errorcode>3</errorcode><message>x</message></error>",
    b"<error><errorcode>x</errorcode></error>", b"<msg>m</msg>", b"<items>", b"</items>",
    b"<items/>", b"<client>", b"</client>", b"<site>", b"<id>7</id>", b"<id>x</id>",
    b"<server>", b"<session>", b"</session>", b"<session_id>1</session_id>",
    b"<session_id>x</session_id>", b"<session_id>-5</session_id>", b"<patch>",
    b"<patchid>2</patchid>",
    b"<start>0000-00-00 00:00:00</start>", b"<start>2024-13-45 99:99:99</start>",
    b"<last_boot_time>Not Available</last_boot_time>",
    b"<last_boot_time>99999999999999</last_boot_time>",
    b"<creation_date>2024-02-30</creation_date>",
    b"<selection_size>184467440737095516160</selection_size>",
    b"<status>", b"<status>16</status>", b"<status>COMPLETED</status>", b"<type>RESTORE</type>",
    b"<plugin>NEW_PLUGIN</plugin>", b"<mob>1</mob>", b"<mob>yes</mob>", b"<online>2</online>",
    b'<a b="1" b="2">', b"<x:y xmlns:x='u'>", b"</x:y>", b"\r\n", b"\t", b" ",
    b"99999999999999999999999", b"-1", b"1e309", b"NaN",
)  # fmt: skip


async def _render(sim: Simulator, params: dict[str, str]) -> bytes:
    answer = await sim.handle(method="GET", path="/api/", query=params)
    return b"".join(answer.chunks)


@functools.cache
def corpus() -> tuple[bytes, ...]:
    """Realistic documents: the stored samples and one simulator body per service."""
    docs = [p.read_bytes() for p in sorted(SAMPLES.glob("*")) if p.suffix in {".xml", ".html"}]
    fleet = SimulatedFleet(seed="fuzz", clients=3, devices=10, history_days=3)
    sim = Simulator(fleet)
    client = fleet.clients[0]
    site = fleet.sites_of(client.client_id)[0]
    mob = next(d for d in fleet.iter_devices() if d.mob)
    patched = next(d for d in fleet.iter_devices() if d.patch and fleet.patches(d.device_id))
    patch_ids = ",".join(str(p.patchid) for p in fleet.patches(patched.device_id)[:3])
    key = "sim-key-0123456789abcdef"
    queries = [
        {"service": "list_clients"},
        {"service": "list_sites", "clientid": str(client.client_id)},
        {"service": "list_servers", "siteid": str(site.site_id)},
        {"service": "list_workstations", "siteid": str(site.site_id)},
        {"service": "list_devices_at_client", "clientid": str(client.client_id),
         "devicetype": "server"},
        {"service": "list_mob_sessions", "deviceid": str(mob.device_id)},
        {"service": "patch_list_all", "deviceid": str(patched.device_id)},
        {"service": "patch_retry", "deviceid": str(patched.device_id), "patchids": patch_ids},
        {"service": "list_mob_sessions", "describe": "true"},
        {"service": "list_sites"},  # FAIL: missing parameter
    ]  # fmt: skip

    async def render_all() -> list[bytes]:
        return [await _render(sim, {"apikey": key, **q}) for q in queries]

    docs += asyncio.run(render_all())
    return tuple(d for d in docs if d)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A realistic document with a few seeded mutations."""
    doc = bytearray(draw(st.sampled_from(corpus())))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "nest"]))
        pos = draw(st.integers(0, len(doc)))
        if op == "flip" and doc:
            i = min(pos, len(doc) - 1)
            doc[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            doc[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del doc[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup":
            width = draw(st.integers(1, 400))
            doc[pos:pos] = doc[pos : pos + width]
        elif op == "truncate":
            del doc[pos:]
        else:  # deep nesting: far deeper than any N-sight document
            depth = draw(st.sampled_from([3, 50, 2000]))
            doc[pos:pos] = b"<n>" * depth + b"v" + b"</n>" * depth
    return bytes(doc)


soup = st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=60).map(b"".join)
inputs = mutated() | soup | st.binary(max_size=600)


def feed_split(case: ShapeCase, data: bytes, cuts: list[int]) -> tuple[list[Any], Any]:
    """Feed ``data`` split at ``cuts``; return the records and the error (or None).

    Asserts the parser's contract on the way: only ``NsightError`` escapes, and
    after an error every later call raises that same error.
    """
    parser = case.parser()
    records: list[Any] = []
    points = [0, *sorted({min(c, len(data)) for c in cuts}), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    error: NsightError | None = None
    try:
        for piece in pieces:
            records += parser.feed(piece)
        records += parser.close()
    except NsightError as exc:
        error = exc
    except BaseException as exc:  # the property under test: nothing else may escape
        raise AssertionError(f"{case.service}: foreign {type(exc).__name__}: {exc}") from exc
    if error is not None:
        for again in (lambda: parser.feed(b"<"), parser.close):
            with pytest.raises(NsightError) as later:
                again()
            assert later.value is error, "a later call raised a different error"
    return records, error


def check_record(record: Any, case: ShapeCase) -> None:
    """Assert ``record`` is an instance of the shape's class with well-typed fields."""
    assert isinstance(record, case.record_types), type(record)
    if isinstance(record, dict):
        return
    check_attrs(record)


def check_attrs(record: Any) -> None:
    """Assert every field of an attrs record matches its annotation (recursively)."""
    cls = type(record)
    attrs.resolve_types(cls)
    for field in attrs.fields(cls):
        value = getattr(record, field.name)
        assert _matches(value, field.type), f"{cls.__name__}.{field.name} = {value!r}"
        if isinstance(value, datetime) and cls is MobSession:
            assert value.tzinfo is not None, f"MobSession.{field.name} is naive"


def _matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is Any:
        return True
    if origin is not None:
        if not isinstance(value, origin):
            return False
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return True
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is datetime:
        return isinstance(value, datetime)
    if annotation is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, annotation)
    if isinstance(annotation, type) and attrs.has(annotation):
        if not isinstance(value, annotation):
            return False
        check_attrs(value)
        return True
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # a type alias or forward reference this checker does not know


SHAPE = st.sampled_from(SHAPES)
CUTS = st.lists(st.integers(0, 70_000), max_size=8)


@FUZZ
@given(case=SHAPE, data=inputs, cuts=CUTS)
def test_any_bytes_give_typed_records_or_a_typed_error(
    case: ShapeCase, data: bytes, cuts: list[int]
) -> None:
    """Whatever the bytes and split points, the parser returns typed records or an NsightError."""
    records, _error = feed_split(case, data, cuts)
    for record in records:
        check_record(record, case)


@FUZZ
@given(case=SHAPE, data=mutated(), cuts=CUTS)
def test_split_points_never_change_the_result(
    case: ShapeCase, data: bytes, cuts: list[int]
) -> None:
    """Feeding a document whole or split at any points gives the same records and error type."""
    whole, whole_error = feed_split(case, data, [])
    split, split_error = feed_split(case, data, cuts)
    assert type(split_error) is type(whole_error), (whole_error, split_error)
    assert split == whole


@pytest.mark.parametrize(
    "case",
    SHAPES,
    ids=lambda c: c.service + ("-describe" if c.describe else "-generic" if c.generic else ""),
)
def test_every_corpus_document_byte_by_byte_matches_whole(case: ShapeCase) -> None:
    """Every realistic document fed one byte at a time parses exactly as when fed whole."""
    for doc in corpus():
        whole, whole_error = feed_split(case, doc, [])
        # A byte at a time on the long documents costs too much: every 7th byte there.
        cuts = list(range(0, len(doc), 7 if len(doc) > 8000 else 1))
        split, split_error = feed_split(case, doc, cuts)
        assert type(split_error) is type(whole_error)
        assert split == whole
        for record in whole:
            check_record(record, case)


def _outcome(case: ShapeCase, doc: bytes, cuts: list[int]) -> str:
    """Feed ``doc``; describe a contract violation, or return "" if the parser kept it."""
    try:
        records, _error = feed_split(case, doc, cuts)
        for record in records:
            check_record(record, case)
    except AssertionError as exc:
        return f"{case.service}: {exc}"
    return ""


NEST = b"<n>" * 1_000 + b"v" + b"</n>" * 1_000


def test_deeply_nested_elements_give_a_typed_error() -> None:
    """An element nested 1,000 deep (far beyond any N-sight document) fails as an NsightError."""
    docs = (
        b'<result status="OK"><items><client><clientid>1</clientid>' + NEST
        + b"</client></items></result>",
        b'<result status="OK"><session><session_id>1</session_id>' + NEST + b"</session></result>",
        b"<patches><patch><patchid>1</patchid>" + NEST + b"</patch></patches>",
        b'<result status="OK"><msg>' + NEST + b"</msg></result>",
    )  # fmt: skip
    problems = {_outcome(case, doc, []) for case in SHAPES for doc in docs} - {""}
    assert not problems, sorted(problems)[:4]


def test_an_unknown_declared_encoding_gives_a_typed_error() -> None:
    """A body declaring an encoding Python does not know fails as an NsightError."""
    doc = b'<?xml version="1.0" encoding="x-bogus"?><result status="OK"><items/></result>'
    problems = {_outcome(case, doc, []) for case in SHAPES} - {""}
    assert not problems, sorted(problems)[:4]


def test_text_fields_never_hold_nested_or_repeated_elements() -> None:
    """A name with child elements, or given twice, never puts a dict or list in a str field."""
    nested = parser_for("list_clients").feed(
        b'<result status="OK"><items><client><clientid>1</clientid><name><b>x</b></name>'
        b"</client><client><clientid>2</clientid><name>a</name><name>b</name></client>"
    )
    # Both clients are closed: the second comes out too, though the list is still open.
    assert [r.client_id for r in nested] == [1, 2]
    second = parser_for("list_clients")
    records = second.feed(
        b'<result status="OK"><items><client><clientid>2</clientid><name>a</name><name>b'
        b"</name></client></items></result>"
    )
    records += second.close()
    for record in [*nested, *records]:
        assert record.name is None or isinstance(record.name, str), repr(record.name)


def test_a_device_without_checkcount_still_has_check_counts() -> None:
    """A device listed without ``<checkcount>`` gets empty CheckCounts, never None."""
    parser = parser_for("list_devices_at_client", {"clientid": "1", "devicetype": "server"})
    records = parser.feed(
        b'<result status="OK"><items><client><id>1</id><name>c</name><site><id>2</id>'
        b"<name>s</name><server><id>3</id><name>d</name></server></site></client></items>"
        b"</result>"
    )
    records += parser.close()
    assert len(records) == 1
    assert isinstance(records[0].checks, CheckCounts), repr(records[0].checks)


def test_a_doctype_after_a_malformed_prolog_gives_the_same_error_however_split() -> None:
    """Where the body is cut never changes which typed error a document gets."""
    doc = b"<?<x>xml?><!DOCTYPE result [<!ENTITY a 'b'>]><result/>"
    case = SHAPES[0]
    _, whole = feed_split(case, doc, [])
    _, split = feed_split(case, doc, [5])
    assert type(split) is type(whole), (whole, split)
