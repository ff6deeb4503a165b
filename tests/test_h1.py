"""The default HTTP/1.1 backend (nsight_async._h1) against scripted loopback servers.

Each test scripts what a server writes for each request (framing, encodings,
closes, stalls, garbage) on 127.0.0.1 and checks what the backend makes of
it: the body bytes, a typed error that says whether the request can have been
sent, and which connections are kept for the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from nsight_async import (
    HttpStatusError,
    NsightClient,
    ParseError,
    RetryPolicy,
    TransportError,
    _h1,
    _h1conn,
    parser_for,
)
from nsight_async._h1 import H1Backend
from nsight_async._inflate import PIECE
from nsight_async._parser import StreamParser

KEY = "k-h1-secret-0123456789"
QUERY = {"apikey": KEY, "service": "list_clients"}
Action = Callable[[asyncio.StreamWriter], Awaitable[bool]]  # returns whether to keep going


def answer(body: bytes, *, status: str = "200 OK", headers: str = "") -> Action:
    """An action writing a Content-Length response."""

    async def act(writer: asyncio.StreamWriter) -> bool:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body
        )
        await writer.drain()
        return True

    return act


def raw(data: bytes, *, then_close: bool = False, pause: float = 0.0) -> Action:
    """An action writing ``data`` as it is, then pausing and maybe closing."""

    async def act(writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
        return not then_close

    return act


def _joined(*actions: Action) -> Action:
    async def act(writer: asyncio.StreamWriter) -> bool:
        for action in actions:
            if not await action(writer):
                return False
        return True

    return act


class Script:
    """A loopback server answering each request with the next scripted action."""

    def __init__(self, *actions: Action) -> None:
        self.actions = list(actions)
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                    return
                self.requests.append(head)
                action = self.actions.pop(0) if self.actions else answer(b"<result/>")
                if not await action(writer):
                    return
        finally:
            self.open_now -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"


@asynccontextmanager
async def serving(
    script: Script, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Script]:
    server = await asyncio.start_server(script._handle, "127.0.0.1", 0, ssl=ssl_context)
    script.port = server.sockets[0].getsockname()[1]
    try:
        yield script
    finally:
        server.close()
        for writer in script.writers:
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # the handlers see their connections close


def backend(**kw: object) -> H1Backend:
    settings: dict[str, object] = dict(
        max_connections=4, timeout=2.0, connect_timeout=2.0, user_agent="nsight-async-test"
    )
    settings.update(kw)
    return H1Backend(**settings)  # type: ignore[arg-type]


async def fetch(b: H1Backend, url: str, query: dict[str, str] | None = None) -> bytes:
    response = await b.send(url, query or QUERY, write=False)
    try:
        return b"".join([chunk async for chunk in response.chunks()])
    finally:
        await response.close()


async def test_requests_share_one_kept_alive_connection() -> None:
    """Sequential requests reuse one connection; the request line, Host and User-Agent are sent."""
    async with serving(Script(*(answer(b"<r>%d</r>" % i) for i in range(5)))) as script:
        b = backend()
        bodies = [await fetch(b, script.url, {**QUERY, "n": str(i)}) for i in range(5)]
        await b.aclose()
    assert bodies == [b"<r>%d</r>" % i for i in range(5)]
    assert script.connections == 1
    first = script.requests[0].decode()
    assert first.startswith(f"GET /api/?apikey={KEY}&service=list_clients&n=0 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{script.port}\r\n" in first
    assert "User-Agent: nsight-async-test\r\n" in first


async def test_a_chunked_body_is_joined() -> None:
    """A chunked body arriving in pieces, with a chunk split across writes, reads whole."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    in_pieces = _joined(
        raw(head + b"9\r\n<resu", pause=0.02), raw(b"lt/>\r\n3\r\nabc\r\n0\r\n\r\n")
    )
    async with serving(Script(in_pieces)) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<result/>abc"
        assert await fetch(b, script.url) == b"<result/>"  # the connection was kept
        await b.aclose()
    assert script.connections == 1


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b)],
)
async def test_compressed_bodies_are_decoded(coding: str, encode: Callable[[bytes], bytes]) -> None:
    """gzip and deflate bodies (asked for in Accept-Encoding) come out decoded."""
    body = b"<result>" + b"<x>Smith &amp; Sons</x>" * 2000 + b"</result>"
    headers = f"Content-Encoding: {coding}\r\n"
    async with serving(Script(answer(encode(body), headers=headers))) as script:
        b = backend()
        assert await fetch(b, script.url) == body
        await b.aclose()
    assert b"Accept-Encoding: gzip, deflate\r\n" in script.requests[0]


@pytest.mark.parametrize(
    ("headers", "data", "message"),
    [
        ("Content-Encoding: br\r\n", b"\x0b\x02\x80", "cannot read"),
        ("Content-Encoding: gzip\r\n", b"not gzip at all", "could not be decoded"),
    ],
)
async def test_a_body_that_cannot_be_decoded_is_a_parse_error(
    headers: str, data: bytes, message: str
) -> None:
    """An unknown encoding or a corrupt gzip body raises ParseError, not garbage."""
    async with serving(Script(answer(data, headers=headers))) as script:
        b = backend()
        with pytest.raises(ParseError, match=message):
            await fetch(b, script.url)
        await b.aclose()


async def _answer_then_close(writer: asyncio.StreamWriter) -> bool:
    await answer(b"<a/>")(writer)
    return False  # answer, then close the idle connection


@pytest.mark.parametrize(
    "action",
    [
        raw(b"HTTP/1.1 200 OK\r\n\r\n<a/>", then_close=True),
        answer(b"<a/>", headers="Connection: close\r\n"),
        raw(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n<a/>", then_close=True),
        _answer_then_close,
    ],
    ids=["body-ends-with-the-connection", "connection-close", "http-1.0", "closed-while-idle"],
)
async def test_a_connection_that_ends_is_not_used_again(action: Action) -> None:
    """A body that ends with its connection, an answer saying ``Connection: close`` or from
    HTTP/1.0, and a close that arrives while idle: the next request quietly reconnects."""
    async with serving(Script(action)) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<a/>"
        await asyncio.sleep(0.05)  # a close the server sent reaches the client
        assert await fetch(b, script.url) == b"<result/>"
        await b.aclose()
    assert script.connections == 2


async def test_a_kept_alive_connection_that_dies_under_a_request() -> None:
    """A kept-alive connection the server drops after reading the request: an error that may
    have been sent (it is never resent), and the next request gets a new connection."""
    async with serving(Script(answer(b"<a/>"), raw(b"", then_close=True))) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<a/>"
        with pytest.raises(TransportError) as info:
            await fetch(b, script.url)
        assert not info.value.certainly_not_sent
        assert await fetch(b, script.url) == b"<result/>"
        await b.aclose()


async def test_connections_idle_too_long_are_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection idle past the keep-alive time is closed, not reused."""
    monkeypatch.setattr(_h1, "_KEEP_IDLE", 0.01)
    async with serving(Script()) as script:
        b = backend()
        await fetch(b, script.url)
        await asyncio.sleep(0.05)
        await fetch(b, script.url)
        await b.aclose()
    assert script.connections == 2


@pytest.mark.parametrize(
    "action",
    [
        raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<result>", then_close=True),
        raw(b"", then_close=True),
        raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<resu", then_close=True),
    ],
    ids=["mid-body", "before-the-head", "mid-chunk"],
)
async def test_a_connection_lost_after_sending_may_have_been_sent(action: Action) -> None:
    """A close after the request went out is a TransportError that does not claim 'not sent'."""
    async with serving(Script(action)) as script:
        b = backend()
        with pytest.raises(TransportError, match="lost the connection") as info:
            await fetch(b, script.url)
        await b.aclose()
    assert not info.value.certainly_not_sent
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


async def test_a_malformed_response_is_a_transport_error() -> None:
    """Garbage where the status line should be is a TransportError naming the parser's complaint."""
    async with serving(Script(raw(b"SMTP ready\r\n\r\n"))) as script:
        b = backend()
        with pytest.raises(TransportError, match=r"not HTTP/1\.1.*Expected HTTP/") as info:
            await fetch(b, script.url)
        assert await fetch(b, script.url) == b"<result/>"  # the broken connection was dropped
        await b.aclose()
    assert not info.value.certainly_not_sent
    assert KEY not in str(info.value)


async def test_a_stall_mid_body_times_out() -> None:
    """No data within the read timeout, mid-body, raises a TransportError that says so."""
    stall = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<result>", pause=1.0)
    async with serving(Script(stall)) as script:
        b = backend(timeout=0.1)
        with pytest.raises(TransportError, match="timed out waiting") as info:
            await fetch(b, script.url)
        await b.aclose()
    assert not info.value.certainly_not_sent


async def test_a_connect_that_hangs_times_out_as_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that is never made within the connect timeout: nothing was sent."""
    loop = asyncio.get_running_loop()

    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    b = backend(connect_timeout=0.05)
    with pytest.raises(TransportError, match="timed out connecting") as info:
        await fetch(b, "http://127.0.0.1:9/api/")
    assert info.value.certainly_not_sent


async def test_an_abandoned_response_is_not_reused() -> None:
    """A response closed before its end closes its connection (its rest would be misread)."""
    big = b"<result>" + b"x" * 500_000 + b"</result>"
    async with serving(Script(answer(big))) as script:
        b = backend()
        response = await b.send(script.url, QUERY, write=False)
        async for _ in response.chunks():
            break
        await response.close()
        assert await fetch(b, script.url) == b"<result/>"
        await b.aclose()
    assert script.connections == 2


async def test_a_slow_reader_pauses_the_socket() -> None:
    """A body read slowly is not buffered whole: reading pauses once enough waits."""
    big = b"<result>" + b"y" * 8_000_000 + b"</result>"
    async with serving(Script(answer(big))) as script:
        b = backend()
        response = await b.send(script.url, QUERY, write=False)
        conn = response._conn  # type: ignore[attr-defined]
        most = total = 0
        async for chunk in response.chunks():
            total += len(chunk)
            most = max(most, conn.buffered)
            await asyncio.sleep(0.001)
        await response.close()
        await b.aclose()
    assert total == len(big)
    assert most < 2 * _h1conn.PAUSE_AT


async def test_cancelled_requests_give_their_connection_slot_back() -> None:
    """Requests cancelled while waiting for the head release their slots; later ones still run."""
    async with serving(Script(*(raw(b"", pause=5.0) for _ in range(3)))) as script:
        b = backend(max_connections=3)
        for _ in range(3):
            task = asyncio.create_task(fetch(b, script.url))
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await asyncio.wait_for(fetch(b, script.url), 2) == b"<result/>"
        await b.aclose()


async def test_connections_never_exceed_the_pool() -> None:
    """At most ``max_connections`` are open at once, whatever is asked of the pool."""
    slow = [raw(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>", pause=0.02)] * 12
    async with serving(Script(*slow)) as script:
        b = backend(max_connections=3)
        await asyncio.gather(*(fetch(b, script.url) for _ in range(12)))
        await b.aclose()
    assert script.most_open <= 3


async def test_redirects_are_not_followed() -> None:
    """A 302 is an HttpStatusError: following it would carry the key to another host."""
    moved = answer(b"", status="302 Found", headers="Location: http://198.51.100.7/api/\r\n")
    async with serving(Script(moved)) as script:
        client = NsightClient(script.url, KEY, retry=RetryPolicy(attempts=1))
        async with client:
            with pytest.raises(HttpStatusError, match="302") as info:
                [c async for c in client.list_clients()]
    assert len(script.requests) == 1
    assert KEY not in str(info.value)


async def test_tls_with_a_trusted_certificate_and_refused_without() -> None:
    """HTTPS works against a certificate the context trusts and fails (not sent) against one
    it does not: the default context verifies the server."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with serving(Script(answer(b"<tls/>")), server_context) as script:
        url = f"https://127.0.0.1:{script.port}/api/"
        trusting = backend(ssl_context=client_context)
        assert await fetch(trusting, url) == b"<tls/>"
        await trusting.aclose()
        default = backend()
        with pytest.raises(TransportError, match="could not connect") as info:
            await fetch(default, url)
        await default.aclose()
    assert info.value.certainly_not_sent
    assert f"Host: 127.0.0.1:{script.port}" in script.requests[0].decode()


def test_runs_on_uvloop() -> None:
    """The backend runs on uvloop, whose transports are not asyncio.Transport subclasses:
    applications served by uvicorn and the like run their clients on it."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[bytes, bytes, int]:
        async with serving(Script(answer(b"<a/>"), answer(b"<b/>"))) as script:
            b = backend()
            first, second = await fetch(b, script.url), await fetch(b, script.url)
            await b.aclose()
        return first, second, script.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == (b"<a/>", b"<b/>", 1)


@pytest.mark.parametrize(
    ("coding", "encode"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
async def test_a_compressed_body_cut_short_is_a_parse_error(
    coding: str, encode: Callable[[bytes], bytes]
) -> None:
    """A compressed body whose stream ends early (framing intact) is not short data."""
    data = encode(b"<result>" + b"<x>row</x>" * 500 + b"</result>")
    cut = answer(data[: len(data) // 2], headers=f"Content-Encoding: {coding}\r\n")
    async with serving(Script(cut)) as script:
        b = backend()
        with pytest.raises(ParseError, match="ended early"):
            await fetch(b, script.url)
        await b.aclose()


async def test_a_gzip_body_of_several_members_is_read_whole() -> None:
    """RFC 1952 allows concatenated members; all of them are decoded."""
    data = gzip.compress(b"<result>one") + gzip.compress(b"two</result>")
    async with serving(Script(answer(data, headers="Content-Encoding: gzip\r\n"))) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<result>onetwo</result>"
        await b.aclose()


async def test_an_interim_response_is_skipped_not_taken_as_the_answer() -> None:
    """A 103 Early Hints arriving on its own is skipped; the next request gets its own answer."""
    hints = raw(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", pause=0.05)
    async with serving(Script(_joined(hints, answer(b"<one/>")), answer(b"<two/>"))) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<one/>"
        assert await fetch(b, script.url) == b"<two/>"
        await b.aclose()


async def test_bytes_after_the_response_are_not_body_and_close_the_connection() -> None:
    """A second, unasked-for response in the same read is neither appended nor kept."""
    extra = raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEXTRA"
    )
    async with serving(Script(extra)) as script:
        b = backend()
        assert await fetch(b, script.url) == b"<a/>"
        assert await fetch(b, script.url) == b"<result/>"
        await b.aclose()
    assert script.connections == 2


async def test_closing_the_backend_under_a_close_delimited_read_is_an_error() -> None:
    """aclose() during a body that ends with the connection does not pass for its end."""
    stall = raw(b"HTTP/1.1 200 OK\r\n\r\n<result>", pause=2.0)
    async with serving(Script(stall)) as script:
        b = backend()
        task = asyncio.create_task(fetch(b, script.url))
        await asyncio.sleep(0.1)
        await b.aclose()
        with pytest.raises(TransportError, match="closed by this client"):
            await task


async def test_a_body_that_inflates_hugely_comes_in_bounded_pieces() -> None:
    """200 KB of gzip holding 200 MB is read piece by piece, never as one 200 MB chunk."""
    data = gzip.compress(b"\0" * 200_000_000, compresslevel=1)
    async with serving(Script(answer(data, headers="Content-Encoding: gzip\r\n"))) as script:
        b = backend()
        response = await b.send(script.url, QUERY, write=False)
        total = largest = 0
        async for chunk in response.chunks():
            total += len(chunk)
            largest = max(largest, len(chunk))
        await response.close()
        await b.aclose()
    assert total == 200_000_000
    assert largest <= PIECE


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        ("deflate", zlib.compress(b"<result/>") + b"junk"),
        ("gzip", gzip.compress(b"<result/>") + b"junk"),
    ],
    ids=["after-deflate", "after-gzip"],
)
async def test_bytes_after_the_compressed_stream_are_a_parse_error(
    coding: str, data: bytes
) -> None:
    """Trailing bytes that are not another gzip member are an error, not ignored."""
    async with serving(Script(answer(data, headers=f"Content-Encoding: {coding}\r\n"))) as script:
        b = backend()
        with pytest.raises(ParseError):
            await fetch(b, script.url)
        await b.aclose()


async def test_a_connection_and_slot_are_free_once_the_answer_is_in_before_it_is_read() -> None:
    """The whole answer in, its connection serves the next request and its slot is given
    back at once (``on_release``), while the first body is still unread; both read whole."""
    async with serving(Script(answer(b"<one/>"), answer(b"<two/>"))) as script:
        b = backend(max_connections=1)
        released: list[str] = []
        first = await b.send(
            script.url, QUERY, write=False, on_release=lambda: released.append("1")
        )
        for _ in range(100):  # the body follows the head, maybe in a later read
            if released:
                break
            await asyncio.sleep(0.01)
        assert released == ["1"]
        second = await asyncio.wait_for(
            b.send(script.url, QUERY, write=False, on_release=lambda: released.append("2")), 2
        )
        assert b"".join([c async for c in second.chunks()]) == b"<two/>"
        assert b"".join([c async for c in first.chunks()]) == b"<one/>"
        await first.close()
        await second.close()
        await b.aclose()
    assert released == ["1", "2"]  # each once, closing after changed nothing
    assert script.connections == 1


async def test_an_answer_still_arriving_keeps_its_connection_and_slot() -> None:
    """Until its last byte is in, a response holds its slot: the next request waits for it,
    then goes out on the same connection, and neither body is mixed with the other."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"
    in_two = _joined(raw(head + b"<slow>", pause=0.3), raw(b"</slow>"))
    async with serving(Script(in_two, answer(b"<next/>"))) as script:
        b = backend(max_connections=1)
        released: list[str] = []
        first = await b.send(
            script.url, QUERY, write=False, on_release=lambda: released.append("1")
        )
        waiting = asyncio.create_task(fetch(b, script.url))
        await asyncio.sleep(0.1)
        assert released == []
        assert not waiting.done()
        body = b"".join([c async for c in first.chunks()])
        await asyncio.sleep(0)  # given back a loop turn after the last byte
        assert released == ["1"]
        assert await asyncio.wait_for(waiting, 2) == b"<next/>"
        await first.close()
        await b.aclose()
    assert body == b"<slow></slow>"
    assert script.connections == 1


@pytest.mark.parametrize("how", ["closed unread", "cut off", "cancelled"])
async def test_on_release_is_called_once_however_a_request_ends(how: str) -> None:
    """Closed before its end, broken mid-body, or cancelled while waiting for its head:
    the slot is given back once, and the pool still serves the next request."""
    actions = {
        "closed unread": answer(b"<result>" + b"z" * 2_000_000 + b"</result>"),
        "cut off": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<result>", then_close=True),
        "cancelled": raw(b"", pause=2.0),
    }
    async with serving(Script(actions[how])) as script:
        b = backend(max_connections=1)
        released: list[int] = []

        async def one() -> None:
            response = await b.send(
                script.url, QUERY, write=False, on_release=lambda: released.append(1)
            )
            try:
                async for _ in response.chunks():
                    if how == "closed unread":
                        break
            finally:
                await response.close()

        task = asyncio.create_task(one())
        if how == "cancelled":
            await asyncio.sleep(0.1)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TransportError):
            await task
        assert released == [1]
        assert await asyncio.wait_for(fetch(b, script.url), 2) == b"<result/>"
        await b.aclose()


async def test_the_governor_slot_is_free_once_the_answer_is_in() -> None:
    """Through the client: a response read slowly no longer counts as in flight."""
    async with (
        serving(Script(answer(b'<result status="OK"></result>'))) as script,
        NsightClient(script.url, KEY, max_at_once=1) as client,
    ):
        async with client._transport.open("list_clients", {}) as response:
            for _ in range(100):
                if client.governor.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            assert client.governor.in_flight == 0
            assert b"".join([c async for c in response.chunks()]).startswith(b"<result")
        assert client.governor.in_flight == 0


_RETRY_OK = (
    b'<?xml version="1.0"?><result created="2024-03-18T09:25:09-06:00" status="OK">'
    b"<msg>Retrying patches: 1 Patches already applied: </msg></result>"
)
_SITES = (
    b'<?xml version="1.0"?><result created="2024-03-18T09:25:09-06:00" status="OK">'
    b"<items><site><siteid>7</siteid></site></items></result>"
)


def _then_close(body: bytes) -> Action:
    """A kept-alive 200 (no ``Connection: close``), then the server closes the connection."""
    return raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), then_close=True
    )


async def test_a_waiting_write_is_not_sent_on_a_connection_the_server_just_closed() -> None:
    """Two writes, one slot; the server closes the connection right behind the first answer.
    The waiting write goes out on a fresh connection, not onto the dying one (where it
    would end as outcome unknown). From helper-18's review."""
    async with (
        serving(Script(_then_close(_RETRY_OK), _then_close(_RETRY_OK))) as script,
        NsightClient(script.url, KEY, max_at_once=1, max_per_minute=None) as client,
    ):
        results = await asyncio.gather(
            client.patch_retry(1, [1]), client.patch_retry(2, [1]), return_exceptions=True
        )
    assert [r.retrying for r in results] == [(1,), (1,)]  # type: ignore[union-attr]
    assert script.connections == 2


async def test_a_waiting_read_is_not_sent_on_a_connection_the_server_just_closed() -> None:
    """The same with reads: each costs one request, not a broken one and a retry."""
    async with (
        serving(Script(*[_then_close(_SITES)] * 4)) as script,
        NsightClient(script.url, KEY, max_at_once=1, max_per_minute=None) as client,
    ):

        async def read(client_id: int) -> list[object]:
            return [s async for s in client.list_sites(client_id)]

        sites = await asyncio.gather(*(read(i) for i in range(1, 5)))
        assert sites == [[_site_7(client_id)] for client_id in range(1, 5)]
        assert client.calls_started == 4


def _site_7(client_id: int) -> object:
    return next(iter(parser_for("list_sites", {"clientid": str(client_id)}).feed(_SITES)))


async def test_answers_held_unread_stay_bounded_by_max_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 gathered reads of a 180 KB listing, ``max_at_once=4``: the bytes received but
    not yet parsed stay within a few answers, not one per caller (helper-18 measured
    18 MB before the bound, 0.7 MB before answers left their slot early)."""
    body = (
        b'<?xml version="1.0"?><result created="2024-03-18T09:25:09-06:00" status="OK"><items>'
        + b"".join(
            b"<site><siteid>%d</siteid><name>site %d</name></site>" % (i, i) for i in range(3000)
        )
        + b"</items></result>"
    )
    received = parsed = peak = 0
    feed, on_body = StreamParser.feed, _h1conn.Connection.on_body

    def counted_feed(self: StreamParser[object], data: bytes) -> list[object]:
        nonlocal parsed
        parsed += len(data)
        return feed(self, data)

    def counted_body(self: _h1conn.Connection, data: bytes) -> None:
        nonlocal received, peak
        received += len(data)
        peak = max(peak, received - parsed)
        on_body(self, data)

    monkeypatch.setattr(StreamParser, "feed", counted_feed)
    monkeypatch.setattr(_h1conn.Connection, "on_body", counted_body)
    async with (
        serving(Script(*[answer(body)] * 100)) as script,
        NsightClient(script.url, KEY, max_at_once=4, max_per_minute=None) as client,
    ):

        async def read(client_id: int) -> int:
            return sum([1 async for _ in client.list_sites(client_id)])

        assert await asyncio.gather(*(read(i) for i in range(1, 101))) == [3000] * 100
    assert peak < 10 * len(body), f"{peak / 1e6:.1f} MB received but not parsed"
