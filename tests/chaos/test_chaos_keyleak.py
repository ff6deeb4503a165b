"""The key-leak sweep: every failure kind, DEBUG logging, then a search of every output.

A distinctive key is configured on a simulator subprocess (``--api-key``) and given
to the CLI through ``NSIGHT_API_KEY``; a second distinctive key is the wrong one.
The CLI runs every command with ``-vv --log-file`` against faults at 30%, with the
wrong key, and against a closed port. Then stdout, stderr, the log files, the
output files (.csv, .jsonl, .json), the SQLite stores (raw bytes, with their WAL
files) and the HTML report are searched for either key: zero hits. A library-level
twin checks log records, exception messages and tracebacks the same way.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from chaos_support import CLI, RETRY, STALL_SECONDS, TIMEOUT, cli_env, simulator_process

from nsight_async import NsightClient, NsightError, RetryPolicy, backup_audit
from nsight_async.testing import (
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)

pytestmark = pytest.mark.chaos

KEY = "nsk-CHAOS-LEAK-CANARY-5e1f09a7c3b2d4f6"
WRONG_KEY = "nsk-WRONG-LEAK-CANARY-77d0b4e2a915c8e3"
#: The distinctive tails too, to catch a key cut short (a truncated URL in a message).
NEEDLES = (KEY, WRONG_KEY, KEY[-16:], WRONG_KEY[-16:])
SIM_ARGS = ["--seed", "leak", "--clients", "4", "--devices", "60", "--api-key", KEY]


def closed_port() -> int:
    """Return a loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hits(data: bytes) -> list[str]:
    """Return the needles found in ``data``."""
    return [n for n in NEEDLES if n.encode() in data]


def _run(argv: list[str], env: dict[str, str], work: Path, name: str) -> tuple[str, int]:
    """Run one CLI command with DEBUG logging; keep its stdout, stderr and log in ``work``.

    The ``audit-*`` and ``patch-plan`` runs are run again (up to 4 times, each
    attempt's files kept and swept) until they wrote their output: at 30% faults, a
    permanent one on a listing aborts them before they write anything.
    """
    flag = "--plan-out" if name == "patch-plan" else "--out" if name.startswith("audit-") else None
    out = argv[argv.index(flag) + 1] if flag else None
    code = -1
    for attempt in range(4):
        label = name if attempt == 0 else f"{name}-{attempt}"
        done = subprocess.run(
            [CLI, *argv, "-vv", "--log-file", str(work / f"{label}.log")],
            env=env,
            cwd=work,
            capture_output=True,
            timeout=120,
            check=False,
        )
        (work / f"{label}.stdout").write_bytes(done.stdout)
        (work / f"{label}.stderr").write_bytes(done.stderr)
        code = done.returncode
        if out is None or (work / out).exists():
            break
    return name, code


def test_no_output_of_any_cli_run_contains_the_key(tmp_path: Path) -> None:
    """Every CLI command under faults, a wrong key and a closed port leaks neither key anywhere."""
    work = tmp_path
    log = tmp_path.parent / f"{tmp_path.name}-simulator.log"  # the simulator's own, not swept
    clean_log = tmp_path.parent / f"{tmp_path.name}-simulator-clean.log"
    sim_args = [*SIM_ARGS, "--fault-rate", "0.3"]
    # The wrong key goes to a fault-free twin, so its exit code is the login failure's.
    with (
        simulator_process(sim_args, log) as url,
        simulator_process(SIM_ARGS, clean_log) as clean_url,
    ):
        good = cli_env(url, KEY, NSIGHT_TIMEOUT="2")
        wrong = cli_env(clean_url, WRONG_KEY, NSIGHT_TIMEOUT="2")
        closed = cli_env(f"http://127.0.0.1:{closed_port()}", KEY, NSIGHT_TIMEOUT="2")
        device = "1000001"
        runs: list[tuple[list[str], dict[str, str], str]] = [
            (["backup-audit", "--out", "audit.csv", "--html", "report.html",
              "--store", "audit.sqlite"], good, "audit-csv"),
            (["backup-audit", "--out", "audit.jsonl", "--store", "audit2.sqlite"], good,
             "audit-jsonl"),
            (["backup-audit", "--out", "audit3.sqlite", "--resume"], good, "audit-sqlite"),
            (["patch-retry", "--format", "csv", "--plan-out", "plan.json"], good, "patch-plan"),
            (["clients", "--format", "json"], good, "clients"),
            (["devices", "--format", "csv"], good, "devices"),
            (["sites", "100", "--format", "jsonl"], good, "sites"),
            (["sessions", device, "--format", "jsonl"], good, "sessions"),
            (["patches", device, "--format", "json"], good, "patches"),
            (["call", "list_clients"], good, "call"),
            (["describe", "list_mob_sessions", "--format", "json"], good, "describe"),
            (["backup-audit", "--out", "wrong.csv", "--store", "wrong.sqlite"], wrong, "wrong-key"),
            (["clients"], wrong, "wrong-key-clients"),
            (["backup-audit", "--out", "closed.csv", "--store", "closed.sqlite"], closed, "closed"),
            (["sessions", device], closed, "closed-sessions"),
        ]  # fmt: skip
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = dict(pool.map(lambda r: _run(r[0], r[1], work, r[2]), runs))
        # The reviewed plan (if planning survived the faults) is applied: the patch journal.
        if (work / "plan.json").exists():
            name, code = _run(
                [
                    "patch-retry",
                    "--plan",
                    "plan.json",
                    "--apply",
                    "--yes",
                    "--store",
                    "patch.sqlite",
                ],
                good,
                work,
                "patch-apply",
            )
            codes[name] = code
    assert codes["wrong-key"] == 3, codes
    assert codes["wrong-key-clients"] == 3, codes
    assert codes["closed"] == 4, codes
    assert codes["closed-sessions"] == 4, codes
    files = sorted(p for p in work.rglob("*") if p.is_file())
    names = {p.name for p in files}
    # The sweep is not vacuous: the outputs exist and the logs really are DEBUG logs.
    assert {"audit.csv", "audit.jsonl", "report.html", "audit.sqlite", "audit3.sqlite"} <= names
    assert b"DEBUG" in (work / "audit-csv.log").read_bytes()
    assert b"apikey=***" in b"".join(
        (work / f"{n}.log").read_bytes() for n in ("audit-csv", "closed")
    )
    leaks = {str(p.relative_to(work)): hits(p.read_bytes()) for p in files}
    leaks = {name: found for name, found in leaks.items() if found}
    assert not leaks, f"the key leaked into: {leaks}"
    crashed = [p.name for p in files if p.suffix == ".stderr" and b"Traceback" in p.read_bytes()]
    assert not crashed, f"a command crashed with a traceback: {crashed}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.texts.append(text)


def _exception_texts(exc: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(exc)), repr(exc)]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        todo += [current.__cause__, current.__context__]
    return texts


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_no_log_record_or_exception_of_the_library_contains_the_key(backend: str) -> None:
    """Library calls under every fault, a wrong key and a closed port leak the key nowhere."""
    handler = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    texts: list[str] = []
    fleet = SimulatedFleet(seed="leak-lib", clients=3, devices=30)
    config = SimulatorConfig(fault_rate=0.3, fault_kinds=tuple(Fault), stall_seconds=STALL_SECONDS)
    sim = Simulator(fleet, config=config, api_keys=[KEY])
    persistent = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02, max_retry_after=0.05)
    try:
        async with SimulatorServer(sim) as server, httpx.AsyncClient() as http:
            for key, url, retry in (
                (KEY, server.url, RETRY),
                (WRONG_KEY, server.url, RETRY),
                (KEY, f"http://127.0.0.1:{closed_port()}", persistent),
            ):
                extra = {"http_client": http} if backend == "httpx" else {}
                async with NsightClient(url, key, retry=retry, timeout=TIMEOUT, **extra) as client:
                    texts.append(repr(client))
                    try:
                        async for item in backup_audit(client):
                            error = getattr(item, "error", None)
                            if error is not None:
                                texts += _exception_texts(error)
                    except NsightError as exc:
                        texts += _exception_texts(exc)
                    for device_id in (1000001, 1000002):
                        try:
                            _ = [s async for s in client.list_mob_sessions(device_id)]
                            await client.patch_retry(device_id, [1])
                        except NsightError as exc:
                            texts += _exception_texts(exc)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    texts += handler.texts
    assert len(handler.texts) > 10, "too few log records: the sweep proves little"
    leaked = [t for t in texts if hits(t.encode())]
    assert not leaked, f"the key leaked: {leaked[:3]}"
