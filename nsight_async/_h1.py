"""The default backend: HTTP/1.1 GETs over kept-alive asyncio connections.

Why not aiohttp (the default before this): at 100 in flight and 50 ms the
client sends about 2,000 calls a second and is bound by its own CPU, and
aiohttp's per-request layer (URL, request and response objects, connector,
timers) was the largest part of that besides parsing. Over this module the
client's CPU per request at 50 in flight fell from 0.31–0.37 ms to
0.17–0.21 ms (``python -m benchmarks.bench_client --quick``, interleaved with
the aiohttp version). The API needs only a small part of HTTP: a GET with a
query, kept-alive connections, bodies framed by Content-Length, chunks or the
end of the connection, gzip or deflate, and TLS.
Response framing is `httptools`' parser (llhttp, as in uvicorn, in ``_h1conn``); nothing here
parses HTTP by hand.

What it deliberately does not do: follow redirects (they would carry the key
elsewhere), keep cookies, use proxies, or **ever send a request twice**: a
connection that breaks after the request was written is an error with
``certainly_not_sent`` false, whatever the method, and the client's retry
policy decides what happens next.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from urllib.parse import urlsplit

from ._backends import RawResponse, encode_query, network_error
from ._h1conn import Connection
from ._inflate import Inflater

_KEEP_IDLE = 15.0  # seconds an idle connection is kept; servers close theirs at about 30+


class _Origin:
    """Where one base URL's requests go, and the fixed head of each request."""

    def __init__(self, url: str, user_agent: str) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        self.path = (parts.path or "/").encode("ascii")
        self.tail = (
            f" HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
            "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n\r\n"
        ).encode("ascii")
        self.idle: list[Connection] = []


class _H1Response:
    """One request's response; its connection is given back once the whole of it is in.

    Until then the head and body are read from the connection. Once the last
    byte has arrived (``arrived``, called from the connection's callback) the
    response keeps its head and body, and a loop turn later the connection
    goes back to the pool, its slot to the next request, and ``on_release`` is
    called: before this response is even read, so a call waiting for a slot
    is sent while the answers that came in are still being parsed. The loop
    turn lets the loop read what came after the answer first: a server that
    closes the connection right behind it (no ``Connection: close``) would
    otherwise get the waiting call written onto a dying connection, a write
    ending as outcome unknown.
    """

    def __init__(
        self,
        backend: H1Backend,
        origin: _Origin,
        conn: Connection,
        service: str,
        on_release: Callable[[], None] | None,
    ) -> None:
        self._backend = backend
        self._origin = origin
        self._conn = conn
        self._service = service
        self._on_release = on_release
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self._body: collections.deque[bytes] | None = None  # all of it, once it has arrived
        self._released = False

    def has_head(self) -> bool:
        """Whether the final head is in (kept here if the connection has moved on)."""
        return self._body is not None or self._conn.head_done

    def take_head(self) -> None:
        if self._body is None:
            self.status, self.headers = self._conn.status, self._conn.headers

    def arrived(self) -> None:
        """The whole response is in: keep it here, give the connection back a loop turn later."""
        conn = self._conn
        conn.owner = None
        self.status, self.headers, self._body = conn.status, conn.headers, conn.take_all()
        asyncio.get_running_loop().call_soon(self._release)

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._conn.owner = None
            self._backend.release(self._origin, self._conn)
            if self._on_release is not None:
                self._on_release()

    async def chunks(self) -> AsyncGenerator[bytes]:
        conn = self._conn
        coding = self.headers.get("content-encoding", "identity").strip().lower()
        inflater = Inflater(coding, self._service) if coding != "identity" else None
        while True:
            body = self._body
            if body is None:  # still arriving on the connection
                if not conn.body:
                    await conn.next_change(self._service, self._backend.timeout)
                    continue
                chunk = conn.take()
            elif body:
                chunk = body.popleft()
            else:
                if inflater is not None:
                    for piece in inflater.end():
                        yield piece
                return
            if inflater is None:
                if chunk:
                    yield chunk
                continue
            for piece in inflater.feed(chunk):
                yield piece

    async def close(self) -> None:
        self._release()  # a body not read to its end closes the connection


class H1Backend:
    """Sends GETs over a pool of kept-alive HTTP/1.1 connections (the default backend)."""

    def __init__(
        self,
        *,
        max_connections: int,
        timeout: float,
        connect_timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self._connect_timeout = connect_timeout
        self._user_agent = user_agent
        self._max = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._ssl = ssl_context
        self._origins: dict[str, _Origin] = {}
        self._open: set[Connection] = set()
        self._closed = False

    async def send(
        self,
        url: str,
        query: Mapping[str, str],
        *,
        write: bool,
        on_release: Callable[[], None] | None = None,
    ) -> RawResponse:
        service = query.get("service", "?")
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = _Origin(url, self._user_agent)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        await self._slots.acquire()
        response = None
        try:
            conn = self._idle(origin) or await self._connect(origin, service)
            assert conn.transport is not None
            conn.expecting = True
            conn.owner = response = _H1Response(self, origin, conn, service, on_release)
            conn.transport.write(
                b"GET %s?%s%s" % (origin.path, encode_query(query).encode(), origin.tail)
            )
            while not response.has_head():
                await conn.next_change(service, self.timeout)
            response.take_head()
            return response
        except BaseException:
            if response is None:
                self._slots.release()
            elif not response._released:  # else its connection has moved on, whole
                if response._body is None:  # not all in: the rest would be misread
                    response._conn._fail(ConnectionAbortedError("the request was abandoned"))
                response._release()
            raise

    def holds_connections(self) -> bool:
        return any(not conn.closed for conn in self._open)

    def rebind(self) -> None:
        """A new pool in the running loop; connections still open belong to a closed one.

        Those can neither be used nor closed without their loop: they are
        dropped, and asyncio closes their sockets when it collects them (with
        a ResourceWarning saying they were left open).
        """
        self._open.clear()
        self._closed = False
        self._slots = None
        self._origins.clear()

    def _idle(self, origin: _Origin) -> Connection | None:
        idle = origin.idle
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            fresh = now - conn.idle_since < _KEEP_IDLE
            if fresh and not conn.closed and conn.transport and not conn.transport.is_closing():
                conn._reset()
                return conn
            self._discard(conn)
        return None

    async def _connect(self, origin: _Origin, service: str) -> Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    Connection, origin.host, origin.port, ssl=context,
                    server_hostname=origin.host if context else None,
                )  # fmt: skip
        except TimeoutError as exc:
            error = network_error(service, exc, sent=False, timeout=True)
        except (OSError, ssl.SSLError) as exc:
            error = network_error(service, exc, sent=False)
        else:
            self._open.add(conn)
            return conn
        raise error  # outside the except: no chained exception

    def release(self, origin: _Origin, conn: Connection) -> None:
        """Give a connection back: kept if its response was read to the end, else closed."""
        if conn.reusable() and not self._closed:
            conn.idle_since = asyncio.get_running_loop().time()
            origin.idle.append(conn)
        else:
            self._discard(conn)
        if self._slots is not None:
            self._slots.release()

    def _discard(self, conn: Connection) -> None:
        self._open.discard(conn)
        conn._fail(ConnectionAbortedError("the connection was closed by this client"))

    async def aclose(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            origin.idle.clear()
        for conn in list(self._open):
            self._discard(conn)
        await asyncio.sleep(0)  # let the transports finish closing
