"""Tests of the seeded fleet generator and the lazily generated histories."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from nsight_async.testing import DeviceKind, SimulatedFleet
from nsight_async.testing._history import iter_session_rows, mob_profile

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _fleet(**kwargs: object) -> SimulatedFleet:
    options: dict[str, object] = {"seed": 7, "clients": 6, "devices": 120, "now": NOW}
    options.update(kwargs)
    return SimulatedFleet(**options)  # type: ignore[arg-type]


def test_same_seed_gives_same_structure() -> None:
    """Two fleets built from the same seed have identical clients, sites and devices."""
    a, b = _fleet(), _fleet()
    assert a.clients == b.clients
    assert a.sites == b.sites
    assert list(a.iter_devices()) == list(b.iter_devices())


def test_different_seed_gives_different_fleet() -> None:
    """A different seed changes the fleet."""
    assert list(_fleet().iter_devices()) != list(_fleet(seed=8).iter_devices())


def test_counts_match_accessors() -> None:
    """The counts agree with walking clients, sites and devices."""
    fleet = _fleet()
    sites = [s for c in fleet.clients for s in fleet.sites_of(c.client_id)]
    devices = [d for s in sites for d in fleet.devices_of(s.site_id)]
    assert fleet.n_clients == 6
    assert fleet.n_sites == len(sites)
    assert fleet.n_devices == len(devices) == 120
    assert fleet.n_mob_devices == sum(d.mob for d in devices)
    assert fleet.n_patch_devices == sum(d.patch for d in devices)


def test_edge_shapes_exist() -> None:
    """The last client has no sites and some site has no devices."""
    fleet = _fleet()
    assert fleet.sites_of(fleet.clients[-1].client_id) == ()
    assert any(s.n_devices == 0 for s in fleet.sites)


def test_device_lookup_gives_parents_and_kind() -> None:
    """``device()`` reports the client, site and kind the structure assigns."""
    fleet = _fleet()
    for site in fleet.sites:
        for device in fleet.devices_of(site.site_id, DeviceKind.SERVER):
            assert fleet.device(device.device_id) == device
            assert device.site_id == site.site_id
            assert device.client_id == site.client_id
            assert device.kind is DeviceKind.SERVER
    assert fleet.device(12) is None


def test_names_carry_special_characters() -> None:
    """Client names include non-ASCII letters and XML specials."""
    names = "".join(c.name for c in _fleet(clients=16).clients)
    assert "é" in names or "ü" in names
    assert "&" in names
    assert "<" in names


def test_naive_now_is_refused() -> None:
    """A naive ``now`` is rejected with a hint."""
    with pytest.raises(ValueError, match="aware"):
        SimulatedFleet(now=datetime(2026, 1, 1))


def test_sessions_are_deterministic_and_end_before_now() -> None:
    """The same device yields the same sessions, all before ``now`` plus a day."""
    fleet = _fleet()
    device = next(d for d in fleet.iter_devices() if d.mob and list(fleet.sessions(d.device_id)))
    first = list(fleet.sessions(device.device_id))
    assert first == list(fleet.sessions(device.device_id))
    assert all(s.start <= s.end < NOW + timedelta(days=1) for s in first)


def test_fleet_has_stale_never_and_unusual_histories() -> None:
    """Across a fleet some devices are stale, some never succeeded, and odd values appear."""
    fleet = _fleet(devices=600, clients=10)
    profiles = {mob_profile(fleet.seed, d.device_id) for d in fleet.iter_devices() if d.mob}
    assert {"healthy", "stale", "never", "empty"} <= profiles
    plugins, statuses = set(), set()
    for device in fleet.iter_devices():
        for session in fleet.sessions(device.device_id):
            plugins.add(session.plugin)
            statuses.add(session.status)
    assert "HYPER_V" in plugins or "MYSQL" in plugins
    assert {"COMPLETED", "FAILED", "COMPLETED_WITH_ERRORS"} <= statuses
    assert statuses - {"COMPLETED", "INTERRUPTED", "COMPLETED_WITH_ERRORS", "FAILED",
                       "NOT_STARTED", "CANCELED"}  # fmt: skip


def test_stale_device_last_success_is_weeks_old() -> None:
    """A stale device's last successful backup is at least two weeks before ``now``."""
    fleet = _fleet(devices=400)
    stale = [
        d for d in fleet.iter_devices() if d.mob and mob_profile(fleet.seed, d.device_id) == "stale"
    ]
    assert stale
    for device in stale:
        ok = [s.end for s in fleet.sessions(device.device_id) if s.status.startswith("COMPLETED")]
        assert not ok or max(ok) < NOW - timedelta(days=13)


def test_mob_zero_devices_have_no_sessions() -> None:
    """A device with ``mob=0`` has no backup sessions."""
    fleet = _fleet()
    device = next(d for d in fleet.iter_devices() if not d.mob)
    assert list(fleet.sessions(device.device_id)) == []


def test_patch_lists_carry_every_status_code() -> None:
    """Each patch-enabled device lists every status code at least once."""
    fleet = _fleet()
    device = next(d for d in fleet.iter_devices() if d.patch)
    codes = {p.status for p in fleet.patches(device.device_id)}
    assert {1, 2, 4, 8, 16, 64} <= codes


def test_sizes_exceed_32_bits() -> None:
    """Backup sizes above 2**32 occur."""
    fleet = _fleet()
    sizes = [s.selection_size for d in fleet.iter_devices() for s in fleet.sessions(d.device_id)]
    assert max(sizes) > 2**32


def test_big_device_has_exact_session_count() -> None:
    """``big_device_sessions`` gives one mob server exactly that many sessions."""
    fleet = _fleet(big_device_sessions=5000)
    big = fleet.big_device_id
    assert big is not None
    device = fleet.device(big)
    assert device is not None
    assert device.mob
    assert device.kind is DeviceKind.SERVER
    assert sum(1 for _ in fleet.session_rows(big)) == 5000


def test_large_fleet_is_cheap_to_build() -> None:
    """A 100,000-device fleet builds in well under two seconds and a few megabytes."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        fleet = SimulatedFleet(seed=1, clients=500, devices=100_000, now=NOW)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fleet.n_devices == 100_000
    assert elapsed < 2.0
    assert peak < 16 * 2**20


def test_cached_draws_match_fresh_draws() -> None:
    """Names and profiles drawn once and reused give what a fresh fleet derives."""
    warm, fresh = _fleet(), _fleet()
    ids = list(warm.device_ids())
    for _ in range(2):
        assert [warm.device(d) for d in reversed(ids)] == [fresh.device(d) for d in reversed(ids)]
        for device in fresh.iter_devices():
            d = device.device_id
            expected = iter_session_rows(seed="7", device_id=d, now=NOW, days=60)
            assert list(warm.session_rows(d)) == (list(expected) if device.mob else [])
    assert list(warm.session_rows(ids[-1] + 1)) == [] == warm.patches(ids[0] - 1)
