"""Tests for nsight_async._fleet: the pipelined fleet walk, its filters, outcomes and rate.

Everything runs the real client against the project's own fake, the simulator,
in process (``SimulatorTransport``); the simulator's request log is the
witness for the calls spent. Ground truth comes from the ``SimulatedFleet``.
Time is injected: ``FakeTime`` makes retry waits instant, and ``VirtualTime``
runs minutes of rate limiting in milliseconds.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from support import failing_device

from benchmarks.bench_fleet import naive_walk
from nsight_async import (
    ClientFailure,
    DeviceAtClient,
    DeviceKind,
    Filters,
    Fleet,
    InvalidParameterError,
    NsightClient,
    NsightError,
    Outcome,
    Progress,
    RetryPolicy,
)
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    VirtualTime,
    in_process_client,
)
from nsight_async.testing import (
    InstantTime as FakeTime,
)

T = TypeVar("T")
NOW = datetime(2026, 3, 1, tzinfo=UTC)
URL = "http://127.0.0.1:1"
FAST_RETRY = RetryPolicy(attempts=10, timeout=None, wait_initial=0.001, wait_max=0.01)
CHAOS = (Fault.RESET, Fault.TRUNCATE, Fault.HTTP503, Fault.HTML403, Fault.HTTP429, Fault.MALFORMED)


def make_fleet(**kw: Any) -> SimulatedFleet:
    """Build a seeded fleet ending at NOW with a short history (fast to serve)."""
    kw.setdefault("seed", "fleet-tests")
    kw.setdefault("history_days", 6)
    return SimulatedFleet(now=NOW, **kw)


connect = in_process_client


def session_counter(client: NsightClient) -> Callable[[DeviceAtClient], Awaitable[int]]:
    """Return per-device work that counts the device's MOB sessions as they stream."""

    async def work(device: DeviceAtClient) -> int:
        return sum([1 async for _ in client.list_mob_sessions(device.device_id)])

    return work


def mob_off(device: DeviceAtClient) -> str | None:
    """Skip devices without Backup & Recovery."""
    return None if device.mob else "mob=0"


async def walk(fleet: Fleet, work: Any, **kw: Any) -> list[Outcome[Any] | ClientFailure]:
    """Run fleet.map to the end and return every item it yielded."""
    return [o async for o in fleet.map(work, **kw)]


# -- calls -------------------------------------------------------------------------


async def test_walk_spends_one_call_per_client_and_type_plus_mob_devices() -> None:
    """A full backup walk costs exactly 1 + 2·clients + (devices with mob=1) calls."""
    fleet = make_fleet(clients=7, devices=240)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        crawler = Fleet(client)
        outcomes = await walk(crawler, session_counter(client), skip=mob_off)
        assert len(outcomes) == fleet.n_devices
        expected = 1 + 2 * fleet.n_clients + fleet.n_mob_devices
        assert len(sim.log) == expected
        assert sim.log.count("list_devices_at_client") == 2 * fleet.n_clients
        assert sim.log.count("list_mob_sessions") == fleet.n_mob_devices
        assert client.calls_started == expected
        assert crawler.progress().calls_spent == expected


async def test_naive_walk_costs_more_than_the_crawler() -> None:
    """The naive walk costs 1 + clients + 2·sites + devices; the crawler's saving is exact."""
    fleet = make_fleet(clients=7, devices=240)
    naive_sim, sim = Simulator(fleet), Simulator(fleet)
    async with connect(naive_sim) as client:
        assert await naive_walk(client) == fleet.n_devices
    naive = 1 + fleet.n_clients + 2 * fleet.n_sites + fleet.n_devices
    assert len(naive_sim.log) == naive
    async with connect(sim) as client:
        await walk(Fleet(client), session_counter(client), skip=mob_off)
    ours = 1 + 2 * fleet.n_clients + fleet.n_mob_devices
    assert len(sim.log) == ours
    assert (
        naive - ours == 2 * fleet.n_sites - fleet.n_clients + fleet.n_devices - fleet.n_mob_devices
    )
    assert ours < 0.8 * naive


# -- filters -----------------------------------------------------------------------


async def test_client_filter_lists_only_the_chosen_clients() -> None:
    """A client filter (ids and name globs) narrows list_devices_at_client before calls."""
    fleet = make_fleet(clients=6, devices=120)
    first, second = fleet.clients[0], fleet.clients[1]
    pattern = second.name.strip()[:4].lower() + "*"
    chosen = {c.client_id for c in fleet.clients if c.name.lower().startswith(pattern[:-1])}
    chosen.add(first.client_id)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        filters = Filters(clients=[first.client_id, pattern])
        outcomes = await walk(Fleet(client, filters=filters), session_counter(client), skip=mob_off)
    listed = {int(e.params["clientid"]) for e in sim.log.calls("list_devices_at_client")}
    assert listed == chosen
    assert sim.log.count("list_devices_at_client") == 2 * len(chosen)
    assert {o.device.client_id for o in outcomes if isinstance(o, Outcome)} <= chosen
    expected = [d for d in fleet.iter_devices() if d.client_id in chosen]
    assert len(outcomes) == len(expected)


async def test_client_filter_accepts_digit_strings() -> None:
    """A client id given as a string of digits matches that id."""
    fleet = make_fleet(clients=4, devices=40)
    sim = Simulator(fleet)
    target = fleet.clients[1].client_id
    async with connect(sim) as client:
        filters = Filters(clients=[str(target)])
        await walk(Fleet(client, filters=filters), session_counter(client), skip=mob_off)
    assert {e.params["clientid"] for e in sim.log.calls("list_devices_at_client")} == {str(target)}


async def test_device_type_filter_spends_one_call_per_client() -> None:
    """device_types=(server,) lists each client once and yields only servers."""
    fleet = make_fleet(clients=5, devices=150)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        filters = Filters(device_types=(DeviceKind.SERVER,))
        outcomes = await walk(Fleet(client, filters=filters), session_counter(client), skip=mob_off)
    assert sim.log.count("list_devices_at_client") == fleet.n_clients
    assert {e.params["devicetype"] for e in sim.log.calls("list_devices_at_client")} == {"server"}
    servers = [d for d in fleet.iter_devices() if d.kind == "server"]
    assert len(outcomes) == len(servers)
    assert all(o.device.kind is DeviceKind.SERVER for o in outcomes if isinstance(o, Outcome))


async def test_site_and_device_filters_narrow_the_per_device_calls() -> None:
    """Site and device filters drop devices before any per-device call is spent on them."""
    fleet = make_fleet(clients=4, devices=160)
    site = max(fleet.sites, key=lambda s: s.n_devices)
    in_site = [d for d in fleet.iter_devices() if d.site_id == site.site_id]
    named = in_site[0]
    sim = Simulator(fleet)
    async with connect(sim) as client:
        outcomes = await walk(
            Fleet(client, filters=Filters(sites=[site.site_id])), session_counter(client)
        )
        assert sorted(o.device.device_id for o in outcomes) == [d.device_id for d in in_site]  # type: ignore[union-attr]
        assert sim.log.count("list_mob_sessions") == len(in_site)
        sim.log.clear()
        filters = Filters(devices=[named.name.lower()])
        outcomes = await walk(Fleet(client, filters=filters), session_counter(client))
    assert [o.device.device_id for o in outcomes] == [named.device_id]  # type: ignore[union-attr]
    assert sim.log.count("list_mob_sessions") == 1


async def test_mob_off_devices_are_skipped_with_a_reason_and_not_fetched() -> None:
    """Devices with mob=0 come out skipped with the reason, and no call is spent on them."""
    fleet = make_fleet(clients=4, devices=100, mob_fraction=0.5)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        outcomes = await walk(Fleet(client), session_counter(client), skip=mob_off)
    skipped = {
        o.device.device_id for o in outcomes if isinstance(o, Outcome) and o.status == "skipped"
    }
    off = {d.device_id for d in fleet.iter_devices() if not d.mob}
    assert skipped == off
    assert all(
        o.reason == "mob=0" for o in outcomes if isinstance(o, Outcome) and o.status == "skipped"
    )
    fetched = {int(e.params["deviceid"]) for e in sim.log.calls("list_mob_sessions")}
    assert fetched.isdisjoint(off)


# -- pipelining and memory -----------------------------------------------------------


async def test_first_outcome_arrives_before_enumeration_ends() -> None:
    """Per-device work starts while clients are still being listed (with server latency)."""
    fleet = make_fleet(clients=8, devices=200)
    sim = Simulator(fleet, config=SimulatorConfig(latency=0.003))
    listings_at_first_ok: int | None = None
    async with connect(sim) as client:
        async for outcome in Fleet(client).map(session_counter(client), skip=mob_off):
            first_ok = isinstance(outcome, Outcome) and outcome.status == "ok"
            if listings_at_first_ok is None and first_ok:
                listings_at_first_ok = sim.log.count("list_devices_at_client")
    assert listings_at_first_ok is not None
    assert listings_at_first_ok < 2 * fleet.n_clients
    order = [e.service for e in sim.log]
    last_listing = max(i for i, s in enumerate(order) if s == "list_devices_at_client")
    assert order.index("list_mob_sessions") < last_listing


async def test_work_starts_while_a_big_listing_is_still_streaming() -> None:
    """Over a real socket, a device gets its call before its client's listing has ended."""
    fleet = make_fleet(clients=1, devices=3000, mob_fraction=1.0, history_days=1)
    events: list[str] = []

    async def work(device: DeviceAtClient) -> None:
        events.append("work")

    def listed(client_id: int, kind: DeviceKind, devices: list[DeviceAtClient]) -> None:
        events.append(f"listed {kind.value} {len(devices)}")

    kinds = (DeviceKind.WORKSTATION,)
    async with (
        SimulatorServer(Simulator(fleet)) as server,
        NsightClient(server.url, SIMULATOR_API_KEY, max_at_once=4) as client,
    ):
        crawler = Fleet(client, filters=Filters(device_types=kinds), on_devices_listed=listed)
        outcomes = [o async for o in crawler.map(work)]
    ends = [i for i, e in enumerate(events) if e.startswith("listed")]
    assert len(ends) == 1
    assert events[ends[0]].endswith(f" {len(outcomes)}")
    assert len(outcomes) == fleet.count_devices(fleet.clients[0].client_id, kinds[0])
    assert events.index("work") < ends[0]  # the listing is over 1 MB: many chunks


async def test_five_thousand_devices_stream_in_bounded_memory() -> None:
    """A 5,000-device walk keeps a small, fixed working set (tracemalloc peak)."""
    fleet = make_fleet(clients=5, devices=5000, mob_fraction=0.01, history_days=2)
    sim = Simulator(fleet)
    counted = 0
    async with connect(sim, max_at_once=20) as client:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            async for outcome in Fleet(client).map(session_counter(client), skip=mob_off):
                counted += isinstance(outcome, Outcome)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert counted == fleet.n_devices
    # Holding every device record would take several MB; the pipeline holds its queues only.
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB"


# -- every device exactly once ---------------------------------------------------------


async def test_every_device_once_under_faults_with_true_session_counts() -> None:
    """With 10% faults, every device yields one outcome and ok ones saw every session."""
    fleet = make_fleet(clients=6, devices=260, history_days=12)
    config = SimulatorConfig(fault_rate=0.1, fault_kinds=CHAOS)
    sim = Simulator(fleet, config=config)
    ft = FakeTime()
    async with connect(sim, retry=FAST_RETRY, clock=ft.clock, sleep=ft.sleep, seed=7) as client:
        outcomes = await walk(Fleet(client), session_counter(client), skip=mob_off)
    assert sum(1 for e in sim.log if e.fault is not None) > 20  # the faults did happen
    assert not [o for o in outcomes if isinstance(o, ClientFailure)]
    ids = Counter(o.device.device_id for o in outcomes if isinstance(o, Outcome))
    assert set(ids) == set(fleet.device_ids())
    assert max(ids.values()) == 1
    for outcome in outcomes:
        assert isinstance(outcome, Outcome)
        if outcome.status == "ok":
            truth = sum(1 for _ in fleet.sessions(outcome.device.device_id))
            assert outcome.value == truth, outcome.device.device_id
    assert not [o for o in outcomes if isinstance(o, Outcome) and o.status == "error"]


async def test_failed_client_listing_yields_client_failures() -> None:
    """A client whose listing fails (errorcode 4) yields a ClientFailure per type; others go on."""
    fleet = make_fleet(clients=5, devices=120)
    bad = fleet.clients[1]

    def script(ctx: FaultContext) -> Fault | None:
        wanted = ctx.service == "list_devices_at_client" and ctx.params.get("clientid")
        return Fault.FAIL4 if wanted == str(bad.client_id) else None

    sim = Simulator(fleet, config=SimulatorConfig(fault_script=script))
    async with connect(sim, retry=FAST_RETRY) as client:
        outcomes = await walk(Fleet(client), session_counter(client), skip=mob_off)
    failures = [o for o in outcomes if isinstance(o, ClientFailure)]
    assert sorted((f.client.client_id, f.device_type) for f in failures) == [
        (bad.client_id, DeviceKind.SERVER),
        (bad.client_id, DeviceKind.WORKSTATION),
    ]
    assert all(isinstance(f.error, InvalidParameterError) for f in failures)
    devices = Counter(o.device.device_id for o in outcomes if isinstance(o, Outcome))
    expected = {d.device_id for d in fleet.iter_devices() if d.client_id != bad.client_id}
    assert set(devices) == expected
    assert max(devices.values()) == 1


async def test_device_whose_work_fails_yields_an_error_outcome() -> None:
    """A device whose sessions cannot be fetched yields one error outcome, not a crash."""
    fleet = make_fleet(clients=3, devices=60, mob_fraction=1.0)
    sim, victim = failing_device(fleet)
    async with connect(sim) as client:
        outcomes = await walk(Fleet(client), session_counter(client), skip=mob_off)
    errors = [o for o in outcomes if isinstance(o, Outcome) and o.status == "error"]
    assert [o.device.device_id for o in errors] == [victim]
    assert isinstance(errors[0].error, NsightError)
    assert len(outcomes) == fleet.n_devices


async def test_list_clients_failure_is_raised() -> None:
    """If even list_clients fails, the walk raises instead of yielding nothing."""
    sim = Simulator(
        make_fleet(clients=3, devices=30), config=SimulatorConfig(fault_script=["fail3"])
    )
    async with connect(sim) as client:
        with pytest.raises(NsightError):
            async with asyncio.timeout(5):
                await walk(Fleet(client), session_counter(client))


async def test_already_done_devices_are_dropped_without_calls() -> None:
    """Devices a resumed run recorded are neither reported nor fetched again."""
    fleet = make_fleet(clients=3, devices=80, mob_fraction=1.0)
    done = set(list(fleet.device_ids())[::2])
    sim = Simulator(fleet)
    async with connect(sim) as client:
        outcomes = await walk(
            Fleet(client), session_counter(client), already_done=done.__contains__
        )
    reported = {o.device.device_id for o in outcomes if isinstance(o, Outcome)}
    assert reported == set(fleet.device_ids()) - done
    assert sim.log.count("list_mob_sessions") == len(reported)


async def test_cached_listings_spend_no_listing_calls() -> None:
    """Listings given by cached_devices are used instead of list_devices_at_client."""
    fleet = make_fleet(clients=4, devices=90)
    sim = Simulator(fleet)
    saved: dict[tuple[int, DeviceKind], list[DeviceAtClient]] = {}
    async with connect(sim) as client:
        first = Fleet(client, on_devices_listed=lambda c, k, d: saved.__setitem__((c, k), d))
        await walk(first, session_counter(client), skip=mob_off)
        assert len(saved) == 2 * fleet.n_clients
        assert sum(len(v) for v in saved.values()) == fleet.n_devices
        sim.log.clear()
        second = Fleet(client, cached_devices=lambda c, k: saved.get((c, k)))
        outcomes = await walk(second, session_counter(client), skip=mob_off)
    assert sim.log.count("list_devices_at_client") == 0
    assert len(outcomes) == fleet.n_devices


# -- progress --------------------------------------------------------------------------


async def test_progress_ends_with_every_device_counted_and_nothing_needed() -> None:
    """The last Progress counts every device once, every call spent, and no call still needed."""
    fleet = make_fleet(clients=5, devices=120)
    sim = Simulator(fleet)
    seen: list[Progress] = []
    async with connect(sim) as client:
        crawler = Fleet(client, on_progress=seen.append)
        await walk(crawler, session_counter(client), skip=mob_off)
    last = crawler.progress()
    assert last.clients_total == last.clients_listed == fleet.n_clients
    assert last.devices_known == fleet.n_devices
    assert last.devices_done + last.devices_failed + last.devices_skipped == fleet.n_devices
    assert last.devices_skipped == fleet.n_devices - fleet.n_mob_devices
    assert last.calls_spent == len(sim.log)
    assert last.calls_needed == 0
    assert seen[-1] == last
    assert all(p.calls_needed >= 0 for p in seen)
    early = seen[0]  # right after list_clients, before any listing call
    assert early.calls_needed >= 2 * fleet.n_clients


# -- rate ------------------------------------------------------------------------------


async def test_walk_keeps_to_the_rate_limit_and_uses_it() -> None:
    """At R=60/min (server window 60 s), no call is over the limit and ≥ 95% of R is used."""
    vt = VirtualTime()
    fleet = make_fleet(clients=4, devices=400, history_days=2)
    config = SimulatorConfig(rate_limit_per_minute=60, rate_window=60.0)
    sim = Simulator(fleet, config=config, clock=vt.clock, sleep=vt.sleep)
    async with connect(
        sim, max_at_once=10, max_per_minute=60, clock=vt.clock, sleep=vt.sleep
    ) as client:
        outcomes = await vt.run(walk(Fleet(client), session_counter(client), skip=mob_off))
    assert len(outcomes) == fleet.n_devices
    times = [e.time for e in sim.log]
    assert len(times) >= 200
    assert not [e for e in sim.log if e.rate_limited]
    achieved = (len(times) - 1) / (times[-1] - times[0]) * 60.0
    assert achieved >= 0.95 * 60, achieved
    assert achieved <= 60.0


async def test_a_clients_device_types_are_listed_at_once_with_every_slot_working() -> None:
    """Servers and workstations of a client are listed together, and the workers
    use every slot (listings queue for slots, holding none while they wait)."""
    vt = VirtualTime()
    fleet = make_fleet(clients=3, devices=60)
    sim = Simulator(fleet, config=SimulatorConfig(latency=1.0), clock=vt.clock, sleep=vt.sleep)
    async with connect(sim, max_at_once=4, clock=vt.clock, sleep=vt.sleep) as client:
        crawler = Fleet(client)
        assert crawler.workers == 8  # twice the slots: a call waits ready for each
        outcomes = await vt.run(walk(crawler, session_counter(client), skip=mob_off))
    assert len(outcomes) == fleet.n_devices
    listed: dict[str, list[float]] = {}
    for entry in sim.log:
        if entry.service == "list_devices_at_client":
            listed.setdefault(entry.params["clientid"], []).append(entry.time)
    assert len(listed) == fleet.n_clients
    assert all(len(times) == 2 and times[0] == times[1] for times in listed.values()), listed


async def test_small_clients_are_listed_several_at_once_but_never_far_ahead() -> None:
    """Clients whose devices are few get listed ``list_ahead`` at a time; a backlog of
    listed devices (two per worker) stops further listings until it drains."""
    vt = VirtualTime()
    fleet = make_fleet(clients=12, devices=48)
    sim = Simulator(fleet, config=SimulatorConfig(latency=1.0), clock=vt.clock, sleep=vt.sleep)
    async with connect(sim, max_at_once=40, clock=vt.clock, sleep=vt.sleep) as client:
        crawler = Fleet(client, list_ahead=4, filters=Filters(device_types=[DeviceKind.SERVER]))
        outcomes = await vt.run(walk(crawler, session_counter(client), skip=mob_off))
    assert len(outcomes) == fleet.n_devices - sum(
        fleet.count_devices(c.client_id, DeviceKind.WORKSTATION) for c in fleet.clients
    )
    starts = Counter(e.time for e in sim.log if e.service == "list_devices_at_client")
    assert max(starts.values()) == 4  # list_ahead listings at the same instant, never more

    vt = VirtualTime()
    big = make_fleet(clients=6, devices=600, mob_fraction=1.0)
    sim = Simulator(big, config=SimulatorConfig(latency=1.0), clock=vt.clock, sleep=vt.sleep)
    async with connect(sim, max_at_once=5, clock=vt.clock, sleep=vt.sleep) as client:
        crawler = Fleet(client, list_ahead=4)
        seen = await vt.run(walk(crawler, session_counter(client)))
    assert len(seen) == big.n_devices
    first_work = min(e.time for e in sim.log if e.service == "list_mob_sessions")
    # ~100 devices per client, 10 allowed to wait: more clients are listed only as they drain
    early = [e for e in sim.log if e.service == "list_devices_at_client" and e.time <= first_work]
    assert len(early) < 2 * big.n_clients


@pytest.mark.parametrize("max_at_once", [1, 2, 3])
async def test_tiny_concurrency_walks_the_whole_fleet_without_deadlock(max_at_once: int) -> None:
    """With one to three slots, listings never hold a slot the workers need: the walk ends."""
    fleet = make_fleet(clients=3, devices=150)
    sim = Simulator(fleet)
    async with connect(sim, max_at_once=max_at_once) as client:
        outcomes = await asyncio.wait_for(
            walk(Fleet(client), session_counter(client), skip=mob_off), timeout=30
        )
    assert len(outcomes) == fleet.n_devices
