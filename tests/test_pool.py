"""Tests for nsight_async._pool: the bounded worker pool behind the fleet crawler.

The pool is generic (no HTTP): sources are small async generators and work is
a coroutine that waits on events or zero-sleeps, so every test is fast and
bounded; a test that could hang waits with a timeout and then unblocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import PROMPT, closes_promptly

from nsight_async._pool import Passthrough, pool_map


async def numbers(n: int, pulled: list[int] | None = None) -> AsyncIterator[int]:
    """Yield 0..n-1, noting each item as it is pulled from the source."""
    for i in range(n):
        if pulled is not None:
            pulled.append(i)
        yield i
        await asyncio.sleep(0)


async def double(x: int) -> int:
    """Return twice x after one loop turn."""
    await asyncio.sleep(0)
    return 2 * x


async def collect(it: AsyncIterator[object]) -> list[object]:
    """Drain an async iterator into a list."""
    return [x async for x in it]


async def test_every_item_is_worked_once() -> None:
    """Every source item comes back exactly once, through the work function."""
    results = await collect(pool_map(numbers(500), double, workers=7))
    assert sorted(results) == [2 * i for i in range(500)]  # type: ignore[type-var]


async def test_empty_source_yields_nothing() -> None:
    """An empty source ends the pool at once, with no result."""
    assert await collect(pool_map(numbers(0), double, workers=3)) == []


async def test_results_come_in_completion_order() -> None:
    """A slow item does not hold back the items behind it."""
    release = asyncio.Event()

    async def work(x: int) -> int:
        if x == 0:
            await release.wait()
        return x

    seen: list[object] = []
    async for result in pool_map(numbers(5), work, workers=2):
        seen.append(result)
        if len(seen) == 4:
            release.set()
    assert seen == [1, 2, 3, 4, 0]


async def test_passthrough_skips_the_workers() -> None:
    """Passthrough items are yielded as they are, without calling work."""

    async def source() -> AsyncIterator[object]:
        for i in range(10):
            yield Passthrough(f"skip-{i}") if i % 2 else i

    called: list[int] = []

    async def work(x: int) -> int:
        called.append(x)
        return x

    results = await collect(pool_map(source(), work, workers=3))
    assert sorted(called) == [0, 2, 4, 6, 8]
    assert {r for r in results if isinstance(r, str)} == {f"skip-{i}" for i in (1, 3, 5, 7, 9)}
    assert len(results) == 10


async def test_never_more_than_workers_at_once() -> None:
    """At most ``workers`` calls of work run at the same time, and that many do."""
    running = peak = 0

    async def work(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return x

    await collect(pool_map(numbers(200), work, workers=8))
    assert peak == 8


async def test_source_is_read_lazily_and_stays_bounded() -> None:
    """A slow consumer keeps the source only a bounded number of items ahead (the queues)."""
    workers = 4
    pulled: list[int] = []
    consumed = 0
    ahead = 0
    async for _ in pool_map(numbers(2000, pulled), double, workers=workers):
        consumed += 1
        for _ in range(5):
            await asyncio.sleep(0)  # let the pool run as far ahead as it can
        ahead = max(ahead, len(pulled) - consumed)
    assert consumed == 2000
    # todo queue (2·workers) + results queue (4·workers) + one item per worker + one in hand
    assert ahead <= workers * 2 + workers * 4 + workers + 2


async def test_closing_early_with_a_backlog_returns_promptly() -> None:
    """Closing the pool while the source is ahead of the workers cancels them and returns.

    This is the normal state of a fleet walk: enumeration streams devices faster
    than per-device calls complete, so the work queue is full when the user stops.
    """
    started = cancelled = 0

    async def work(x: int) -> int:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return x

    gen = pool_map(numbers(1000), work, workers=2)
    async for _ in gen:
        await asyncio.sleep(0.02)  # the source fills the work queue meanwhile
        break
    assert await closes_promptly(gen), "aclose() hung: the producer blocks on a full queue"
    assert started < 20


async def test_closing_early_with_full_results_returns_promptly() -> None:
    """Closing the pool while finished results wait unread returns at once."""
    gen = pool_map(numbers(1000), double, workers=1)
    async for _ in gen:
        await asyncio.sleep(0.05)  # results and work queues fill up meanwhile
        break
    assert await closes_promptly(gen), "aclose() hung with full queues"


async def test_closing_early_with_idle_queues_cancels_workers() -> None:
    """Closing while workers are busy and queues are not full cancels the work in flight."""
    cancelled = 0
    gate = asyncio.Event()

    async def work(x: int) -> int:
        nonlocal cancelled
        if x == 0:
            return x
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return x

    gen = pool_map(numbers(3), work, workers=4)
    async for first in gen:
        assert first == 0
        for _ in range(10):
            await asyncio.sleep(0)
        break
    assert await closes_promptly(gen)
    assert cancelled == 2


async def test_work_error_is_reraised_unwrapped() -> None:
    """An exception raised by work stops the pool and comes out as itself, not a group."""

    async def work(x: int) -> int:
        if x == 3:
            raise LookupError("boom")
        return x

    with pytest.raises(LookupError, match="boom"):
        async with asyncio.timeout(PROMPT):
            await collect(pool_map(numbers(5), work, workers=2))


async def test_work_error_with_a_backlog_is_reraised() -> None:
    """A work error while the source is far ahead still ends the pool instead of hanging."""

    async def work(x: int) -> int:
        if x == 1:
            raise LookupError("boom")
        await asyncio.sleep(0.001)
        return x

    async def run() -> None:
        await collect(pool_map(numbers(10_000), work, workers=2))

    task = asyncio.ensure_future(run())
    done, _ = await asyncio.wait([task], timeout=PROMPT)
    if not done:
        for _ in range(10):
            for other in asyncio.all_tasks():
                if other is not asyncio.current_task():
                    other.cancel()
            done, _ = await asyncio.wait([task], timeout=0.2)
            if done:
                break
    assert task.done(), "the pool hung after a work error"
    assert not task.cancelled()
    with pytest.raises(LookupError, match="boom"):
        task.result()


async def test_source_error_is_reraised() -> None:
    """An exception raised by the source (e.g. list_clients failed) comes out of the pool."""

    async def source() -> AsyncIterator[int]:
        yield 1
        raise ConnectionError("listing failed")

    with pytest.raises(ConnectionError, match="listing failed"):
        async with asyncio.timeout(PROMPT):
            await collect(pool_map(source(), double, workers=3))
