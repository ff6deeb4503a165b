"""Shared pieces of the chaos suite: fast retry settings, the fault table, subprocesses.

Not a test module: the chaos tests import it by name (``tests/chaos`` is on
``sys.path`` because the directory has no ``__init__.py``).

Sizes are bounded for CI; ``NSIGHT_CHAOS_FULL=1`` scales them up (more seeds,
bigger fleets, longer fuzzing).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from nsight_async import (
    AuditResult,
    AuthenticationError,
    ClientFailure,
    ForbiddenXmlError,
    Health,
    HtmlPageError,
    InvalidParameterError,
    MissingParameterError,
    NsightError,
    ParseError,
    RateLimitedError,
    RetryPolicy,
    TransportError,
)
from nsight_async.testing import Fault, FaultContext, SimulatedFleet

FULL = os.environ.get("NSIGHT_CHAOS_FULL", "") not in {"", "0"}
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "nsight-async")

#: Quick retries so a chaos run spends its time on faults, not on backoff.
RETRY = RetryPolicy(wait_initial=0.01, wait_max=0.05, max_retry_after=0.1)
#: Fewer attempts where every attempt fails (each 429/firewall page pauses the client 1 s).
RETRY_PERSISTENT = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, max_retry_after=0.1)
#: The client's read timeout; the simulator's stall must outlast it.
TIMEOUT = 0.3
STALL_SECONDS = 1.0

#: What a read ends with when *every* attempt meets the fault: the typed error(s) allowed.
PERSISTENT_ERROR: Mapping[Fault, tuple[type[NsightError], ...]] = {
    # On a socket "refuse" is a reset after accept (a port cannot refuse one connection).
    Fault.REFUSE: (TransportError,),
    Fault.RESET: (TransportError,),
    Fault.RESET_AFTER: (TransportError,),
    # Cut mid-body: the connection drops (transport) or the XML ends early (parse).
    Fault.TRUNCATE: (TransportError, ParseError),
    Fault.STALL: (TransportError,),
    Fault.TIMEOUT: (TransportError,),
    # The simulator's 5xx are nginx HTML pages, so the most specific class is HtmlPageError.
    Fault.HTTP500: (HtmlPageError,),
    Fault.HTTP502: (HtmlPageError,),
    Fault.HTTP503: (HtmlPageError,),
    Fault.HTTP504: (HtmlPageError,),
    Fault.HTML403: (HtmlPageError,),
    Fault.HTML200: (HtmlPageError,),
    Fault.MALFORMED: (ParseError,),
    Fault.DOCTYPE: (ForbiddenXmlError,),
    Fault.FAIL3: (AuthenticationError,),
    Fault.FAIL4: (InvalidParameterError,),
    Fault.FAIL5: (MissingParameterError,),
    Fault.HTTP429: (RateLimitedError,),
    Fault.HTTP429_BARE: (RateLimitedError,),
}

#: Faults a read never recovers from by retrying: permanent answers.
PERMANENT = frozenset({Fault.DOCTYPE, Fault.FAIL3, Fault.FAIL4, Fault.FAIL5})

#: Faults that make the client pause *every* call for about a second (429, firewall pages).
SLOWS_EVERYONE = frozenset({Fault.HTTP429, Fault.HTTP429_BARE, Fault.HTML403, Fault.HTTP503})

#: patch_retry: the request reached the server and no usable answer came back, so the
#: client cannot know whether it was applied. On a socket ``refuse`` and ``reset`` are
#: resets after the request was sent, indistinguishable from ``reset-after``; a 200 whose
#: body cannot be read (malformed, DOCTYPE, HTML) may come from a server that did the work.
AMBIGUOUS_WRITE = frozenset(
    {
        Fault.REFUSE,
        Fault.RESET,
        Fault.RESET_AFTER,
        Fault.TRUNCATE,
        Fault.STALL,
        Fault.TIMEOUT,
        Fault.HTTP500,
        Fault.HTTP502,
        Fault.HTTP503,
        Fault.HTTP504,
        Fault.HTML200,
        Fault.MALFORMED,
        Fault.DOCTYPE,
    }
)
#: patch_retry: refused unprocessed (429, the firewall's 403): safe to send again.
REFUSED_WRITE = frozenset({Fault.HTTP429, Fault.HTTP429_BARE, Fault.HTML403})
#: patch_retry: a FAIL envelope: the server answered and refused.
FAILED_WRITE = frozenset({Fault.FAIL3, Fault.FAIL4, Fault.FAIL5})

#: The chaos matrix, filled by the tests and written at the end of the session:
#: ``MATRIX[fault][column] = cell``.
MATRIX: dict[str, dict[str, str]] = {}
MATRIX_COLUMNS = (
    "read, first attempt faulted",
    "read, every attempt faulted",
    "audit, fault at 20%",
    "patch_retry, first send faulted",
)


def matrix_cell(row: str, column: str, text: str) -> None:
    """Record one cell of the chaos matrix."""
    MATRIX.setdefault(row, {})[column] = text


def matrix_markdown() -> str:
    """Render the matrix as a Markdown table (rows in fault order, then the mixed rows)."""
    order = [f.value for f in Fault]
    rows = sorted(MATRIX, key=lambda r: (order.index(r) if r in order else len(order), r))
    lines = [
        "# Chaos matrix",
        "",
        "Each fault alone (scripted on the first attempt, or on every attempt) and mixed,",
        "against the loopback simulator. `recovered` = the call succeeded after retries;",
        "otherwise the typed error it failed with. Audit cells: devices ok/error/skipped,",
        "client listings failed, and whether every device was accounted for exactly once",
        "with no session duplicated. Patch cells: the `PatchOutcome.state` of the faulted",
        "calls, and whether any patch was applied twice.",
        "",
        "| fault | " + " | ".join(MATRIX_COLUMNS) + " |",
        "|---" * (len(MATRIX_COLUMNS) + 1) + "|",
    ]
    for row in rows:
        cells = [MATRIX[row].get(c, "") for c in MATRIX_COLUMNS]
        lines.append(f"| `{row}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- subprocesses ------------------------------------------------------------------------------


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            break
    raise RuntimeError(f"the simulator did not print its URL within {timeout} s")


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextlib.contextmanager
def simulator_process(args: Sequence[str], log: Path) -> Iterator[str]:
    """Run ``python -m nsight_async.testing --port 0 ARGS`` and yield its URL; stop it after."""
    with log.open("wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nsight_async.testing", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            url = _read_line(proc, timeout=20)
            assert url.startswith("http://127.0.0.1:"), url
            yield url
        finally:
            stop_process(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def cli_env(server: str, key: str, **extra: str) -> dict[str, str]:
    """The environment for a CLI run: the server and key, no user config, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NSIGHT_") and "proxy" not in k.lower()
    }
    env.update(
        NSIGHT_SERVER=server,
        NSIGHT_API_KEY=key,
        NSIGHT_CONFIG=os.devnull,
        COLUMNS="120",
        **extra,
    )
    return env


# -- audit accounting ------------------------------------------------------------------------


def session_count(fleet: SimulatedFleet, device_id: int) -> int:
    """Ground truth: how many MOB sessions the simulated device has."""
    return sum(1 for _ in fleet.session_rows(device_id))


class Seen(NamedTuple):
    """What the accounting needs of one audit result (small: the soak keeps thousands)."""

    device_id: int
    client_id: int
    site_id: int
    mob: bool
    health: Health
    error: NsightError | None
    sessions: int | None


def seen(result: AuditResult) -> Seen:
    """Keep only what :func:`check_audit_accounting` reads of a result."""
    d = result.device
    sessions = None if result.audit is None else result.audit.sessions
    return Seen(d.device_id, d.client_id, d.site_id, d.mob, result.health, result.error, sessions)


def check_audit_accounting(
    fleet: SimulatedFleet,
    results: Sequence[AuditResult | Seen],
    failures: Sequence[ClientFailure],
    *,
    allowed_errors: tuple[type[NsightError], ...],
    sample: int | None = None,
) -> dict[str, int]:
    """Assert every device is accounted for exactly once, with its true session count.

    A device is either in ``results`` exactly once, or belongs to a client whose
    listing of that device type failed (a :class:`ClientFailure`). An audited device
    saw exactly the simulator's sessions (a duplicated or lost session changes the
    count); an error is one of ``allowed_errors``. ``sample`` checks session counts
    on only that many devices (the soak's fleet is too big to regenerate whole).
    """
    rows = [r if isinstance(r, Seen) else seen(r) for r in results]
    ids = [r.device_id for r in rows]
    assert len(ids) == len(set(ids)), "a device was reported twice"
    by_id = {r.device_id: r for r in rows}
    failed = {(f.client.client_id, f.device_type.value) for f in failures}
    checked = 0
    for device in fleet.iter_devices():
        row = by_id.pop(device.device_id, None)
        if row is None:
            assert (device.client_id, device.kind.value) in failed, (
                f"device {device.device_id} is missing and its client listing did not fail"
            )
            continue
        assert (row.client_id, row.site_id, row.mob) == (
            device.client_id,
            device.site_id,
            device.mob,
        )
        if not device.mob:
            assert row.health is Health.NOT_ENABLED
            assert row.sessions is None
        elif row.error is not None:
            assert isinstance(row.error, allowed_errors), repr(row.error)
            assert row.health is Health.NOT_AUDITED
        else:
            assert row.sessions is not None
            if sample is None or checked < sample:
                checked += 1
                assert row.sessions == session_count(fleet, device.device_id), (
                    f"device {device.device_id}: session count differs from the simulator's"
                )
    assert not by_id, f"results for devices not in the fleet: {sorted(by_id)[:5]}"
    return {
        "ok": sum(1 for r in rows if r.sessions is not None),
        "error": sum(1 for r in rows if r.error is not None),
        "skipped": sum(1 for r in rows if r.sessions is None and r.error is None),
        "client_failures": len(failures),
    }


class FaultDraw:
    """A fault script that draws faults at ``rate`` and remembers every fault it chose.

    The simulator's log cannot count every fault (a stalled handler whose client gave
    up is cancelled before it logs), so the tests count what the script chose.
    """

    def __init__(
        self,
        *,
        rate: float,
        kinds: Sequence[Fault],
        services: frozenset[str] | None = None,
        seed: str = "chaos",
    ) -> None:
        self.rate = rate
        self.kinds = list(kinds)
        self.services = services
        self._rng = random.Random(seed)
        self.fired: list[tuple[str, str | None, Fault]] = []

    def __call__(self, context: FaultContext) -> Fault | None:
        """Choose the fault for one request (called by the simulator, in arrival order)."""
        if self.services is not None and context.service not in self.services:
            return None
        if self._rng.random() >= self.rate:
            return None
        fault = self._rng.choice(self.kinds)
        self.fired.append((context.service, context.device_id, fault))
        return fault
