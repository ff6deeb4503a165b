"""Time you control, for tests of rate limits, retries and timeouts that never really wait.

Pass ``clock=`` and ``sleep=`` of one of these to both the :class:`Simulator`
and the :class:`~nsight_async.NsightClient`:

- :class:`InstantTime`: every sleep returns at once and moves the clock on;
  enough for retry back-off and ``Retry-After``.
- :class:`VirtualTime`: sleepers wait their turn on a heap, and
  :meth:`VirtualTime.run` jumps the clock to the next wake-up whenever every
  task is asleep, so concurrent callers interleave as they would in real time
  (what a rate-limit test needs).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: Event-loop turns to let tasks settle before deciding that everyone sleeps.
_SETTLE = 40


class InstantTime:
    """A fake clock whose ``sleep`` advances it at once."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        """Return the fake time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait, jump the clock forward and yield once."""
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class VirtualTime:
    """A virtual clock: sleepers park on a heap and :meth:`run` jumps to the next wake-up."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock(self) -> float:
        """Return the virtual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Park the caller until the virtual clock reaches now + seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0.0, seconds), self._seq, future))
        await future

    async def run(self, awaitable: Awaitable[T], *, max_wakeups: int = 1_000_000) -> T:
        """Drive ``awaitable`` to completion, jumping the clock whenever everyone sleeps."""
        task = asyncio.ensure_future(awaitable)
        for _ in range(max_wakeups):  # bounded: a runaway test fails instead of spinning
            for _ in range(_SETTLE):
                await asyncio.sleep(0)
                if task.done():
                    return task.result()
            if not self._heap:
                await asyncio.sleep(0.001)  # real I/O in flight: give it a moment
                continue
            when, _, future = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
        task.cancel()
        raise RuntimeError(f"virtual time ran past {max_wakeups} wake-ups")
