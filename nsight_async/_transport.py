"""The network layer: the governed request, with its status checks.

:class:`Transport` puts the key in the query string (as the API requires),
takes a turn from the :class:`~._limiter.Governor`, sends the GET through a
backend (:mod:`._backends`, where foreign exceptions are translated) and
checks the status: 429 becomes :class:`RateLimitedError`, an HTML page a
:class:`HtmlPageError`, anything else but 200 an :class:`HttpStatusError`.
The 200 body is handed over as a stream of byte chunks for the parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import threading
import time
from collections.abc import AsyncIterator, Mapping

from ._backends import Backend, RawResponse
from ._config import Server
from ._errors import (
    ConfigurationError,
    HtmlPageError,
    HttpStatusError,
    RateLimitedError,
    TransportError,
)
from ._limiter import Governor
from ._redact import Secret
from ._version import __version__

USER_AGENT = f"nsight-async/{__version__} (+https://pypi.org/project/nsight-async/)"
_HTML_SNIPPET = 2048


class Transport:
    """Sends one N-sight call at a time under the governor's limits."""

    def __init__(
        self,
        server: Server,
        api_key: Secret,
        governor: Governor,
        *,
        reads: Backend,
        writes: Backend,
    ) -> None:
        self.server = server
        self._key = api_key
        self.governor = governor
        self._reads = reads
        self._writes = writes
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop calls are made in
        self._binding = threading.Lock()

    def check_loop(self) -> None:
        """Bind to the running event loop, or raise ConfigurationError.

        Connections, semaphores and waiting calls belong to the loop they were
        made in, and each ``asyncio.run()`` starts a new loop (closing the old
        one at its end). The client goes on in a new loop when nothing of the
        old one is under way and its connections can no longer be in use:
        closed (``aclose``, ``async with``), or left open in a loop that has
        ended (they are dropped). A loop running in another thread keeps the
        client to itself.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        with self._binding:  # two threads' loops must not both take the client
            old = self._loop
            if old is not None and old is not loop:
                self._leave(old)
            self._loop = loop

    def _leave(self, old: asyncio.AbstractEventLoop) -> None:
        if old.is_running():
            raise ConfigurationError(
                "this NsightClient is in use by an event loop running in another thread: "
                "use one client per event loop"
            )
        if not self.governor.idle:
            raise ConfigurationError(
                "calls this NsightClient made in its previous event loop never ended (an "
                "async iterator of it left open when that loop stopped?): create a new client"
            )
        backends = {self._reads, self._writes}
        if not old.is_closed() and any(b.holds_connections() for b in backends):
            raise ConfigurationError(
                "this NsightClient has connections open in another event loop: close it "
                "there first (`async with NsightClient(...) as client:` in the coroutine you "
                "run), or create one client per event loop"
            )
        self.governor.rebind()
        for backend in backends:
            backend.rebind()

    def display_url(self, service: str, params: Mapping[str, str]) -> str:
        """The request URL with the key masked, for logs and messages."""
        query = "".join(f"&{k}={v}" for k, v in params.items())
        return f"{self.server.base_url}?apikey=***&service={service}{query}"

    async def aclose(self) -> None:
        """Close both backends, in the event loop they were used in (see `check_loop`)."""
        self.check_loop()
        await self._reads.aclose()
        if self._writes is not self._reads:
            await self._writes.aclose()

    @contextlib.asynccontextmanager
    async def open(
        self, service: str, params: Mapping[str, str], *, write: bool = False
    ) -> AsyncIterator[RawResponse]:
        """Send ``service`` with ``params``; yield the open 200 response.

        The call's in-flight slot is freed as soon as the whole response has
        arrived (the default backend says when; bounded by
        :meth:`Governor.arrived`), else when it is closed.

        Raises:
            TransportError: the network failed (``certainly_not_sent`` says whether
                the request can have reached the server).
            RateLimitedError: 429.
            HtmlPageError: a firewall or proxy answered an HTML page.
            HttpStatusError: any other status but 200.
        """
        self.check_loop()
        query = {"apikey": self._key.reveal(), "service": service, **params}
        backend = self._writes if write else self._reads
        await self.governor.acquire(lambda: self.display_url(service, params))
        early = False  # the slot was freed when the whole response was in

        def off_connection() -> None:  # the backend calls it at most once
            nonlocal early
            early = self.governor.arrived()

        try:
            response = await backend.send(
                self.server.base_url, query, write=write, on_release=off_connection
            )
            try:
                if response.status != 200:
                    await _raise_for_status(response, service)
                yield response
            finally:
                await response.close()
        finally:
            if early:
                self.governor.read()
            else:
                self.governor.release()


async def _raise_for_status(response: RawResponse, service: str) -> None:
    status = response.status
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        head = await _read_head(response)
    except TransportError:
        head = b""
    is_html = b"<html" in head.lower() or "html" in response.headers.get("content-type", "")
    if status == 429:
        raise RateLimitedError(
            f"{service}: the server answered 429 Too Many Requests"
            + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""),
            service=service,
            status=status,
            retry_after=retry_after,
        )
    if is_html:
        raise HtmlPageError(
            f"{service}: HTTP {status} with an HTML page (a firewall or proxy answered; "
            "it may be blocking the User-Agent or limiting the rate)",
            service=service,
            status=status,
            retry_after=retry_after,
        )
    raise HttpStatusError(
        f"{service}: unexpected HTTP status {status}",
        service=service,
        status=status,
        retry_after=retry_after,
    )


async def _read_head(response: RawResponse) -> bytes:
    head = b""
    async with contextlib.aclosing(response.chunks()) as chunks:
        async for chunk in chunks:
            head += chunk
            if len(head) >= _HTML_SNIPPET:
                break
    return head


def parse_retry_after(value: str | None) -> float | None:
    """Read ``Retry-After`` as seconds (a number or an HTTP date); ``None`` if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
