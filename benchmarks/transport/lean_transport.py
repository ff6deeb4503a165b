"""Prototype: a thin httpx transport over one shared aiohttp ClientSession.

Why: ``httpx_aiohttp.AiohttpTransport`` (0.2.0) works, but per request it
builds a new ``ClientTimeout``, re-parses the URL string, wraps everything in
a contextmanager-based exception mapper, and maps *every*
``aiohttp.ClientConnectionError`` (including ``ServerDisconnectedError``, i.e.
"request sent, connection dropped") to ``httpx.ConnectTimeout`` -- which
callers usually read as "nothing was sent, safe to retry".  It also offers no
way to stop aiohttp's automatic resend of idempotent methods (see
resend_check.py / NOTES.md).

This prototype:
  * caches ClientTimeout objects, passes a pre-encoded yarl.URL,
  * maps exceptions precisely (RemoteProtocolError for a dropped connection,
    ConnectError/ConnectTimeout only for failures before anything was sent),
  * per-request opt-out of aiohttp's silent resend:
    ``client.get(url, extensions={NO_RESEND: True})`` -- implemented with
    aiohttp's *public* per-request ``middlewares=`` argument (aiohttp >= 3.12).

It is a benchmark prototype, meant to be moved into the library.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import typing

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

NO_RESEND = "nsight.no_resend"  # request extension key


class RequestMaybeSentError(aiohttp.ClientConnectionError):
    """The connection broke after the request was (possibly) sent.

    Deliberately NOT a ClientOSError/ServerDisconnectedError subclass, so
    aiohttp's retry loop (client.py ``except (ClientOSError,
    ServerDisconnectedError)``) lets it propagate instead of resending.
    """


async def no_resend_middleware(req: aiohttp.ClientRequest, handler) -> aiohttp.ClientResponse:
    try:
        return await handler(req)
    except aiohttp.ClientConnectorError:
        raise  # failed to connect: nothing sent, aiohttp does not retry these
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise RequestMaybeSentError(f"{type(exc).__name__}: {exc}") from exc


class NoCookieJar(http.cookiejar.CookieJar):
    """Cookie jar that ignores Set-Cookie (saves ~25 us/request in httpx)."""

    def extract_cookies(self, response, request) -> None:
        return None

    def add_cookie_header(self, request) -> None:
        return None


def _map_exc(exc: BaseException) -> Exception | None:
    if isinstance(exc, RequestMaybeSentError):
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timeout")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timeout")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(exc) or "timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "Server disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.ReadError(str(exc))
    if isinstance(exc, aiohttp.ClientOSError):
        return httpx.ReadError(str(exc))
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc))
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.NetworkError(str(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.PoolTimeout("timed out waiting for a connection")
    return None


class _Stream(httpx.AsyncByteStream):
    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                yield chunk
        except Exception as exc:
            mapped = _map_exc(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # returns the connection to the pool if the body was fully read,
        # closes it otherwise
        self._resp.release()


_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


class AiohttpLeanTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        ssl: typing.Any = True,
        session: aiohttp.ClientSession | None = None,
        middlewares: tuple = (),
    ) -> None:
        self._limits = limits
        self._ssl = ssl
        self._session = session
        self._own_session = session is None
        self._middlewares = tuple(middlewares)
        self._no_resend_mw = (*self._middlewares, no_resend_middleware)
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}

    def _make_session(self) -> aiohttp.ClientSession:
        lim = self._limits
        connector = aiohttp.TCPConnector(
            limit=lim.max_connections or 0,
            keepalive_timeout=lim.keepalive_expiry if lim.keepalive_expiry is not None else 15.0,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=self._middlewares,
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx owns cookies
        )
        return self._session

    def _timeout(self, t: dict | None) -> aiohttp.ClientTimeout:
        key = (t.get("connect"), t.get("read"), t.get("pool")) if t else (None, None, None)
        ct = self._timeouts.get(key)
        if ct is None:
            # aiohttp "connect" = waiting for a pool slot + connecting
            ct = aiohttp.ClientTimeout(
                total=None, connect=key[2], sock_connect=key[0], sock_read=key[1]
            )
            self._timeouts[key] = ct
        return ct

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or session.closed:
            session = self._make_session()
        ext = request.extensions
        headers = CIMultiDict(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        )
        try:
            data: typing.Any = request.content or None
        except httpx.RequestNotRead:
            data = request.stream
            headers.popall("transfer-encoding", None)  # aiohttp chunks itself
        kwargs: dict[str, typing.Any] = {}
        if ext.get(NO_RESEND):
            kwargs["middlewares"] = self._no_resend_mw
        sni = ext.get("sni_hostname")
        if sni:
            kwargs["server_hostname"] = sni
        try:
            resp = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                timeout=self._timeout(ext.get("timeout")),
                **kwargs,
            )
        except Exception as exc:
            mapped = _map_exc(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=_Stream(resp),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (resp.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
