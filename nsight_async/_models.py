"""Typed records for the N-sight services on the crawl path.

Records are frozen and keyword-only. Ids, counts and byte sizes are ints
(sizes exceed 2**32); times the docs call UTC are aware UTC datetimes; other
server-local timestamps stay naive; sentinels (``none``, ``Not Available``,
``0000-00-00 00:00:00``) and empty elements are ``None``. Fields this library
does not model yet (custom asset fields, fields the vendor adds later) are
kept in ``extra``, never dropped. Conversion from text lives in the parser;
this module imports nothing but attrs and the vocabularies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import attrs

from ._vocab import DeviceKind, PatchStatus, Plugin, SessionStatus, SessionType

MIB = 1024 * 1024
GIB = 1024 * MIB

Extra = Mapping[str, object]


def _no_extra() -> dict[str, object]:
    return {}


@attrs.frozen(kw_only=True)
class Client:
    """A client (customer) of the partner: ``list_clients``."""

    client_id: int
    name: str | None = None
    view_dashboard: bool | None = None
    view_wkstsn_assets: bool | None = None
    dashboard_username: str | None = None
    timezone: str | None = None
    creation_date: date | None = None
    server_count: int | None = None
    workstation_count: int | None = None
    mobile_device_count: int | None = None
    device_count: int | None = None
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class Site:
    """A site of a client: ``list_sites``; ``client_id`` is the one asked for."""

    site_id: int
    name: str | None = None
    client_id: int | None = None
    connection_ok: bool | None = None
    creation_date: date | None = None
    primary_router: str | None = None
    secondary_router: str | None = None
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class Device:
    """A server or workstation: ``list_servers`` / ``list_workstations``."""

    kind: DeviceKind
    device_id: int
    name: str | None = None
    site_id: int | None = None
    guid: str | None = None
    description: str | None = None
    install_date: date | None = None
    last_boot_time: datetime | None = None  # epoch seconds on the wire: aware UTC
    user: str | None = None
    domain: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    ip: str | None = None
    external_ip: str | None = None
    mac1: str | None = None
    mac2: str | None = None
    mac3: str | None = None
    os: str | None = None
    os_details: str | None = None
    agent_version: str | None = None
    agent_mode: str | None = None
    online: bool | None = None
    active_247: bool | None = None
    check_interval_247: int | None = None
    status_247: int | None = None
    assetid: int | None = None
    device_serial: str | None = None
    total_memory: int | None = None
    last_scan_time: datetime | None = None  # server-local, naive: the docs give no zone
    missed_247: int | None = None  # servers only
    email_overdue_alert: bool | None = None  # servers only
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class CheckCounts:
    """The ``<checkcount>`` block of ``list_devices_at_client``."""

    dsc_247: int | None = None
    passed: int | None = None
    cleared: int | None = None
    failed: int | None = None


@attrs.frozen(kw_only=True)
class DeviceAtClient:
    """A device from ``list_devices_at_client``, with its client and site."""

    kind: DeviceKind
    device_id: int
    name: str | None = None
    client_id: int
    client_name: str | None
    site_id: int
    site_name: str | None
    username: str | None = None
    description: str | None = None
    status: str | None = None
    checks: CheckCounts = attrs.field(factory=CheckCounts)
    takecontrol: bool = False
    patch: bool = False
    mav: bool = False
    mob: bool = False
    systray: bool = False
    mavbreck: bool = False
    webprotection: bool = False
    riskintelligence: bool = False
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class Patch:
    """A patch on a device: ``patch_list_all``."""

    patch_id: int
    status: PatchStatus | None = None
    title: str | None = None
    product: str | None = None
    status_label: str | None = None
    policy: int | None = None
    policy_label: str | None = None
    severity: int | None = None
    severity_label: str | None = None
    install_date: date | None = None
    release_date: date | None = None
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class MobSession:
    """A Backup & Recovery session: ``list_mob_sessions``. Sizes are bytes."""

    session_id: int
    type: SessionType | None = None
    plugin: Plugin | None = None
    status: SessionStatus | None = None
    start: datetime | None = None  # UTC
    end: datetime | None = None  # UTC
    storage_account_id: int | None = None
    selection_size: int | None = None
    selection_item_count: int | None = None
    size_change: int | None = None
    item_count_change: int | None = None
    removed_item_count: int | None = None
    processed_size: int | None = None
    processed_item_count: int | None = None
    transferred_size: int | None = None
    error_count: int | None = None
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)

    @property
    def selection_gib(self) -> float | None:
        """``selection_size`` in GiB (bytes / 1073741824, as N-able's docs suggest)."""
        return None if self.selection_size is None else self.selection_size / GIB

    @property
    def processed_gib(self) -> float | None:
        """``processed_size`` in GiB."""
        return None if self.processed_size is None else self.processed_size / GIB

    @property
    def transferred_mib(self) -> float | None:
        """``transferred_size`` in MiB (bytes / 1048576)."""
        return None if self.transferred_size is None else self.transferred_size / MIB

    @property
    def transferred_gib(self) -> float | None:
        """``transferred_size`` in GiB."""
        return None if self.transferred_size is None else self.transferred_size / GIB


@attrs.frozen(kw_only=True)
class PatchRetryResult:
    """What ``patch_retry`` reported: the ids being retried and those already applied."""

    device_id: int
    requested: tuple[int, ...]
    retrying: tuple[int, ...]
    already_applied: tuple[int, ...]
    message: str

    @property
    def unaccounted(self) -> tuple[int, ...]:
        """Requested ids the server mentioned in neither list."""
        seen = set(self.retrying) | set(self.already_applied)
        return tuple(i for i in self.requested if i not in seen)


@attrs.frozen(kw_only=True)
class ServiceParameter:
    """One parameter of a service's ``describe=true`` document."""

    name: str
    type: str | None = None
    default: str | None = None
    values: str | None = None
    description: str | None = None
    required: bool = False


@attrs.frozen(kw_only=True)
class ServiceDescription:
    """A service's ``describe=true`` document."""

    name: str
    url: str | None = None
    description: str | None = None
    parameters: tuple[ServiceParameter, ...] = ()
    example: str | None = None
    field_descriptions: object = attrs.field(default=None, hash=False)
    extra: Extra = attrs.field(factory=_no_extra, repr=False, hash=False)
