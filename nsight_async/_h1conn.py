"""One HTTP/1.1 connection of the default backend (``_h1``): framing, waiting, failing.

``Connection`` is the asyncio protocol: ``httptools`` (llhttp) frames each
response into a status, headers and queued body chunks; a request waits on it
for the next change (head, body, end, error) with a read timeout; reading
pauses while too much body waits to be taken. When a response ends, its
``owner`` (the backend's response object) is told, so the connection can go
back to the pool before the body is read. Pooling, requests and responses
are ``_h1``'s.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol, cast

import httptools

from ._backends import network_error
from ._errors import TransportError
from ._redact import redact

PAUSE_AT = 1 << 18  # bytes of body read but not yet taken before reading pauses


class Owner(Protocol):
    """The request whose response a connection is reading: told when it has all arrived."""

    def arrived(self) -> None: ...


class _OutOfStep(Exception):
    """The server sent something no request asked for, or framing this client cannot read."""


class Connection(asyncio.Protocol):
    """One connection: parses responses into a status, headers and queued body chunks."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.owner: Owner | None = None  # the request whose response is arriving
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.keep_alive = False
        self.done = False
        self.until_close = False  # the body ends when the connection does
        self.expecting = False  # a request was written and its final response has not ended
        self.error: BaseException | None = None
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not an isinstance check: uvloop's transports do not derive from asyncio's
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
        if self.buffered > PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        closed_here = self.closed  # our own close() ends no body
        self.closed = True
        if (
            self.head_done
            and self.until_close
            and not self.done
            and exc is None
            and not closed_here
        ):
            self.on_message_complete()
        elif not self.done:
            self._fail(exc or ConnectionResetError("the server closed the connection"))

    # -- httptools callbacks ------------------------------------------------
    def on_message_begin(self) -> None:
        if not self.expecting:  # bytes after the response, or while idle: the stream is out of step
            raise _OutOfStep("the server sent a response no request asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (100 Continue, 103 Early Hints): skipped
            self.headers.clear()
            return
        self.status = status
        headers = self.headers
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            raise _OutOfStep(f"unsupported Transfer-Encoding {coding[:40]!r}")
        self.until_close = (
            "content-length" not in headers
            and "transfer-encoding" not in headers
            and status not in (204, 304)
        )
        self.keep_alive = self.parser.should_keep_alive()  # only valid until the message ends
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done:  # the end of an interim response
            return
        self.done = True
        self.expecting = False
        self._wake()
        owner = self.owner
        if owner is not None:
            owner.arrived()

    # -- the request side ---------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self.error is None and not self.done:
            self.error = exc
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # no TLS close_notify exchange, no flush: the socket goes now
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed and not self.body

    async def next_change(self, service: str, seconds: float) -> None:
        """Wait for the head, body, end or an error; a TransportError if it broke or timed out."""
        if self.error is not None:
            raise _broken(service, self.error)
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        except TimeoutError as exc:
            self._fail(exc)
            raise network_error(service, exc, sent=True, timeout=True) from None
        finally:
            timer.cancel()
            if self.waiter is waiter:  # not the next request's, if the connection moved on
                self.waiter = None

    def take(self) -> bytes:
        """The next body chunk; reading resumes once half the pause threshold is taken."""
        chunk = self.body.popleft()
        self.buffered -= len(chunk)
        if self.buffered < PAUSE_AT // 2:
            self._resume()
        return chunk

    def take_all(self) -> collections.deque[bytes]:
        """The whole body that arrived, for the response to keep; reading resumes."""
        body, self.body, self.buffered = self.body, collections.deque(), 0
        self._resume()
        return body

    def _resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()


def _broken(service: str, exc: BaseException) -> TransportError:
    """The error for a connection that broke or answered nonsense after the request was sent."""
    if isinstance(exc, httptools.HttpParserError) and isinstance(exc.__context__, _OutOfStep):
        exc = exc.__context__
    if isinstance(exc, (httptools.HttpParserError, _OutOfStep)):
        return TransportError(
            f"{service}: the server answered something that is not HTTP/1.1 "
            f"({type(exc).__name__}: {redact(str(exc))[:200]})",
            service=service,
            certainly_not_sent=False,
        )
    return network_error(service, exc, sent=True)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no data from the server within the read timeout"))
