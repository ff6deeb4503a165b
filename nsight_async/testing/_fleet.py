"""Seeded, deterministic fleet structure: clients, sites and devices.

Only the skeleton is held in memory: one small record per client and per site
plus one byte of flags per device (``mob`` and ``patch``), so a 100,000-device
fleet costs a few megabytes. Everything else about a device (its name, its
hardware, its backup sessions, its patches) is derived on demand from
``random.Random(f"{seed}:<topic>:{device_id}")``, which is stable across
processes (string seeds are hashed with SHA-512, not ``hash()``).
"""

from __future__ import annotations

import bisect
import enum
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import attrs

from nsight_async.testing import _vocab
from nsight_async.testing._history import (
    PROFILES,
    SessionRow,
    SimPatch,
    SimSession,
    generate_patches,
    iter_session_rows,
    mob_profile,
)

CLIENT_ID_BASE = 100
SITE_ID_BASE = 200_000
DEVICE_ID_BASE = 1_000_000
_MOB_BIT = 1
_PATCH_BIT = 2


class DeviceKind(enum.StrEnum):
    """The two device types the crawl path lists."""

    SERVER = "server"
    WORKSTATION = "workstation"


@attrs.frozen(kw_only=True)
class ClientInfo:
    """One client (customer) of the MSP."""

    client_id: int
    name: str
    site_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class SiteInfo:
    """One site; its devices are the id range ``first_device_id`` onwards."""

    site_id: int
    client_id: int
    name: str
    first_device_id: int
    n_servers: int
    n_workstations: int

    @property
    def device_ids(self) -> range:
        """Return the ids of this site's devices (servers first)."""
        return range(self.first_device_id, self.first_device_id + self.n_devices)

    @property
    def n_devices(self) -> int:
        """Return how many devices the site holds."""
        return self.n_servers + self.n_workstations


@attrs.frozen(kw_only=True)
class DeviceInfo:
    """The identity and feature flags of one device."""

    device_id: int
    client_id: int
    site_id: int
    kind: DeviceKind
    name: str
    mob: bool
    patch: bool


def default_now() -> datetime:
    """Return today at 00:00 UTC, so histories are deterministic within a day."""
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainder)."""
    if not weights:
        return []
    scale = sum(weights)
    raw = [total * w / scale for w in weights]
    shares = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - shares[i], reverse=True)
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _client_name(rng: random.Random, index: int) -> str:
    prefix = _vocab.CLIENT_PREFIXES[index % len(_vocab.CLIENT_PREFIXES)]
    suffix = rng.choice(_vocab.CLIENT_SUFFIXES)
    number = "" if index < len(_vocab.CLIENT_PREFIXES) else f" {index}"
    return f"{prefix}{number} {suffix}".rstrip(" ") + (" " if suffix.endswith(" ") else "")


@attrs.define(init=False)
class SimulatedFleet:
    """A deterministic MSP fleet generated from a seed.

    Args:
        seed: Any string or integer; the same seed gives the same fleet, byte for byte.
        clients: Number of clients (at least 1). From 3 clients on, the last one has no sites.
        devices: Total devices spread over the sites (some sites get none).
        now: Aware UTC datetime the backup histories end at (default: today 00:00 UTC).
        history_days: Days of daily backup batches per backup-enabled device.
        mob_fraction: Share of devices with Backup & Recovery enabled (``mob=1``).
        patch_fraction: Share of devices with patch management enabled (``patch=1``).
        big_device_sessions: If positive, the first ``mob=1`` server (see
            `big_device_id`) has exactly this many sessions, for streaming tests.
    """

    seed: str
    now: datetime
    history_days: int
    big_device_sessions: int
    _clients: list[ClientInfo]
    _sites: list[SiteInfo]
    _site_starts: list[int]
    _flags: bytearray
    _prefixes: bytearray
    _profiles: bytearray
    _big_device_id: int | None

    def __init__(
        self,
        *,
        seed: str | int = 0,
        clients: int = 4,
        devices: int = 24,
        now: datetime | None = None,
        history_days: int = 60,
        mob_fraction: float = 0.6,
        patch_fraction: float = 0.7,
        big_device_sessions: int = 0,
    ) -> None:
        if clients < 1 or devices < 0 or history_days < 0:
            raise ValueError("clients must be >= 1, devices and history_days >= 0")
        if not (0.0 <= mob_fraction <= 1.0 and 0.0 <= patch_fraction <= 1.0):
            raise ValueError("mob_fraction and patch_fraction must lie in [0, 1]")
        if now is not None and now.utcoffset() is None:
            raise ValueError("now must be an aware datetime; hint: datetime(..., tzinfo=UTC)")
        self.seed = str(seed)
        self.now = (now or default_now()).astimezone(UTC)
        self.history_days = history_days
        self.big_device_sessions = big_device_sessions
        self._build(clients, devices, mob_fraction, patch_fraction)

    def _build(self, n_clients: int, n_devices: int, mob: float, patch: float) -> None:
        rng = random.Random(f"{self.seed}:structure")
        weights = [rng.lognormvariate(0.0, 1.0) for _ in range(n_clients)]
        siteless = {n_clients - 1} if n_clients >= 3 else set()
        siteless |= {i for i in range(1, n_clients - 1) if rng.random() < 0.03}
        target_sites = max(n_clients, n_devices // 20)
        self._clients, self._sites = [], []
        for index, weight in enumerate(weights):
            count = 0 if index in siteless else max(1, round(weight / sum(weights) * target_sites))
            client_id = CLIENT_ID_BASE + index
            site_ids = tuple(SITE_ID_BASE + len(self._sites) + j for j in range(count))
            self._clients.append(
                ClientInfo(client_id=client_id, name=_client_name(rng, index), site_ids=site_ids)
            )
            for j, site_id in enumerate(site_ids):
                name = _vocab.SITE_NAMES[(index + j) % len(_vocab.SITE_NAMES)]
                self._sites.append(
                    SiteInfo(
                        site_id=site_id,
                        client_id=client_id,
                        name=name if j < len(_vocab.SITE_NAMES) else f"{name} {j}",
                        first_device_id=0,
                        n_servers=0,
                        n_workstations=0,
                    )
                )
        empty = {len(self._sites) - 1} if len(self._sites) >= 3 else set()
        empty |= {i for i in range(len(self._sites)) if rng.random() < 0.04}
        site_weights = [
            0.0 if i in empty else rng.lognormvariate(0, 0.8) for i in range(len(self._sites))
        ]
        if sum(site_weights) == 0.0:
            site_weights = [1.0] * len(self._sites)
        shares = _allocate(n_devices, site_weights) if self._sites else []
        next_id = DEVICE_ID_BASE
        for i, (site, share) in enumerate(zip(self._sites, shares, strict=True)):
            servers = min(share, max(1 if share >= 3 else 0, round(share * rng.uniform(0.05, 0.3))))
            self._sites[i] = attrs.evolve(
                site, first_device_id=next_id, n_servers=servers, n_workstations=share - servers
            )
            next_id += share
        self._site_starts = [s.first_device_id for s in self._sites]
        self._flags = bytearray(
            (_MOB_BIT if rng.random() < mob else 0) | (_PATCH_BIT if rng.random() < patch else 0)
            for _ in range(next_id - DEVICE_ID_BASE)
        )
        # Filled lazily, one byte per device (0: not drawn yet): a device's name prefix
        # (index + 1) and history profile (index + 1) each cost a seeded Random to draw.
        self._prefixes = bytearray(len(self._flags))
        self._profiles = bytearray(len(self._flags))
        self._big_device_id = None
        if self.big_device_sessions > 0:
            self._big_device_id = next(
                (
                    d
                    for s in self._sites
                    for d in range(s.first_device_id, s.first_device_id + s.n_servers)
                    if self._flags[d - DEVICE_ID_BASE] & _MOB_BIT
                ),
                None,
            )

    # -- read-only accessors -------------------------------------------------
    @property
    def clients(self) -> tuple[ClientInfo, ...]:
        """Return every client, in id order."""
        return tuple(self._clients)

    @property
    def sites(self) -> tuple[SiteInfo, ...]:
        """Return every site, in id order."""
        return tuple(self._sites)

    @property
    def n_clients(self) -> int:
        """Return the number of clients."""
        return len(self._clients)

    @property
    def n_sites(self) -> int:
        """Return the number of sites."""
        return len(self._sites)

    @property
    def n_devices(self) -> int:
        """Return the number of devices."""
        return len(self._flags)

    @property
    def n_mob_devices(self) -> int:
        """Return how many devices have ``mob=1``."""
        return sum(1 for f in self._flags if f & _MOB_BIT)

    @property
    def n_patch_devices(self) -> int:
        """Return how many devices have ``patch=1``."""
        return sum(1 for f in self._flags if f & _PATCH_BIT)

    @property
    def big_device_id(self) -> int | None:
        """Return the device given ``big_device_sessions`` sessions, if any."""
        return self._big_device_id

    def client(self, client_id: int) -> ClientInfo | None:
        """Return the client with this id, or None."""
        index = client_id - CLIENT_ID_BASE
        return self._clients[index] if 0 <= index < len(self._clients) else None

    def site(self, site_id: int) -> SiteInfo | None:
        """Return the site with this id, or None."""
        index = site_id - SITE_ID_BASE
        return self._sites[index] if 0 <= index < len(self._sites) else None

    def sites_of(self, client_id: int) -> tuple[SiteInfo, ...]:
        """Return the sites of a client (empty for an unknown client)."""
        client = self.client(client_id)
        return tuple(self._sites[s - SITE_ID_BASE] for s in client.site_ids) if client else ()

    def devices_of(self, site_id: int, kind: DeviceKind | None = None) -> list[DeviceInfo]:
        """Return a site's devices, optionally only servers or only workstations."""
        site = self.site(site_id)
        if site is None:
            return []
        ids = site.device_ids
        if kind is DeviceKind.SERVER:
            ids = ids[: site.n_servers]
        elif kind is DeviceKind.WORKSTATION:
            ids = ids[site.n_servers :]
        return [self._device(d, site) for d in ids]

    def device_ids(self) -> range:
        """Return every device id (contiguous)."""
        return range(DEVICE_ID_BASE, DEVICE_ID_BASE + len(self._flags))

    def has_device(self, device_id: int) -> bool:
        """Return whether a device with this id exists."""
        return 0 <= device_id - DEVICE_ID_BASE < len(self._flags)

    def device(self, device_id: int) -> DeviceInfo | None:
        """Return one device, or None if the id is unknown."""
        if not self.has_device(device_id):
            return None
        site = self._sites[bisect.bisect_right(self._site_starts, device_id) - 1]
        return self._device(device_id, site)

    def iter_devices(self) -> Iterator[DeviceInfo]:
        """Yield every device, site by site."""
        for site in self._sites:
            for device_id in site.device_ids:
                yield self._device(device_id, site)

    def _device(self, device_id: int, site: SiteInfo) -> DeviceInfo:
        index = device_id - DEVICE_ID_BASE
        flags = self._flags[index]
        is_server = device_id < site.first_device_id + site.n_servers
        prefixes = _vocab.SERVER_PREFIXES if is_server else _vocab.WORKSTATION_PREFIXES
        slot = self._prefixes[index]
        if slot:
            prefix = prefixes[slot - 1]
        else:
            prefix = random.Random(f"{self.seed}:name:{device_id}").choice(prefixes)
            self._prefixes[index] = prefixes.index(prefix) + 1
        return DeviceInfo(
            device_id=device_id,
            client_id=site.client_id,
            site_id=site.site_id,
            kind=DeviceKind.SERVER if is_server else DeviceKind.WORKSTATION,
            name=f"{prefix}-{device_id % 100000:05d}",
            mob=bool(flags & _MOB_BIT),
            patch=bool(flags & _PATCH_BIT),
        )

    def sessions(self, device_id: int) -> Iterator[SimSession]:
        """Yield a device's backup sessions, oldest first (none unless ``mob=1``)."""
        return (SimSession.from_row(row) for row in self.session_rows(device_id))

    def _has_flag(self, device_id: int, bit: int) -> bool:
        return self.has_device(device_id) and bool(self._flags[device_id - DEVICE_ID_BASE] & bit)

    def _mob_profile(self, device_id: int) -> str:
        """Return the history profile of an existing device, drawn once."""
        index = device_id - DEVICE_ID_BASE
        slot = self._profiles[index]
        if slot:
            return PROFILES[slot - 1]
        profile = mob_profile(self.seed, device_id)
        self._profiles[index] = PROFILES.index(profile) + 1
        return profile

    def session_rows(self, device_id: int) -> Iterator[SessionRow]:
        """Yield a device's sessions as tuples (epoch seconds), the renderer's fast path."""
        if not self._has_flag(device_id, _MOB_BIT):
            return iter(())
        big = device_id == self._big_device_id
        return iter_session_rows(
            seed=self.seed, device_id=device_id, now=self.now, days=self.history_days,
            count=self.big_device_sessions if big else None,
            profile="healthy" if big else self._mob_profile(device_id),
        )  # fmt: skip

    def patches(self, device_id: int) -> list[SimPatch]:
        """Return a device's patches as first generated (none unless ``patch=1``)."""
        if not self._has_flag(device_id, _PATCH_BIT):
            return []
        return generate_patches(seed=self.seed, device_id=device_id, now=self.now)

    def count_devices(self, client_id: int, kind: DeviceKind) -> int:
        """Return how many devices of a kind a client has."""
        sites = self.sites_of(client_id)
        if kind is DeviceKind.SERVER:
            return sum(s.n_servers for s in sites)
        return sum(s.n_workstations for s in sites)
