"""Serve a `Simulator` in process, as an ``httpx.AsyncBaseTransport`` (no sockets).

Faults become the exceptions httpx raises on a real network:

- ``refuse`` → ``httpx.ConnectError`` (the only failure where a write surely never arrived);
- ``reset`` / ``reset-after`` → ``httpx.ReadError("[Errno 104] Connection reset by peer")``,
  what httpx raises when the loopback server resets the socket before the status line;
- ``truncate`` → the body stream yields part of the body, then raises
  ``httpx.RemoteProtocolError`` (incomplete body);
- ``timeout`` → ``httpx.ReadTimeout`` at once (fast unit tests of the client's timeout path);
- ``stall`` → the injected sleep runs for ``stall_seconds`` before the answer, so the
  client's own timeout decides.

Usage: ``httpx.AsyncClient(transport=SimulatorTransport(sim), base_url="http://sim")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

from nsight_async.testing._app import Simulator
from nsight_async.testing._faults import Fault


class _SimStream(httpx.AsyncByteStream):
    """Stream a response's chunks; raise like a dropped connection when truncated."""

    def __init__(self, chunks: Iterator[bytes], *, truncated: bool, request: httpx.Request) -> None:
        self._chunks = chunks
        self._truncated = truncated
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                yield chunk
        if self._truncated:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body",
                request=self._request,
            )

    async def aclose(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class SimulatorTransport(httpx.AsyncBaseTransport):
    """An httpx transport that answers every request from a `Simulator`.

    Args:
        simulator: The simulator that decides answers, faults and state.
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, or raise the httpx exception its fault stands for."""
        query = {k: v for k, v in reversed(request.url.params.multi_items())}
        answer = await self.simulator.handle(
            method=request.method, path=request.url.path, query=query
        )
        fault = answer.fault
        if fault is Fault.REFUSE:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault in (Fault.RESET, Fault.RESET_AFTER):
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        if fault is Fault.TIMEOUT:
            raise httpx.ReadTimeout("timed out (simulated)", request=request)
        headers = list(answer.headers)
        if answer.content_length is not None:
            headers.append(("Content-Length", str(answer.content_length)))
        else:
            headers.append(("Transfer-Encoding", "chunked"))
        stream = _SimStream(answer.chunks, truncated=fault is Fault.TRUNCATE, request=request)
        return httpx.Response(answer.status, headers=headers, stream=stream, request=request)
