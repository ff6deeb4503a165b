"""Tests of every fault kind on both servings: in-process transport and loopback server."""

# These tests check that every document parses with a plain XML parser, as the
# brief demands; the bodies come from our own simulator, not from a network.
# ruff: noqa: S314

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    SimulatorTransport,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SERVINGS = ("transport", "server")


class SleepRecorder:
    """An injected sleep that records durations and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _sim(script: list[Fault | None], sleep: SleepRecorder | None = None) -> Simulator:
    fleet = SimulatedFleet(seed=5, clients=4, devices=40, now=NOW)
    config = SimulatorConfig(fault_script=script, stall_seconds=7.5)
    return Simulator(fleet, config=config, sleep=sleep or SleepRecorder())


@asynccontextmanager
async def _client(sim: Simulator, serving: str) -> AsyncIterator[httpx.AsyncClient]:
    if serving == "transport":
        transport = SimulatorTransport(sim)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            yield client
        return
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.url, timeout=5.0) as client,
    ):
        yield client


def _params(**extra: object) -> dict[str, object]:
    return {"apikey": SIMULATOR_API_KEY, "service": "list_clients", **extra}


@pytest.mark.parametrize("serving", SERVINGS)
@pytest.mark.parametrize(
    ("fault", "status", "marker"),
    [
        (Fault.HTTP500, 500, b"500 Internal Server Error"),
        (Fault.HTTP502, 502, b"502 Bad Gateway"),
        (Fault.HTTP503, 503, b"503 Service"),
        (Fault.HTTP504, 504, b"504 Gateway"),
        (Fault.HTML403, 403, b"Access Denied"),
        (Fault.HTML200, 200, b"maintenance"),
    ],
)
async def test_html_pages(serving: str, fault: Fault, status: int, marker: bytes) -> None:
    """HTML faults answer an HTML page with their status code."""
    sim = _sim([fault])
    async with _client(sim, serving) as client:
        response = await client.get("/api/", params=_params())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert marker in response.content
    assert sim.log.calls()[0].fault is fault


@pytest.mark.parametrize("serving", SERVINGS)
@pytest.mark.parametrize(
    ("fault", "code"), [(Fault.FAIL3, "3"), (Fault.FAIL4, "4"), (Fault.FAIL5, "5")]
)
async def test_fail_envelopes(serving: str, fault: Fault, code: str) -> None:
    """FAIL faults answer HTTP 200 with the error envelope."""
    async with _client(_sim([fault]), serving) as client:
        response = await client.get("/api/", params=_params())
    root = ET.fromstring(response.content)
    assert response.status_code == 200
    assert root.get("status") == "FAIL"
    assert root.findtext("error/errorcode") == code


@pytest.mark.parametrize("serving", SERVINGS)
async def test_malformed_and_doctype(serving: str) -> None:
    """``malformed`` is not well-formed XML; ``doctype`` declares nested entities."""
    async with _client(_sim([Fault.MALFORMED, Fault.DOCTYPE]), serving) as client:
        malformed = await client.get("/api/", params=_params())
        doctype = await client.get("/api/", params=_params())
    with pytest.raises(ET.ParseError):
        ET.fromstring(malformed.content)
    assert b"<!DOCTYPE result [" in doctype.content
    assert b"<!ENTITY lol3" in doctype.content


@pytest.mark.parametrize("serving", SERVINGS)
async def test_429_kinds(serving: str) -> None:
    """``429`` carries Retry-After; ``429-bare`` does not."""
    async with _client(_sim([Fault.HTTP429, Fault.HTTP429_BARE]), serving) as client:
        first = await client.get("/api/", params=_params())
        second = await client.get("/api/", params=_params())
    assert first.status_code == second.status_code == 429
    assert first.headers["retry-after"] == "1"
    assert "retry-after" not in second.headers


@pytest.mark.parametrize("serving", SERVINGS)
async def test_reset_before_processing_keeps_state(serving: str) -> None:
    """``reset`` drops the connection before processing: no answer and no state change."""
    sim = _sim([Fault.RESET])
    device, failed = _failed_patch(sim)
    async with _client(sim, serving) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get("/api/", params=_retry(device, failed))
    assert _status(sim, device, failed) == 16
    entry = sim.log.patch_retry_sends()[0]
    assert entry.status is None
    assert not entry.processed


@pytest.mark.parametrize("serving", SERVINGS)
async def test_reset_after_processing_changes_state(serving: str) -> None:
    """``reset-after`` applies the write, then loses the answer."""
    sim = _sim([Fault.RESET_AFTER])
    device, failed = _failed_patch(sim)
    async with _client(sim, serving) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get("/api/", params=_retry(device, failed))
        again = await client.get("/api/", params=_retry(device, failed))
    assert _status(sim, device, failed) == 2
    assert b"Patches already applied: " + str(failed).encode() in again.content
    assert sim.log.patch_retry_applied() == [(device, failed), (device, failed)]


@pytest.mark.parametrize("serving", SERVINGS)
async def test_truncate_cuts_the_body(serving: str) -> None:
    """``truncate`` sends headers and part of the body, then the read fails."""
    sim = _sim([Fault.TRUNCATE])
    async with _client(sim, serving) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.get("/api/", params=_params())
    assert sim.log.calls()[0].status == 200


@pytest.mark.parametrize("serving", SERVINGS)
async def test_stall_sleeps_then_answers(serving: str) -> None:
    """``stall`` sleeps ``stall_seconds`` with the injected sleep, then answers normally."""
    sleep = SleepRecorder()
    async with _client(_sim([Fault.STALL], sleep), serving) as client:
        response = await client.get("/api/", params=_params())
    assert response.status_code == 200
    assert sleep.calls == [7.5]


async def test_refuse_in_process_is_connect_error() -> None:
    """``refuse`` raises httpx.ConnectError and is not counted as a send."""
    sim = _sim([Fault.REFUSE])
    device, failed = _failed_patch(sim)
    async with _client(sim, "transport") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/api/", params=_retry(device, failed))
    assert sim.log.patch_retry_sends() == []
    assert _status(sim, device, failed) == 16


async def test_timeout_in_process_raises_read_timeout() -> None:
    """``timeout`` raises httpx.ReadTimeout at once in process, without processing."""
    sim = _sim([Fault.TIMEOUT])
    async with _client(sim, "transport") as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/api/", params=_params())
    assert sim.log.calls()[0].processed is False


async def test_real_stall_trips_client_timeout_on_loopback() -> None:
    """On loopback a real stall outlasts a short client timeout (httpx.ReadTimeout)."""
    fleet = SimulatedFleet(seed=5, clients=2, devices=4, now=NOW)
    sim = Simulator(fleet, config=SimulatorConfig(fault_script=[Fault.STALL], stall_seconds=3.0))
    async with (
        SimulatorServer(sim, shutdown_timeout=0.2) as server,
        httpx.AsyncClient(base_url=server.url, timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/api/", params=_params())


def _failed_patch(sim: Simulator) -> tuple[int, int]:
    device = next(d for d in sim.fleet.iter_devices() if d.patch)
    failed = next(p.patchid for p in sim.patches(device.device_id) if p.status == 16)
    return device.device_id, failed


def _retry(device: int, patch: int) -> dict[str, object]:
    return _params(service="patch_retry", deviceid=device, patchids=patch)


def _status(sim: Simulator, device: int, patch: int) -> int:
    return {p.patchid: p.status for p in sim.patches(device)}[patch]
