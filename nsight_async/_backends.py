"""HTTP backends: the interface, and any ``httpx.AsyncClient`` the caller passes.

Each backend sends one GET and returns a :class:`RawResponse`, translating its
library's exceptions into :class:`~._errors.TransportError` with
``certainly_not_sent`` set only when the request cannot have left this
machine (the connection was never made). The default backend is
:class:`~._h1.H1Backend`.

Why not httpx by default: measured here (``benchmarks/transport/NOTES.md``),
httpx's default pool spent 28–74× aiohttp's CPU per request at 50 in flight
(quadratic bookkeeping in httpcore's pool), and httpx's own per-request layer
costs about as much as a whole aiohttp request. Callers who need httpx (mocks,
custom transports, the simulator's in-process transport) pass an
``httpx.AsyncClient``; httpcore never resends a request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Protocol
from urllib.parse import quote

import httpx

from ._errors import ConfigurationError, NsightError, ParseError, TransportError
from ._redact import redact, scrub_exception


class RawResponse(Protocol):
    """A response whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]

    def chunks(self) -> AsyncGenerator[bytes]:
        """Yield the body's bytes as they arrive."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class Backend(Protocol):
    """Sends one GET request."""

    async def send(
        self,
        url: str,
        query: Mapping[str, str],
        *,
        write: bool,
        on_release: Callable[[], None] | None = None,
    ) -> RawResponse:
        """Send ``GET url?query``; raise :class:`TransportError` if no response came.

        ``on_release``, if the backend can tell, is called once when the request
        stops needing its connection (its whole response has arrived, before
        the body is read); the caller frees its own slot then, or at ``close``.
        """
        ...

    async def aclose(self) -> None:
        """Close what the backend owns."""
        ...

    def holds_connections(self) -> bool:
        """Whether connections it opened are still open (they belong to their event loop)."""
        ...

    def rebind(self) -> None:
        """Go on in the running event loop (its previous loop is closed, or holds nothing)."""
        ...


def network_error(
    service: str, exc: BaseException, *, sent: bool, timeout: bool = False
) -> TransportError:
    """Translate a library's network exception; ``sent``: the request may have left."""
    kind = type(exc).__name__
    if timeout:
        what = "timed out waiting for the server" if sent else "timed out connecting"
    else:
        what = "lost the connection" if sent else "could not connect"
    scrub_exception(exc)
    detail = redact(str(exc)) or kind
    return TransportError(
        f"{service}: {what} ({kind}: {detail})", service=service, certainly_not_sent=not sent
    )


_PLAIN = re.compile(r"[A-Za-z0-9_.,\-]*")


@functools.lru_cache(maxsize=64)
def _quoted(value: str) -> str:
    return quote(value, safe="")


def encode_query(query: Mapping[str, str]) -> str:
    """Encode a query string; ids, names and comma lists (the usual values) pass as they are.

    ``urlencode`` cost about a tenth of the client's CPU per small request; the
    key, the one value that is the same on every call, is quoted once and cached.
    """
    return "&".join(f"{k}={v if _PLAIN.fullmatch(v) else _quoted(v)}" for k, v in query.items())


# -- httpx ---------------------------------------------------------------------


class _HttpxResponse:
    def __init__(self, response: httpx.Response, service: str) -> None:
        self._response = response
        self._service = service
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def chunks(self) -> AsyncGenerator[bytes]:
        stream = self._response.aiter_bytes()
        while True:
            error: NsightError
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except httpx.DecodingError as exc:
                error = ParseError(
                    f"{self._service}: the body could not be decoded ({type(exc).__name__})",
                    service=self._service,
                )
            except httpx.HTTPError as exc:
                timeout = isinstance(exc, httpx.TimeoutException)
                error = network_error(self._service, exc, sent=True, timeout=timeout)
            else:
                yield chunk
                continue
            raise error  # outside the except: httpx exceptions carry the URL with the key

    async def close(self) -> None:
        await self._response.aclose()


class HttpxBackend:
    """Sends through an ``httpx.AsyncClient`` (the caller's, or one for writes)."""

    def __init__(self, client: httpx.AsyncClient, *, user_agent: str, owned: bool) -> None:
        self._client = client
        self._headers = {"User-Agent": user_agent}
        self._owned = owned

    async def send(
        self,
        url: str,
        query: Mapping[str, str],
        *,
        write: bool,
        on_release: Callable[[], None] | None = None,
    ) -> RawResponse:
        service = query.get("service", "?")  # on_release: httpx does not say when a body is in
        try:
            request = self._client.build_request("GET", url, params=query, headers=self._headers)
            # Never follow a redirect: it would re-send the key (and a write) elsewhere.
            response = await self._client.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            error = network_error(service, exc, sent=False, timeout="Timeout" in type(exc).__name__)
        except httpx.HTTPError as exc:
            timeout = isinstance(exc, httpx.TimeoutException)
            error = network_error(service, exc, sent=True, timeout=timeout)
        else:
            return _HttpxResponse(response, service)
        raise error  # outside the except: httpx exceptions carry the URL with the key

    def check_write_safe(self) -> None:
        """Refuse transports known to resend a GET or to misreport a dropped write."""
        transport = getattr(self._client, "_transport", None)
        module = type(transport).__module__ if transport is not None else ""
        if module.startswith("httpx_aiohttp"):
            raise ConfigurationError(
                "this httpx client uses httpx_aiohttp, which lets aiohttp resend a GET and "
                "reports a dropped request as a connect timeout: writes through it could be "
                "sent twice. Pass a write_client on httpx's default transport."
            )

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()

    def holds_connections(self) -> bool:
        return False  # an http_client passed in follows its owner's rules

    def rebind(self) -> None:
        pass
