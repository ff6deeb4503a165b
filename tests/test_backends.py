"""The default backend (nsight_async._h1) end to end, through NsightClient, against the simulator.

The simulator is served by ``SimulatorServer`` on 127.0.0.1 (real sockets, real
resets and truncations); the client's backoff sleep is injected so retries never
wait. Stall tests use a 0.3 s client timeout against a 5 s server stall.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from nsight_async import (
    HtmlPageError,
    NsightClient,
    RetryPolicy,
    TransportError,
    WriteOutcomeUnknownError,
)
from nsight_async._h1 import H1Backend
from nsight_async._transport import USER_AGENT
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)


class Sleeps:
    """An injected sleep that records waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Record the wait."""
        self.waits.append(seconds)


def _sim(script: Any = None, **config: Any) -> Simulator:
    fleet = SimulatedFleet(seed=22, clients=3, devices=20, now=NOW, big_device_sessions=2000)
    return Simulator(fleet, config=SimulatorConfig(fault_script=script, **config))


@asynccontextmanager
async def _served(sim: Simulator, **kw: Any) -> AsyncIterator[NsightClient]:
    kw.setdefault("sleep", Sleeps())
    async with (
        SimulatorServer(sim) as server,
        NsightClient(server.url, SIMULATOR_API_KEY, seed=3, **kw) as client,
    ):
        assert isinstance(client._transport._reads, H1Backend)
        yield client


def _failed_patch(sim: Simulator) -> tuple[int, int]:
    for device in sim.fleet.iter_devices():
        for patch in sim.patches(device.device_id):
            if patch.status == 16:
                return device.device_id, patch.patchid
    raise AssertionError("the fleet has no failed patch")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_every_method_over_the_default_backend() -> None:
    """Every service method works over the default backend against the loopback server."""
    sim = _sim()
    fleet = sim.fleet
    device_id, patch_id = _failed_patch(sim)
    big = fleet.big_device_id
    assert big is not None
    async with _served(sim) as client:
        clients = [c async for c in client.list_clients()]
        info = fleet.clients[0]
        sites = [s async for s in client.list_sites(info.client_id)]
        site = sites[0].site_id
        servers = [d async for d in client.list_servers(site)]
        stations = [d async for d in client.list_workstations(site)]
        tree = [d async for d in client.list_devices_at_client(info.client_id, "workstation")]
        patches = [p async for p in client.patch_list_all(device_id)]
        sessions = [s async for s in client.list_mob_sessions(big)]
        result = await client.patch_retry(device_id, [patch_id])
        description = await client.describe("patch_retry")
        document = await client.call("list_clients")
    assert [c.client_id for c in clients] == [c.client_id for c in fleet.clients]
    assert [s.site_id for s in sites] == list(info.site_ids)
    assert [d.device_id for d in servers + stations] == [
        d.device_id for d in fleet.devices_of(site)
    ]
    assert len(tree) == fleet.count_devices(info.client_id, "workstation")  # type: ignore[arg-type]
    assert [p.patch_id for p in patches] == [p.patchid for p in fleet.patches(device_id)]
    assert [s.session_id for s in sessions] == [s.session_id for s in fleet.sessions(big)]
    assert result.retrying == (patch_id,)
    assert description.name == "patch_retry"
    assert document["result"]["@status"] == "OK"


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.TRUNCATE, Fault.HTML403, Fault.HTTP503])
async def test_read_faults_are_retried(fault: Fault) -> None:
    """A reset, a truncated body or a firewall page on a read is retried to success."""
    sim = _sim(script=[fault])
    sleeps = Sleeps()
    async with _served(sim, sleep=sleeps) as client:
        clients = [c async for c in client.list_clients()]
    assert len(clients) == sim.fleet.n_clients
    assert len(sim.log) == 2


async def test_every_request_the_server_sees_went_through_the_governor() -> None:
    """A read reset by the server is resent by the client's own retry (counted, rate-limited),
    never silently by the backend behind the governor's back."""
    sim = _sim(script=[Fault.RESET])
    sleeps = Sleeps()
    async with _served(sim, sleep=sleeps) as client:
        [c async for c in client.list_clients()]
        started = client.calls_started
    assert len(sim.log) == 2
    assert started == len(sim.log), (
        f"the server saw {len(sim.log)} requests but the governor released {started}"
    )


async def test_truncated_session_stream_resumes_over_sockets() -> None:
    """A session list cut off mid-body on a real socket resumes with every record once."""
    sim = _sim(script=[Fault.TRUNCATE])
    big = sim.fleet.big_device_id
    assert big is not None
    async with _served(sim) as client:
        ids = [s.session_id async for s in client.list_mob_sessions(big)]
    assert ids == [s.session_id for s in sim.fleet.sessions(big)]
    assert len(sim.log) == 2


async def test_stall_times_out_and_is_retried() -> None:
    """A stalled answer hits the client's read timeout and the read is retried."""
    sim = _sim(script=[Fault.STALL], stall_seconds=5.0)
    async with _served(sim, timeout=0.3) as client:
        clients = [c async for c in client.list_clients()]
        assert client.calls_started == 2
    assert len(clients) == sim.fleet.n_clients
    # the stalled request's handler was cancelled when the client gave up, so it was
    # never processed (nor logged): only the retry reached the service
    assert len(sim.log) == 1


async def test_stall_exhausting_attempts_raises_transport_error() -> None:
    """A server that always stalls ends in a TransportError that says it timed out."""
    sim = _sim(script=[Fault.STALL] * 5, stall_seconds=5.0)
    async with _served(sim, timeout=0.2, retry=RetryPolicy(attempts=2)) as client:
        with pytest.raises(TransportError, match="timed out"):
            [c async for c in client.list_clients()]


async def test_html403_gives_up_as_html_page_error() -> None:
    """A firewall that keeps answering 403 ends in HtmlPageError after the attempts."""
    sim = _sim(script=[Fault.HTML403] * 5)
    async with _served(sim, retry=RetryPolicy(attempts=3)) as client:
        with pytest.raises(HtmlPageError):
            [c async for c in client.list_clients()]
    assert len(sim.log) == 3


@pytest.mark.parametrize("warm", [False, True], ids=["fresh-connection", "kept-alive"])
async def test_write_reset_after_is_sent_once(warm: bool) -> None:
    """A write whose connection dropped after sending is never resent, kept-alive or not."""
    sim = _sim()
    device_id, patch_id = _failed_patch(sim)
    async with _served(sim) as client:
        if warm:
            [c async for c in client.list_clients()]
        sim.configure(
            fault_script=lambda ctx: Fault.RESET_AFTER if ctx.service == "patch_retry" else None
        )
        with pytest.raises(WriteOutcomeUnknownError):
            await client.patch_retry(device_id, [patch_id])
    assert len(sim.log.patch_retry_sends()) == 1
    assert sim.log.patch_retry_applied() == [(device_id, patch_id)]


async def test_write_stall_timeout_is_outcome_unknown() -> None:
    """A write whose answer times out raises WriteOutcomeUnknownError after one send."""
    sim = _sim(script=[Fault.STALL], stall_seconds=5.0)
    device_id, patch_id = _failed_patch(sim)
    async with _served(sim, timeout=0.3) as client:
        with pytest.raises(WriteOutcomeUnknownError):
            await client.patch_retry(device_id, [patch_id])
        assert client.calls_started == 1
    assert len(sim.log.patch_retry_sends()) <= 1


async def test_connection_refused_is_certainly_not_sent() -> None:
    """A closed port on 127.0.0.1 raises TransportError marked certainly_not_sent, after retries."""
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{_closed_port()}"
    async with NsightClient(
        url, "k-refused-0123456789", sleep=sleeps, retry=RetryPolicy(attempts=3)
    ) as client:
        with pytest.raises(TransportError) as info:
            [c async for c in client.list_clients()]
        with pytest.raises(TransportError) as write_info:
            await client.patch_retry(1000001, [5])
    assert info.value.certainly_not_sent
    assert write_info.value.certainly_not_sent
    assert not isinstance(write_info.value, WriteOutcomeUnknownError)
    assert len(sleeps.waits) == 4  # two retries for the read, two for the write


async def test_the_default_backend_sends_the_user_agent() -> None:
    """The default backend sends the library's User-Agent."""
    agents: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        agents.append(request.headers.get("User-Agent", ""))
        return web.Response(body=b'<result status="OK"><items/></result>', content_type="text/xml")

    app = web.Application()
    app.router.add_get("/api/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with NsightClient(f"http://127.0.0.1:{port}", "k-ua-0123456789") as client:
            assert [c async for c in client.list_clients()] == []
    finally:
        await runner.cleanup()
    assert agents == [USER_AGENT]


async def test_aclose_closes_the_owned_connections() -> None:
    """aclose() closes the connections the client opened, and the server sees them go."""
    sim = _sim()
    async with SimulatorServer(sim) as server:
        client = NsightClient(server.url, SIMULATOR_API_KEY)
        [c async for c in client.list_clients()]
        backend = client._transport._reads
        assert isinstance(backend, H1Backend)
        (conn,) = backend._open
        assert conn.transport is not None
        await client.aclose()
        assert conn.closed
        assert conn.transport.is_closing()
        assert not backend._open
