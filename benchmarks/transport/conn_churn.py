"""Count new TCP connections httpcore opens per request (latency 0).

    .venv/bin/python -m benchmarks.transport.conn_churn

Shows the keep-alive trap: httpx default Limits(max_connections=100,
max_keepalive_connections=20) -- and httpcore 1.0.9's idle check
``len([c.is_idle() for c in self._connections]) > max_keepalive`` counts ALL
connections, not idle ones -- so above 20 in flight, connections are closed
on release and reopened.
"""

from __future__ import annotations

import asyncio

import httpcore
import httpx

from .bench import run_load
from .server import start_server_process, stop_server_process


async def main_async() -> None:
    proc, port = start_server_process()
    created = 0
    orig = httpcore.AsyncConnectionPool.create_connection

    def counting(self, origin):
        nonlocal created
        created += 1
        return orig(self, origin)

    httpcore.AsyncConnectionPool.create_connection = counting  # type: ignore[method-assign]
    try:
        base = f"http://127.0.0.1:{port}/api/get"
        print(
            f"{'limits':45} {'conc':>4} {'lat ms':>6} {'requests':>8} {'new conns':>9} "
            f"{'per req':>8} {'pool size max':>13} {'req/s':>6} {'CPU ms/req':>10}"
        )
        for label, limits in [
            ("default (max 100, keepalive 20)", None),
            ("Limits(conc, keepalive=conc)", "tuned"),
        ]:
            for conc, lat in ((10, 0), (50, 0), (100, 0), (50, 50), (100, 50)):
                url = f"{base}?lat_ms={lat}"
                lim = (
                    httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
                    if limits
                    else httpx.Limits(max_connections=100, max_keepalive_connections=20)
                )
                async with httpx.AsyncClient(limits=lim) as client:
                    pool = client._transport._pool  # httpcore.AsyncConnectionPool
                    peak = 0

                    async def fetch(
                        u: str, client: httpx.AsyncClient = client, pool: object = pool
                    ) -> int:
                        nonlocal peak
                        n = len((await client.get(u)).content)
                        peak = max(peak, len(pool.connections))
                        return n

                    await run_load(fetch, url, 2 * conc, conc, 5.0)
                    created = 0
                    peak = 0
                    r = await run_load(fetch, url, 1500, conc, 6.0)
                print(
                    f"{label:45} {conc:>4} {lat:>6} {r['done']:>8} {created:>9} "
                    f"{created / max(r['done'], 1):>8.3f} {peak:>13} "
                    f"{r['done'] / r['wall_s']:>6.0f} "
                    f"{1000 * r['cpu_s'] / max(r['done'], 1):>10.3f}"
                )
    finally:
        httpcore.AsyncConnectionPool.create_connection = orig  # type: ignore[method-assign]
        stop_server_process(proc)


if __name__ == "__main__":
    asyncio.run(main_async())
