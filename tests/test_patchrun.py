"""Tests for nsight_async._patchrun: executing a patch plan, each write sent at most once.

The real client sends ``patch_retry`` to the project's own fake, the simulator,
in process. The simulator's log says which sends reached it and which it
processed (``patch_retry_applied``), so "never sent twice" and "reported
unknown when it may have been applied" are checked against what the server saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import stop_after

from nsight_async import (
    InvalidArgumentError,
    NsightClient,
    PatchOutcome,
    PatchPlan,
    PlanItem,
    PlannedPatch,
    RetryPolicy,
    RunStore,
    execute_patch_plan,
    plan_patch_retry,
)
from nsight_async._patchjob import split_ids
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorTransport,
)
from nsight_async.testing import (
    InstantTime as FakeTime,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
URL = "http://127.0.0.1:1"
FAST_RETRY = RetryPolicy(attempts=6, timeout=None, wait_initial=0.001, wait_max=0.01)
#: Faults after which the write may have been applied, so its outcome is unknown.
AMBIGUOUS = {Fault.RESET_AFTER, Fault.TRUNCATE, Fault.HTTP503}


def on_patch_retry(*faults: Fault | None) -> Any:
    """Return a fault script giving the n-th patch_retry request the n-th fault."""
    seen = 0

    def script(ctx: FaultContext) -> Fault | None:
        nonlocal seen
        if ctx.service != "patch_retry":
            return None
        seen += 1
        return faults[seen - 1] if seen <= len(faults) else None

    return script


def make_sim(config: SimulatorConfig | None = None, **kw: Any) -> Simulator:
    """Build a simulator over a seeded fleet where every device has patch management."""
    kw.setdefault("clients", 3)
    kw.setdefault("devices", 40)
    fleet = SimulatedFleet(seed="patchrun-tests", now=NOW, history_days=0, patch_fraction=1, **kw)
    return Simulator(fleet, config=config)


@asynccontextmanager
async def connect(sim: Simulator, **kw: Any) -> AsyncIterator[NsightClient]:
    """Yield an NsightClient talking to ``sim`` in process, with instant retry waits."""
    ft = FakeTime()
    async with httpx.AsyncClient(transport=SimulatorTransport(sim)) as http:
        kw.setdefault("max_at_once", 10)
        kw.setdefault("retry", FAST_RETRY)
        yield NsightClient(
            URL, SIMULATOR_API_KEY, http_client=http, clock=ft.clock, sleep=ft.sleep, seed=3, **kw
        )


async def make_plan(sim: Simulator) -> PatchPlan:
    """Plan the retry of every failed patch, with faults switched off while planning."""
    config = sim.config
    sim.configure(fault_rate=0.0, fault_script=None)
    async with connect(sim) as client:
        plan = await plan_patch_retry(client)
    sim.config = config
    sim.log.clear()
    return plan


async def execute(client: NsightClient, plan: PatchPlan | None, **kw: Any) -> list[PatchOutcome]:
    """Run execute_patch_plan to the end."""
    return [o async for o in execute_patch_plan(client, plan, **kw)]


def planned_pairs(plan: PatchPlan) -> list[tuple[int, int]]:
    """Return every (device, patch) the plan retries."""
    return [(i.device.device_id, p) for i in plan.items for p in i.patch_ids]


async def test_each_planned_patch_is_sent_exactly_once() -> None:
    """Executing a plan retries every planned patch once: all done, none sent twice."""
    sim = make_sim()
    plan = await make_plan(sim)
    assert plan.patch_count > 20
    async with connect(sim) as client:
        outcomes = await execute(client, plan)
    applied = sim.log.patch_retry_applied()
    assert sorted(applied) == sorted(planned_pairs(plan))
    assert len(set(applied)) == len(applied)
    assert len(outcomes) == len(plan.items)
    assert all(o.state == "done" and not o.earlier for o in outcomes)
    by_device = {i.device.device_id: i.patch_ids for i in plan.items}
    for o in outcomes:
        assert sorted(o.retrying) == sorted(by_device[o.device.device_id])
        assert o.already_applied == ()
    for device_id, patch_id in applied:
        status = {p.patchid: p.status for p in sim.patches(device_id)}[patch_id]
        assert status == 2  # failed → pending


async def test_second_execution_reports_already_applied() -> None:
    """Executing the same plan again (a new run) reports every patch as already applied."""
    sim = make_sim()
    plan = await make_plan(sim)
    async with connect(sim) as client:
        await execute(client, plan)
        again = await execute(client, plan)
        replan = await plan_patch_retry(client)
    assert all(o.state == "done" for o in again)
    assert all(o.retrying == () for o in again)
    assert sorted(p for o in again for p in o.already_applied) == sorted(
        p for _, p in planned_pairs(plan)
    )
    assert replan.items == ()


async def test_long_id_lists_are_split_and_each_chunk_sent_once() -> None:
    """A device with more ids than fit one URL gets one call per chunk, each sent once."""
    sim = make_sim(clients=1, devices=3)
    plan = await make_plan(sim)
    item = plan.items[0]
    many = [*item.patch_ids, *range(100_000, 100_600)]  # ids unknown to the device
    big = PlanItem(device=item.device, patches=tuple(PlannedPatch(patch_id=p) for p in many))
    plan = PatchPlan(created=plan.created, criteria={}, items=(big,))
    chunks = split_ids(many)
    assert len(chunks) > 1
    async with connect(sim) as client:
        outcomes = await execute(client, plan)
    assert sorted(o.chunk for o in outcomes) == list(range(len(chunks)))
    sent = [e.params["patchids"] for e in sim.log.patch_retry_sends()]
    assert sorted(sent) == sorted(",".join(map(str, c)) for c in chunks)
    assert all(o.state == "failed" for o in outcomes)  # unknown ids: the server refuses each


async def test_faults_never_send_twice_and_ambiguous_outcomes_are_unknown() -> None:
    """Under write faults no patch is applied twice, and each maybe-applied call is unknown."""
    kinds = (Fault.RESET_AFTER, Fault.TRUNCATE, Fault.HTTP503, Fault.HTTP429, Fault.REFUSE)
    config = SimulatorConfig(fault_rate=0.5, fault_kinds=kinds, fault_services={"patch_retry"})
    sim = make_sim(config, clients=4, devices=80)
    plan = await make_plan(sim)
    async with connect(sim) as client:
        outcomes = await execute(client, plan)
    sends = sim.log.patch_retry_sends()
    assert {e.fault for e in sends} >= {*AMBIGUOUS, Fault.HTTP429}
    applied = sim.log.patch_retry_applied()
    assert len(set(applied)) == len(applied), "a patch was applied twice"
    assert Counter(o.device.device_id for o in outcomes) == Counter(
        i.device.device_id for i in plan.items
    )
    for outcome in outcomes:
        device = str(outcome.device.device_id)
        mine = [e for e in sim.log.calls("patch_retry") if e.params["deviceid"] == device]
        processed = [e for e in mine if e.processed]
        assert len(processed) <= 1
        last = mine[-1]
        if outcome.state == "done":
            assert processed == [last]
            assert last.fault is None
        elif last.fault in AMBIGUOUS:
            assert outcome.state == "unknown", (outcome, last)
        if processed and outcome.state != "done":
            assert outcome.state == "unknown"
    assert Counter(o.state for o in outcomes)["unknown"] > 0
    assert Counter(o.state for o in outcomes)["done"] > 0


async def test_refused_and_rate_limited_writes_are_retried_to_done() -> None:
    """A refused connection or a 429 certainly did nothing, so the write is retried once more."""
    script = [Fault.REFUSE, Fault.HTTP429, Fault.REFUSE]
    sim = make_sim(SimulatorConfig(fault_script=on_patch_retry(*script)), clients=1, devices=4)
    plan = await make_plan(sim)
    plan = PatchPlan(created=plan.created, criteria={}, items=plan.items[:1])
    async with connect(sim, max_at_once=1) as client:
        (outcome,) = await execute(client, plan)
    assert outcome.state == "done"
    assert [e.fault for e in sim.log.calls("patch_retry")] == [*script, None]
    assert len(sim.log.patch_retry_applied()) == len(plan.items[0].patch_ids)


async def test_interrupted_run_resumes_without_resending(tmp_path: Path) -> None:
    """Closing a run midway then resuming reports earlier calls and sends only the rest, once."""
    sim = make_sim(clients=3, devices=50)
    plan = await make_plan(sim)
    path = tmp_path / "journal.sqlite"
    async with connect(sim, max_at_once=200) as client:  # queues never fill: about the journal
        with RunStore(path) as store:
            first = await stop_after(execute_patch_plan(client, plan, store=store), 8)
            assert store.latest_run("patch") is not None
        with RunStore(path) as store:
            later = await execute(client, None, store=store, resume=True)
            assert store.latest_run("patch") is None
    sent_first = {o.device.device_id for o in first}
    earlier = [o for o in later if o.earlier]
    assert {o.device.device_id for o in earlier} >= sent_first
    assert all(o.state == "done" for o in later)
    applied = sim.log.patch_retry_applied()
    assert sorted(applied) == sorted(planned_pairs(plan))
    assert len(set(applied)) == len(applied)
    assert len(later) == len(plan.items)


async def test_close_midway_with_a_backlog_returns_promptly(tmp_path: Path) -> None:
    """Closing a patch run while calls are queued behind the workers returns (no hang)."""
    sim = make_sim(SimulatorConfig(latency=0.01), clients=3, devices=60)
    plan = await make_plan(sim)
    async with connect(sim, max_at_once=2) as client:
        with RunStore(tmp_path / "journal.sqlite") as store:
            taken = await stop_after(execute_patch_plan(client, plan, store=store), 2)
    assert len(taken) == 2


async def _crash_after_intent(sim: Simulator, plan: PatchPlan, path: Path) -> tuple[str, PlanItem]:
    """Act out a crash: plan stored, one call done, the next journaled and sent, no result."""
    done, victim = plan.items[0], plan.items[1]
    with RunStore(path) as store:
        run = store.start_run("patch", {"plan_created": plan.created.isoformat()})
        store.save_plan(run, plan.to_json())
        async with connect(sim) as client:
            store.journal_intent(run, done.device.device_id, 0, done.patch_ids)
            result = await client.patch_retry(done.device.device_id, done.patch_ids)
            store.journal_result(
                run, done.device.device_id, 0, "done",
                result={"retrying": result.retrying, "already_applied": result.already_applied},
            )  # fmt: skip
            store.journal_intent(run, victim.device.device_id, 0, victim.patch_ids)
            await client.patch_retry(victim.device.device_id, victim.patch_ids)
        # ... and the process dies here: no result, the run never finished.
    return run, victim


async def test_resume_after_crash_reports_unknown_and_does_not_resend(tmp_path: Path) -> None:
    """An intent without a result is reported unknown on resume, and that call is not resent."""
    sim = make_sim(clients=3, devices=40)
    plan = await make_plan(sim)
    path = tmp_path / "journal.sqlite"
    run, victim = await _crash_after_intent(sim, plan, path)
    sends_before = len(sim.log.patch_retry_sends())
    async with connect(sim) as client:
        with RunStore(path) as store:
            later = await execute(client, None, store=store, resume=True)
            entry = next(e for e in store.journal(run) if e["device_id"] == victim.device.device_id)
    (mine,) = [o for o in later if o.device.device_id == victim.device.device_id]
    assert mine.state == "unknown"
    assert mine.earlier
    assert "resend_unknown" in (mine.error or "")
    assert entry["state"] == "unknown"
    new = sim.log.patch_retry_sends()[sends_before:]
    assert str(victim.device.device_id) not in {e.params["deviceid"] for e in new}
    applied = sim.log.patch_retry_applied()
    assert len(set(applied)) == len(applied)
    assert sorted(applied) == sorted(planned_pairs(plan))


async def test_resend_unknown_sends_the_unknown_call_again(tmp_path: Path) -> None:
    """resume with resend_unknown re-sends a call whose outcome was unknown (already applied)."""
    sim = make_sim(clients=3, devices=40)
    plan = await make_plan(sim)
    path = tmp_path / "journal.sqlite"
    _, victim = await _crash_after_intent(sim, plan, path)
    sends_before = len(sim.log.patch_retry_sends())
    async with connect(sim) as client:
        with RunStore(path) as store:
            later = await execute(client, None, store=store, resume=True, resend_unknown=True)
    (mine,) = [o for o in later if o.device.device_id == victim.device.device_id]
    assert mine.state == "done"
    assert not mine.earlier
    assert sorted(mine.already_applied) == sorted(victim.patch_ids)
    new = sim.log.patch_retry_sends()[sends_before:]
    assert [e.params["deviceid"] for e in new].count(str(victim.device.device_id)) == 1


async def test_unknown_outcomes_can_be_resent_by_a_later_resume(tmp_path: Path) -> None:
    """After a run reports unknown outcomes, resume with resend_unknown re-sends them.

    The unknown message tells the user to "resume with resend_unknown", so the
    run that reported it must stay resumable.
    """
    # The first write is applied but its answer is lost.
    sim = make_sim(
        SimulatorConfig(fault_script=on_patch_retry(Fault.RESET_AFTER)), clients=1, devices=6
    )
    plan = await make_plan(sim)
    path = tmp_path / "journal.sqlite"
    async with connect(sim, max_at_once=1) as client:
        with RunStore(path) as store:
            first = await execute(client, plan, store=store)
            assert [o.state for o in first].count("unknown") == 1
            again = await execute(client, None, store=store, resume=True, resend_unknown=True)
    (resent,) = [o for o in again if not o.earlier]
    assert resent.state == "done"


async def test_nothing_to_execute_is_an_argument_error(tmp_path: Path) -> None:
    """Without a plan and with no unfinished run to resume, execution refuses to start."""
    sim = make_sim(clients=1, devices=3)
    async with connect(sim) as client:
        with RunStore(tmp_path / "j.sqlite") as store, pytest.raises(InvalidArgumentError):
            await execute(client, None, store=store, resume=True)
    assert sim.log.count("patch_retry") == 0


async def test_replaying_a_plan_in_the_same_journal_is_refused(tmp_path: Path) -> None:
    """A plan already executed in a journal is refused there, before anything is sent."""
    sim = make_sim()
    plan = await make_plan(sim)
    with RunStore(tmp_path / "journal.sqlite") as store:
        async with connect(sim) as client:
            await execute(client, plan, store=store)
            sent = len(sim.log.patch_retry_sends())
            with pytest.raises(InvalidArgumentError, match="already executed"):
                await execute(client, plan, store=store)
    assert len(sim.log.patch_retry_sends()) == sent


async def test_a_new_run_beside_an_unfinished_one_is_refused(tmp_path: Path) -> None:
    """Starting over instead of resuming is refused, so calls in flight are never resent."""
    sim = make_sim()
    plan = await make_plan(sim)
    with RunStore(tmp_path / "journal.sqlite") as store:
        async with connect(sim) as client:
            await stop_after(execute_patch_plan(client, plan, store=store), 2)
            sent = len(sim.log.patch_retry_sends())
            replan = await plan_patch_retry(client)
            with pytest.raises(InvalidArgumentError, match="unfinished patch run"):
                await execute(client, replan, store=store)
    assert len(sim.log.patch_retry_sends()) == sent
