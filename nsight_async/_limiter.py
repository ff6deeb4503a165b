"""The governor: the one place that caps requests in flight and the call rate.

The rate limit is GCRA with no burst: calls are released one emission
interval apart (``60 / max_per_minute`` seconds, stretched by a small safety
margin), so a server counting calls in any sliding 60-second window never
sees more than it allows, even with network jitter at the window's edge.
Slots are reserved in arrival order before sleeping, which keeps callers
first-come first-served without a lock.

A call is in flight from taking its slot (before its rate-limit turn) until
its whole answer has arrived (the default backend says when) or it is
closed; reading its records does not hold a slot, unless ``max_at_once``
answers already wait to be read, which keeps the bodies held in memory
bounded however many callers wait (:meth:`Governor.arrived`). ``waiting``
counts the calls held back by ``max_at_once``; the client parses answers a
piece per loop turn while there are any, so the loop sends them between two
answers (``_turns``).

When the server says it is over its limit (a 429, a firewall page), the
governor pauses every caller until ``Retry-After`` has passed and stretches
the interval, recovering step by step as calls succeed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ._config import Limits

logger = logging.getLogger("nsight_async")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Spacing margin: 2% keeps R calls out of any 60 s window despite up to ~1.2 s of
#: jitter between our send times and the server's arrival times.
SAFETY_MARGIN = 0.02
_MAX_PENALTY = 8.0
_LOG_WAITS_FROM = 0.05  # seconds: shorter waits are scheduling noise, not worth a line
_PENALTY_RECOVERY = 0.25


class Governor:
    """Caps in-flight requests and the call rate for every call of one client."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(limits.max_at_once)
        per_minute = limits.max_per_minute
        self._interval = 0.0 if per_minute is None else 60.0 / per_minute * (1 + SAFETY_MARGIN)
        self._next = float("-inf")
        self._penalty = 1.0
        self.calls_started = 0
        self.in_flight = 0  # calls holding a slot (waiting for their rate turn, or sent)
        self.waiting = 0  # calls waiting for an in-flight slot (woken ones until they run)
        self.unread = 0  # calls off their slot whose answers are in and not yet read

    @property
    def idle(self) -> bool:
        """No call is waiting, in flight or unread."""
        return not (self.in_flight or self.waiting or self.unread)

    def rebind(self) -> None:
        """Wait for slots in the running event loop from now on (only when :attr:`idle`).

        The counts and the rate-limit schedule carry on: they are not the loop's.
        """
        assert self.idle, "rebind() with calls under way"
        self._slots = asyncio.Semaphore(self.limits.max_at_once)

    @property
    def interval(self) -> float:
        """Seconds between two calls right now (0 when there is no rate limit)."""
        return self._interval * self._penalty

    async def acquire(self, what: str | Callable[[], str] = "call") -> None:
        """Wait for an in-flight slot, then for this call's turn under the rate limit."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            wait = slot - now
            if wait > 0:
                if wait >= _LOG_WAITS_FROM:
                    name = what() if callable(what) else what
                    logger.debug("rate limit: waiting %.2f s for the turn of %s", wait, name)
                await self._sleep(wait)
        except BaseException:
            self.release()
            raise
        self.calls_started += 1

    def release(self) -> None:
        """Give back the in-flight slot taken by :meth:`acquire`."""
        self.in_flight -= 1
        self._slots.release()

    def arrived(self) -> bool:
        """A call's whole answer is in, not yet read: free its slot now, unless
        ``max_at_once`` answers already wait to be read (it then keeps the slot
        until :meth:`release`). Whether it was freed: if so, end the call with
        :meth:`read`, not :meth:`release`."""
        if self.unread >= self.limits.max_at_once:
            return False
        self.unread += 1
        self.release()
        return True

    def read(self) -> None:
        """A call whose slot :meth:`arrived` freed has been read (or dropped)."""
        self.unread -= 1

    def succeeded(self) -> None:
        """Note a successful call: a stretched interval recovers a step."""
        if self._penalty > 1.0:
            self._penalty = max(1.0, self._penalty - _PENALTY_RECOVERY)

    def over_limit(self, retry_after: float | None) -> None:
        """The server said it is over its limit: pause everyone, then go slower."""
        now = self._clock()
        pause = retry_after if retry_after is not None else max(self.interval * 2, 1.0)
        self._next = max(self._next, now + pause)
        self._penalty = min(_MAX_PENALTY, self._penalty * 2)
        logger.warning(
            "server over its rate limit: pausing all calls %.1f s, then one call every %.2f s",
            pause,
            self.interval,
        )
