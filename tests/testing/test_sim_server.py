"""Tests of the loopback server, the threaded and CLI runners, and body streaming."""

# These tests check that every document parses with a plain XML parser, as the
# brief demands; the bodies come from our own simulator, not from a network.
# ruff: noqa: S314

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import psutil
import pytest

from nsight_async.testing import (
    SIMULATOR_API_KEY,
    SimulatedFleet,
    Simulator,
    SimulatorServer,
    SimulatorTransport,
    serve_in_thread,
)
from nsight_async.testing._xml import CHUNK_SIZE

NOW = datetime(2026, 11, 22, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _big(sessions: int) -> Simulator:
    return Simulator(
        SimulatedFleet(seed=9, clients=2, devices=10, now=NOW, big_device_sessions=sessions)
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104 -- refused hosts
def test_refuses_non_loopback_hosts(host: str) -> None:
    """Binding anything but a loopback address is refused."""
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(Simulator(), host=host)


async def test_binds_loopback_ephemeral_port() -> None:
    """The server listens on 127.0.0.1 with an ephemeral port and answers list_clients."""
    sim = Simulator(SimulatedFleet(seed=1, clients=2, devices=6, now=NOW))
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.url) as client:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port > 0
        response = await client.get(
            "/api/", params={"apikey": SIMULATOR_API_KEY, "service": "list_clients"}
        )
    assert ET.fromstring(response.content).get("status") == "OK"


async def test_in_process_stream_is_chunked() -> None:
    """A 200,000-session body is produced in ~64 KiB chunks, never as one block."""
    sim = _big(200_000)
    params = {"apikey": SIMULATOR_API_KEY, "service": "list_mob_sessions",
              "deviceid": sim.fleet.big_device_id}  # fmt: skip
    sizes: list[int] = []
    async with (
        httpx.AsyncClient(transport=SimulatorTransport(sim), base_url="http://sim") as client,
        client.stream("GET", "/api/", params=params) as response,
    ):
        assert "content-length" not in response.headers
        async for chunk in response.aiter_raw():
            sizes.append(len(chunk))
    assert len(sizes) > 1000
    assert max(sizes) < 80 * 1024
    assert sum(sizes) > 100 * 2**20


async def test_loopback_stream_does_not_hold_the_body() -> None:
    """Over loopback a ~60 MB session list streams chunked while the process grows far less."""
    sim = _big(100_000)
    params = {"apikey": SIMULATOR_API_KEY, "service": "list_mob_sessions",
              "deviceid": sim.fleet.big_device_id}  # fmt: skip
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    peak, total, sessions, tail = before, 0, 0, b""
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        client.stream("GET", "/api/", params=params) as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        async for chunk in response.aiter_raw():
            total += len(chunk)
            sessions += (tail + chunk).count(b"<session>")  # an 8-byte tail cannot hold one
            tail = chunk[-8:]
            peak = max(peak, process.memory_info().rss)
    assert sessions == 100_000
    assert total > 60 * 10**6
    assert peak - before < 40 * 2**20


def test_serve_in_thread_answers_and_stops() -> None:
    """``serve_in_thread`` serves from its own loop and releases the port on exit."""
    sim = Simulator(SimulatedFleet(seed=1, clients=2, devices=6, now=NOW))
    with serve_in_thread(sim) as server:
        response = httpx.get(
            f"{server.url}/api/", params={"apikey": SIMULATOR_API_KEY, "service": "list_clients"}
        )
        assert response.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/", timeout=1.0)


def test_cli_prints_url_and_stops_on_sigterm() -> None:
    """``python -m nsight_async.testing`` prints its URL, answers, and exits 0 on SIGTERM."""
    command = [sys.executable, "-m", "nsight_async.testing", "--port", "0", "--devices", "20"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(
            f"{url}/api/", params={"apikey": SIMULATOR_API_KEY, "service": "list_clients"}
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_cli_refuses_non_loopback_host() -> None:
    """The CLI exits 2 when asked to bind a non-loopback address."""
    from nsight_async.testing import run_simulator

    assert run_simulator(["--host", "0.0.0.0", "--port", "0"]) == 2  # noqa: S104 -- must be refused


def test_uvloop_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve_forever`` uses uvloop's loop factory if uvloop imports, else the standard loop."""
    from nsight_async.testing import _run

    factory = _run._uvloop_factory()
    try:
        import uvloop
    except ImportError:
        assert factory is None
    else:
        assert factory is uvloop.new_event_loop

    def missing(name: str) -> object:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", missing)
    assert _run._uvloop_factory() is None


async def test_a_long_body_does_not_hold_up_other_answers() -> None:
    """A request that arrives while a long body streams is answered before that body ends."""
    events: list[str] = []

    class Watched(Simulator):
        async def handle(self, *, method: str, path: str, query: Mapping[str, str]) -> Any:
            events.append(f"{query.get('service')} arrived")
            answer = await super().handle(method=method, path=path, query=query)
            if query.get("service") == "list_mob_sessions":
                answer = attrs.evolve(answer, chunks=_noting_the_end(answer.chunks, events))
            return answer

    sim = Watched(SimulatedFleet(seed=9, clients=2, devices=10, now=NOW, big_device_sessions=3000))
    big = sim.fleet.big_device_id
    query = {"apikey": SIMULATOR_API_KEY}
    long_query = {**query, "service": "list_mob_sessions", "deviceid": big}
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.url) as client,
        client.stream("GET", "/api/", params=long_query) as long,
    ):
        small = await client.get("/api/", params={**query, "service": "list_clients"})
        body = await long.aread()
    assert small.status_code == 200
    assert len(body) > 20 * CHUNK_SIZE  # many chunks, so the other request came mid-body
    assert events.index("list_clients arrived") < events.index("list_mob_sessions ended")


def _noting_the_end(chunks: Iterator[bytes], events: list[str]) -> Iterator[bytes]:
    yield from chunks
    events.append("list_mob_sessions ended")
