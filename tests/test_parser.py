"""Tests for nsight_async._parser (and the DOCTYPE guard of _prolog it drives).

The core h11-style property: every sample in ``tests/samples/`` gives the same
records, or the same exception type and message, whether it is fed whole, one
byte at a time, or split into two feeds at any point.
"""

from __future__ import annotations

import functools
import gc
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import feed_all

from nsight_async import (
    ActionFailedError,
    ApiError,
    AuthenticationError,
    Client,
    Envelope,
    ForbiddenXmlError,
    HtmlPageError,
    InvalidParameterError,
    MissingParameterError,
    MobSession,
    NsightError,
    ParseError,
    StreamParser,
    UnknownServiceError,
    parser_for,
)
from nsight_async._shapes import DESCRIBE, TYPED_SERVICES, generic_shape, list_shape

SAMPLES = Path(__file__).parent / "samples"

#: Every sample: (service, params, describe, expected record count or exception type).
CASES: dict[str, tuple[str, dict[str, str], bool, int | type[Exception]]] = {
    "list_clients.xml": ("list_clients", {}, False, 4),
    "list_clients_one.xml": ("list_clients", {}, False, 1),
    "list_clients_empty.xml": ("list_clients", {}, False, 0),
    "list_sites.xml": ("list_sites", {"clientid": "1001"}, False, 3),
    "list_servers.xml": ("list_servers", {"siteid": "5101"}, False, 2),
    "list_workstations.xml": ("list_workstations", {"siteid": "5101"}, False, 2),
    "list_devices_at_client_server.xml": (
        "list_devices_at_client",
        {"clientid": "1001", "devicetype": "server"},
        False,
        4,
    ),
    "list_devices_at_client_workstation.xml": (
        "list_devices_at_client",
        {"clientid": "1003", "devicetype": "workstation"},
        False,
        3,
    ),
    "list_mob_sessions.xml": ("list_mob_sessions", {"deviceid": "880011"}, False, 10),
    "patch_list_all.xml": ("patch_list_all", {"deviceid": "880011"}, False, 7),
    "patch_retry_ok.xml": (
        "patch_retry",
        {"deviceid": "880011", "patchids": "104,105,106,108,109"},
        False,
        1,
    ),
    "patch_retry_only_retrying.xml": (
        "patch_retry",
        {"deviceid": "880011", "patchids": "105,108"},
        False,
        1,
    ),
    "patch_retry_only_applied.xml": (
        "patch_retry",
        {"deviceid": "880011", "patchids": "105"},
        False,
        1,
    ),
    "patch_retry_fail_msg.xml": (
        "patch_retry",
        {"deviceid": "880011", "patchids": "105"},
        False,
        ActionFailedError,
    ),
    "describe_list_mob_sessions.xml": ("list_mob_sessions", {}, True, 1),
    "describe_patch_list_all.xml": ("patch_list_all", {}, True, 1),
    "fail_code3.xml": ("list_clients", {}, False, AuthenticationError),
    "fail_code4.xml": ("list_sites", {"clientid": "x"}, False, InvalidParameterError),
    "fail_code5.xml": ("list_servers", {}, False, MissingParameterError),
    "fail_service_unknown.xml": ("list_gadgets", {}, False, UnknownServiceError),
    "html_firewall_403.html": ("list_clients", {}, False, HtmlPageError),
    "html_no_doctype.html": ("list_mob_sessions", {}, False, HtmlPageError),
    "doctype_entities.xml": ("list_clients", {}, False, ForbiddenXmlError),
    "doctype_after_comment.xml": ("list_clients", {}, False, ForbiddenXmlError),
    "malformed.xml": ("list_sites", {"clientid": "1001"}, False, ParseError),
    "truncated.xml": ("list_mob_sessions", {"deviceid": "880011"}, False, ParseError),
    "missing_status_ok.xml": ("list_clients", {}, False, 1),
    "missing_status_error.xml": ("list_clients", {}, False, AuthenticationError),
    "list_checks.xml": ("list_checks", {"deviceid": "880011"}, False, 1),
    "created_offset_utf8.xml": ("list_sites", {"clientid": "1005"}, False, 1),
    "created_malformed.xml": ("list_sites", {"clientid": "1006"}, False, 1),
}

Outcome = tuple[list[Any], tuple[type[Exception], str, int] | None]


@functools.cache
def _factory(sample: str) -> Callable[[], StreamParser[Any]]:
    """A parser factory for ``sample`` that builds (compiles) its shape only once."""
    service, params, describe, _ = CASES[sample]
    if describe:
        shape = DESCRIBE
    elif service in TYPED_SERVICES:
        shape = list_shape(service, params)
    else:
        shape = generic_shape()
    return functools.partial(StreamParser, shape, service=service)


def _body(sample: str) -> bytes:
    return (SAMPLES / sample).read_bytes()


def _run(parser: StreamParser[Any], chunks: Iterable[bytes]) -> Outcome:
    """Feed ``chunks`` then close; return every record handed out and the error, if any."""
    records, exc = feed_all(parser, chunks)
    if exc is None:
        return records, None
    return records, (type(exc), str(exc), exc.records_yielded)


def _outcome(sample: str, chunks: Iterable[bytes]) -> Outcome:
    return _run(_factory(sample)(), chunks)


def _split_points(size: int) -> Iterator[int]:
    """Every split point of small bodies; the first and last 300 bytes plus a stride otherwise."""
    if size <= 1500:
        yield from range(size + 1)
        return
    yield from range(300)
    yield from range(300, size - 300, 7)
    yield from range(size - 300, size + 1)


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# -- the same results however the body is cut ------------------------------


def test_every_sample_has_a_case() -> None:
    """Every file in tests/samples/ is listed in CASES, so every sample is exercised."""
    assert sorted(p.name for p in SAMPLES.iterdir() if p.is_file()) == sorted(CASES)


@pytest.mark.parametrize("sample", sorted(CASES))
def test_sample_whole_gives_expected_outcome(sample: str) -> None:
    """A sample fed whole gives the expected number of records or the expected error type."""
    records, error = _outcome(sample, [_body(sample)])
    expected = CASES[sample][3]
    if isinstance(expected, int):
        assert error is None, error
        assert len(records) == expected
    else:
        assert error is not None
        assert error[0] is expected


@pytest.mark.parametrize("sample", sorted(CASES))
def test_parser_for_matches_a_shared_shape(sample: str) -> None:
    """``parser_for`` gives exactly what a parser built on a shared, cached shape gives."""
    service, params, describe, _ = CASES[sample]
    data = _body(sample)
    assert _run(parser_for(service, params, describe=describe), [data]) == _outcome(sample, [data])


@pytest.mark.parametrize("sample", sorted(CASES))
def test_sample_one_byte_at_a_time_matches_whole(sample: str) -> None:
    """Feeding one byte at a time gives the same records or the same error as feeding it whole."""
    data = _body(sample)
    assert _outcome(sample, _bytewise(data)) == _outcome(sample, [data])


@pytest.mark.parametrize("sample", sorted(CASES))
def test_sample_split_in_two_matches_whole(sample: str) -> None:
    """Splitting the body into two feeds at any point gives the same result as feeding it whole."""
    data = _body(sample)
    whole = _outcome(sample, [data])
    mismatches = [
        (at, got)
        for at in _split_points(len(data))
        if (got := _outcome(sample, [data[:at], data[at:]])) != whole
    ]
    assert not mismatches, f"{len(mismatches)} split points differ, first: {mismatches[0]}"


@pytest.mark.parametrize("sample", sorted(CASES))
def test_empty_feeds_change_nothing(sample: str) -> None:
    """Empty feeds between chunks are harmless ("need more data" is a value, not an error)."""
    data = _body(sample)
    chunks = [b""] + [x for i in range(0, len(data), 97) for x in (data[i : i + 97], b"")]
    assert _outcome(sample, chunks) == _outcome(sample, [data])


# -- envelope and bookkeeping ---------------------------------------------


def test_envelope_exposes_root_status_and_created_with_offset() -> None:
    """The envelope keeps the root's attributes and reads ``created`` with its -06:00 offset."""
    parser = parser_for("list_sites", {"clientid": "1005"})
    assert parser.envelope is None
    parser.feed(_body("created_offset_utf8.xml"))
    parser.close()
    envelope = parser.envelope
    assert isinstance(envelope, Envelope)
    assert envelope.root == "result"
    assert envelope.status == "OK"
    assert envelope.attributes["host"] == "wwwgermany1.systemmonitor.eu.com"
    created = envelope.created
    assert created == datetime(2024, 3, 18, 15, 36, 15, tzinfo=UTC)
    assert created.utcoffset() == timedelta(hours=-6)
    assert created.tzinfo == timezone(timedelta(hours=-6))


def test_envelope_is_known_as_soon_as_the_root_starts() -> None:
    """The envelope is available once the root's start tag has arrived, before any record."""
    data = _body("list_mob_sessions.xml")
    parser = parser_for("list_mob_sessions")
    assert parser.feed(data[: data.index(b"<session>")]) == []
    assert parser.envelope is not None
    assert parser.envelope.status == "OK"


def test_malformed_created_never_fails_the_call() -> None:
    """A malformed ``created`` (as in N-able's docs) reads as None and the records still parse."""
    parser = parser_for("list_sites", {"clientid": "1006"})
    records = parser.feed(_body("created_malformed.xml")) + parser.close()
    assert parser.envelope is not None
    assert parser.envelope.attributes["created"] == "2015-07-20T08T08:47:41+01:00"
    assert parser.envelope.created is None
    assert [r.site_id for r in records] == [6201]


def test_missing_status_means_ok_when_data_is_present() -> None:
    """A document without a status attribute but with data is read as OK."""
    parser = parser_for("list_clients")
    records = parser.feed(_body("missing_status_ok.xml")) + parser.close()
    assert parser.envelope is not None
    assert parser.envelope.status is None
    assert [r.client_id for r in records] == [3001]


def test_bare_patches_root_has_no_status() -> None:
    """``patch_list_all``'s bare ``<patches>`` root gives an envelope with no status."""
    parser = parser_for("patch_list_all", {"deviceid": "1"})
    parser.feed(_body("patch_list_all.xml"))
    parser.close()
    assert parser.envelope == Envelope(root="patches", attributes={})
    assert parser.envelope.status is None
    assert parser.envelope.created is None


def test_records_emitted_and_bytes_fed_count_what_was_handed_out() -> None:
    """``records_emitted`` counts records handed out so far; ``bytes_fed`` counts input bytes."""
    data = _body("list_mob_sessions.xml")
    parser = parser_for("list_mob_sessions")
    # A record is known complete once the next sibling's start tag has been read.
    second = data.index(b"<session>", data.index(b"</session>"))
    first = parser.feed(data[: second + len(b"<session>") + 1])
    assert parser.records_emitted == len(first) == 1
    rest = parser.feed(data[second + len(b"<session>") + 1 :]) + parser.close()
    assert parser.records_emitted == 1 + len(rest) == 10
    assert parser.bytes_fed == len(data)


def test_records_come_out_as_soon_as_they_are_complete() -> None:
    """A record is returned by the feed that completes it, not held until close."""
    data = _body("list_clients.xml")
    parser = parser_for("list_clients")
    end = data.index(b"</client>") + len(b"</client>")
    assert parser.feed(data[: end - 1]) == []
    # The record is complete once its end tag is read and the next sibling has begun.
    got = parser.feed(data[end - 1 : end + 20])
    assert [r.client_id for r in got] == [1001]


def test_close_twice_returns_nothing_more() -> None:
    """A second close() after a successful one returns an empty list."""
    parser = parser_for("list_clients")
    got = parser.feed(_body("list_clients_one.xml"))
    assert len(got + parser.close()) == 1
    assert parser.close() == []


def test_feed_after_close_is_a_programming_error() -> None:
    """Feeding after close() raises RuntimeError (a caller bug, not a server fault)."""
    parser = parser_for("list_clients")
    parser.feed(_body("list_clients_empty.xml"))
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.feed(b"<x/>")


# -- API errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "cls", "code", "text"),
    [
        ("fail_code3.xml", AuthenticationError, 3, "Login failed"),
        ("fail_code4.xml", InvalidParameterError, 4, "Invalid value for parameter: clientid"),
        ("fail_code5.xml", MissingParameterError, 5, "Missing parameter: siteid"),
        ("fail_service_unknown.xml", UnknownServiceError, 1, "Service unknown"),
        ("missing_status_error.xml", AuthenticationError, 3, "Login failed"),
    ],
)
def test_fail_envelope_maps_to_most_specific_api_error(
    sample: str, cls: type[ApiError], code: int, text: str
) -> None:
    """A FAIL envelope raises the ApiError subclass for its code, with ``.code`` and service."""
    service = CASES[sample][0]
    with pytest.raises(cls) as info:
        _run_strict(service, _body(sample), CASES[sample][1])
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.service == service
    assert text in str(info.value)
    assert service in str(info.value)
    assert not info.value.retryable


def test_login_failed_hints_at_the_region() -> None:
    """Code 3 tells the user to check the key and the region's server."""
    with pytest.raises(AuthenticationError, match="region"):
        _run_strict("list_clients", _body("fail_code3.xml"))


def test_fail_with_only_msg_is_action_failed() -> None:
    """An action's FAIL with only a ``<msg>`` raises ActionFailedError carrying the message."""
    with pytest.raises(ActionFailedError, match="device is offline") as info:
        _run_strict("patch_retry", _body("patch_retry_fail_msg.xml"))
    assert info.value.service == "patch_retry"


def test_fail_with_nothing_inside_is_a_plain_api_error() -> None:
    """A FAIL envelope with neither ``<error>`` nor ``<msg>`` still raises ApiError."""
    with pytest.raises(ApiError, match="FAIL") as info:
        _run_strict("list_clients", b'<result status="FAIL"></result>')
    assert type(info.value) is ApiError


def test_error_after_records_returns_records_first() -> None:
    """Records completed before an ``<error>`` are returned; the next call raises."""
    body = (
        b'<result status="OK"><items><client><clientid>7</clientid></client></items>'
        b"<error><errorcode>4</errorcode><message>Invalid value for parameter: x</message>"
        b"</error></result>"
    )
    parser = parser_for("list_clients")
    assert [r.client_id for r in parser.feed(body)] == [7]
    with pytest.raises(InvalidParameterError) as info:
        parser.close()
    assert info.value.records_yielded == 1


def _run_strict(service: str, data: bytes, params: dict[str, str] | None = None) -> list[Any]:
    parser = parser_for(service, params)
    return parser.feed(data) + parser.close()


def _feed_only(parser: StreamParser[Any], chunks: Iterable[bytes]) -> list[Any]:
    """Feed every chunk without closing; return the records handed out."""
    return [record for chunk in chunks for record in parser.feed(chunk)]


# -- responses that are not N-sight XML -----------------------------------


@pytest.mark.parametrize("sample", ["html_firewall_403.html", "html_no_doctype.html"])
@pytest.mark.parametrize("service", ["list_clients", "list_mob_sessions", "list_checks"])
def test_html_page_is_html_page_error(sample: str, service: str) -> None:
    """A firewall or proxy HTML page raises HtmlPageError for typed and generic services."""
    with pytest.raises(HtmlPageError, match="HTML page") as info:
        _run_strict(service, _body(sample))
    assert info.value.service == service
    assert info.value.retryable


@pytest.mark.parametrize("sample", ["doctype_entities.xml", "doctype_after_comment.xml"])
def test_doctype_is_refused_before_expansion(sample: str) -> None:
    """A document declaring a DOCTYPE with entities raises ForbiddenXmlError, never expands."""
    with pytest.raises(ForbiddenXmlError, match="DOCTYPE result") as info:
        _run_strict("list_clients", _body(sample))
    assert not info.value.retryable


def test_doctype_after_a_comment_is_refused_however_it_is_split() -> None:
    """The guard refuses a DOCTYPE after a comment holding a tag, even cut inside the comment."""
    data = _body("doctype_after_comment.xml")
    cut = data.index(b"<b>") + 2  # the first feed ends inside the comment, right after "<b"
    records, error = _outcome("doctype_after_comment.xml", [data[:cut], data[cut:]])
    assert records == []
    assert error is not None
    assert error[0] is ForbiddenXmlError


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_doctype_split_across_feeds_is_refused(chunk: int) -> None:
    """A DOCTYPE arriving in small pieces is still refused."""
    data = _body("doctype_entities.xml")
    parser = parser_for("list_clients")
    with pytest.raises(ForbiddenXmlError):
        _feed_only(parser, [data[i : i + chunk] for i in range(0, len(data), chunk)])


def test_malformed_xml_names_service_and_what_was_seen() -> None:
    """Mismatched tags raise ParseError naming the service and the true error position."""
    with pytest.raises(ParseError) as info:
        _run_strict("list_sites", _body("malformed.xml"), {"clientid": "1001"})
    message = str(info.value)
    assert type(info.value) is ParseError
    assert message.startswith("list_sites: malformed XML")
    assert "mismatched tag" in message
    # </primary_router> closes <secondary_router> on line 10, column 38 of the sample.
    assert "line 10, column 38" in message
    assert info.value.retryable


def test_malformed_xml_raises_on_the_feed_that_delivers_it() -> None:
    """A syntax error surfaces at the feed that delivers it, not only at close()."""
    data = _body("malformed.xml")
    parser = parser_for("list_sites", {"clientid": "1001"})
    with pytest.raises(ParseError, match="mismatched tag"):
        _feed_only(parser, [data, b"<more>the rest of a long download</more>"])


def test_truncated_body_returns_complete_records_then_close_raises() -> None:
    """A body cut mid-record gives its complete records, then close() raises ParseError."""
    parser = parser_for("list_mob_sessions", {"deviceid": "880011"})
    records = parser.feed(_body("truncated.xml"))
    assert [r.session_id for r in records] == [3100001]
    with pytest.raises(ParseError) as info:
        parser.close()
    assert type(info.value) is ParseError
    assert info.value.records_yielded == 1
    assert str(info.value) == (
        "list_mob_sessions: the response was cut off after 1300 bytes (1 records were complete)"
    )


@pytest.mark.parametrize("cut", [10, 60, 150, 400, 1000])
def test_body_cut_anywhere_is_a_parse_error_naming_the_service(cut: int) -> None:
    """A body cut at any point raises ParseError from close() naming the service."""
    data = _body("list_clients.xml")[:cut]
    parser = parser_for("list_clients")
    parser.feed(data)
    with pytest.raises(ParseError, match=r"^list_clients: ") as info:
        parser.close()
    assert not isinstance(info.value, ForbiddenXmlError)


def test_empty_body_is_a_parse_error() -> None:
    """An empty body raises ParseError saying it was empty."""
    parser = parser_for("list_clients")
    with pytest.raises(ParseError, match="list_clients: the response body was empty"):
        parser.close()


def test_plain_text_body_is_not_xml() -> None:
    """A plain-text body raises ParseError quoting how it starts."""
    with pytest.raises(ParseError, match=r"not XML.*Service Unavailable"):
        _run_strict("list_clients", b"Service Unavailable\r\n")


def test_unexpected_root_names_the_expected_one() -> None:
    """A document with an unexpected root raises ParseError naming expected and seen roots."""
    with pytest.raises(ParseError, match=r"expected a <result> document, got <rss>"):
        _run_strict("list_clients", b'<?xml version="1.0"?><rss><channel/></rss>')


def test_utf8_bom_is_accepted() -> None:
    """A UTF-8 byte order mark before the declaration is accepted."""
    body = (
        b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>' + _body("list_clients_one.xml")[38:]
    )
    assert [r.client_id for r in _run_strict("list_clients", body)] == [2001]


# -- h11's rule: once failed, always failed --------------------------------


@pytest.mark.parametrize(
    "sample", ["html_firewall_403.html", "doctype_entities.xml", "fail_code3.xml", "truncated.xml"]
)
def test_after_an_error_every_later_call_raises_the_same_error(sample: str) -> None:
    """After the parser fails, feed() and close() keep raising the very same exception."""
    parser = _factory(sample)()
    first: NsightError | None = None
    try:
        parser.feed(_body(sample))
        parser.close()
    except NsightError as exc:
        first = exc
    assert first is not None
    for call in (lambda: parser.feed(b"<result/>"), parser.close, parser.close):
        with pytest.raises(NsightError) as again:
            call()
        assert again.value is first


def test_error_from_the_first_feed_is_raised_immediately() -> None:
    """When no record precedes the error, the feed that hits it raises at once."""
    parser = parser_for("list_clients")
    with pytest.raises(HtmlPageError):
        parser.feed(_body("html_firewall_403.html"))
    assert parser.records_emitted == 0


_FAIL_WITH_A_RECORD = (
    b'<result status="FAIL"><session><session_id>1</session_id></session></result>'
)
_CUT_AFTER_A_RECORD = (
    b'<result status="OK"><session a="1"><session_id>1</session_id></session></res'
)


@pytest.mark.parametrize(
    ("body", "error", "scan", "expected"),
    [
        (_FAIL_WITH_A_RECORD, ApiError, True, [1]),
        (_FAIL_WITH_A_RECORD, ApiError, False, [1]),
        (_CUT_AFTER_A_RECORD, ParseError, True, [1]),
        # The element walk holds the last record open until its parent ends.
        (_CUT_AFTER_A_RECORD, ParseError, False, []),
    ],
    ids=["FAIL envelope, scanner", "FAIL envelope, element walk", "cut off, scanner",
         "cut off, element walk"],
)  # fmt: skip
def test_close_raises_an_error_it_finds_and_keeps_what_came_before(
    body: bytes, error: type[Exception], scan: bool, expected: list[int]
) -> None:
    """Nothing comes after ``close``: it raises, and the records it completed on the way
    are in ``before_error`` (a caller that calls it once still sees the error)."""
    parser = StreamParser(list_shape("list_mob_sessions", {}), service="s", scan=scan)
    records = parser.feed(body)
    with pytest.raises(error):
        parser.close()
    assert [r.session_id for r in [*records, *parser.before_error]] == expected
    with pytest.raises(error):
        parser.close()  # and again, as every call after a failure does


def test_records_before_an_error_are_not_lost_across_feeds() -> None:
    """Records completed in the failing feed are returned; the error comes on the next call."""
    data = _body("list_mob_sessions.xml")
    cut = data.index(b"<session_id>3100003")
    broken = data[:cut] + b"<session_id>1</sessionid>"
    parser = parser_for("list_mob_sessions")
    records = parser.feed(broken)
    assert [r.session_id for r in records] == [3100001, 3100002]
    with pytest.raises(ParseError) as info:
        parser.feed(b"more")
    assert info.value.records_yielded == 2


# -- memory stays flat -----------------------------------------------------


def _session(i: int) -> bytes:
    plugin = ("FILE_SYSTEM", "SYSTEM_STATE", "<![CDATA[MSSQL]]>", "HYPER_V")[i % 4]
    return (
        f"<session><session_id>{i}</session_id><type>BACKUP</type>"
        f"<storage_account_id>{i % 97}</storage_account_id><plugin>{plugin}</plugin>"
        f"<start>2024-03-{1 + i % 28:02d} 01:00:02</start>"
        f"<end>2024-03-{1 + i % 28:02d} 01:42:59</end>"
        f"<selection_size>{6442450944000 + i}</selection_size>"
        f"<selection_item_count>{i * 7}</selection_item_count><size_change>{i - 500}</size_change>"
        f"<item_count_change>3</item_count_change><removed_item_count>1</removed_item_count>"
        f"<processed_size>{5368709120 + i}</processed_size><processed_item_count>9"
        f"</processed_item_count><transferred_size>{1073741824 + i}</transferred_size>"
        f"<error_count>{i % 3}</error_count><status>COMPLETED</status></session>\n"
    ).encode()


def _mob_document(
    total: int, chunk: int = 64 * 1024, made: list[int] | None = None
) -> Iterator[bytes]:
    """Yield a ``total``-byte list_mob_sessions body in ``chunk``-sized pieces, lazily.

    The number of sessions generated is appended to ``made`` at the end.
    """
    pool = [_session(i) for i in range(256)]
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n<result status="OK" host="h">\n'
    buf = bytearray()
    sent = 0
    i = 0
    while sent < total:
        buf += pool[i % len(pool)]
        i += 1
        if len(buf) >= chunk:
            yield bytes(buf[:chunk])
            sent += chunk
            del buf[:chunk]
    yield bytes(buf) + b"</result>\n"
    if made is not None:
        made.append(i)


def test_retained_memory_is_flat_on_a_4_mb_document() -> None:
    """Parsing 4 MB in 64 KiB chunks keeps the traced memory peak under 3 MB."""
    parser = parser_for("list_mob_sessions")
    count = 0
    made: list[int] = []
    gc.collect()
    tracemalloc.start()
    try:
        for chunk in _mob_document(4_000_000, made=made):
            count += len(parser.feed(chunk))  # records are dropped at once, like a consumer would
        count += len(parser.close())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert made == [count]
    assert peak < 3_000_000, f"peak traced memory {peak / 1e6:.1f} MB"


@pytest.mark.slow
def test_rss_stays_flat_on_a_200_mb_document() -> None:
    """Parsing a lazily generated 200 MB document keeps RSS growth under 50 MB."""
    proc = psutil.Process()
    gc.collect()
    baseline = proc.memory_info().rss
    peak = baseline
    parser = parser_for("list_mob_sessions")
    count = 0
    made: list[int] = []
    last: MobSession | None = None
    for n, chunk in enumerate(_mob_document(200_000_000, made=made)):
        records = parser.feed(chunk)
        count += len(records)
        if records:
            last = records[-1]
        if n % 32 == 0:
            peak = max(peak, proc.memory_info().rss)
    records = parser.close()
    count += len(records)
    last = records[-1] if records else last
    peak = max(peak, proc.memory_info().rss)
    assert parser.bytes_fed > 200_000_000
    assert made == [count]
    assert last is not None
    assert last.session_id == (count - 1) % 256  # the generator cycles a pool of 256
    assert last.start is not None
    assert last.start.tzinfo is UTC
    assert peak - baseline < 50_000_000, f"RSS grew {(peak - baseline) / 1e6:.1f} MB"


def test_generic_view_parses_only_at_close() -> None:
    """The generic dict view returns one dict at close, none from feed()."""
    parser = parser_for("list_checks")
    assert parser.feed(_body("list_checks.xml")) == []
    (view,) = parser.close()
    assert isinstance(view, dict)
    assert parser.records_emitted == 1


def test_typed_records_are_attrs_instances() -> None:
    """Typed services give model instances, not dicts."""
    (client,) = _run_strict("list_clients", _body("list_clients_one.xml"))
    assert isinstance(client, Client)
