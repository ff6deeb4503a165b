"""Connect an :class:`~nsight_async.NsightClient` to a simulator in process (no sockets)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from nsight_async.testing._app import Simulator
from nsight_async.testing._config import SIMULATOR_API_KEY
from nsight_async.testing._transport import SimulatorTransport


@contextlib.asynccontextmanager
async def in_process_client(
    simulator: Simulator, *, api_key: str = SIMULATOR_API_KEY, **settings: Any
) -> AsyncIterator[Any]:
    """Yield an ``NsightClient`` whose calls go straight to ``simulator``.

    ``settings`` are passed to ``NsightClient`` (limits, ``retry``, ``clock``,
    ``sleep``, …); ``max_at_once`` defaults to 10.
    """
    from nsight_async import NsightClient  # the client imports nothing from here

    settings.setdefault("max_at_once", 10)
    async with (
        httpx.AsyncClient(transport=SimulatorTransport(simulator)) as http,
        NsightClient("http://127.0.0.1", api_key, http_client=http, **settings) as client,
    ):
        yield client
