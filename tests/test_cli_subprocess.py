"""The ``nsight-async`` console script run as a real process against a simulator process.

The simulator is started as ``python -m nsight_async.testing --port 0`` and
prints its URL when ready; every process started here is stopped in a
``finally`` by its own handle, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsight_async._version import __version__

KEY = "sk-CLITEST-7f3c9a"
BIN = Path(sys.executable).parent
NSIGHT = str(BIN / "nsight-async")
FLEET = ["--clients", "6", "--devices", "200", "--latency", "0.02", "--seed", "cli-subprocess"]


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """Stop one process we started, politely first, then for sure."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    """Start the simulator process on a free loopback port and yield the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsight_async.testing", "--port", "0", *FLEET, "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
    reader.start()
    try:
        try:
            url = lines.get(timeout=15).strip()
        except queue.Empty:
            pytest.fail("the simulator did not print its URL within 15 s")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def env(simulator_url: str, tmp_path: Path) -> dict[str, str]:
    """A technician's environment: server and key set, no other NSIGHT_* setting, no config."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NSIGHT_")}
    clean.update(HOME=str(tmp_path), NSIGHT_SERVER=simulator_url, NSIGHT_API_KEY=KEY)
    return clean


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion (bounded) and capture its output."""
    return subprocess.run(
        [NSIGHT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def assert_no_key(*texts: str) -> None:
    """Fail if the API key appears in any text."""
    for text in texts:
        assert KEY not in text


def assert_no_key_in_files(directory: Path) -> None:
    """Fail if the API key appears in any file under ``directory``."""
    for path in directory.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the API key is in {path.name}"


def fleet_devices(env: dict[str, str], cwd: Path) -> dict[int, dict[str, object]]:
    """The simulator's fleet as the CLI lists it: device id → record."""
    listed = cli("devices", "--format", "jsonl", "-q", env=env, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    devices = {int(r["device_id"]): r for r in records}
    assert len(devices) == len(records)
    return devices


def store_rows(path: Path) -> list[int]:
    """The device ids recorded in a run store (empty while it does not exist yet)."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return [r[0] for r in db.execute("SELECT device_id FROM outcomes")]
        except sqlite3.OperationalError:  # the schema is not written yet
            return []


# -- entry points ------------------------------------------------------------------


def test_python_dash_m_help_works() -> None:
    """``python -m nsight_async --help`` exits 0 and lists the subcommands."""
    done = subprocess.run(
        [sys.executable, "-m", "nsight_async", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "backup-audit" in done.stdout
    assert "patch-retry" in done.stdout


def test_console_script_version() -> None:
    """``nsight-async --version`` exits 0 and prints the package version."""
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nsight-async {__version__}"


def test_console_script_simulate_help() -> None:
    """``nsight-async simulate --help`` exits 0 and documents the simulator's options."""
    done = cli("simulate", "--help")
    assert done.returncode == 0, done.stderr
    assert "--port" in done.stdout


def test_console_script_usage_error_exits_two(tmp_path: Path) -> None:
    """An unknown flag makes the process exit 2."""
    done = cli("clients", "--demo", "--no-such-flag", cwd=tmp_path)
    assert done.returncode == 2
    assert "--no-such-flag" in done.stderr


def test_console_script_wrong_key_exits_three(env: dict[str, str], tmp_path: Path) -> None:
    """A rejected key makes the process exit 3, naming the key or region, printing neither key."""
    wrong = "sk-NOTTHEKEY-00c0ffee"
    done = cli("clients", "-vv", env={**env, "NSIGHT_API_KEY": wrong}, cwd=tmp_path)
    assert done.returncode == 3
    assert "API key" in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert_no_key(done.stdout, done.stderr)


# -- the audit as a process ------------------------------------------------------------


def test_audit_to_sqlite_records_every_device(env: dict[str, str], tmp_path: Path) -> None:
    """``backup-audit --out x.sqlite`` records each device of the simulated fleet once."""
    devices = fleet_devices(env, tmp_path)
    done = cli("backup-audit", "--out", "audit.sqlite", "-q", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ids = store_rows(tmp_path / "audit.sqlite")
    assert sorted(ids) == sorted(devices)
    assert re.search(rf"total\W+{len(devices)}\b", done.stdout), done.stdout
    assert_no_key(done.stdout, done.stderr)
    assert_no_key_in_files(tmp_path)


def test_sigint_mid_audit_then_resume(env: dict[str, str], tmp_path: Path) -> None:
    """SIGINT mid-audit exits 130 with a resume hint; the hinted --resume does each device once."""
    devices = fleet_devices(env, tmp_path)
    store = tmp_path / "audit.sqlite"
    argv = ["backup-audit", "--out", "audit.sqlite", "--max-per-minute", "400", "-q"]
    proc = subprocess.Popen(
        [NSIGHT, *argv],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    second_sigint_needed = False
    try:
        # Mid-run, as a technician would: a few seconds in, with devices recorded and
        # the worker queues full (the run takes ~20 s at this rate).
        started = time.monotonic()
        deadline = started + 15
        while time.monotonic() < deadline and (
            len(store_rows(store)) < 40 or time.monotonic() - started < 3
        ):
            assert proc.poll() is None, "the audit ended before it could be interrupted"
            time.sleep(0.2)
        assert store_rows(store), "the audit recorded nothing within 15 s"
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            second_sigint_needed = True  # the user presses Ctrl-C again
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
    finally:
        _stop(proc, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "resume with" in err
    assert "audit.sqlite" in err
    done_before = store_rows(store)
    assert 0 < len(done_before) < len(devices)
    with contextlib.closing(sqlite3.connect(store)) as db:
        listed_before = db.execute("SELECT count(*) FROM listings").fetchone()[0]
    assert_no_key(out, err)

    lines = err.splitlines()
    hint = lines[next(i for i, line in enumerate(lines) if "resume with" in line) + 1]
    resume_argv = shlex.split(hint.strip())
    assert resume_argv[0] == "nsight-async"
    assert "--resume" in resume_argv
    # The hinted command, without the rate limit (the last --max-per-minute wins) and
    # without -q, so the progress line reports how many calls the resumed run spent.
    rest = [a for a in resume_argv[1:] if a != "-q"]
    resumed = cli(*rest, "--max-per-minute", "0", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    ids = store_rows(store)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(devices)  # every device of the fleet, exactly once
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("finished",)]
        listed_after = db.execute("SELECT count(*) FROM listings").fetchone()[0]
    # The simulator's request log lives in its own process, so the calls are read from
    # the resumed run's progress line instead. It may spend list_clients, the listings
    # not cached before the interrupt, and the sessions of backup-enabled devices not
    # done; listing a cached client again would exceed that.
    pending_mob = sum(1 for i, d in devices.items() if d["mob"] and i not in set(done_before))
    allowed = 1 + (listed_after - listed_before) + pending_mob
    spent = [int(n) for n in re.findall(r"(\d+) calls", resumed.stderr)]
    assert spent, resumed.stderr
    assert pending_mob <= spent[-1] <= allowed, "the resumed run listed clients again"
    assert_no_key(resumed.stdout, resumed.stderr)
    assert_no_key_in_files(tmp_path)
    assert not second_sigint_needed, (
        "the first SIGINT did not stop the audit within 5 s; it took a second one"
    )
