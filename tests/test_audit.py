"""Tests for nsight_async._audit: the pure session digest, verdicts and the fleet summary.

No I/O: sessions are built by hand (or by hypothesis) and fed to
:class:`SessionDigest`; the reference time is fixed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from nsight_async import (
    AuditSummary,
    Health,
    MobSession,
    Plugin,
    SessionDigest,
    SessionStatus,
    SessionType,
)
from nsight_async._audit import worst_first

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OK = SessionStatus.COMPLETED
FAILED = SessionStatus.FAILED
_ids = iter(range(1, 10**9))


def session(
    hours_ago: float,
    status: SessionStatus | str = OK,
    *,
    plugin: str = "FILE_SYSTEM",
    kind: str = "BACKUP",
    errors: int = 0,
    transferred: int = 0,
) -> MobSession:
    """Build one MOB session that started ``hours_ago`` before NOW."""
    start = NOW - timedelta(hours=hours_ago)
    return MobSession(
        session_id=next(_ids),
        type=SessionType(kind),
        plugin=Plugin(plugin),
        status=SessionStatus(status),
        start=start,
        end=start + timedelta(minutes=30),
        error_count=errors,
        transferred_size=transferred,
    )


def digest(*sessions: MobSession, **kw: timedelta) -> SessionDigest:
    """Digest the sessions at NOW with the default thresholds (or ``kw``)."""
    return SessionDigest(now=NOW, **kw).add_all(sessions)


def test_no_sessions_is_never() -> None:
    """A device with no sessions at all has never had a successful backup."""
    result = digest().result()
    assert result.health is Health.NEVER
    assert result.sessions == 0
    assert result.last_success is None
    assert result.last_success_age_hours is None


def test_only_failures_is_never_and_counts_every_failure() -> None:
    """Failures without any success give NEVER and count as consecutive failures."""
    result = digest(session(5, FAILED), session(29, "INTERRUPTED"), session(53, FAILED)).result()
    assert result.health is Health.NEVER
    assert result.consecutive_failures == 3
    assert result.last_session_status is FAILED


def test_old_success_is_stale() -> None:
    """A last success older than stale_after (3 days) is STALE, whatever came after."""
    result = digest(session(24 * 4), session(24 * 3 + 1, FAILED)).result()
    assert result.health is Health.STALE
    assert result.last_success == NOW - timedelta(hours=96)
    assert result.last_success_age_hours == 96.0


def test_stale_after_is_configurable() -> None:
    """A one-day-old success is stale when the threshold is 12 hours."""
    assert digest(session(24), stale_after=timedelta(hours=12)).result().health is Health.STALE
    assert digest(session(24)).result().health is Health.HEALTHY


def test_latest_attempt_of_a_plugin_failed_is_failing() -> None:
    """A recent success, but one plugin's latest attempt failed: FAILING, naming that plugin."""
    result = digest(
        session(30, plugin="FILE_SYSTEM"),
        session(6, plugin="FILE_SYSTEM"),
        session(30, plugin="SYSTEM_STATE"),
        session(7, FAILED, plugin="SYSTEM_STATE"),
    ).result()
    assert result.health is Health.FAILING
    assert result.failing_plugins == ("SYSTEM_STATE",)


def test_recovered_plugin_is_healthy() -> None:
    """A plugin that failed and then succeeded is healthy again."""
    result = digest(session(30, FAILED), session(20, FAILED), session(2)).result()
    assert result.health is Health.HEALTHY
    assert result.failing_plugins == ()
    assert result.consecutive_failures == 0


def test_completed_with_errors_counts_as_success() -> None:
    """COMPLETED_WITH_ERRORS is a successful backup."""
    result = digest(session(3, "COMPLETED_WITH_ERRORS", errors=4)).result()
    assert result.health is Health.HEALTHY
    assert result.last_success == NOW - timedelta(hours=3)


def test_last_success_per_plugin() -> None:
    """last_success_by_plugin keeps each plugin's newest success, ignoring failures."""
    result = digest(
        session(50, plugin="FILE_SYSTEM"),
        session(10, plugin="FILE_SYSTEM"),
        session(5, FAILED, plugin="FILE_SYSTEM"),
        session(70, plugin="MSSQL"),
        session(1, FAILED, plugin="EXCHANGE"),
    ).result()
    assert result.last_success_by_plugin == {
        "FILE_SYSTEM": NOW - timedelta(hours=10),
        "MSSQL": NOW - timedelta(hours=70),
    }


def test_unknown_plugin_is_kept_by_name() -> None:
    """A plugin the vendor never documented is tracked under its own name."""
    result = digest(session(2, plugin="HYPER_V")).result()
    assert result.last_success_by_plugin == {"HYPER_V": NOW - timedelta(hours=2)}


def test_consecutive_failures_count_only_after_last_success() -> None:
    """Failures before the last success do not count; those after it do."""
    result = digest(
        session(100, FAILED), session(90, FAILED), session(80), session(20, FAILED), session(10)
    ).result()
    assert result.consecutive_failures == 0
    result = digest(session(80, FAILED), session(50), session(30, FAILED), session(9, FAILED))
    assert result.result().consecutive_failures == 2


def test_window_counts_errors_bytes_and_failures() -> None:
    """Only sessions inside the 7-day window feed the window figures."""
    result = digest(
        session(24 * 8, FAILED, errors=100, transferred=10**12),  # outside the window
        session(24 * 6, "COMPLETED_WITH_ERRORS", errors=3, transferred=5 * 2**32),
        session(24, FAILED, errors=2, transferred=7),
        session(1, transferred=11),
    ).result()
    assert result.window_sessions == 3
    assert result.window_failures == 1
    assert result.window_errors == 5
    assert result.window_transferred_bytes == 5 * 2**32 + 18


def test_window_is_configurable() -> None:
    """A one-day window only sees the last day's sessions."""
    sessions = [session(h, transferred=1) for h in (1, 10, 30, 50)]
    result = SessionDigest(now=NOW, window=timedelta(days=1)).add_all(sessions).result()
    assert result.window_sessions == 2
    assert result.window_transferred_bytes == 2


def test_restore_sessions_are_ignored() -> None:
    """RESTORE sessions change no verdict or figure, though they are counted as sessions."""
    backups = [session(30), session(5, FAILED, plugin="MSSQL"), session(2)]
    restores = [
        session(1, FAILED, kind="RESTORE", errors=9, transferred=99),
        session(200, kind="RESTORE", plugin="VMWARE"),
    ]
    plain = digest(*backups).result()
    mixed = digest(*backups, *restores).result()
    assert mixed.sessions == plain.sessions + 2
    assert mixed == attrs.evolve(plain, sessions=mixed.sessions)


def test_restore_only_device_is_never() -> None:
    """A device whose only sessions are successful restores has never backed up."""
    assert digest(session(1, kind="RESTORE")).result().health is Health.NEVER


def test_session_without_times_is_counted_but_ignored() -> None:
    """A session with neither start nor end counts as a session but says nothing else."""
    timeless = MobSession(session_id=1, type=SessionType.BACKUP, status=OK)
    result = digest(timeless).result()
    assert result.sessions == 1
    assert result.health is Health.NEVER
    assert result.window_sessions == 0


def test_daily_histogram_counts_ok_and_failed_per_day() -> None:
    """daily maps each UTC day of the last 30 days to [ok, failed], sorted by day."""
    result = digest(
        session(1),  # 2026-03-01 11:00
        session(2, FAILED),  # 2026-03-01 10:00
        session(13),  # 2026-02-28 23:00
        session(14, "COMPLETED_WITH_ERRORS"),  # 2026-02-28 22:00
        session(24 * 31),  # outside the 30 days
        session(3, FAILED, kind="RESTORE"),  # ignored
    ).result()
    assert result.daily == {"2026-02-28": [2, 0], "2026-03-01": [1, 1]}
    assert list(result.daily) == sorted(result.daily)


def test_last_session_is_the_newest() -> None:
    """last_session_start and status describe the newest backup, whatever the order fed."""
    result = digest(session(1, FAILED), session(50), session(20)).result()
    assert result.last_session_start == NOW - timedelta(hours=1)
    assert result.last_session_status is FAILED


_STATUSES = [s.value for s in SessionStatus] + ["IN_PROGRESS", "OVER_QUOTA"]


@st.composite
def histories(draw: st.DrawFn) -> list[MobSession]:
    """Draw a session history with distinct start times (minutes before NOW)."""
    minutes = draw(st.lists(st.integers(0, 60 * 24 * 40), unique=True, max_size=40))
    out = []
    for m in minutes:
        out.append(
            session(
                m / 60,
                draw(st.sampled_from(_STATUSES)),
                plugin=draw(st.sampled_from(["FILE_SYSTEM", "SYSTEM_STATE", "MSSQL", "HYPER_V"])),
                kind=draw(st.sampled_from(["BACKUP", "BACKUP", "BACKUP", "RESTORE"])),
                errors=draw(st.integers(0, 50)),
                transferred=draw(st.integers(0, 2**42)),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_order_does_not_matter(sessions: list[MobSession], rng: random.Random) -> None:
    """Shuffled sessions give exactly the same audit as sessions in time order."""
    ordered = sorted(sessions, key=lambda s: s.start or NOW)
    shuffled = list(sessions)
    rng.shuffle(shuffled)
    assert digest(*shuffled).result() == digest(*ordered).result()
    assert digest(*reversed(ordered)).result() == digest(*ordered).result()


def test_same_start_sessions_give_the_same_audit_in_either_order() -> None:
    """Two plugins' sessions that start in the same second give one audit whatever the order."""
    a = session(2, plugin="FILE_SYSTEM")
    b = session(2, FAILED, plugin="SYSTEM_STATE")
    assert digest(a, b).result() == digest(b, a).result()


def test_health_rank_orders_worst_first() -> None:
    """rank puts never first and healthy last; unhealthy is never, stale and failing."""
    assert min(Health, key=lambda h: h.rank) is Health.NEVER
    assert max(Health, key=lambda h: h.rank) is Health.HEALTHY
    assert {h for h in Health if h.unhealthy} == {Health.NEVER, Health.STALE, Health.FAILING}


def test_summary_counts_overall_and_per_client() -> None:
    """AuditSummary counts verdicts overall and per client, and lists every verdict worst first."""
    summary = AuditSummary()
    for client, health in [
        ("Acme", Health.HEALTHY),
        ("Acme", Health.STALE),
        ("Beta", Health.NEVER),
        ("Beta", Health.NOT_ENABLED),
        ("Beta", Health.HEALTHY),
    ]:
        summary.add(client, health)
    assert summary.devices == 5
    assert summary.unhealthy == 2
    assert summary.by_client["Beta"][Health.NEVER] == 1
    assert [h for h, _ in summary.rows()] == list(Health)
    assert dict(summary.rows())[Health.FAILING] == 0
    assert dict(summary.rows())[Health.HEALTHY] == 2


def test_summary_of_recorded_rows_counts_every_verdict_and_client() -> None:
    """of_rows counts store rows per verdict and client; an unreadable verdict is not audited."""
    rows = [
        {"client_name": "A", "verdict": "stale"},
        {"client_name": "A", "verdict": "healthy"},
        {"client_name": "B", "verdict": "bogus"},
    ]
    summary = AuditSummary.of_rows(rows)
    assert summary.by_health[Health.STALE] == 1
    assert summary.by_health[Health.NOT_AUDITED] == 1
    assert summary.by_client["A"][Health.HEALTHY] == 1
    assert summary.devices == 3
    assert summary.unhealthy == 1


def test_worst_first_orders_by_verdict_then_oldest_success_then_failures() -> None:
    """The shared sort key puts never before stale, and older or more failing devices first."""
    rows = [
        {"device_name": "b", "verdict": "stale", "detail": {"last_success_age_hours": 80}},
        {"device_name": "a", "verdict": "stale", "detail": {"last_success_age_hours": 200}},
        {"device_name": "c", "verdict": "never", "detail": None},
        {"device_name": "d", "verdict": "failing", "detail": {"consecutive_failures": 1}},
        {"device_name": "e", "verdict": "failing", "detail": {"consecutive_failures": 5}},
    ]
    assert [r["device_name"] for r in sorted(rows, key=worst_first)] == ["c", "a", "b", "e", "d"]
