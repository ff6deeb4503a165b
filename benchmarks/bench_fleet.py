"""Benchmark the fleet crawler: calls spent, latency-bound speed, rate adherence, memory.

Run ``python -m benchmarks.bench_fleet [--quick] [--json PATH]``. Four figures,
in one run:

1. **calls**: a full backup audit against the naive walk (list_sites →
   list_servers/list_workstations → list_mob_sessions), same client, same
   fleet, in process; exact counts from the simulator's request log.
2. **latency-bound** (``bench_latency.py``): the simulator in a separate
   process with 50 ms latency; the audit with 100 calls in flight against the
   ideal ``calls × latency ÷ in-flight`` and against a bare client, same run.
3. **rate**: the simulator enforcing R calls per 60 s window and the client
   set to R, in virtual time (shared fake clock and sleep), so minutes of
   rate-limited calls take a few seconds: over-limit answers and achieved/R.
4. **memory**: a 100,000-device audit (quick: 10,000) streaming into a
   ``RunStore`` file, run in a child process against the simulator in another
   process, so only the crawler's memory is measured: peak RSS and elapsed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from nsight_async import (
    AuditSettings,
    NsightClient,
    RunStore,
    backup_audit,
)
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorTransport,
    VirtualTime,
)

from ._simproc import simulator_process
from .bench_latency import bench_latency

T = TypeVar("T")
NOW = datetime(2026, 3, 1, tzinfo=UTC)
INPROC_URL = "http://127.0.0.1:1"
# -- helpers ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def in_process(sim: Simulator, **kw: Any) -> AsyncIterator[NsightClient]:
    """Yield a client talking to ``sim`` through the in-process transport."""
    async with httpx.AsyncClient(transport=SimulatorTransport(sim)) as http:
        yield NsightClient(INPROC_URL, SIMULATOR_API_KEY, http_client=http, **kw)


async def _drain(client: NsightClient, **kw: Any) -> int:
    n = 0
    async for _ in backup_audit(client, settings=AuditSettings(now=NOW), **kw):
        n += 1
    return n


async def naive_walk(client: NsightClient) -> int:
    """The baseline: the walk public clients do (list_sites, then list_servers and
    list_workstations per site, then list_mob_sessions per device); return devices seen."""
    seen = 0
    async for c in client.list_clients():
        async for site in client.list_sites(c.client_id):
            for listing in (client.list_servers, client.list_workstations):
                async for device in listing(site.site_id):
                    seen += 1
                    async for _ in client.list_mob_sessions(device.device_id):
                        pass
    return seen


# -- 1. calls --------------------------------------------------------------------------


async def bench_calls(quick: bool) -> dict[str, Any]:
    """Count the calls of a full audit and of the naive walk over the same fleet."""
    clients, devices = (10, 500) if quick else (25, 2500)
    fleet = SimulatedFleet(seed="bench", clients=clients, devices=devices, now=NOW, history_days=2)
    ours, naive = Simulator(fleet), Simulator(fleet)
    async with in_process(ours, max_at_once=50) as client:
        audited = await _drain(client)
    async with in_process(naive, max_at_once=50) as client:
        walked = await naive_walk(client)
    assert audited == walked == fleet.n_devices
    formula_ours = 1 + 2 * fleet.n_clients + fleet.n_mob_devices
    formula_naive = 1 + fleet.n_clients + 2 * fleet.n_sites + fleet.n_devices
    return {
        "clients": fleet.n_clients,
        "sites": fleet.n_sites,
        "devices": fleet.n_devices,
        "mob_devices": fleet.n_mob_devices,
        "audit_calls": len(ours.log),
        "audit_formula": formula_ours,
        "naive_calls": len(naive.log),
        "naive_formula": formula_naive,
        "ratio": round(len(ours.log) / len(naive.log), 4),
        "exact": len(ours.log) == formula_ours and len(naive.log) == formula_naive,
    }


# -- 2. latency-bound: bench_latency.py


# -- 3. rate ---------------------------------------------------------------------------


async def _rate(rate: int, devices: int) -> dict[str, Any]:
    vt = VirtualTime()
    fleet = SimulatedFleet(seed="bench-rate", clients=5, devices=devices, now=NOW, history_days=1)
    config = SimulatorConfig(rate_limit_per_minute=rate, rate_window=60.0)
    sim = Simulator(fleet, config=config, clock=vt.clock, sleep=vt.sleep)
    real = time.perf_counter()
    async with in_process(
        sim, max_at_once=20, max_per_minute=rate, clock=vt.clock, sleep=vt.sleep
    ) as client:
        audited = await vt.run(_drain(client))
    times = [e.time for e in sim.log]
    span = times[-1] - times[0]
    achieved = (len(times) - 1) / span * 60.0 if span > 0 else float("nan")
    return {
        "rate_per_min": rate,
        "window_s": 60.0,
        "devices": audited,
        "calls": len(times),
        "virtual_s": span,
        "real_s": time.perf_counter() - real,
        "over_limit": sum(1 for e in sim.log if e.rate_limited),
        "achieved_per_min": achieved,
        "achieved_ratio": achieved / rate,
    }


def bench_rate(quick: bool) -> dict[str, Any]:
    """Check rate adherence in virtual time: zero over-limit answers, ≥ 95% of R used."""
    rate, devices = (60, 400) if quick else (600, 2500)
    return asyncio.run(_rate(rate, devices))


# -- 4. memory -------------------------------------------------------------------------


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _memory_child(url: str, store_path: str, in_flight: int) -> dict[str, Any]:
    baseline = _rss_mb()
    started = time.perf_counter()
    with RunStore(store_path) as store:
        async with NsightClient(
            url, SIMULATOR_API_KEY, max_at_once=in_flight, max_per_minute=None
        ) as client:
            devices = await _drain(client, store=store)
            calls = client.calls_started
        run = store.latest_run("audit", unfinished=False)
        recorded = len(store.done_devices(run)) if run else 0
    return {
        "devices": devices,
        "recorded": recorded,
        "calls": calls,
        "elapsed_s": time.perf_counter() - started,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
    }


def bench_memory(quick: bool) -> dict[str, Any]:
    """Run a big audit into a RunStore in a child process; report its peak RSS."""
    clients, devices = (20, 10_000) if quick else (100, 100_000)
    in_flight = 100
    with (
        simulator_process(clients=clients, devices=devices, latency=0.001, history_days=2) as (
            url,
            _,
        ),
        tempfile.TemporaryDirectory() as tmp,
    ):
        store = os.path.join(tmp, "audit.sqlite")
        cmd = [
            sys.executable, "-m", "benchmarks.bench_fleet", "--memory-child",
            url, store, str(in_flight),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory child failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result["store_mb"] = Path(store).stat().st_size / 2**20
    result.update(in_flight=in_flight, target_peak_rss_mb=150)
    return result


# -- report ----------------------------------------------------------------------------


def _table(results: dict[str, Any]) -> str:
    c, r, m = results["calls"], results["rate"], results["memory"]
    rows = [
        ("calls: audit (1+2·clients+mob)", f"{c['audit_calls']:,}",
         f"formula {c['audit_formula']:,}"),
        ("calls: naive walk", f"{c['naive_calls']:,}", f"formula {c['naive_formula']:,}"),
        ("calls: audit / naive", f"{c['ratio']:.3f}",
         f"{c['devices']:,} devices, exact={c['exact']}"),
    ]  # fmt: skip
    for lat in results["latency"].values():
        tag = f"latency[{lat['clients']} clients]"
        bare = lat["bare_client"]
        rows += [
            (f"{tag}: calls", f"{lat['calls']:,}", f"{lat['devices']:,} devices"),
            (f"{tag}: wall", f"{lat['wall_s']:.2f} s",
             f"ideal {lat['ideal_s']:.2f} s; serial listing floor "
             f"{lat['serial_enumeration_floor_s']:.2f} s"),
            (f"{tag}: wall / ideal", f"{lat['ratio']:.3f}×",
             "target ≤ 1.15×; median of " + ", ".join(f"{x['ratio']:.3f}" for x in lat["runs"])),
            (f"{tag}: simulator's first audit / ideal", f"{lat['fresh_simulator']['ratio']:.3f}×",
             "its warm-up, not the target; median of "
             + ", ".join(f"{x['ratio']:.3f}" for x in lat["fresh_simulator"]["runs"])),
            (f"{tag}: first outcome", f"{lat['first_outcome_s']:.2f} s",
             f"enumeration ended {lat['enumeration_end_s']:.2f} s"),
            (f"{tag}: CPU share client/server",
             f"{lat['client_cpu_share']:.2f}/{lat['server_cpu_share']:.2f}",
             "CPU s per wall s (1.00 = that process is saturated)"),
            (f"{tag}: CPU ms/call client/server",
             f"{lat['client_cpu_ms_per_call']:.3f}/{lat['server_cpu_ms_per_call']:.3f}",
             "budget at the ideal rate: 0.5 ms per core"),
            (f"{tag}: bare client wall / ideal", f"{bare['ratio']:.3f}×",
             f"aiohttp + parser only, same simulator: {bare['calls']:,} calls, CPU ms/call "
             f"{bare['client_cpu_ms_per_call']:.3f}/{bare['server_cpu_ms_per_call']:.3f}"),
            (f"{tag}: ours / bare client", f"{lat['ratio'] / bare['ratio']:.3f}×",
             "wall/ideal of the audit over that of the floor, same run"),
            (f"{tag}: our client alone / ideal", f"{lat['client_alone']['ratio']:.3f}×",
             "NsightClient.list_mob_sessions over the same calls, no fleet; CPU ms/call "
             f"{lat['client_alone']['client_cpu_ms_per_call']:.3f}/"
             f"{lat['client_alone']['server_cpu_ms_per_call']:.3f}"),
            (f"{tag}: audit, pre-rendered server", f"{lat['prerendered']['ratio']:.3f}×",
             "wall/ideal against answers rendered beforehand (diagnostic, not the target); "
             f"CPU ms/call {lat['prerendered']['client_cpu_ms_per_call']:.3f}/"
             f"{lat['prerendered']['server_cpu_ms_per_call']:.3f}"),
        ]  # fmt: skip
    rows += [
        ("rate: R (per 60 s window)", f"{r['rate_per_min']}/min", f"{r['calls']:,} calls"),
        ("rate: over-limit answers", f"{r['over_limit']}", "target 0"),
        ("rate: achieved / R", f"{r['achieved_ratio']:.3f}",
         f"{r['virtual_s']:.0f} virtual s in {r['real_s']:.1f} real s"),
        ("memory: devices audited", f"{m['devices']:,}", f"recorded {m['recorded']:,}"),
        ("memory: peak RSS", f"{m['peak_rss_mb']:.1f} MB",
         f"baseline {m['baseline_rss_mb']:.1f} MB, target < 150"),
        ("memory: elapsed", f"{m['elapsed_s']:.1f} s", f"{m['calls']:,} calls"),
    ]  # fmt: skip
    width = max(len(a) for a, _, _ in rows)
    vwidth = max(len(b) for _, b, _ in rows)
    return "\n".join(f"{a:<{width}}  {b:>{vwidth}}  {note}" for a, b, note in rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every part, print a table, optionally write JSON; return the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fleet")
    parser.add_argument("--quick", action="store_true", help="small fleets (≤ ~60 s)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--memory-child", nargs=3, metavar=("URL", "STORE", "IN_FLIGHT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.memory_child:
        url, store, in_flight = args.memory_child
        child = asyncio.run(_memory_child(url, store, int(in_flight)))
        print(json.dumps(child))
        return child
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": args.quick}
    for name, part in (
        ("calls", bench_calls),
        ("latency", bench_latency),
        ("rate", bench_rate),
        ("memory", bench_memory),
    ):
        t = time.perf_counter()
        if name == "calls":
            results[name] = asyncio.run(part(args.quick))  # type: ignore[arg-type]
        else:
            results[name] = part(args.quick)
        print(f"[{name}] done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    results["total_s"] = time.perf_counter() - started
    results["python"] = sys.version.split()[0]
    results["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(_table(results))
    print(f"total {results['total_s']:.1f} s ({'quick' if args.quick else 'full'})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", "utf-8")
    return results


if __name__ == "__main__":
    main()
