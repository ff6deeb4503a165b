"""Tests for nsight_async._auditjob: backup_audit end to end, with the run store and resume.

The real client talks to the project's own fake, the simulator, in process;
expected verdicts come from the fleet's ground-truth sessions fed to the pure
:class:`SessionDigest`, and the request log witnesses every call spent.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support import failing_device, stop_after

from nsight_async import (
    AuditResult,
    AuditSettings,
    ClientFailure,
    DeviceAudit,
    Filters,
    Health,
    MobSession,
    NsightClient,
    Plugin,
    RetryPolicy,
    RunStore,
    SessionDigest,
    SessionStatus,
    SessionType,
    backup_audit,
)
from nsight_async.testing import (
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    in_process_client,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = AuditSettings(now=NOW)
URL = "http://127.0.0.1:1"
FAST_RETRY = RetryPolicy(attempts=8, timeout=None, wait_initial=0.001, wait_max=0.01)


connect = in_process_client


def make_fleet(**kw: Any) -> SimulatedFleet:
    """Build a seeded fleet ending at NOW with a short history."""
    kw.setdefault("seed", "auditjob-tests")
    kw.setdefault("history_days", 8)
    return SimulatedFleet(now=NOW, **kw)


def expected_audit(fleet: SimulatedFleet, device_id: int) -> DeviceAudit:
    """Digest the device's ground-truth sessions (as the client's records) at NOW."""
    digest = SessionDigest(now=NOW)
    for s in fleet.sessions(device_id):
        digest.add(
            MobSession(
                session_id=s.session_id,
                type=SessionType(s.type),
                plugin=Plugin(s.plugin),
                status=SessionStatus(s.status),
                start=s.start,
                end=s.end,
                storage_account_id=s.storage_account_id,
                selection_size=s.selection_size,
                selection_item_count=s.selection_item_count,
                size_change=s.size_change,
                item_count_change=s.item_count_change,
                removed_item_count=s.removed_item_count,
                processed_size=s.processed_size,
                processed_item_count=s.processed_item_count,
                transferred_size=s.transferred_size,
                error_count=s.error_count,
            )
        )
    return digest.result()


async def audit_all(client: NsightClient, **kw: Any) -> list[AuditResult | ClientFailure]:
    """Run backup_audit to the end and return every item."""
    kw.setdefault("settings", SETTINGS)
    return [r async for r in backup_audit(client, **kw)]


def results(items: list[AuditResult | ClientFailure]) -> list[AuditResult]:
    """Keep the per-device results."""
    return [r for r in items if isinstance(r, AuditResult)]


async def test_audit_matches_ground_truth_with_the_fewest_calls() -> None:
    """Every device gets the verdict its true history gives, for 1 + 2·clients + mob calls."""
    fleet = make_fleet(clients=6, devices=200)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        items = await audit_all(client)
    assert len(sim.log) == 1 + 2 * fleet.n_clients + fleet.n_mob_devices
    by_id = {r.device.device_id: r for r in results(items)}
    assert len(by_id) == len(items) == fleet.n_devices
    for device in fleet.iter_devices():
        result = by_id[device.device_id]
        if device.mob:
            assert result.audit == expected_audit(fleet, device.device_id)
            assert result.health is result.audit.health
        else:
            assert result.health is Health.NOT_ENABLED
            assert result.audit is None
            assert "mob=0" in (result.reason or "")
    assert {r.health for r in by_id.values()} >= {Health.HEALTHY, Health.NEVER, Health.FAILING}


async def test_unfetchable_device_is_not_audited_with_its_error() -> None:
    """A device whose sessions cannot be fetched is NOT_AUDITED and carries the error."""
    fleet = make_fleet(clients=3, devices=50, mob_fraction=1.0)
    sim, victim = failing_device(fleet)
    async with connect(sim) as client:
        items = results(await audit_all(client))
    bad = [r for r in items if r.health is Health.NOT_AUDITED]
    assert [r.device.device_id for r in bad] == [victim]
    assert bad[0].error is not None
    assert bad[0].audit is None


async def test_store_records_every_result_and_finishes_the_run(tmp_path: Path) -> None:
    """With a store, each result is recorded as it arrives and the run ends finished."""
    fleet = make_fleet(clients=4, devices=90)
    sim = Simulator(fleet)
    runs: list[str] = []
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with connect(sim) as client:
            items = results(await audit_all(client, store=store, on_run=runs.append))
        (run,) = runs
        rows = list(store.outcomes(run))
        assert store.latest_run("audit") is None  # finished
        assert store.latest_run("audit", unfinished=False) == run
        assert AuditSettings.from_json(store.run_params(run)["settings"]) == SETTINGS
    assert [r["device_id"] for r in rows] == sorted(r.device.device_id for r in items)
    verdicts = {r["device_id"]: r["verdict"] for r in rows}
    assert all(verdicts[r.device.device_id] == r.health.value for r in items)
    statuses = Counter(r["status"] for r in rows)
    assert statuses == {"ok": fleet.n_mob_devices, "skipped": fleet.n_devices - fleet.n_mob_devices}


async def test_close_midway_then_resume_records_every_device_once(tmp_path: Path) -> None:
    """Closing the audit midway keeps the store consistent; a resume finishes the rest once."""
    fleet = make_fleet(clients=5, devices=120)
    sim = Simulator(fleet)
    path = tmp_path / "runs.sqlite"
    # Enough workers that the pool's queues never fill: this test is about the store.
    async with connect(sim, max_at_once=300) as client:
        with RunStore(path) as store:
            gen = backup_audit(client, settings=SETTINGS, store=store)
            first = await stop_after(gen, 40)
            run = store.latest_run("audit")
            assert run is not None
            assert store.done_devices(run) == {r.device.device_id for r in first}
            listed = {
                c.client_id
                for c in fleet.clients
                if store.listing(run, c.client_id, "server") is not None
                and store.listing(run, c.client_id, "workstation") is not None
            }
        sim.log.clear()
        with RunStore(path) as store:  # a new process would reopen the file
            later = results(await audit_all(client, settings=None, store=store, resume=True))
            assert store.latest_run("audit") is None
            rows = list(store.outcomes(run))
    relisted = {int(e.params["clientid"]) for e in sim.log.calls("list_devices_at_client")}
    assert relisted.isdisjoint(listed)
    counts = Counter(r.device.device_id for r in [*first, *later])
    assert set(counts) == set(fleet.device_ids())
    assert max(counts.values()) == 1
    assert len(rows) == fleet.n_devices
    again = {int(e.params["deviceid"]) for e in sim.log.calls("list_mob_sessions")}
    assert again.isdisjoint(r.device.device_id for r in first)


async def test_close_midway_with_a_backlog_returns_promptly(tmp_path: Path) -> None:
    """Closing an audit whose enumeration ran ahead of the workers returns (no hang)."""
    fleet = make_fleet(clients=4, devices=300, mob_fraction=1.0)
    sim = Simulator(fleet, config=SimulatorConfig(latency=0.01))  # calls slower than listing
    async with connect(sim, max_at_once=4) as client:
        with RunStore(tmp_path / "runs.sqlite") as store:
            gen = backup_audit(client, settings=SETTINGS, store=store)
            taken = await stop_after(gen, 5)
            run = store.latest_run("audit")
            assert run is not None
            assert store.done_devices(run) == {r.device.device_id for r in taken}


async def test_resume_keeps_the_settings_the_run_started_with(tmp_path: Path) -> None:
    """A resumed run judges by the reference time it started with, not a new one."""
    fleet = make_fleet(clients=3, devices=60)
    sim = Simulator(fleet)
    async with connect(sim, max_at_once=300) as client:
        with RunStore(tmp_path / "runs.sqlite") as store:
            await stop_after(backup_audit(client, settings=SETTINGS, store=store), 5)
            other = AuditSettings(now=NOW + timedelta(days=30))
            later = results(await audit_all(client, settings=other, store=store, resume=True))
    for r in later:
        if r.audit is not None:
            assert r.audit == expected_audit(fleet, r.device.device_id)


async def test_client_failure_marks_run_incomplete_and_resume_lists_only_it(
    tmp_path: Path,
) -> None:
    """A failed client listing leaves the run resumable; the resume lists only that client."""
    fleet = make_fleet(clients=5, devices=100)
    bad = fleet.clients[2]
    broken = True

    def script(ctx: FaultContext) -> Fault | None:
        is_bad = ctx.service == "list_devices_at_client" and ctx.params["clientid"] == str(
            bad.client_id
        )
        return Fault.FAIL4 if broken and is_bad else None

    sim = Simulator(fleet, config=SimulatorConfig(fault_script=script))
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with connect(sim) as client:
            items = await audit_all(client, store=store)
            failures = [i for i in items if isinstance(i, ClientFailure)]
            assert {f.client.client_id for f in failures} == {bad.client_id}
            run = store.latest_run("audit")
            assert run is not None  # incomplete, so resumable
            assert {f["client_id"] for f in store.client_failures(run)} == {bad.client_id}
            broken = False
            sim.log.clear()
            later = results(await audit_all(client, store=store, resume=True))
        assert store.latest_run("audit") is None
        assert store.client_failures(run) == []
        assert len(list(store.outcomes(run))) == fleet.n_devices
    listed = {int(e.params["clientid"]) for e in sim.log.calls("list_devices_at_client")}
    assert listed == {bad.client_id}
    assert {r.device.client_id for r in later} == {bad.client_id}


async def test_retry_errors_on_resume_audits_failed_devices_again(tmp_path: Path) -> None:
    """resume with retry_errors re-audits the devices that failed, and only those."""
    fleet = make_fleet(clients=3, devices=60, mob_fraction=1.0)
    victims = set(list(fleet.device_ids())[:3])
    broken = True

    def script(ctx: FaultContext) -> Fault | None:
        hit = ctx.device_id is not None and int(ctx.device_id) in victims
        return Fault.FAIL4 if broken and hit else None

    sim = Simulator(fleet, config=SimulatorConfig(fault_script=script))
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with connect(sim, max_at_once=300) as client:
            await stop_after(backup_audit(client, settings=SETTINGS, store=store), 50)
            rest = results(await audit_all(client, store=store, resume=True))  # still broken
            run = store.latest_run("audit", unfinished=False)
            assert run is not None
            errors = {r["device_id"] for r in store.outcomes(run) if r["status"] == "error"}
            assert errors == victims, rest
            broken = False
            sim.log.clear()
            store._db.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", (run,))
            again = results(await audit_all(client, store=store, resume=True, retry_errors=True))
        assert {r.device.device_id for r in again} == victims
        assert all(r.health is not Health.NOT_AUDITED for r in again)
        assert sim.log.count("list_mob_sessions") == len(victims)


async def test_retry_errors_works_after_a_run_that_finished_with_errors(tmp_path: Path) -> None:
    """A run that ended with device errors can be resumed with retry_errors to redo just those."""
    fleet = make_fleet(clients=3, devices=40, mob_fraction=1.0)
    victim = next(iter(fleet.device_ids()))
    broken = True

    def script(ctx: FaultContext) -> Fault | None:
        return Fault.FAIL4 if broken and ctx.device_id == str(victim) else None

    sim = Simulator(fleet, config=SimulatorConfig(fault_script=script))
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with connect(sim) as client:
            first = results(await audit_all(client, store=store))
            assert [r.device.device_id for r in first if r.error] == [victim]
            broken = False
            sim.log.clear()
            again = results(await audit_all(client, store=store, resume=True, retry_errors=True))
    assert [r.device.device_id for r in again] == [victim]
    assert sim.log.count("list_mob_sessions") == 1


async def test_filters_are_applied_to_the_audit() -> None:
    """Filters given to backup_audit narrow the clients listed and devices audited."""
    fleet = make_fleet(clients=5, devices=100)
    target = fleet.clients[0].client_id
    sim = Simulator(fleet)
    async with connect(sim) as client:
        items = results(await audit_all(client, filters=Filters(clients=[target])))
    assert {r.device.client_id for r in items} == {target}
    assert sim.log.count("list_devices_at_client") == 2
