"""Client CPU per small call, with an optional profile of where it goes.

    python -m benchmarks.profile_client            # CPU ms per call, best of 3
    python -m benchmarks.profile_client --profile  # plus the top functions

A loopback simulator in a separate process serves ``list_clients`` (one
client: a one-record body), so the figure is the client's fixed cost per
call: governor, request, response handling and parser set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys
import time

from nsight_async import NsightClient
from nsight_async.testing import SIMULATOR_API_KEY

IN_FLIGHT = 50


async def _measure(url: str, calls: int, profile: bool) -> float:
    async with NsightClient(
        url, SIMULATOR_API_KEY, max_at_once=IN_FLIGHT, max_per_minute=None
    ) as client:
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> None:
            async with slots:
                async for _ in client.list_clients():
                    pass

        await asyncio.gather(*(one() for _ in range(300)))  # warm the pool
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            await asyncio.gather(*(one() for _ in range(calls)))
            best = min(best, (time.process_time() - started) / calls * 1000)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await asyncio.gather(*(one() for _ in range(calls)))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return best


def main(argv: list[str] | None = None) -> float:
    """Start a simulator, measure, stop it; return CPU ms per call."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_client")
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, "-m", "nsight_async.testing", "--port", "0",
         "--clients", "1", "--devices", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        ms = asyncio.run(_measure(url, args.calls, args.profile))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"client CPU per one-record call at {IN_FLIGHT} in flight: {ms:.3f} ms (best of 3)")
    return ms


if __name__ == "__main__":
    main()
