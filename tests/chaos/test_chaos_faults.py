"""The fault matrix: every simulator fault, alone and mixed, through the library on loopback.

Each fault kind is scripted on the first attempt (the call must recover, or fail
with the fault's typed error if the fault is permanent), on every attempt (the
call must fail with exactly that typed error), and drawn at 20% during a whole
backup audit (every device accounted for exactly once, no session duplicated).
The results fill the chaos matrix (``artifacts/chaos-matrix.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chaos_support import (
    FULL,
    PERMANENT,
    PERSISTENT_ERROR,
    RETRY,
    RETRY_PERSISTENT,
    SLOWS_EVERYONE,
    STALL_SECONDS,
    TIMEOUT,
    FaultDraw,
    check_audit_accounting,
    matrix_cell,
)

from nsight_async import (
    AuditResult,
    AuditSettings,
    ClientFailure,
    NsightClient,
    NsightError,
    RateLimitedError,
    RetryPolicy,
    RunStore,
    backup_audit,
)
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)

pytestmark = pytest.mark.chaos

KINDS = list(Fault)
AUDIT_SERVICES = frozenset({"list_devices_at_client", "list_mob_sessions"})
ALL_ERRORS = tuple({cls for classes in PERSISTENT_ERROR.values() for cls in classes})


@contextlib.asynccontextmanager
async def served(
    fleet: SimulatedFleet, config: SimulatorConfig, retry: RetryPolicy = RETRY, **client_kw: object
) -> AsyncIterator[tuple[Simulator, NsightClient]]:
    """Serve ``fleet`` on loopback and yield the simulator and a fast-retrying client."""
    sim = Simulator(fleet, config=config)
    async with (
        SimulatorServer(sim) as server,
        NsightClient(
            server.url, SIMULATOR_API_KEY, retry=retry, timeout=TIMEOUT, seed=7, **client_kw
        ) as client,
    ):
        yield sim, client


def _mob_device(fleet: SimulatedFleet) -> int:
    return next(d.device_id for d in fleet.iter_devices() if d.mob)


async def _audit(
    client: NsightClient, fleet: SimulatedFleet, store: RunStore
) -> tuple[list[AuditResult], list[ClientFailure]]:
    results: list[AuditResult] = []
    failures: list[ClientFailure] = []
    settings = AuditSettings(now=fleet.now)
    async for item in backup_audit(client, settings=settings, store=store):
        if isinstance(item, ClientFailure):
            failures.append(item)
        else:
            results.append(item)
    return results, failures


def _check_store(store: RunStore, results: list[AuditResult]) -> None:
    run_id = store.latest_run("audit", unfinished=False)
    assert run_id is not None
    rows = list(store.outcomes(run_id))
    assert sorted(r["device_id"] for r in rows) == sorted(r.device.device_id for r in results)
    expected = {r.device.device_id: r.health.value for r in results}
    assert {r["device_id"]: r["verdict"] for r in rows} == expected


@pytest.mark.parametrize("kind", KINDS, ids=str)
async def test_read_recovers_or_fails_typed_after_one_fault(kind: Fault) -> None:
    """A read whose first attempt is faulted returns the full list, or fails typed if permanent."""
    fleet = SimulatedFleet(seed="chaos-one", clients=2, devices=12)
    device_id = _mob_device(fleet)
    truth = [s.session_id for s in fleet.sessions(device_id)]
    config = SimulatorConfig(fault_script=[kind], stall_seconds=STALL_SECONDS)
    error: NsightError | None = None
    ids: list[int] = []
    async with served(fleet, config) as (_sim, client):
        try:
            ids = [s.session_id async for s in client.list_mob_sessions(device_id)]
        except NsightError as exc:
            error = exc
        calls = client.calls_started
    if kind in PERMANENT:
        assert type(error) in PERSISTENT_ERROR[kind], repr(error)
        cell = f"failed: `{type(error).__name__}` ({calls} call)"
    else:
        assert error is None, repr(error)
        assert ids == truth  # nothing lost, nothing yielded twice
        # aiohttp itself resends a GET once when the connection drops: then 1 call, 2 requests.
        cell = f"recovered ({calls} call{'s' if calls > 1 else ''})"
    matrix_cell(kind.value, "read, first attempt faulted", cell)


@pytest.mark.parametrize("kind", KINDS, ids=str)
async def test_read_fails_with_the_faults_typed_error_when_every_attempt_fails(
    kind: Fault,
) -> None:
    """A read faulted on every attempt fails with exactly the fault's typed error, key-free."""
    fleet = SimulatedFleet(seed="chaos-all", clients=2, devices=12)
    device_id = _mob_device(fleet)
    config = SimulatorConfig(fault_rate=1.0, fault_kinds=(kind,), stall_seconds=STALL_SECONDS)
    async with served(fleet, config, retry=RETRY_PERSISTENT) as (_sim, client):
        with pytest.raises(NsightError) as caught:
            async for _ in client.list_mob_sessions(device_id):
                pass
        calls = client.calls_started
    error = caught.value
    assert type(error) in PERSISTENT_ERROR[kind], repr(error)
    assert error.service == "list_mob_sessions"
    assert SIMULATOR_API_KEY not in str(error)
    assert SIMULATOR_API_KEY not in repr(error.args)
    if kind in PERMANENT:
        assert calls == 1  # never retried
    else:
        assert calls == RETRY_PERSISTENT.attempts
    if kind in {Fault.HTTP429, Fault.HTTP429_BARE}:
        assert error.status == 429
    matrix_cell(
        kind.value, "read, every attempt faulted", f"`{type(error).__name__}` after {calls} calls"
    )


@pytest.mark.parametrize("kind", KINDS, ids=str)
async def test_audit_accounts_for_every_device_once_under_one_fault_kind(
    kind: Fault, tmp_path: Path
) -> None:
    """A whole audit with one fault kind at 20% records every device exactly once."""
    # The kinds that pause every call ~1 s (429, firewall pages) get a smaller fleet.
    devices = 16 if kind in SLOWS_EVERYONE else 40
    fleet = SimulatedFleet(seed=f"chaos-audit-{kind.value}", clients=3, devices=devices)
    draw = FaultDraw(rate=0.2, kinds=(kind,), services=AUDIT_SERVICES, seed=kind.value)
    config = SimulatorConfig(fault_script=draw, stall_seconds=STALL_SECONDS)
    started = time.monotonic()
    with RunStore(tmp_path / "audit.sqlite") as store:
        async with served(fleet, config) as (_sim, client):
            results, failures = await _audit(client, fleet, store)
        _check_store(store, results)
    faults = len(draw.fired)
    counts = check_audit_accounting(fleet, results, failures, allowed_errors=PERSISTENT_ERROR[kind])
    if kind not in PERMANENT:
        # Retries absorb a 20% transient fault: at most a rare unlucky device fails.
        assert counts["error"] <= max(1, counts["ok"] // 10), counts
        assert counts["client_failures"] == 0 or kind in {Fault.STALL, Fault.TIMEOUT}, counts
    assert faults > 0, "the fault never fired: the test proved nothing"
    matrix_cell(
        kind.value,
        "audit, fault at 20%",
        f"{counts['ok']}/{counts['error']}/{counts['skipped']}, "
        f"{counts['client_failures']} listing(s) failed, {faults} faults, "
        f"accounted once ({time.monotonic() - started:.1f} s)",
    )


MIXED_RATES = (0.1, 0.3) if not FULL else (0.1, 0.2, 0.3)


@pytest.mark.parametrize("rate", MIXED_RATES, ids=lambda r: f"{r:.0%}")
async def test_audit_accounts_for_every_device_once_under_mixed_faults(
    rate: float, tmp_path: Path
) -> None:
    """A whole audit with every fault kind mixed at 10-30% records every device exactly once."""
    # list_clients is spared: when it fails the audit has no fleet to account for.
    fleet = SimulatedFleet(seed=f"chaos-mixed-{rate}", clients=4, devices=200 if FULL else 80)
    draw = FaultDraw(rate=rate, kinds=tuple(Fault), services=AUDIT_SERVICES, seed=str(rate))
    config = SimulatorConfig(fault_script=draw, stall_seconds=STALL_SECONDS)
    started = time.monotonic()
    with RunStore(tmp_path / "audit.sqlite") as store:
        async with served(fleet, config) as (_sim, client):
            results, failures = await _audit(client, fleet, store)
        _check_store(store, results)
    fired = {fault for _, _, fault in draw.fired}
    counts = check_audit_accounting(fleet, results, failures, allowed_errors=ALL_ERRORS)
    assert len(draw.fired) >= 3, f"too few faults fired: {draw.fired} ({counts})"
    matrix_cell(
        f"mixed {rate:.0%}",
        "audit, fault at 20%",
        f"(at {rate:.0%}) {counts['ok']}/{counts['error']}/{counts['skipped']}, "
        f"{counts['client_failures']} listing(s) failed, {len(fired)} kinds fired, "
        f"accounted once ({time.monotonic() - started:.1f} s)",
    )


@pytest.mark.parametrize("seed", range(4 if FULL else 2))
async def test_streamed_history_is_resumed_without_duplicates_under_cut_bodies(seed: int) -> None:
    """A long session history cut off mid-body again and again is yielded once, in order."""
    fleet = SimulatedFleet(
        seed=f"chaos-big-{seed}", clients=1, devices=12, big_device_sessions=3000
    )
    device_id = fleet.big_device_id
    assert device_id is not None
    truth = [s.session_id for s in fleet.sessions(device_id)]
    # Several cut or lost bodies in a row (seeded order), then a clean answer.
    script = [Fault.TRUNCATE, Fault.TRUNCATE, Fault.RESET_AFTER, Fault.HTTP502, Fault.MALFORMED]
    random.Random(seed).shuffle(script)
    config = SimulatorConfig(fault_script=[Fault.TRUNCATE, *script, Fault.TRUNCATE])
    retry = RetryPolicy(attempts=12, wait_initial=0.01, wait_max=0.05, max_retry_after=0.1)
    ids: list[int] = []
    error: NsightError | None = None
    async with served(fleet, config, retry=retry) as (sim, client):
        try:
            async for session in client.list_mob_sessions(device_id):
                ids.append(session.session_id)
        except NsightError as exc:  # 12 faults in a row: rare, but must still be clean
            error = exc
        truncated = sum(1 for e in sim.log if e.fault is Fault.TRUNCATE)
    assert ids == truth[: len(ids)], "a session was duplicated, skipped or reordered"
    assert error is None or error.records_yielded == len(ids)
    assert len(ids) == len(truth) or len(sim.log) >= retry.attempts
    assert truncated > 0


async def test_long_retry_after_does_not_stall_the_client_past_max_retry_after() -> None:
    """A 429 whose Retry-After far exceeds RetryPolicy.max_retry_after must not pause longer.

    ``RetryPolicy`` documents that Retry-After "is honoured up to max_retry_after
    seconds", but the governor pauses every call for the full Retry-After.
    """
    fleet = SimulatedFleet(seed="chaos-retry-after", clients=2, devices=8)
    config = SimulatorConfig(rate_limit_per_minute=1, rate_window=30.0)
    retry = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.05, max_retry_after=0.1)
    async with served(fleet, config, retry=retry) as (_sim, client):
        _ = [c async for c in client.list_clients()]  # uses the one call the window allows
        started = time.monotonic()
        try:
            async with asyncio.timeout(5.0):
                with pytest.raises(RateLimitedError) as caught:
                    _ = [c async for c in client.list_clients()]
        except TimeoutError:
            pytest.fail(
                "the client was still paused after 5 s, though max_retry_after=0.1: the "
                "server's Retry-After (~30 s) reached Governor.over_limit uncapped"
            )
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 10
    assert time.monotonic() - started < 2.0
