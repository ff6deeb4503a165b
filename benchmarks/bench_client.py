"""Benchmark NsightClient against raw aiohttp and raw httpx on a loopback simulator.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_client [--quick] [--json PATH] [--profile]

The server is the project's simulator (``python -m nsight_async.testing``) in a
separate process, so the client process's CPU (``time.process_time``) is the
client's alone. Two phases, every variant in the same run:

1. latency 0: client CPU per request and requests/s at concurrency 1, 10, 50,
   100 for (1) ``NsightClient`` (``async for c in client.list_clients()``,
   ``max_at_once=concurrency``, ``max_per_minute=None``), (2) a raw aiohttp
   ``ClientSession`` reading the body, (3) a raw ``httpx.AsyncClient()`` with its
   defaults reading the body. Rounds are interleaved and repeated (3 rounds); the
   table shows the **median** of the rounds and ratios against raw aiohttp
   measured in the same round set.
2. latency 50 ms, 100 in flight, N requests (10,000; quick: 1,000): wall time
   against the ideal ``N * 0.05 / 100``. Ours and aiohttp are repeated 3 times
   (median shown); raw httpx runs once, capped at 30 s (quick: 8 s), and its
   wall time is extrapolated to N.

Targets: our CPU per request <= 1.5x raw aiohttp at concurrency 50, and >= 90%
of the ideal rate at 50 ms / 100 in flight. If the CPU target is missed (or with
``--profile``) the client is profiled with cProfile at concurrency 50 and the top
costs inside ``nsight_async`` are printed.

``main(argv)`` returns the results as a dict (for an aggregate runner).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from nsight_async import NsightClient
from nsight_async.testing import SIMULATOR_API_KEY

Fetch = Callable[[], Awaitable[None]]
CONCURRENCIES = (1, 10, 50, 100)
CPU_TARGET = 1.5
RATE_TARGET = 0.90
LATENCY = 0.05
IN_FLIGHT = 100
ROUNDS = 3


# -- the server process -----------------------------------------------------------------


@contextlib.contextmanager
def simulator_process(latency: float = 0.0) -> Iterator[str]:
    """Start the simulator on 127.0.0.1 in its own process; yield its URL; stop it by PID."""
    command = [
        sys.executable, "-m", "nsight_async.testing", "--host", "127.0.0.1", "--port", "0",
        "--clients", "12", "--devices", "120", "--latency", str(latency),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start (printed {url!r})")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the variants -------------------------------------------------------------------------


class Variant:
    """One way of fetching list_clients: an async context that builds a fetch function."""

    name = ""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url = url
        self.api = f"{url}/api/"
        self.params = {"apikey": SIMULATOR_API_KEY, "service": "list_clients"}
        self.concurrency = concurrency

    async def __aenter__(self) -> Fetch:
        raise NotImplementedError

    async def __aexit__(self, *exc: object) -> None:
        raise NotImplementedError


class Ours(Variant):
    """NsightClient with its default aiohttp backend."""

    name = "ours"

    async def __aenter__(self) -> Fetch:
        self.client = NsightClient(
            self.url, SIMULATOR_API_KEY, max_at_once=self.concurrency, max_per_minute=None
        )

        async def fetch() -> None:
            async for _ in self.client.list_clients():
                pass

        return fetch

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


class RawAiohttp(Variant):
    """aiohttp ClientSession with a connector sized to the concurrency, reading the body."""

    name = "aiohttp"

    async def __aenter__(self) -> Fetch:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        self.session = aiohttp.ClientSession(connector=connector)

        async def fetch() -> None:
            async with self.session.get(self.api, params=self.params) as response:
                await response.read()

        return fetch

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()


class RawHttpx(Variant):
    """httpx.AsyncClient with its defaults, reading the body."""

    name = "httpx"

    async def __aenter__(self) -> Fetch:
        self.client = httpx.AsyncClient()

        async def fetch() -> None:
            response = await self.client.get(self.api, params=self.params)
            _ = response.content

        return fetch

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


VARIANTS: tuple[type[Variant], ...] = (Ours, RawAiohttp, RawHttpx)


# -- the load -------------------------------------------------------------------------------


async def run_load(fetch: Fetch, n: int, concurrency: int, cap: float | None) -> dict[str, Any]:
    """Run ``n`` fetches with ``concurrency`` workers; stop early after ``cap`` seconds."""
    remaining = n
    done = 0
    deadline = None if cap is None else time.perf_counter() + cap

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0:
            if deadline is not None and time.perf_counter() > deadline:
                return
            remaining -= 1
            await fetch()
            done += 1

    warm = min(concurrency, n)
    await asyncio.gather(*(fetch() for _ in range(warm)))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "done": done,
        "wall_s": wall,
        "cpu_ms_per_req": cpu / done * 1000 if done else float("nan"),
        "req_per_s": done / wall if wall else float("nan"),
        "capped": done < n,
    }


async def measure(
    variant: type[Variant], url: str, n: int, concurrency: int, cap: float | None = None
) -> dict[str, Any]:
    """Build a variant, run the load, close the variant."""
    async with variant(url, concurrency) as fetch:
        return await run_load(fetch, n, concurrency, cap)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


async def phase1(url: str, sizes: dict[str, int], rounds: int) -> dict[str, Any]:
    """Latency 0: CPU per request and throughput, interleaved rounds, medians."""
    results: dict[str, Any] = {}
    for concurrency in CONCURRENCIES:
        runs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in VARIANTS}
        for round_no in range(rounds):
            order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                n = max(concurrency * 4, sizes[variant.name])
                runs[variant.name].append(await measure(variant, url, n, concurrency))
        row = {}
        for name, name_runs in runs.items():
            row[name] = {
                "cpu_ms_per_req": _median(name_runs, "cpu_ms_per_req"),
                "req_per_s": _median(name_runs, "req_per_s"),
                "cpu_runs": [round(r["cpu_ms_per_req"], 4) for r in name_runs],
                "n": name_runs[0]["done"],
            }
        base = row["aiohttp"]["cpu_ms_per_req"]
        for name in row:
            row[name]["cpu_x_aiohttp"] = row[name]["cpu_ms_per_req"] / base
        results[str(concurrency)] = row
    return results


async def phase2(url: str, n: int, rounds: int, httpx_cap: float) -> dict[str, Any]:
    """Latency 50 ms, 100 in flight: wall time against the ideal."""
    ideal = n * LATENCY / IN_FLIGHT
    results: dict[str, Any] = {"n": n, "ideal_s": ideal}
    for variant in (Ours, RawAiohttp, RawHttpx):
        repeats = rounds if variant is not RawHttpx else 1
        cap = httpx_cap if variant is RawHttpx else None
        runs = [await measure(variant, url, n, IN_FLIGHT, cap) for _ in range(repeats)]
        walls = [r["wall_s"] * n / r["done"] for r in runs]  # extrapolated when capped
        wall = statistics.median(walls)
        results[variant.name] = {
            "wall_s": wall,
            "walls": [round(w, 3) for w in walls],
            "done": runs[0]["done"],
            "capped": any(r["capped"] for r in runs),
            "pct_of_ideal": ideal / wall * 100,
            "ratio_to_ideal": wall / ideal,
            "cpu_ms_per_req": _median(runs, "cpu_ms_per_req"),
        }
    return results


async def profile_ours(url: str, n: int, top: int = 15) -> list[dict[str, Any]]:
    """cProfile our client at concurrency 50; return the top functions in nsight_async."""
    profiler = cProfile.Profile()
    async with Ours(url, 50) as fetch:
        await run_load(fetch, 200, 50, None)
        profiler.enable()
        await run_load(fetch, n, 50, None)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), entry in stats.stats.items():  # type: ignore[attr-defined]
        _, calls, tottime, cumtime, callers = entry
        ours = "nsight_async" in file
        # a builtin (compile, expat's feed) is charged to our function that calls it
        ours_caller = next((c for c in callers if "nsight_async" in c[0]), None)
        if not ours and not (file == "~" and ours_caller is not None):
            continue
        where = f"{Path(file).name}:{line}:{func}"
        if not ours and ours_caller is not None:
            where = f"{func} called from {Path(ours_caller[0]).name}:{ours_caller[2]}"
        rows.append(
            {
                "where": where,
                "calls_per_req": calls / n,
                "self_pct": tottime / total * 100,
                "cum_pct": cumtime / total * 100,
            }
        )
    rows.sort(key=lambda r: r["self_pct"], reverse=True)
    return rows[:top]


# -- report -----------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    """Render the results as plain-text tables."""
    lines = [
        f"nsight-async client benchmark ({results['mode']}); server: simulator subprocess on "
        "127.0.0.1; client CPU = time.process_time of this process",
        f"Phase 1 (latency 0): median of {results['rounds']} interleaved rounds; "
        "CPU ms/request (x raw aiohttp, same run) | requests/s",
        f"{'variant':<9}" + "".join(f"{'c=' + c:>28}" for c in results["phase1"]),
    ]
    for name in ("ours", "aiohttp", "httpx"):
        cells = []
        for row in results["phase1"].values():
            r = row[name]
            cells.append(
                f"{r['cpu_ms_per_req']:.3f} ({r['cpu_x_aiohttp']:.2f}x) {r['req_per_s']:>6.0f}/s"
            )
        lines.append(f"{name:<9}" + "".join(f"{c:>28}" for c in cells))
    p2 = results["phase2"]
    lines += [
        "",
        f"Phase 2: latency 50 ms, {IN_FLIGHT} in flight, N={p2['n']}, ideal {p2['ideal_s']:.2f} s "
        f"(ours/aiohttp: median of {results['rounds']}; httpx: once, capped, extrapolated)",
        f"{'variant':<9}{'wall s':>9}{'x ideal':>9}{'% ideal':>9}{'CPU ms/req':>12}  runs",
    ]
    for name in ("ours", "aiohttp", "httpx"):
        r = p2[name]
        note = f" (capped at {r['done']} done, extrapolated)" if r["capped"] else ""
        lines.append(
            f"{name:<9}{r['wall_s']:>9.2f}{r['ratio_to_ideal']:>9.2f}{r['pct_of_ideal']:>8.1f}%"
            f"{r['cpu_ms_per_req']:>12.3f}  {r['walls']}{note}"
        )
    t = results["targets"]
    lines += [
        "",
        f"ours/aiohttp CPU at c=50: {t['cpu_ratio_c50']:.2f}x (target <= {CPU_TARGET}x): "
        f"{'MET' if t['cpu_met'] else 'MISSED'}",
        f"ours at 50 ms / 100 in flight: {t['pct_of_ideal']:.1f}% of ideal "
        f"(target >= {RATE_TARGET * 100:.0f}%): {'MET' if t['rate_met'] else 'MISSED'}",
        f"ours/aiohttp wall at 50 ms: {t['wall_ratio']:.2f}x",
    ]
    if results.get("profile"):
        lines += ["", "cProfile of ours at c=50, top self time inside nsight_async:"]
        lines += [
            f"  {r['self_pct']:5.1f}% self {r['cum_pct']:5.1f}% cum "
            f"{r['calls_per_req']:5.1f}/req  {r['where']}"
            for r in results["profile"]
        ]
    lines.append(f"total benchmark time {results['elapsed_s']:.1f} s")
    return "\n".join(lines)


async def run(quick: bool, want_profile: bool) -> dict[str, Any]:
    """Run both phases (and the profile if needed) and return the results."""
    started = time.perf_counter()
    if quick:
        sizes, n2, httpx_cap = {"ours": 400, "aiohttp": 400, "httpx": 150}, 1000, 8.0
    else:
        sizes, n2, httpx_cap = {"ours": 2000, "aiohttp": 2000, "httpx": 500}, 10_000, 30.0
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "rounds": ROUNDS}
    with simulator_process(0.0) as url:
        results["phase1"] = await phase1(url, sizes, ROUNDS)
        c50 = results["phase1"]["50"]
        cpu_ratio = c50["ours"]["cpu_x_aiohttp"]
        if want_profile or cpu_ratio > CPU_TARGET:
            results["profile"] = await profile_ours(url, 600 if quick else 2000)
    with simulator_process(LATENCY) as url:
        results["phase2"] = await phase2(url, n2, ROUNDS, httpx_cap)
    p2 = results["phase2"]
    results["targets"] = {
        "cpu_ratio_c50": cpu_ratio,
        "cpu_met": cpu_ratio <= CPU_TARGET,
        "pct_of_ideal": p2["ours"]["pct_of_ideal"],
        "rate_met": p2["ours"]["pct_of_ideal"] >= RATE_TARGET * 100,
        "wall_ratio": p2["ours"]["wall_s"] / p2["aiohttp"]["wall_s"],
    }
    results["elapsed_s"] = time.perf_counter() - started
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse options, run the benchmark, print the tables, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_client")
    parser.add_argument("--quick", action="store_true", help="smaller N (about 40 s)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--profile", action="store_true", help="always profile ours at c=50")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.quick, args.profile))
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
