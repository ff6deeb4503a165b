"""The soak: a large audit at high concurrency under faults, watched for leaks.

The simulator runs in its own process, so this process's memory and file
descriptors are the client's alone. Bounded form: 4,000 devices;
``NSIGHT_CHAOS_FULL=1``: 20,000. The loop runs in asyncio debug mode. Faults are
the fast transient kinds plus a permanent one at 5%; the kinds that pause every
call for a second (429, the firewall's 403/503) and stalls are left to the fault
matrix, or the soak would measure sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path

import psutil
import pytest
from chaos_support import (
    FULL,
    PERSISTENT_ERROR,
    RETRY,
    Seen,
    check_audit_accounting,
    seen,
    simulator_process,
)

from nsight_async import AuditSettings, ClientFailure, NsightClient, backup_audit
from nsight_async.testing import SIMULATOR_API_KEY, Fault, SimulatedFleet

pytestmark = pytest.mark.chaos

DEVICES = 20_000 if FULL else 5_000
CLIENTS = 120 if FULL else 40
SEED = "chaos-soak"
FAULTS = (
    Fault.RESET,
    Fault.RESET_AFTER,
    Fault.TRUNCATE,
    Fault.HTTP500,
    Fault.HTTP502,
    Fault.HTTP504,
    Fault.HTML200,
    Fault.MALFORMED,
    Fault.FAIL4,
)
#: Resident memory may grow this much after warm-up (a quarter of the devices done).
RSS_GROWTH_BOUND = 24 * 1024 * 1024
#: Whole-run bound, so a hang fails the test instead of stalling CI.
TIME_BOUND = 600.0 if FULL else 150.0
ALLOWED = tuple({cls for kind in FAULTS for cls in PERSISTENT_ERROR[kind]})


async def test_large_audit_under_faults_keeps_memory_flat_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    """A big faulted audit accounts for every device with flat RSS and no task or fd leak."""
    process = psutil.Process()
    loop = asyncio.get_running_loop()
    was_debug = loop.get_debug()
    fleet = SimulatedFleet(seed=SEED, clients=CLIENTS, devices=DEVICES)
    sim_args = ["--seed", SEED, "--clients", str(CLIENTS), "--devices", str(DEVICES)]
    sim_args += ["--fault-rate", "0.05", "--fault-kinds", ",".join(f.value for f in FAULTS)]
    with simulator_process(sim_args, tmp_path / "simulator.log") as url:
        gc.collect()
        fds_before = process.num_fds()
        tasks_before = len(asyncio.all_tasks())
        samples: list[tuple[int, int]] = []
        results: list[Seen] = []  # slim: keeping whole results would be the growth measured
        failures: list[ClientFailure] = []

        async def sample_rss() -> None:
            while True:
                samples.append((len(results), process.memory_info().rss))
                await asyncio.sleep(0.25)

        # pytest keeps every log record of a test in memory: quiet the per-retry INFO lines
        # and debug mode's slow-callback warnings, or the soak measures pytest's log capture.
        quiet = {name: logging.getLogger(name) for name in ("nsight_async", "asyncio")}
        levels = {name: log.level for name, log in quiet.items()}
        for log in quiet.values():
            log.setLevel(logging.ERROR)
        loop.set_debug(True)
        started = time.monotonic()
        sampler = asyncio.create_task(sample_rss())
        try:
            async with (
                asyncio.timeout(TIME_BOUND),
                NsightClient(url, SIMULATOR_API_KEY, max_at_once=48, retry=RETRY, timeout=10) as c,
            ):
                settings = AuditSettings(now=fleet.now)
                async for item in backup_audit(c, settings=settings):
                    if isinstance(item, ClientFailure):
                        failures.append(item)
                    else:
                        results.append(seen(item))
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            loop.set_debug(was_debug)
            for name, log in quiet.items():
                log.setLevel(levels[name])
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.1)  # let closed transports finish their callbacks
        gc.collect()
        tasks_after = len(asyncio.all_tasks())
        fds_after = process.num_fds()
    counts = check_audit_accounting(fleet, results, failures, allowed_errors=ALLOWED, sample=300)
    assert counts["ok"] > 0.8 * sum(1 for d in fleet.iter_devices() if d.mob), counts
    assert tasks_after == tasks_before, f"tasks leaked: {tasks_before} -> {tasks_after}"
    assert abs(fds_after - fds_before) <= 2, f"file descriptors: {fds_before} -> {fds_after}"
    warm = [rss for done, rss in samples if done >= len(results) // 4]
    assert len(warm) >= 4, "too few RSS samples after warm-up"
    growth = max(warm) - warm[0]
    print(
        f"\nsoak: {len(results)} devices in {elapsed:.1f} s, {counts}, "
        f"RSS after warm-up {warm[0] / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB, "
        f"fds {fds_before}->{fds_after}, tasks {tasks_before}->{tasks_after}"
    )
    assert growth < RSS_GROWTH_BOUND, f"RSS grew {growth / 2**20:.1f} MiB after warm-up"
