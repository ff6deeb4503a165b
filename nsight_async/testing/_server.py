"""Serve a `Simulator` over real HTTP on a loopback address, with aiohttp.

``async with SimulatorServer(sim) as server:`` binds an ephemeral port on
127.0.0.1 and exposes ``server.url``. Bodies are written chunk by chunk as the
simulator renders them (or from the listings it keeps, `_bodycache`). Faults
on a real socket:

- ``reset`` / ``reset-after`` / ``refuse`` → the socket is closed with
  ``SO_LINGER`` 0 (a TCP RST) before anything is written (a listening port cannot
  refuse one connection, so ``refuse`` behaves as ``reset`` here);
- ``truncate`` → headers with the full Content-Length (or chunked), part of the
  body, then the reset;
- ``stall`` → the simulator sleeps before processing and answering; if the client
  gives up first its handler is cancelled, so the request is never processed;
- ``timeout`` → sleeps ``stall_seconds`` then resets without answering.

A long body is written a chunk at a time with a turn for the other requests
between chunks, so answering them does not wait for it to end.

Only loopback addresses are accepted: the simulator never listens on a network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from types import TracebackType

from aiohttp import web

from nsight_async.testing._app import Simulator
from nsight_async.testing._faults import Fault

_DROP = frozenset({Fault.REFUSE, Fault.RESET, Fault.RESET_AFTER})


def check_loopback(host: str) -> str:
    """Return ``host`` as an IP literal if it is a loopback address, else raise ValueError."""
    literal = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        raise ValueError(
            f"the simulator binds only to loopback addresses, not {host!r}; "
            "hint: use 127.0.0.1 or ::1"
        ) from None
    if not address.is_loopback:
        raise ValueError(f"the simulator binds only to loopback addresses, not {host!r}")
    return literal


def _reset(request: web.BaseRequest) -> None:
    """Close the connection with a TCP RST (SO_LINGER 0), sending nothing more."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class SimulatorServer:
    """A real HTTP server for a simulator, bound to a loopback address.

    Args:
        simulator: The simulator that decides answers, faults and state.
        host: A loopback address (127.0.0.1 by default, or ``::1``).
        port: TCP port; 0 picks a free ephemeral port.
        shutdown_timeout: Seconds `close` waits for requests in flight (stalled ones) to end.
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.simulator = simulator
        self._shutdown_timeout = shutdown_timeout
        self.host = check_loopback(host)
        self._requested_port = port
        self._runner: web.ServerRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving."""
        # handler_cancellation: a client that gives up (timeout) cancels its stalled or
        # streaming handler, so a stalled request whose client left is never processed.
        server = web.Server(self._handle, access_log=None, handler_cancellation=True)
        self._runner = web.ServerRunner(
            server, handle_signals=False, shutdown_timeout=self._shutdown_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving and close every connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        query = dict(reversed(list(request.query.items())))  # the first repeated name wins
        answer = await self.simulator.handle(method=request.method, path=request.path, query=query)
        fault = answer.fault
        if fault is Fault.TIMEOUT:
            await self.simulator.sleep(self.simulator.config.stall_seconds)
        if fault in _DROP or fault is Fault.TIMEOUT:
            _reset(request)
            return web.Response()
        if answer.content_length is not None and fault is None:
            body = b"".join(answer.chunks)
            return web.Response(status=answer.status, headers=answer.headers, body=body)
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        if answer.content_length is not None:
            response.content_length = answer.content_length
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in answer.chunks:
            await response.write(chunk)
            # A turn for the other requests between chunks: a real server renders a
            # long listing on one worker while others answer, and on loopback a write
            # rarely waits, so without this every other answer waited for the body.
            await asyncio.sleep(0)
        if fault is Fault.TRUNCATE:
            _reset(request)
            return response
        await response.write_eof()
        return response
