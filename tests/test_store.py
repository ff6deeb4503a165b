"""Tests for nsight_async._store: the SQLite run store (outcomes, listings, patch journal).

The store is plain stdlib ``sqlite3`` on a temporary file; a second connection
(or a second process killed mid-run) checks what is really committed.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsight_async import CheckCounts, DeviceAtClient, DeviceKind, OutcomeRow, RunStore


def device(device_id: int, *, client_id: int = 1, **kw: object) -> DeviceAtClient:
    """Build a device record at client ``client_id``."""
    return DeviceAtClient(
        kind=kw.pop("kind", DeviceKind.WORKSTATION),  # type: ignore[arg-type]
        device_id=device_id,
        name=f"WS-{device_id}",
        client_id=client_id,
        client_name=f"Client {client_id}",
        site_id=client_id * 10,
        site_name="Main Office",
        **kw,  # type: ignore[arg-type]
    )


def row(device_id: int, status: str = "ok", **kw: object) -> OutcomeRow:
    """Build an outcome row for one device."""
    return OutcomeRow(device=device(device_id), status=status, **kw)  # type: ignore[arg-type]


def committed(path: Path, sql: str = "SELECT COUNT(*) FROM outcomes") -> int:
    """Count rows as another connection (another process) sees them."""
    with sqlite3.connect(path) as other:
        return int(other.execute(sql).fetchone()[0])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    """A store on a temporary file, flushed only by batch size or explicitly."""
    with RunStore(tmp_path / "runs.sqlite", batch_size=50, flush_interval=3600) as opened:
        yield opened


def test_runs_are_created_listed_and_finished(store: RunStore) -> None:
    """start_run creates a running run; latest_run finds the newest unfinished one by kind."""
    first = store.start_run("audit", {"a": 1})
    second = store.start_run("audit", {"a": 2})
    patch = store.start_run("patch", {})
    assert store.latest_run("audit") == second
    assert store.run_params(first) == {"a": 1}
    store.finish_run(second)
    assert store.latest_run("audit") == first
    assert store.latest_run("audit", unfinished=False) == second
    store.finish_run(first, "interrupted")
    assert store.latest_run("audit") == first
    assert store.latest_run("patch") == patch
    with pytest.raises(KeyError):
        store.run_params("nope")


def test_batches_commit_whole_and_only_when_full(store: RunStore) -> None:
    """Rows are invisible to other connections until their batch of 50 commits, then all are."""
    run = store.start_run("audit", {})
    for i in range(49):
        store.record(run, row(i))
    assert committed(store.path) == 0
    store.record(run, row(49))
    assert committed(store.path) == 50
    for i in range(50, 70):
        store.record(run, row(i))
    assert committed(store.path) == 50
    store.flush()
    assert committed(store.path) == 70


def test_flush_interval_commits_a_partial_batch(tmp_path: Path) -> None:
    """With a zero flush interval every record commits at once."""
    with RunStore(tmp_path / "s.sqlite", batch_size=1000, flush_interval=0) as store:
        run = store.start_run("audit", {})
        store.record(run, row(1))
        assert committed(store.path) == 1


def test_killed_process_keeps_exactly_the_committed_batches(tmp_path: Path) -> None:
    """A process killed mid-run (no flush, no close) leaves whole batches and nothing else."""
    path = tmp_path / "runs.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from nsight_async import DeviceAtClient, DeviceKind, OutcomeRow, RunStore
        store = RunStore({str(path)!r}, batch_size=100, flush_interval=3600)
        run = store.start_run("audit", {{}})
        for i in range(250):
            d = DeviceAtClient(kind=DeviceKind.SERVER, device_id=i, client_id=1,
                               client_name="c", site_id=2, site_name="s")
            store.record(run, OutcomeRow(device=d, status="ok"))
        os._exit(9)  # like kill -9: no flush, no close
        """
    )
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    with RunStore(path) as store:
        run = store.latest_run("audit")
        assert run is not None
        assert store.done_devices(run) == set(range(200))


def test_outcomes_round_trip_and_flush_pending(store: RunStore) -> None:
    """outcomes() flushes what is pending and returns rows with their detail decoded."""
    run = store.start_run("audit", {})
    store.record(run, row(2, verdict="healthy", detail={"sessions": 3, "daily": {"d": [1, 0]}}))
    store.record(run, row(1, "error", verdict="not_audited", error_type="ParseError", error="bad"))
    rows = list(store.outcomes(run))
    assert [r["device_id"] for r in rows] == [1, 2]
    assert rows[0]["status"] == "error"
    assert rows[0]["error_type"] == "ParseError"
    assert rows[0]["detail"] is None
    assert rows[1]["detail"] == {"sessions": 3, "daily": {"d": [1, 0]}}
    assert rows[1]["client_name"] == "Client 1"
    assert rows[1]["device_kind"] == "workstation"


def test_a_device_is_recorded_once(store: RunStore) -> None:
    """Recording the same device twice in a run keeps the first outcome only."""
    run = store.start_run("audit", {})
    store.record(run, row(7, verdict="healthy"))
    store.flush()
    store.record(run, row(7, "error", verdict="not_audited"))
    store.record(run, row(7, verdict="stale"))
    rows = list(store.outcomes(run))
    assert [(r["device_id"], r["verdict"]) for r in rows] == [(7, "healthy")]


def test_done_devices_are_per_run(store: RunStore) -> None:
    """done_devices returns the recorded device ids of one run only."""
    a, b = store.start_run("audit", {}), store.start_run("audit", {})
    for i in (1, 2, 3):
        store.record(a, row(i))
    store.record(b, row(9))
    store.flush()
    assert store.done_devices(a) == {1, 2, 3}
    assert store.done_devices(b) == {9}


def test_forget_errors_drops_only_error_rows(store: RunStore) -> None:
    """forget_errors removes the error outcomes (pending ones too), keeping ok and skipped."""
    run = store.start_run("audit", {})
    store.record(run, row(1))
    store.record(run, row(2, "error"))
    store.record(run, row(3, "skipped"))
    store.forget_errors(run)
    assert store.done_devices(run) == {1, 3}


def test_listing_cache_round_trips_devices(store: RunStore) -> None:
    """A saved listing comes back equal, field for field; an unsaved one is None."""
    run = store.start_run("audit", {})
    devices = [
        device(1, mob=True, patch=True, checks=CheckCounts(dsc_247=1, passed=5, failed=2)),
        device(2, kind=DeviceKind.SERVER, extra={"custom": "x"}),
    ]
    assert store.listing(run, 1, "workstation") is None
    store.save_listing(run, 1, "workstation", devices)
    store.save_listing(run, 1, "server", [])
    assert store.listing(run, 1, "workstation") == devices
    assert store.listing(run, 1, "server") == []
    assert store.listing(run, 2, "workstation") is None


def test_client_failures_are_recorded_and_cleared(store: RunStore) -> None:
    """record_client_failure keeps one row per client and type; clear forgets them."""
    run = store.start_run("audit", {})
    store.record_client_failure(run, 5, "Acme", "server", ValueError("first"))
    store.record_client_failure(run, 5, "Acme", "server", KeyError("second"))
    store.record_client_failure(run, 5, "Acme", "workstation", ValueError("w"))
    failures = store.client_failures(run)
    assert len(failures) == 2
    server = next(f for f in failures if f["device_type"] == "server")
    assert server["error_type"] == "KeyError"
    store.clear_client_failures(run)
    assert store.client_failures(run) == []


def test_journal_states_from_intent_to_result(store: RunStore) -> None:
    """An intent is committed as 'sending' before the call; the result updates it durably."""
    run = store.start_run("patch", {})
    store.journal_intent(run, 10, 0, [4, 5, 6])
    store.journal_intent(run, 10, 1, [7])
    store.journal_intent(run, 11, 0, [1])
    sql = "SELECT COUNT(*) FROM journal WHERE state = 'sending'"
    assert committed(store.path, sql) == 3  # durable before anything is sent
    store.journal_result(run, 10, 0, "done", result={"retrying": [4], "already_applied": [5, 6]})
    store.journal_result(run, 10, 1, "unknown", error="reset")
    entries = {(e["device_id"], e["chunk"]): e for e in store.journal(run)}
    assert entries[(10, 0)]["state"] == "done"
    assert entries[(10, 0)]["patch_ids"] == [4, 5, 6]
    assert entries[(10, 0)]["result"] == {"retrying": [4], "already_applied": [5, 6]}
    assert entries[(10, 1)]["state"] == "unknown"
    assert entries[(10, 1)]["error"] == "reset"
    assert entries[(11, 0)]["state"] == "sending"
    assert entries[(11, 0)]["result"] is None


def test_journal_refuses_a_second_intent_for_the_same_call(store: RunStore) -> None:
    """The same (run, device, chunk) cannot be journaled twice: a call is never planned twice."""
    run = store.start_run("patch", {})
    store.journal_intent(run, 10, 0, [1])
    with pytest.raises(sqlite3.IntegrityError):
        store.journal_intent(run, 10, 0, [1])
    store.forget_intent(run, 10, 0)
    store.journal_intent(run, 10, 0, [1])
    assert [e["state"] for e in store.journal(run)] == ["sending"]


def test_plan_is_stored_per_run(store: RunStore) -> None:
    """save_plan keeps a run's plan as JSON; a run without one has None."""
    run = store.start_run("patch", {})
    assert store.plan(run) is None
    store.save_plan(run, {"items": [{"device": 1}], "created": "2026-01-01T00:00:00+00:00"})
    assert store.plan(run) == {"items": [{"device": 1}], "created": "2026-01-01T00:00:00+00:00"}


def test_reopened_store_sees_everything_committed(tmp_path: Path) -> None:
    """Closing flushes; reopening the file finds the runs, outcomes, listings and journal."""
    path = tmp_path / "runs.sqlite"
    with RunStore(path, batch_size=1000, flush_interval=3600) as store:
        run = store.start_run("audit", {"x": 1})
        store.record(run, row(1))
        store.save_listing(run, 1, "server", [device(1)])
        store.journal_intent(run, 1, 0, [3])
    with RunStore(path) as store:
        assert store.latest_run("audit") == run
        assert store.done_devices(run) == {1}
        assert store.listing(run, 1, "server") == [device(1)]
        assert store.journal(run)[0]["patch_ids"] == [3]
