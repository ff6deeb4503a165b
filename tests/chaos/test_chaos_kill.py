"""``kill -9`` of a real ``nsight-async backup-audit`` process, then ``--resume``.

One simulator subprocess (a deterministic fleet, with latency and a client rate so
a run lasts a few seconds) serves every run. The audit is SIGKILLed at a seeded
random moment (sometimes its first resume too), resumed until it exits, and its
store is compared with an uninterrupted run's store.

The CLI stamps a new audit with the wall clock (``AuditSettings.now``) and has no
option to fix it, while ``detail`` (ages, window counts, daily buckets) and even the
verdict depend on ``now``. So the exact comparison seeds the store with a run
whose ``now`` is fixed (through the library's ``RunStore``) and drives the CLI with
``--resume`` only; the realistic path (a plain first run) is compared on the fields
that do not depend on ``now``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chaos_support import CLI, FULL, cli_env, simulator_process, stop_process

from nsight_async import AuditSettings, RunStore
from nsight_async.testing import SIMULATOR_API_KEY

pytestmark = pytest.mark.chaos

SIM_ARGS = ["--seed", "chaos-kill", "--clients", "6", "--devices", "360", "--latency", "0.01"]
#: Calls per minute for the audited client: ~250 calls take ~3 s (plus ~1 s of start-up).
RATE = "5000"
NOW = datetime.now(UTC).replace(microsecond=0)
EXACT_SEEDS = range(8) if FULL else range(3)
REALISTIC_SEEDS = range(100, 104) if FULL else range(100, 101)
#: Fields of DeviceAudit that do not depend on the audit's reference time.
TIMELESS = (
    "sessions",
    "last_session_start",
    "last_session_status",
    "last_success",
    "last_success_by_plugin",
    "consecutive_failures",
)


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One simulator subprocess for every run of this module (same fleet throughout)."""
    log = tmp_path_factory.mktemp("kill-sim") / "simulator.log"
    with simulator_process(SIM_ARGS, log) as url:
        yield url


def seed_run(path: Path) -> None:
    """Start an audit run in ``path`` whose reference time is the fixed ``NOW``."""
    with RunStore(path) as store:
        store.start_run("audit", {"settings": AuditSettings(now=NOW).to_json()})


def audit_argv(store: Path, *, resume: bool) -> list[str]:
    """The audit command line."""
    argv = [CLI, "backup-audit", "--out", str(store), "--quiet", "--max-per-minute", RATE]
    return [*argv, "--max-at-once", "4", *(["--resume"] if resume else [])]


def run_to_end(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run the CLI until it exits by itself (bounded); return its exit code."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=120, check=False)
    assert done.returncode in {0, 1, 5}, done.stderr.decode(errors="replace")[-2000:]
    return done.returncode


def kill_after(argv: list[str], env: dict[str, str], cwd: Path, delay: float) -> bool:
    """Start the CLI, SIGKILL it after ``delay`` seconds; return whether it was still running."""
    with (cwd / "killed.stderr").open("ab") as errors:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            if proc.poll() is not None:
                return False
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            return True
        finally:
            stop_process(proc)


def outcomes(path: Path) -> dict[int, dict[str, Any]]:
    """The first run's outcomes by device, without ``recorded_at`` and ``run_id``.

    A kill can land after the audit marked its run finished (while the process
    writes its summary); the next ``--resume`` then finds nothing unfinished and
    starts a second, complete run. The run under test is the first one.
    """
    db = sqlite3.connect(path)
    try:
        runs = db.execute("SELECT run_id, status FROM runs ORDER BY rowid").fetchall()
        assert runs, "no run was recorded"
        assert all(status == "finished" for _, status in runs), runs
        cursor = db.execute(
            "SELECT device_id, client_id, site_id, device_kind, status, verdict, detail, "
            "error_type, error FROM outcomes WHERE run_id = ? ORDER BY device_id",
            (runs[0][0],),
        )
        names = [c[0] for c in cursor.description]
        rows = {}
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["detail"] = json.loads(row["detail"]) if row["detail"] else None
            rows[row["device_id"]] = row
        return rows
    finally:
        db.close()


def timeless(rows: dict[int, dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """Keep only what does not depend on the audit's reference time."""
    out = {}
    for device_id, row in rows.items():
        detail = row["detail"] or {}
        out[device_id] = (row["status"], *(detail.get(k) for k in TIMELESS))
    return out


@pytest.fixture(scope="module")
def reference(sim_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The outcomes of one uninterrupted run with the fixed ``NOW``."""
    work = tmp_path_factory.mktemp("kill-reference")
    store = work / "reference.sqlite"
    seed_run(store)
    run_to_end(audit_argv(store, resume=True), cli_env(sim_url, SIMULATOR_API_KEY), work)
    rows = outcomes(store)
    assert len(rows) > 100
    assert all(r["status"] in {"ok", "skipped"} for r in rows.values())
    return rows


def kill_and_resume(sim_url: str, store: Path, work: Path, seed: int, *, first_resume: bool) -> int:
    """Kill the audit (and, for some seeds, its first resume), then resume to the end."""
    rng = random.Random(seed)
    env = cli_env(sim_url, SIMULATOR_API_KEY)
    kills = 0
    if kill_after(audit_argv(store, resume=first_resume), env, work, rng.uniform(0.3, 2.8)):
        kills += 1
    if rng.random() < 0.5 and kill_after(
        audit_argv(store, resume=True), env, work, rng.uniform(0.8, 2.5)
    ):
        kills += 1
    for _ in range(3):  # a resume is not killed, so one suffices; bounded all the same
        if run_to_end(audit_argv(store, resume=True), env, work) in {0, 1, 5}:
            break
    return kills


@pytest.mark.parametrize("seed", EXACT_SEEDS)
def test_killed_audit_resumes_to_the_same_store(
    seed: int, sim_url: str, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    """An audit SIGKILLed at a random moment and resumed records exactly the uninterrupted run."""
    store = tmp_path / "store.sqlite"
    seed_run(store)
    kills = kill_and_resume(sim_url, store, tmp_path, seed, first_resume=True)
    assert kills >= 1, "the audit finished before the kill: lower the delay or slow the run"
    got = outcomes(store)
    assert sorted(got) == sorted(reference), "devices missing or extra after resume"
    different = [d for d in reference if got[d] != reference[d]]
    assert not different, f"{len(different)} devices differ, e.g. {got[different[0]]}"


@pytest.mark.parametrize("seed", REALISTIC_SEEDS)
def test_killed_plain_audit_resumes_to_the_same_timeless_outcomes(
    seed: int, sim_url: str, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    """A plain first run SIGKILLed and resumed matches the reference on time-independent fields."""
    store = tmp_path / "store.sqlite"
    kills = kill_and_resume(sim_url, store, tmp_path, seed, first_resume=False)
    assert kills >= 1, "the audit finished before the kill: lower the delay or slow the run"
    assert timeless(outcomes(store)) == timeless(reference)
