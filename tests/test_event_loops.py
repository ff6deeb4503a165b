"""One client under several event loops: each ``asyncio.run()`` starts a new one.

Connections, semaphores and waiting calls belong to the loop they were made
in. A client goes on in a new loop when nothing of the old one is under way
and its connections cannot be in use any more; otherwise it says why, with a
`ConfigurationError`, and sends nothing.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import httpx
import pytest

from nsight_async import ConfigurationError, NsightClient
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorTransport,
    serve_in_thread,
)


async def _names(client: NsightClient, times: int = 1) -> list[list[str]]:
    async def names() -> list[str]:
        return [c.name async for c in client.list_clients()]

    return list(await asyncio.gather(*(names() for _ in range(times))))


def test_a_client_closed_in_its_event_loop_starts_afresh_in_the_next() -> None:
    """Closed at the end of each asyncio.run(), one client serves several, contended or not."""
    sim = Simulator()
    with serve_in_thread(sim) as server:
        client = NsightClient(server.url, SIMULATOR_API_KEY, max_at_once=2)

        async def run_and_close(times: int) -> list[list[str]]:
            async with client:
                return await _names(client, times)

        first = asyncio.run(run_and_close(5))  # 5 calls at 2 at once: they wait for slots
        assert asyncio.run(run_and_close(5)) == first
        asyncio.run(client.aclose())  # closed already: it rebinds and closes nothing
        assert client.calls_started == 10
    assert sim.log.count("list_clients") == 10


def test_a_client_left_open_in_a_loop_that_ended_goes_on_in_the_next() -> None:
    """Its connections can be neither used nor closed without their loop: dropped, and
    asyncio says they were left open when it collects them."""
    sim = Simulator()
    with serve_in_thread(sim) as server:
        client = NsightClient(server.url, SIMULATOR_API_KEY, max_at_once=2)
        first = asyncio.run(_names(client, 4))  # left open: two connections stay
        with pytest.warns(ResourceWarning) as left_open:  # noqa: PT031
            assert asyncio.run(_names(client, 4)) == first
            asyncio.run(client.aclose())
            gc.collect()
        assert any("unclosed transport" in str(w.message) for w in left_open)
    assert sim.log.count("list_clients") == 8


def test_a_client_open_in_a_loop_that_has_not_ended_says_so_and_closes_there() -> None:
    sim = Simulator()
    with serve_in_thread(sim) as server:
        client = NsightClient(server.url, SIMULATOR_API_KEY)
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(_names(client))
            with pytest.raises(ConfigurationError, match="connections open in another event"):
                asyncio.run(_names(client))
            with pytest.raises(ConfigurationError, match="connections open in another event"):
                asyncio.run(client.aclose())
            loop.run_until_complete(client.aclose())  # back in its loop: closed there
        finally:
            loop.close()

        async def names_then_close() -> list[list[str]]:
            async with client:
                return await _names(client)

        assert asyncio.run(names_then_close())
    assert sim.log.count("list_clients") == 2  # nothing was sent when it said so


def test_a_loop_running_in_another_thread_keeps_the_client_to_itself() -> None:
    """Also while its call waits for a rate-limit turn, holding the only slot."""
    sim = Simulator(
        SimulatedFleet(seed=1, clients=2, devices=40),
        config=SimulatorConfig(latency_by_service={"list_sites": 0.5}),
    )
    http = httpx.AsyncClient(transport=SimulatorTransport(sim))
    client = NsightClient(
        "http://127.0.0.1:9/api/", SIMULATOR_API_KEY, http_client=http,
        max_at_once=1, max_per_minute=60,
    )  # fmt: skip
    client_id = asyncio.run(_names(client)) and sim.fleet.clients[0].client_id
    outcome: dict[str, Any] = {}
    peak = [0]

    def sites(tag: str) -> None:
        async def count() -> int:
            return len([s async for s in client.list_sites(client_id)])

        try:
            outcome[tag] = asyncio.run(count())
        except ConfigurationError as exc:
            outcome[tag] = exc

    first = threading.Thread(target=sites, args=("first",))
    second = threading.Thread(target=sites, args=("second",))
    first.start()
    time.sleep(0.3)  # the first holds the only slot, waiting about 1 s for its turn
    assert client.governor.in_flight == 1
    second.start()
    while first.is_alive() or second.is_alive():
        peak[0] = max(peak[0], client.governor.in_flight)
        time.sleep(0.005)
    assert isinstance(outcome["first"], int)
    assert isinstance(outcome["second"], ConfigurationError)
    assert "running in another thread" in str(outcome["second"])
    assert peak[0] <= 1
    assert sim.log.count("list_sites") == 1


def test_calls_left_unfinished_in_a_stopped_loop_say_so() -> None:
    """A loop closed without finishing its async generators (asyncio.run() does) leaves
    their calls under way for ever: the client says so rather than guess."""
    sim = Simulator(SimulatedFleet(seed=1, clients=2, devices=4000))
    with serve_in_thread(sim) as server:
        client = NsightClient(server.url, SIMULATOR_API_KEY, max_at_once=2)
        kept = []

        async def first_device() -> None:
            async with client:
                clients = [c async for c in client.list_clients()]
                big = max(clients, key=lambda c: c.workstation_count or 0)
                listing = client.list_devices_at_client(big.client_id, "workstation")
                await anext(listing)
                kept.append(listing)  # left mid-body

        loop = asyncio.new_event_loop()
        loop.run_until_complete(first_device())
        loop.close()  # without loop.shutdown_asyncgens()
        with pytest.raises(ConfigurationError, match="previous event loop never ended"):
            asyncio.run(_names(client))
        kept.clear()
        gc.collect()


def test_the_rate_schedule_carries_over_to_the_next_loop() -> None:
    """The governor's schedule is in monotonic time, not the loop's: it is kept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sim = Simulator()
    http = httpx.AsyncClient(transport=SimulatorTransport(sim))
    client = NsightClient(
        "http://127.0.0.1:9/api/", SIMULATOR_API_KEY, http_client=http,
        max_per_minute=60, clock=lambda: 100.0, sleep=sleep,
    )  # fmt: skip
    asyncio.run(_names(client))
    asyncio.run(_names(client))
    assert slept == [pytest.approx(60 / 60 * 1.02)]  # the second call's turn, one interval on
    assert client.calls_started == 2
