"""Pytest fixtures for testing code against the N-sight simulator.

Registered through the ``pytest11`` entry point ``nsight_async``, so installing
nsight-async makes these fixtures available everywhere:

- ``nsight_simulator``: a fresh `Simulator` over a small seeded fleet (function scope);
- ``nsight_server``: that simulator served on 127.0.0.1 (an ephemeral port) from a
  background thread with its own event loop, so it keeps answering even while the
  test's loop is busy; it exposes ``.url`` and ``.simulator``;
- ``nsight_client``: an ``NsightClient`` connected to ``nsight_server`` with
  `SIMULATOR_API_KEY` (async: needs pytest-asyncio; skipped if the client is unavailable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from nsight_async.testing._app import Simulator
from nsight_async.testing._config import SIMULATOR_API_KEY
from nsight_async.testing._fleet import SimulatedFleet
from nsight_async.testing._run import RunningServer, serve_in_thread

DEFAULT_FIXTURE_SEED = "nsight-pytest"


@pytest.fixture
def nsight_simulator() -> Simulator:
    """Return a simulator over a small seeded fleet (4 clients, 24 devices)."""
    return Simulator(SimulatedFleet(seed=DEFAULT_FIXTURE_SEED, clients=4, devices=24))


@pytest.fixture
def nsight_server(nsight_simulator: Simulator) -> Iterator[RunningServer]:
    """Serve ``nsight_simulator`` on 127.0.0.1 for the duration of the test."""
    with serve_in_thread(nsight_simulator) as server:
        yield server


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment] # optional dependency

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def nsight_client(nsight_server: RunningServer) -> AsyncIterator[Any]:
        """Yield an ``NsightClient`` connected to ``nsight_server`` with the simulator key."""
        try:
            # Imported lazily: the client is written in parallel and the plugin must load
            # without it. The ignore covers mypy runs made before it exists.
            from nsight_async import NsightClient  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            pytest.skip(f"nsight_async.NsightClient is not available: {exc}")
        async with NsightClient(nsight_server.url, api_key=SIMULATOR_API_KEY) as client:
            yield client
