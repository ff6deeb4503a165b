"""Where the latency-bound audit's time goes beyond the ideal, from its in-flight slots.

    python -m benchmarks.timeline                    # simulator, 2 clients, 3 audits
    python -m benchmarks.timeline --clients 40 --server pre --audits 5

The audit of ``bench_latency`` (10,000 devices, 100 in flight, 50 ms latency,
no rate limit), after one audit the server answers first, as there. The
client's governor is watched: each call holds a slot from the moment it may
go until its answer is in. With K slots, wall × K = the time slots were held
+ the time they were free, so the ratio to the ideal (calls × latency ÷ K)
splits exactly into

- **1**, the latency itself;
- **held too long**: each call's slot time beyond the latency (the server
  answering late, the client reading late), summed;
- **free at the start**: slots free until K calls are first in flight (the
  walk's first two round trips, then the ramp to K);
- **free in the middle** (a freed slot not yet taken again);
- **free at the end** (after the last call went out).

It answered the question "is the server or the client late?" in session 8:
the first hundred session calls waited for the simulator's re-rendering of
the listings (see ``nsight_async.testing._services.BodyCache``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nsight_async import NsightClient, backup_audit
from nsight_async.testing import SIMULATOR_API_KEY

from ._simproc import simulator_process
from .bench_latency import DEVICES, IN_FLIGHT, LATENCY


async def _watched_audit(url: str) -> dict[str, Any]:
    """One audit; the times its calls took and freed their slots."""
    taken: list[float] = []
    freed: list[float] = []
    clock = time.perf_counter
    async with NsightClient(
        url, SIMULATOR_API_KEY, max_at_once=IN_FLIGHT, max_per_minute=None
    ) as client:
        governor = client.governor
        acquire: Callable[..., Awaitable[None]] = governor.acquire
        release = governor.release

        async def acquired(*args: Any) -> None:
            await acquire(*args)
            taken.append(clock())

        def released() -> None:
            freed.append(clock())
            release()

        # On this instance only: the transport and arrived() call through it.
        governor.acquire = acquired  # type: ignore[method-assign]
        governor.release = released  # type: ignore[method-assign]
        started = clock()
        async for _ in backup_audit(client):
            pass
        ended = clock()
    return {"started": started, "ended": ended, "taken": taken, "freed": freed}


def split(
    audit: dict[str, Any], slots: int = IN_FLIGHT, latency: float = LATENCY
) -> dict[str, Any]:
    """The ratio to the ideal and its parts (see the module docstring)."""
    started, ended = audit["started"], audit["ended"]
    events = sorted([(t, 1) for t in audit["taken"]] + [(t, -1) for t in audit["freed"]])
    calls = len(audit["taken"])
    ideal = calls * latency / slots
    last_taken = max(audit["taken"])
    held = start = middle = end = 0.0
    in_flight, now, full = 0, started, False
    for when, step in [*events, (ended, 0)]:
        span = when - now
        held += in_flight * span
        free = (slots - in_flight) * span
        if not full:
            start += free
        elif now >= last_taken:
            end += free
        else:
            middle += free
        in_flight += step
        now = when
        full = full or in_flight >= slots
    scale = slots * ideal
    return {
        "calls": calls,
        "ratio": (ended - started) / ideal,
        "held_too_long": (held - calls * latency) / scale,
        "free_start": start / scale,
        "free_middle": middle / scale,
        "free_end": end / scale,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeline", description=__doc__)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--audits", type=int, default=3)
    parser.add_argument("--server", choices=("sim", "pre"), default="sim")
    args = parser.parse_args(argv)
    with simulator_process(
        clients=args.clients, devices=DEVICES, latency=LATENCY, history_days=7,
        prerendered=args.server == "pre",
    ) as (url, _):  # fmt: skip
        asyncio.run(_watched_audit(url))  # the server's first audit, as in bench_latency
        print(f"{args.server}, {args.clients} clients: ratio = 1 + held too long + free slots")
        rows = []
        for _ in range(args.audits):
            parts = split(asyncio.run(_watched_audit(url)))
            rows.append(parts)
            print(
                f"  {parts['ratio']:.3f} = 1 + {parts['held_too_long']:.3f} held too long "
                f"({parts['held_too_long'] * 1000 * LATENCY:.1f} ms a call)"
                f" + free: {parts['free_start']:.3f} start, {parts['free_middle']:.3f} middle,"
                f" {parts['free_end']:.3f} end   [{parts['calls']} calls]",
                flush=True,
            )
        names = ("ratio", "held_too_long", "free_start", "free_middle", "free_end")
        medians = "  ".join(f"{n} {statistics.median(r[n] for r in rows):.3f}" for n in names)
        print(f"  medians: {medians}")


if __name__ == "__main__":
    main()
