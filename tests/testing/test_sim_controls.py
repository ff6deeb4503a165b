"""Tests of the simulator's controls: latency, rate limit, fault choice and the request log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    FaultContext,
    RateLimitMode,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SleepRecorder:
    """An injected sleep that records durations and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _sim(
    config: SimulatorConfig, clock: FakeClock | None = None, sleep: SleepRecorder | None = None
) -> Simulator:
    fleet = SimulatedFleet(seed=11, clients=3, devices=20, now=NOW)
    return Simulator(
        fleet, config=config, clock=clock or FakeClock(), sleep=sleep or SleepRecorder()
    )


async def _call(
    sim: Simulator, key: str = SIMULATOR_API_KEY, **params: str
) -> tuple[int, Mapping[str, str], bytes]:
    query = {"apikey": key, "service": "list_clients", **params}
    answer = await sim.handle(method="GET", path="/api/", query=query)
    return answer.status, dict(answer.headers), b"".join(answer.chunks)


async def test_latency_uses_injected_sleep() -> None:
    """Latency is slept with the injected sleep, per service when configured."""
    sleep = SleepRecorder()
    config = SimulatorConfig(latency=0.25, latency_by_service={"list_sites": 1.5})
    sim = _sim(config, sleep=sleep)
    await _call(sim)
    await _call(sim, service="list_sites", clientid="100")
    assert sleep.calls == [0.25, 1.5]


async def test_configure_changes_controls_at_runtime() -> None:
    """``configure`` evolves the frozen config of a running simulator."""
    sleep = SleepRecorder()
    sim = _sim(SimulatorConfig(), sleep=sleep)
    await _call(sim)
    sim.configure(latency=0.5)
    await _call(sim)
    assert sleep.calls == [0.5]


async def test_rate_limit_429_with_retry_after() -> None:
    """Calls over the limit in the window answer 429 with the seconds until a slot frees."""
    clock = FakeClock()
    sim = _sim(SimulatorConfig(rate_limit_per_minute=3), clock)
    for _ in range(3):
        assert (await _call(sim))[0] == 200
        clock.now += 10
    status, headers, _ = await _call(sim)
    assert status == 429
    assert headers["Retry-After"] == "30"
    assert sim.log.calls()[-1].rate_limited
    clock.now += 30
    assert (await _call(sim))[0] == 200


async def test_rate_limit_is_per_key() -> None:
    """Each key has its own window."""
    sim = _sim(SimulatorConfig(rate_limit_per_minute=1))
    assert (await _call(sim))[0] == 200
    assert (await _call(sim))[0] == 429
    status, _, body = await _call(sim, key="other")
    assert status == 200
    assert b"Login failed" in body


async def test_rate_window_is_configurable() -> None:
    """A 5-second window frees its slot after 5 seconds."""
    clock = FakeClock()
    sim = _sim(SimulatorConfig(rate_limit_per_minute=1, rate_window=5.0), clock)
    await _call(sim)
    assert (await _call(sim))[0] == 429
    clock.now += 5.0
    assert (await _call(sim))[0] == 200


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "retry_after"),
    [
        (RateLimitMode.HTTP429, 429, "text/html", True),
        (RateLimitMode.HTTP429_NO_RETRY_AFTER, 429, "text/html", False),
        (RateLimitMode.HTML403, 403, "text/html", False),
        (RateLimitMode.HTML503, 503, "text/html", False),
    ],
)
async def test_rate_limit_modes(
    mode: RateLimitMode, status: int, content_type: str, retry_after: bool
) -> None:
    """Each over-limit mode answers its status, an HTML page and Retry-After only for 429."""
    sim = _sim(SimulatorConfig(rate_limit_per_minute=1, rate_limit_mode=mode))
    await _call(sim)
    got, headers, body = await _call(sim)
    assert got == status
    assert headers["Content-Type"].startswith(content_type)
    assert ("Retry-After" in headers) is retry_after
    assert body.lstrip().startswith((b"<html", b"<!DOCTYPE html"))


async def test_fault_script_sequence_by_request_number() -> None:
    """A script sequence gives the fault of the Nth request; later requests are clean."""
    sim = _sim(SimulatorConfig(fault_script=[None, "http502"]))
    assert [(await _call(sim))[0] for _ in range(3)] == [200, 502, 200]


async def test_fault_script_callable_by_device() -> None:
    """A script callable can fault one device's requests only."""

    def script(context: FaultContext) -> Fault | None:
        return Fault.FAIL4 if context.device_id == "1000001" else None

    sim = _sim(SimulatorConfig(fault_script=script))
    _, _, body = await _call(sim, service="list_mob_sessions", deviceid="1000001")
    assert b"<errorcode>4</errorcode>" in body
    status, _, body = await _call(sim, service="list_mob_sessions", deviceid="1000002")
    assert status == 200
    assert b'status="OK"' in body


async def test_fault_rate_is_deterministic_from_seed() -> None:
    """The same seed and request order draw the same faults."""
    config = SimulatorConfig(fault_rate=0.5, fault_kinds=(Fault.HTTP503, Fault.FAIL3))

    async def faults() -> list[Fault | None]:
        sim = _sim(config)
        for _ in range(40):
            await _call(sim)
        return [e.fault for e in sim.log]

    first = await faults()
    assert first == await faults()
    assert {Fault.HTTP503, Fault.FAIL3, None} == set(first)


async def test_fault_services_restricts_the_draw() -> None:
    """Probabilistic faults only hit the listed services."""
    config = SimulatorConfig(
        fault_rate=1.0, fault_kinds=(Fault.HTTP500,), fault_services={"list_sites"}
    )
    sim = _sim(config)
    assert (await _call(sim))[0] == 200
    assert (await _call(sim, service="list_sites", clientid="100"))[0] == 500


def test_config_validation() -> None:
    """Invalid controls are refused when the config is built."""
    with pytest.raises(ValueError, match="fault_rate"):
        SimulatorConfig(fault_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        SimulatorConfig(latency=-1)
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        SimulatorConfig(rate_limit_per_minute=0)
    with pytest.raises(ValueError, match="not a valid"):
        SimulatorConfig(fault_kinds=("explode",))  # type: ignore[arg-type]


async def test_log_helpers() -> None:
    """The log counts calls per service and records times from the injected clock."""
    clock = FakeClock()
    sim = _sim(SimulatorConfig(), clock)
    await _call(sim)
    clock.now = 1005.0
    await _call(sim, service="list_sites", clientid="100")
    assert sim.log.count() == 2
    assert sim.log.count("list_sites") == 1
    assert [e.time for e in sim.log] == [1000.0, 1005.0]
    assert [e.n for e in sim.log.calls("list_sites")] == [1]
    sim.log.clear()
    assert len(sim.log) == 0


class RenderingClock(FakeClock):
    """A clock that moves on by ``step`` each time it is read: rendering takes time."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_a_read_is_answered_latency_after_it_arrived() -> None:
    """A read is rendered on arrival and answered ``latency`` after it: rendering time is
    inside the latency, so answers to requests that arrived together do not queue."""
    sleep = SleepRecorder()
    sim = _sim(SimulatorConfig(latency=0.25), RenderingClock(0.125), sleep)
    await _call(sim)
    # arrival read the clock once, the remaining sleep read it again: 0.125 s have gone by
    assert sleep.calls == [pytest.approx(0.125)]
    sim = _sim(SimulatorConfig(latency=0.25), RenderingClock(1.0), SleepRecorder())
    await _call(sim)
    assert sim.log.calls()[-1].status == 200  # rendering longer than the latency: no wait


async def test_a_write_waits_the_whole_latency_before_it_is_applied() -> None:
    """A write sleeps the latency first: a client that gives up during it leaves it unapplied."""
    slept: list[tuple[float, int]] = []  # (seconds, the patch's status while sleeping)

    async def sleep(seconds: float) -> None:
        slept.append((seconds, status_now()))

    sim = Simulator(
        SimulatedFleet(seed=11, clients=3, devices=20, now=NOW),
        config=SimulatorConfig(latency=0.25),
        clock=RenderingClock(0.125),
        sleep=sleep,
    )
    device = next(d for d in sim.fleet.iter_devices() if sim.patches(d.device_id))
    failed = [p.patchid for p in sim.patches(device.device_id) if p.status == 16]
    assert failed

    def status_now() -> int:
        return {p.patchid: p.status for p in sim.patches(device.device_id)}[failed[0]]

    query = {"apikey": SIMULATOR_API_KEY, "service": "patch_retry",
             "deviceid": str(device.device_id), "patchids": str(failed[0])}  # fmt: skip
    answer = await sim.handle(method="GET", path="/api/", query=query)
    b"".join(answer.chunks)
    assert slept == [(0.25, 16)]  # the whole latency, and still failed while it ran
    assert status_now() != 16
