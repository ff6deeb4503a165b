"""Backup audit analysis: pure functions from MOB sessions to a verdict per device.

:class:`SessionDigest` reads a device's sessions one at a time (the history
can be thousands long and is never kept) and :meth:`SessionDigest.result`
gives a :class:`DeviceAudit`. :class:`AuditSummary` counts verdicts across
the fleet. No I/O here: the fleet crawler feeds it.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from ._models import MobSession
from ._vocab import SessionStatus, SessionType

DEFAULT_STALE_AFTER = timedelta(days=3)
DEFAULT_WINDOW = timedelta(days=7)
DAILY_DAYS = 30
_SUCCEEDED = frozenset(s for s in SessionStatus if s.succeeded)


class Health(enum.StrEnum):
    """A device's backup verdict. ``rank`` orders them worst first."""

    NEVER = "never"  # never had a successful backup
    STALE = "stale"  # last success older than the threshold
    FAILING = "failing"  # recent success, but the latest attempt of a plugin failed
    NOT_AUDITED = "not_audited"  # its sessions could not be fetched
    NOT_ENABLED = "not_enabled"  # Backup & Recovery is off (mob=0): nothing to fetch
    HEALTHY = "healthy"

    @property
    def rank(self) -> int:
        """0 for the worst verdict, increasing toward healthy."""
        return list(Health).index(self)

    @property
    def unhealthy(self) -> bool:
        """Whether the verdict needs attention (never, stale or failing)."""
        return self in {Health.NEVER, Health.STALE, Health.FAILING}


@attrs.frozen(kw_only=True)
class DeviceAudit:
    """The backup facts of one device, computed from its whole session history."""

    health: Health
    sessions: int = 0
    last_session_start: datetime | None = None
    last_session_status: SessionStatus | None = None
    last_success: datetime | None = None
    last_success_age_hours: float | None = None
    last_success_by_plugin: dict[str, datetime] = attrs.field(factory=dict)
    failing_plugins: tuple[str, ...] = ()
    consecutive_failures: int = 0
    window_sessions: int = 0
    window_failures: int = 0
    window_errors: int = 0
    window_transferred_bytes: int = 0
    #: Backup sessions per day (UTC) over the last ``DAILY_DAYS`` days: ``{day: [ok, failed]}``.
    daily: dict[str, list[int]] = attrs.field(factory=dict)


@attrs.define
class SessionDigest:
    """Reads sessions in any order and keeps only what the verdict needs."""

    now: datetime
    stale_after: timedelta = DEFAULT_STALE_AFTER
    window: timedelta = DEFAULT_WINDOW
    sessions: int = 0
    # Sessions are ordered by (start, session_id): ties in start time (two plugins
    # in the same second) must not make the verdict depend on the feed order.
    _last: MobSession | None = None
    _last_key: tuple[datetime, int] | None = None
    _last_success: datetime | None = None
    _last_success_key: tuple[datetime, int] | None = None
    _by_plugin_success: dict[str, datetime] = attrs.field(factory=dict)
    _by_plugin_latest: dict[str, tuple[tuple[datetime, int], bool]] = attrs.field(factory=dict)
    _failures_after_success: list[tuple[datetime, int]] = attrs.field(factory=list)
    _window_sessions: int = 0
    _window_failures: int = 0
    _window_errors: int = 0
    _window_bytes: int = 0
    _daily: dict[date, list[int]] = attrs.field(factory=dict)
    # Cut-offs worked out once, not per session (one digest reads thousands).
    _daily_from: datetime = attrs.field(init=False)
    _window_from: datetime = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._daily_from = self.now - timedelta(days=DAILY_DAYS)
        self._window_from = self.now - self.window

    def add(self, session: MobSession) -> None:
        """Take one session into account."""
        self.sessions += 1
        kind = session.type
        if kind is not None and kind != SessionType.BACKUP:
            return  # restores say nothing about backup health
        when = session.start or session.end
        if when is None:
            return
        key = (when, session.session_id)
        last_key = self._last_key
        if last_key is None or last_key < key:
            self._last, self._last_key = session, key
        ok = session.status in _SUCCEEDED
        plugin = str(session.plugin or "UNKNOWN")
        latest = self._by_plugin_latest.get(plugin)
        if latest is None or latest[0] < key:
            self._by_plugin_latest[plugin] = (key, ok)
        if when >= self._daily_from:
            on = when.date()
            day = self._daily.get(on)
            if day is None:
                day = self._daily[on] = [0, 0]
            day[0 if ok else 1] += 1
        if when >= self._window_from:
            self._window_sessions += 1
            self._window_failures += not ok
            self._window_errors += session.error_count or 0
            self._window_bytes += session.transferred_size or 0
        if ok:
            if self._by_plugin_success.get(plugin, when) <= when:
                self._by_plugin_success[plugin] = when
            if self._last_success_key is None or key > self._last_success_key:
                self._last_success, self._last_success_key = when, key
                self._failures_after_success = [f for f in self._failures_after_success if f > key]
        elif self._last_success_key is None or key > self._last_success_key:
            self._failures_after_success.append(key)

    def add_all(self, sessions: Iterable[MobSession]) -> SessionDigest:
        """Take every session into account; return self."""
        for session in sessions:
            self.add(session)
        return self

    def result(self) -> DeviceAudit:
        """Return the verdict and facts for the sessions seen."""
        failing = tuple(sorted(p for p, (_, ok) in self._by_plugin_latest.items() if not ok))
        age = None
        if self._last_success is not None:
            age = (self.now - self._last_success).total_seconds() / 3600
        if self._last_success is None:
            health = Health.NEVER
        elif self.now - self._last_success > self.stale_after:
            health = Health.STALE
        elif failing:
            health = Health.FAILING
        else:
            health = Health.HEALTHY
        last = self._last
        return DeviceAudit(
            health=health,
            sessions=self.sessions,
            last_session_start=last.start if last else None,
            last_session_status=last.status if last else None,
            last_success=self._last_success,
            last_success_age_hours=None if age is None else round(age, 2),
            last_success_by_plugin=dict(self._by_plugin_success),
            failing_plugins=failing,
            consecutive_failures=len(self._failures_after_success),
            window_sessions=self._window_sessions,
            window_failures=self._window_failures,
            window_errors=self._window_errors,
            window_transferred_bytes=self._window_bytes,
            daily={day.isoformat(): counts for day, counts in sorted(self._daily.items())},
        )


# -- recorded results (rows as the run store returns them) --------------------------


def verdict_of(row: Mapping[str, Any]) -> Health:
    """Return a recorded row's verdict; a row without a readable one was not audited."""
    try:
        return Health(str(row.get("verdict")))
    except ValueError:
        return Health.NOT_AUDITED


def age_hours(row: Mapping[str, Any]) -> float:
    """Return a row's hours since its last success; infinite when there never was one."""
    age = (row.get("detail") or {}).get("last_success_age_hours")
    return float(age) if isinstance(age, int | float) else math.inf


def worst_first(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key, worst first: verdict, oldest last success, most consecutive failures, name."""
    failures = (row.get("detail") or {}).get("consecutive_failures")
    failures = failures if isinstance(failures, int) else 0
    name = str(row.get("device_name") or "").casefold()
    return (verdict_of(row).rank, -age_hours(row), -failures, name)


@attrs.define
class AuditSummary:
    """Counts of verdicts across the fleet, overall and per client."""

    by_health: Counter[Health] = attrs.field(factory=Counter)
    by_client: dict[str, Counter[Health]] = attrs.field(factory=dict)
    client_failures: int = 0

    @classmethod
    def of_rows(cls, rows: Iterable[Mapping[str, Any]]) -> AuditSummary:
        """Count the verdicts of recorded rows (as the run store returns them)."""
        summary = cls()
        for row in rows:
            summary.add(str(row.get("client_name") or row.get("client_id")), verdict_of(row))
        return summary

    def add(self, client_name: str, health: Health) -> None:
        """Count one device's verdict."""
        self.by_health[health] += 1
        self.by_client.setdefault(client_name, Counter())[health] += 1

    @property
    def devices(self) -> int:
        """How many devices were counted."""
        return sum(self.by_health.values())

    @property
    def unhealthy(self) -> int:
        """How many devices need attention (never, stale or failing)."""
        return sum(n for h, n in self.by_health.items() if h.unhealthy)

    def rows(self) -> list[tuple[Health, int]]:
        """Every verdict with its count, worst first."""
        return [(h, self.by_health.get(h, 0)) for h in Health]
