"""The API key never leaks: not in exceptions, tracebacks, reprs or any log record.

One run provokes every failure kind (each simulator fault, a wrong key, a
refused connection, a client timeout), in process and over the default aiohttp
backend, with every logger captured at DEBUG, then searches everything it
collected for the key.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nsight_async import NsightClient, NsightError, RetryPolicy
from nsight_async.testing import (
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    SimulatorTransport,
)

KEY = "sk-LEAKCHECK-5d41402abc4b2a76"
NOW = datetime(2026, 11, 22, tzinfo=UTC)
RETRY = RetryPolicy(attempts=2)


class _Capture(logging.Handler):
    """Keep every formatted record, exception text included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@contextmanager
def _capture_all_logs() -> Iterator[_Capture]:
    root = logging.getLogger()
    handler = _Capture()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def _no_wait(seconds: float) -> None:
    """Return at once instead of sleeping."""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


class _Evidence:
    """Everything a user could see: messages, reprs, tracebacks, log lines."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.errors: list[BaseException] = []

    def add_error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.texts += ["".join(traceback.format_exception(exc))]
        for link in _chain(exc):
            self.texts += [str(link), repr(link), repr(link.args)]

    async def run(self, call: Callable[[], Any]) -> None:
        try:
            result = call()
            if hasattr(result, "__aiter__"):
                async for _ in result:
                    pass
            else:
                await result
        except Exception as exc:
            self.add_error(exc)


def _sim(fault: Fault | None, *, keys: tuple[str, ...] = (KEY,), **config: Any) -> Simulator:
    fleet = SimulatedFleet(seed=23, clients=3, devices=12, now=NOW)
    script = (lambda ctx: fault) if fault is not None else None
    return Simulator(fleet, api_keys=keys, config=SimulatorConfig(fault_script=script, **config))


def _calls(sim: Simulator) -> list[Callable[[NsightClient], Any]]:
    device = next(iter(sim.fleet.iter_devices())).device_id
    patch = 1
    return [
        lambda c: c.list_clients(),
        lambda c: c.list_mob_sessions(device),
        lambda c: c.patch_list_all(device),
        lambda c: c.patch_retry(device, [patch]),
        lambda c: c.call("list_sites", clientid=100),
        lambda c: c.describe("list_clients"),
    ]


@asynccontextmanager
async def _in_process(sim: Simulator, key: str = KEY) -> AsyncIterator[NsightClient]:
    async with (
        httpx.AsyncClient(transport=SimulatorTransport(sim)) as http,
        NsightClient(
            "http://127.0.0.1/", key, http_client=http, retry=RETRY, sleep=_no_wait
        ) as client,
    ):
        yield client


@asynccontextmanager
async def _over_aiohttp(sim: Simulator, key: str = KEY) -> AsyncIterator[NsightClient]:
    async with (
        SimulatorServer(sim) as server,
        NsightClient(server.url, key, retry=RETRY, sleep=_no_wait, timeout=0.2) as client,
    ):
        yield client


ALL_FAULTS = [f for f in Fault if f is not Fault.STALL] + [None]


async def _provoke_everything(evidence: _Evidence) -> None:
    for fault in ALL_FAULTS:
        sim = _sim(fault)
        async with _in_process(sim) as client:
            evidence.texts.append(repr(client))
            for call in _calls(sim):
                await evidence.run(lambda c=client, f=call: f(c))
    for fault in [Fault.RESET, Fault.RESET_AFTER, Fault.TRUNCATE, Fault.HTML403, Fault.FAIL3]:
        sim = _sim(fault)
        async with _over_aiohttp(sim) as client:
            evidence.texts.append(repr(client))
            for call in _calls(sim)[:4]:
                await evidence.run(lambda c=client, f=call: f(c))
    stalled = _sim(Fault.STALL, stall_seconds=2.0)
    async with _over_aiohttp(stalled) as client:
        await evidence.run(lambda: client.list_clients())
    for wrong in (_in_process, _over_aiohttp):
        sim = _sim(None, keys=("some-other-valid-key",))
        async with wrong(sim) as client:
            await evidence.run(lambda c=client: c.list_clients())
    refused = f"http://127.0.0.1:{_closed_port()}"
    async with NsightClient(refused, KEY, retry=RETRY, sleep=_no_wait) as client:
        evidence.texts.append(repr(client))
        await evidence.run(lambda: client.list_clients())
        await evidence.run(lambda: client.patch_retry(5, [1]))
    async with (
        httpx.AsyncClient() as http,
        NsightClient(refused, KEY, http_client=http, retry=RETRY, sleep=_no_wait) as client,
    ):
        await evidence.run(lambda: client.list_sites(100))


async def test_key_appears_in_no_exception_traceback_repr_or_log() -> None:
    """Across every failure kind the key is absent from errors, tracebacks, reprs and all logs."""
    evidence = _Evidence()
    with _capture_all_logs() as logs:
        await _provoke_everything(evidence)
    assert len(evidence.errors) > 100
    assert any(isinstance(e, NsightError) for e in evidence.errors)
    assert any("httpx" in t and "HTTP Request" in t for t in logs.texts), "httpx INFO log missing"
    leaks = [t for t in evidence.texts + logs.texts if KEY in t]
    assert leaks == [], f"{len(leaks)} leaks, first: {leaks[0][:500]}"


async def test_key_absent_from_exception_attributes() -> None:
    """No exception in a raised chain keeps the key in its attributes (such as a request URL)."""
    evidence = _Evidence()
    for fault in [Fault.RESET, Fault.TIMEOUT, Fault.TRUNCATE, Fault.REFUSE]:
        sim = _sim(fault)
        async with _in_process(sim) as client:
            await evidence.run(lambda c=client: c.list_clients())
    for fault in [Fault.RESET, Fault.TRUNCATE, Fault.STALL]:
        sim = _sim(fault, stall_seconds=2.0)
        async with _over_aiohttp(sim) as client:
            await evidence.run(lambda c=client: c.list_clients())
            await evidence.run(lambda c=client: c.patch_retry(1000000, [1]))
    leaks = []
    for error in evidence.errors:
        for link in _chain(error):
            for name, value in vars(link).items():
                shown = repr(value)
                request = getattr(link, "_request", None)
                if request is not None:
                    shown += str(request.url)
                if KEY in shown:
                    leaks.append(f"{type(link).__name__}.{name}")
    assert leaks == [], f"key kept in {sorted(set(leaks))}"


@pytest.mark.parametrize("kind", ["str", "repr", "format"])
def test_repr_of_client_hides_key(kind: str) -> None:
    """repr(), str() and format() of a client never show the key."""
    client = NsightClient("uk", KEY)
    shown = {"str": str(client), "repr": repr(client), "format": f"{client!r} {client}"}[kind]
    assert KEY not in shown
    assert KEY not in repr(vars(client))
