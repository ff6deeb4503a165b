"""Tests for nsight_async._limiter (the Governor) and the governance it gives NsightClient.

Time is virtual: :class:`VirtualTime` parks every ``sleep`` on a heap and its
driver advances the clock to the earliest wake-up once every task is blocked,
so minutes of rate limiting run in milliseconds and nothing really waits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import respx

from nsight_async import Limits, NsightClient, RetryPolicy
from nsight_async._limiter import SAFETY_MARGIN, Governor
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorTransport,
)

T = TypeVar("T")
URL = "http://127.0.0.1:9/api/"
LIST_CLIENTS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<result created="2024-03-18T09:20:00-06:00" '
    b'host="h" status="OK"><items><client><name>Acme</name><clientid>1</clientid></client>'
    b"</items></result>\n"
)
#: Zero-sleeps the driver yields between wake-ups: far more loop turns than one
#: in-process request needs to reach its next wait.
_SETTLE = 40


class VirtualTime:
    """A fake clock and an async sleep that advances it, for tests that never really wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock(self) -> float:
        """Return the virtual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Park the caller until the virtual clock reaches now + seconds."""
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0.0, seconds), self._seq, future))
        await future

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Drive ``awaitable`` to completion, jumping the clock whenever everyone sleeps."""
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            for _ in range(_SETTLE):
                await asyncio.sleep(0)
                if task.done():
                    break
            if task.done():
                break
            if not self._heap:
                await asyncio.sleep(0.001)  # waiting on something outside virtual time
                continue
            when, _, future = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
        return task.result()


def max_in_any_window(times: list[float], window: float = 60.0) -> int:
    """Return the most calls any sliding window (t - window, t] holds."""
    ordered = sorted(times)
    start = best = 0
    for i, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, i - start + 1)
    return best


class JitterTransport(SimulatorTransport):
    """The simulator's transport with a random network delay before each request arrives."""

    def __init__(self, sim: Simulator, vt: VirtualTime, *, jitter: float, seed: int) -> None:
        super().__init__(sim)
        self._vt = vt
        self._jitter = jitter
        self._rng = random.Random(seed)
        self.released: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the release time, delay by up to ``jitter`` seconds, then answer."""
        self.released.append(self._vt.now)
        await self._vt.sleep(self._rng.uniform(0.0, self._jitter))
        return await super().handle_async_request(request)


async def _all(n: int, call: Callable[[], Awaitable[Any]]) -> list[Any]:
    return await asyncio.gather(*(call() for _ in range(n)))


# -- the Governor alone -------------------------------------------------------------


def test_interval_is_evenly_spaced_with_margin() -> None:
    """The emission interval is 60 / max_per_minute, stretched by the safety margin."""
    governor = Governor(Limits(max_per_minute=60))
    assert governor.interval == pytest.approx(1.0 * (1 + SAFETY_MARGIN))
    assert Governor(Limits(max_per_minute=None)).interval == 0.0


async def test_first_call_does_not_wait_and_later_ones_are_spaced() -> None:
    """The first call goes at once; the next ones are released one interval apart, in order."""
    vt = VirtualTime()
    governor = Governor(Limits(max_at_once=50, max_per_minute=120), clock=vt.clock, sleep=vt.sleep)
    released: list[float] = []

    async def one() -> None:
        await governor.acquire()
        released.append(vt.now)
        governor.release()

    await vt.run(_all(20, one))
    gaps = [b - a for a, b in itertools.pairwise(released)]
    assert released[0] == 0.0
    assert all(g == pytest.approx(governor.interval) for g in gaps)


async def test_max_at_once_caps_in_flight() -> None:
    """No more than max_at_once calls are ever in flight together."""
    vt = VirtualTime()
    governor = Governor(Limits(max_at_once=3, max_per_minute=None), clock=vt.clock, sleep=vt.sleep)
    peak = 0

    async def one() -> None:
        nonlocal peak
        await governor.acquire()
        peak = max(peak, governor.in_flight)
        await vt.sleep(1.0)
        governor.release()

    await vt.run(_all(12, one))
    assert peak == 3
    assert vt.now == pytest.approx(4.0)
    assert governor.calls_started == 12


async def test_waiting_counts_the_calls_held_back_by_max_at_once() -> None:
    """``waiting`` counts callers waiting for an in-flight slot, cancelled ones not at all."""
    governor = Governor(Limits(max_at_once=2, max_per_minute=None))
    await governor.acquire()
    await governor.acquire()
    waiters = [asyncio.ensure_future(governor.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert governor.waiting == 3
    waiters[2].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiters[2]
    assert governor.waiting == 2
    governor.release()
    assert governor.waiting == 2  # woken, not yet run: its call has not gone out
    await waiters[0]
    assert governor.waiting == 1
    governor.release()
    await waiters[1]
    assert (governor.waiting, governor.in_flight) == (0, 2)


async def test_answers_free_their_slot_early_up_to_max_at_once_unread() -> None:
    """``arrived`` frees a slot before the answer is read, while fewer than
    ``max_at_once`` answers wait unread; past that the call keeps its slot."""
    governor = Governor(Limits(max_at_once=2, max_per_minute=None))
    await governor.acquire()
    await governor.acquire()
    assert governor.arrived()
    assert governor.arrived()
    assert (governor.in_flight, governor.unread) == (0, 2)
    await governor.acquire()
    await governor.acquire()
    assert not governor.arrived()  # two answers wait unread: this one keeps its slot
    assert (governor.in_flight, governor.unread) == (2, 2)
    governor.read()
    assert governor.arrived()
    governor.release()
    governor.read()
    governor.read()
    assert (governor.in_flight, governor.unread) == (0, 0)
    assert not governor._slots.locked()


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    """A caller cancelled while waiting for its turn releases its in-flight slot."""
    vt = VirtualTime()
    governor = Governor(Limits(max_at_once=1, max_per_minute=1), clock=vt.clock, sleep=vt.sleep)
    await governor.acquire()
    governor.release()
    waiter = asyncio.ensure_future(governor.acquire())
    for _ in range(5):
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert governor.in_flight == 0
    assert not governor._slots.locked()


async def test_over_limit_pauses_everyone_and_stretches_interval() -> None:
    """over_limit() delays the next turn past Retry-After and doubles the interval for a while."""
    vt = VirtualTime()
    governor = Governor(Limits(max_per_minute=60), clock=vt.clock, sleep=vt.sleep)
    base = governor.interval
    governor.over_limit(10.0)
    assert governor.interval == pytest.approx(2 * base)

    async def one() -> float:
        await governor.acquire()
        governor.release()
        return vt.now

    assert await vt.run(one()) == pytest.approx(10.0)
    for _ in range(4):
        governor.succeeded()
    assert governor.interval == pytest.approx(base)


# -- governance through the client, against the simulator ----------------------------


@pytest.mark.parametrize(("rate", "max_at_once"), [(60, 10), (60, 200), (100, 50)])
async def test_rate_holds_in_every_sliding_window_with_200_callers(
    rate: int, max_at_once: int
) -> None:
    """200 concurrent callers never put over R calls in any 60 s window, yet get >= 95% of R."""
    vt = VirtualTime()
    sim = Simulator(
        SimulatedFleet(seed=3, clients=3, devices=10),
        config=SimulatorConfig(rate_limit_per_minute=rate),
        clock=vt.clock,
        sleep=vt.sleep,
    )
    transport = JitterTransport(sim, vt, jitter=1.0, seed=rate)
    async with httpx.AsyncClient(transport=transport) as http:
        client = NsightClient(
            "http://127.0.0.1/",
            SIMULATOR_API_KEY,
            http_client=http,
            max_at_once=max_at_once,
            max_per_minute=rate,
            clock=vt.clock,
            sleep=vt.sleep,
        )

        async def one() -> int:
            return len([c async for c in client.list_clients()])

        counts = await vt.run(_all(200, one))
    arrivals = [e.time for e in sim.log]
    assert counts == [3] * 200
    assert not [e for e in sim.log if e.rate_limited], "the server answered over-limit"
    assert len(arrivals) == 200
    assert max_in_any_window(arrivals) <= rate
    assert max_in_any_window(transport.released) <= rate
    achieved = (len(arrivals) - 1) / (max(arrivals) - min(arrivals)) * 60.0
    assert achieved >= 0.95 * rate


async def test_no_burst_at_start() -> None:
    """The first calls are spaced one interval apart: there is no initial burst of R calls."""
    vt = VirtualTime()
    sim = Simulator(SimulatedFleet(seed=3, clients=3, devices=10), clock=vt.clock, sleep=vt.sleep)
    transport = JitterTransport(sim, vt, jitter=0.0, seed=0)
    async with httpx.AsyncClient(transport=transport) as http:
        client = NsightClient(
            "https://www.systemmonitor.co.uk",
            SIMULATOR_API_KEY,
            http_client=http,
            max_at_once=100,
            clock=vt.clock,
            sleep=vt.sleep,
        )
        assert client.limits.max_per_minute == 60

        async def one() -> None:
            async for _ in client.list_clients():
                pass

        await vt.run(_all(30, one))
    released = transport.released
    gaps = [b - a for a, b in itertools.pairwise(released)]
    assert min(gaps) >= 1.0
    assert sum(1 for t in released if t < 10.0) <= 10


async def test_sim_rate_limit_slows_shared_limiter() -> None:
    """When the server answers 429 (over its window), every caller backs off and all succeed."""
    vt = VirtualTime()
    sim = Simulator(
        SimulatedFleet(seed=3, clients=3, devices=10),
        config=SimulatorConfig(rate_limit_per_minute=10),
        clock=vt.clock,
        sleep=vt.sleep,
    )
    async with httpx.AsyncClient(transport=SimulatorTransport(sim)) as http:
        client = NsightClient(
            "http://127.0.0.1/",
            SIMULATOR_API_KEY,
            http_client=http,
            max_at_once=20,
            max_per_minute=None,  # misconfigured: only the server's 429s hold it back
            retry=RetryPolicy(attempts=10, timeout=None),
            clock=vt.clock,
            sleep=vt.sleep,
            seed=1,
        )

        async def one() -> int:
            return len([c async for c in client.list_clients()])

        counts = await vt.run(_all(20, one))
    limited = [e for e in sim.log if e.rate_limited]
    assert counts == [3] * 20
    assert len(limited) < 20, "each caller hammered the server instead of pausing"


@respx.mock(assert_all_called=False)
async def test_429_retry_after_pauses_other_callers(respx_mock: respx.MockRouter) -> None:
    """A 429 with Retry-After 5 seen by one caller keeps every other caller from sending for 5 s."""
    vt = VirtualTime()
    sent: list[tuple[float, str]] = []
    answers = iter([httpx.Response(429, headers={"Retry-After": "5"}, text="slow down")])

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append((vt.now, request.url.params["service"]))
        return next(answers, httpx.Response(200, content=LIST_CLIENTS))

    respx_mock.get(URL).mock(side_effect=respond)
    async with httpx.AsyncClient() as http:
        client = NsightClient(
            URL, "k-1234567890", http_client=http, clock=vt.clock, sleep=vt.sleep, seed=1
        )

        async def first() -> None:
            async for _ in client.list_clients():
                pass

        async def later() -> None:
            await vt.sleep(1.0)
            async for _ in client.list_clients():
                pass

        await vt.run(asyncio.gather(first(), later()))
    assert sent[0][0] == 0.0
    assert all(t >= 5.0 for t, _ in sent[1:])
    assert len(sent) == 3


@respx.mock(assert_all_called=False)
async def test_shared_pause_respects_max_retry_after(respx_mock: respx.MockRouter) -> None:
    """A huge Retry-After is capped by RetryPolicy.max_retry_after for the shared pause too."""
    vt = VirtualTime()
    sent: list[float] = []
    answers = iter([httpx.Response(429, headers={"Retry-After": "3600"}, text="slow down")])

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append(vt.now)
        return next(answers, httpx.Response(200, content=LIST_CLIENTS))

    respx_mock.get(URL).mock(side_effect=respond)
    async with httpx.AsyncClient() as http:
        client = NsightClient(
            URL,
            "k-1234567890",
            http_client=http,
            retry=RetryPolicy(max_retry_after=10.0),
            clock=vt.clock,
            sleep=vt.sleep,
        )
        await vt.run(_drain(client))
    assert len(sent) == 2
    assert sent[1] <= 10.0 + 1e-6, f"retried after {sent[1]:.0f} s, not within the 10 s cap"


async def _drain(client: NsightClient) -> None:
    async for _ in client.list_clients():
        pass


def test_window_helper_counts_half_open_windows() -> None:
    """The sliding-window helper counts (t - 60, t], like the simulator's limiter."""
    assert max_in_any_window([0.0, 60.0]) == 1
    assert max_in_any_window([0.0, 59.9]) == 2
    assert max_in_any_window([float(i) for i in range(120)]) == 60
    assert math.isclose(max_in_any_window([]), 0)
