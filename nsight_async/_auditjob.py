"""The backup audit job: the fleet walk, the session digest and the run store, joined.

``backup_audit`` walks the fleet, fetches MOB sessions only for devices with
Backup & Recovery enabled, digests each device's history as it streams, and
yields one :class:`AuditResult` per device (and a :class:`ClientFailure` per
client that could not be listed). With a :class:`RunStore` every result is
recorded as it arrives, and ``resume=True`` continues the newest unfinished
run: devices already recorded are skipped and listed clients are not listed
again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ._audit import DEFAULT_STALE_AFTER, DEFAULT_WINDOW, DeviceAudit, Health, SessionDigest
from ._client import NsightClient
from ._errors import NsightError
from ._fleet import ClientFailure, Filters, Fleet, Outcome, Progress
from ._models import DeviceAtClient
from ._store import OutcomeRow, RunStore
from ._vocab import DeviceKind

AUDIT = "audit"


@attrs.frozen(kw_only=True)
class AuditResult:
    """One device's audit: its verdict and, when sessions were read, the facts behind it."""

    device: DeviceAtClient
    health: Health
    audit: DeviceAudit | None = None
    error: NsightError | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class AuditSettings:
    """What the audit judges by: the reference time and the thresholds."""

    now: datetime
    stale_after: timedelta = DEFAULT_STALE_AFTER
    window: timedelta = DEFAULT_WINDOW

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values (kept in the run store)."""
        return {
            "now": self.now.isoformat(),
            "stale_after_s": self.stale_after.total_seconds(),
            "window_s": self.window.total_seconds(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditSettings:
        """Rebuild settings saved by :meth:`to_json`."""
        return cls(
            now=datetime.fromisoformat(data["now"]),
            stale_after=timedelta(seconds=data["stale_after_s"]),
            window=timedelta(seconds=data["window_s"]),
        )


def _row(result: AuditResult) -> OutcomeRow:
    status = "error" if result.error else ("skipped" if result.audit is None else "ok")
    return OutcomeRow(
        device=result.device,
        status=status,
        verdict=result.health.value,
        detail=None if result.audit is None else attrs.asdict(result.audit),
        error_type=None if result.error is None else type(result.error).__name__,
        error=str(result.error) if result.error else result.reason,
    )


def _result(outcome: Outcome[DeviceAudit]) -> AuditResult:
    if outcome.status == "ok" and outcome.value is not None:
        return AuditResult(device=outcome.device, health=outcome.value.health, audit=outcome.value)
    if outcome.status == "skipped":
        return AuditResult(device=outcome.device, health=Health.NOT_ENABLED, reason=outcome.reason)
    return AuditResult(device=outcome.device, health=Health.NOT_AUDITED, error=outcome.error)


def _mob_disabled(device: DeviceAtClient) -> str | None:
    return None if device.mob else "Backup & Recovery is not enabled on this device (mob=0)"


async def backup_audit(
    client: NsightClient,
    *,
    filters: Filters | None = None,
    settings: AuditSettings | None = None,
    store: RunStore | None = None,
    resume: bool = False,
    retry_errors: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> AsyncGenerator[AuditResult | ClientFailure]:
    """Audit the fleet's backups; yield one result per device as each completes.

    Args:
        filters: which clients, sites, devices and types to audit.
        settings: reference time and thresholds (default: now, 3 days, 7 days);
            a resumed run keeps the settings it started with.
        store: where results are recorded as they arrive (resumable).
        resume: continue the newest unfinished audit in ``store``.
        retry_errors: with ``resume``, audit again the devices that failed.
        on_run: called with the run id once it is known.
    """
    run_id: str | None = None
    if store is not None:
        # retry_errors may reopen a run that finished with errors
        run_id = store.latest_run(AUDIT, unfinished=not retry_errors) if resume else None
        if run_id is not None:
            settings = AuditSettings.from_json(store.run_params(run_id)["settings"])
            store.clear_client_failures(run_id)
            if retry_errors:
                store.forget_errors(run_id)
        else:
            settings = settings or AuditSettings(now=datetime.now(UTC))
            run_id = store.start_run(AUDIT, {"settings": settings.to_json()})
        if on_run is not None:
            on_run(run_id)
    settings = settings or AuditSettings(now=datetime.now(UTC))
    done = store.done_devices(run_id) if store is not None and run_id is not None else set()

    async def digest(device: DeviceAtClient) -> DeviceAudit:
        sessions = SessionDigest(
            now=settings.now, stale_after=settings.stale_after, window=settings.window
        )
        async for session in client.list_mob_sessions(device.device_id):
            sessions.add(session)
        return sessions.result()

    fleet = Fleet(
        client,
        filters=filters,
        on_progress=on_progress,
        cached_devices=_cache_reader(store, run_id),
        on_devices_listed=_cache_writer(store, run_id),
    )
    finished = False
    try:
        async with contextlib.aclosing(
            fleet.map(digest, skip=_mob_disabled, already_done=done.__contains__)
        ) as outcomes:
            async for outcome in outcomes:
                if isinstance(outcome, ClientFailure):
                    if store is not None and run_id is not None:
                        store.record_client_failure(
                            run_id,
                            outcome.client.client_id,
                            outcome.client.name,
                            outcome.device_type.value,
                            outcome.error,
                        )
                    yield outcome
                    continue
                result = _result(outcome)
                if store is not None and run_id is not None:
                    store.record(run_id, _row(result))
                yield result
        finished = True
    finally:
        if store is not None and run_id is not None:
            failed = bool(store.client_failures(run_id))
            store.finish_run(run_id, "finished" if finished and not failed else "incomplete")


def _cache_reader(
    store: RunStore | None, run_id: str | None
) -> Callable[[int, DeviceKind], list[DeviceAtClient] | None] | None:
    if store is None or run_id is None:
        return None
    return lambda client_id, kind: store.listing(run_id, client_id, kind.value)


def _cache_writer(
    store: RunStore | None, run_id: str | None
) -> Callable[[int, DeviceKind, list[DeviceAtClient]], None] | None:
    if store is None or run_id is None:
        return None
    return lambda client_id, kind, devices: store.save_listing(
        run_id, client_id, kind.value, devices
    )
