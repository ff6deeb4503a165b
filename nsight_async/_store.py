"""The resumable run store: one SQLite file (stdlib ``sqlite3``, no server).

Device outcomes are written as they arrive, in batches, each batch one
transaction: a run killed at any moment (Ctrl-C, a crash, ``kill -9``) keeps
every batch committed before it, and a resumed run skips those devices, so
every device is recorded exactly once (the primary key enforces it).

Device listings are cached per client, so a resumed run spends no calls
re-listing clients it already walked.

For patch retries the store is a journal: the intent is committed *before*
the call is sent and the result after. On resume, an intent without a result
is a call that may have been sent: it is reported as "outcome unknown" and
not re-sent unless the user asks.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from ._models import DeviceAtClient
from ._serial import device_from_json, jsonable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, created TEXT NOT NULL,
    params TEXT NOT NULL, status TEXT NOT NULL, finished TEXT
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL, device_id INTEGER NOT NULL, client_id INTEGER, client_name TEXT,
    site_id INTEGER, site_name TEXT, device_name TEXT, device_kind TEXT,
    status TEXT NOT NULL, verdict TEXT, detail TEXT, error_type TEXT, error TEXT,
    recorded_at TEXT NOT NULL, PRIMARY KEY (run_id, device_id)
);
CREATE TABLE IF NOT EXISTS client_failures (
    run_id TEXT NOT NULL, client_id INTEGER NOT NULL, client_name TEXT,
    device_type TEXT NOT NULL, error_type TEXT, error TEXT, recorded_at TEXT NOT NULL,
    PRIMARY KEY (run_id, client_id, device_type)
);
CREATE TABLE IF NOT EXISTS listings (
    run_id TEXT NOT NULL, client_id INTEGER NOT NULL, device_type TEXT NOT NULL,
    devices TEXT NOT NULL, PRIMARY KEY (run_id, client_id, device_type)
);
CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL, device_id INTEGER NOT NULL, chunk INTEGER NOT NULL,
    patch_ids TEXT NOT NULL, state TEXT NOT NULL, result TEXT, error TEXT,
    updated TEXT NOT NULL, PRIMARY KEY (run_id, device_id, chunk)
);
CREATE TABLE IF NOT EXISTS plans (run_id TEXT PRIMARY KEY, plan TEXT NOT NULL);
"""


@attrs.frozen(kw_only=True)
class OutcomeRow:
    """One device's recorded outcome: ``ok``, ``error`` or ``skipped``."""

    device: DeviceAtClient
    status: str
    verdict: str | None = None
    detail: dict[str, Any] | None = None
    error_type: str | None = None
    error: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunStore:
    """A SQLite file holding runs, their outcomes, listings and the patch journal."""

    def __init__(
        self, path: str | Path, *, batch_size: int = 200, flush_interval: float = 1.0
    ) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._batch: list[tuple[Any, ...]] = []
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush what is pending and close the file."""
        self.flush()
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs -----------------------------------------------------------------

    def start_run(self, kind: str, params: dict[str, Any]) -> str:
        """Create a new run and return its id."""
        run_id = f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self._db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, 'running', NULL)",
            (run_id, kind, _now(), json.dumps(jsonable(params), sort_keys=True)),
        )
        return run_id

    def latest_run(self, kind: str, *, unfinished: bool = True) -> str | None:
        """Return the newest run of ``kind`` (only unfinished ones by default)."""
        sql = "SELECT run_id FROM runs WHERE kind = ?"
        if unfinished:
            sql += " AND status != 'finished'"
        row = self._db.execute(
            sql + " ORDER BY created DESC, rowid DESC LIMIT 1", (kind,)
        ).fetchone()
        return None if row is None else str(row[0])

    def runs(self, kind: str) -> list[dict[str, Any]]:
        """Return every run of ``kind``, oldest first: id, status and parameters."""
        rows = self._db.execute(
            "SELECT run_id, status, params FROM runs WHERE kind = ? ORDER BY created, rowid",
            (kind,),
        )
        return [{"run_id": r, "status": s, "params": json.loads(p)} for r, s, p in rows]

    def run_params(self, run_id: str) -> dict[str, Any]:
        """Return the parameters a run was started with."""
        row = self._db.execute("SELECT params FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        params: dict[str, Any] = json.loads(row[0])
        return params

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark a run finished (or ``interrupted``)."""
        self.flush()
        self._db.execute(
            "UPDATE runs SET status = ?, finished = ? WHERE run_id = ?", (status, _now(), run_id)
        )

    # -- outcomes ---------------------------------------------------------------

    def done_devices(self, run_id: str) -> set[int]:
        """Return the ids of devices whose outcome is recorded."""
        rows = self._db.execute("SELECT device_id FROM outcomes WHERE run_id = ?", (run_id,))
        return {int(r[0]) for r in rows}

    def record(self, run_id: str, row: OutcomeRow) -> None:
        """Queue one outcome; it is committed with its batch."""
        d = row.device
        self._batch.append(
            (run_id, d.device_id, d.client_id, d.client_name, d.site_id, d.site_name, d.name,
             d.kind.value, row.status, row.verdict,
             None if row.detail is None else json.dumps(jsonable(row.detail), sort_keys=True),
             row.error_type, row.error, _now())
        )  # fmt: skip
        if (
            len(self._batch) >= self._batch_size
            or time.monotonic() - self._last_flush >= self._flush_interval
        ):
            self.flush()

    def flush(self) -> None:
        """Commit the pending batch in one transaction."""
        self._last_flush = time.monotonic()
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO outcomes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch
            )

    def outcomes(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Yield the recorded outcomes of a run as dicts, ordered by device id."""
        self.flush()
        cursor = self._db.execute(
            "SELECT * FROM outcomes WHERE run_id = ? ORDER BY device_id", (run_id,)
        )
        names = [c[0] for c in cursor.description]
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["detail"] = json.loads(row["detail"]) if row["detail"] else None
            yield row

    def forget_errors(self, run_id: str) -> None:
        """Drop the error outcomes of a run, so a resumed run tries those devices again."""
        self.flush()
        self._db.execute("DELETE FROM outcomes WHERE run_id = ? AND status = 'error'", (run_id,))

    def record_client_failure(
        self,
        run_id: str,
        client_id: int,
        client_name: str | None,
        device_type: str,
        error: Exception,
    ) -> None:
        """Record that a client's devices could not be listed."""
        self._db.execute(
            "INSERT OR REPLACE INTO client_failures VALUES (?,?,?,?,?,?,?)",
            (run_id, client_id, client_name, device_type, type(error).__name__, str(error), _now()),
        )

    def client_failures(self, run_id: str) -> list[dict[str, Any]]:
        """Return the clients whose listing failed in a run."""
        cursor = self._db.execute("SELECT * FROM client_failures WHERE run_id = ?", (run_id,))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def clear_client_failures(self, run_id: str) -> None:
        """Forget listing failures (a resumed run lists those clients again)."""
        self._db.execute("DELETE FROM client_failures WHERE run_id = ?", (run_id,))

    # -- listings (enumeration cache) --------------------------------------------

    def save_listing(
        self, run_id: str, client_id: int, device_type: str, devices: Iterable[DeviceAtClient]
    ) -> None:
        """Remember a client's complete device listing."""
        payload = json.dumps([jsonable(d) for d in devices])
        self._db.execute(
            "INSERT OR REPLACE INTO listings VALUES (?,?,?,?)",
            (run_id, client_id, device_type, payload),
        )

    def listing(self, run_id: str, client_id: int, device_type: str) -> list[DeviceAtClient] | None:
        """Return a remembered listing, or ``None`` if the client was not listed yet."""
        row = self._db.execute(
            "SELECT devices FROM listings WHERE run_id = ? AND client_id = ? AND device_type = ?",
            (run_id, client_id, device_type),
        ).fetchone()
        if row is None:
            return None
        return [device_from_json(d) for d in json.loads(row[0])]

    # -- patch journal -------------------------------------------------------------

    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        """Store the reviewed plan a patch run executes."""
        self._db.execute(
            "INSERT OR REPLACE INTO plans VALUES (?, ?)", (run_id, json.dumps(jsonable(plan)))
        )

    def plan(self, run_id: str) -> dict[str, Any] | None:
        """Return the plan stored for a run."""
        row = self._db.execute("SELECT plan FROM plans WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def journal_intent(self, run_id: str, device_id: int, chunk: int, patch_ids: list[int]) -> None:
        """Durably record that a call is about to be sent (before sending it)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO journal VALUES (?,?,?,?, 'sending', NULL, NULL, ?)",
                (run_id, device_id, chunk, ",".join(map(str, patch_ids)), _now()),
            )

    def journal_result(
        self,
        run_id: str,
        device_id: int,
        chunk: int,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a journaled call ended: ``done``, ``failed`` or ``unknown``."""
        with self._transaction():
            self._db.execute(
                "UPDATE journal SET state = ?, result = ?, error = ?, updated = ? "
                "WHERE run_id = ? AND device_id = ? AND chunk = ?",
                (state, None if result is None else json.dumps(jsonable(result)), error, _now(),
                 run_id, device_id, chunk),
            )  # fmt: skip

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        """Return every journal entry of a run."""
        cursor = self._db.execute(
            "SELECT * FROM journal WHERE run_id = ? ORDER BY device_id, chunk", (run_id,)
        )
        names = [c[0] for c in cursor.description]
        out = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["patch_ids"] = [int(x) for x in row["patch_ids"].split(",") if x]
            row["result"] = json.loads(row["result"]) if row["result"] else None
            out.append(row)
        return out

    def forget_intent(self, run_id: str, device_id: int, chunk: int) -> None:
        """Drop an unknown-outcome entry so it can be re-sent (only when the user asks)."""
        self._db.execute(
            "DELETE FROM journal WHERE run_id = ? AND device_id = ? AND chunk = ?",
            (run_id, device_id, chunk),
        )

    def _transaction(self) -> sqlite3.Connection:
        # ``with connection`` commits or rolls back; BEGIN makes the batch one transaction.
        self._db.execute("BEGIN")
        return self._db
