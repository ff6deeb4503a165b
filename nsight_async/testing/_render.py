"""Render the data services of the simulated fleet as XML string pieces.

Each function yields the pieces of one document (declaration included); the
caller encodes them with `_xml.chunked`. Values are derived from the fleet's
seed, so the same fleet renders the same bytes. Names are written as CDATA for
some entities and entity-escaped for others, as live responses mix both.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from nsight_async.testing import _vocab
from nsight_async.testing._fleet import DeviceInfo, DeviceKind, SimulatedFleet
from nsight_async.testing._history import SessionRow, SimPatch
from nsight_async.testing._xml import XML_DECL_LATIN1, element, open_result

_FMT = "%Y-%m-%d %H:%M:%S"


def _cdata_for(seed: str, entity: int) -> bool:
    """Decide stably whether an entity's names are CDATA or escaped text."""
    return random.Random(f"{seed}:cdata:{entity}").random() < 0.5


def _date(now: datetime, rng: random.Random, max_days: int) -> str:
    return (now - timedelta(days=rng.randint(30, max_days))).strftime("%Y-%m-%d")


def list_clients(fleet: SimulatedFleet, head: str) -> Iterator[str]:
    """Yield the ``list_clients`` document."""
    yield head
    if not fleet.clients:
        yield "<items/></result>\n"
        return
    yield "<items>"
    for client in fleet.clients:
        rng = random.Random(f"{fleet.seed}:client:{client.client_id}")
        servers = fleet.count_devices(client.client_id, DeviceKind.SERVER)
        workstations = fleet.count_devices(client.client_id, DeviceKind.WORKSTATION)
        mobiles = rng.choice((0, 0, 0, 1, 3))
        username = "none" if rng.random() < 0.7 else f"dash_{client.client_id}"
        yield "".join(
            (
                "<client>",
                element("name", client.name, cdata=_cdata_for(fleet.seed, client.client_id)),
                element("clientid", client.client_id),
                element("view_dashboard", rng.randint(0, 1)),
                element("view_wkstsn_assets", rng.randint(0, 1)),
                element("dashboard_username", username),
                element("timezone", rng.choice(_vocab.TIMEZONES)),
                element("creation_date", _date(fleet.now, rng, 4000)),
                element("server_count", servers),
                element("workstation_count", workstations),
                element("mobile_device_count", mobiles),
                element("device_count", servers + workstations + mobiles),
                "</client>",
            )
        )
    yield "</items></result>\n"


def list_sites(fleet: SimulatedFleet, head: str, client_id: int) -> Iterator[str]:
    """Yield the ``list_sites`` document of one client."""
    yield head
    sites = fleet.sites_of(client_id)
    if not sites:
        yield "<items/></result>\n"
        return
    yield "<items>"
    for site in sites:
        rng = random.Random(f"{fleet.seed}:site:{site.site_id}")
        primary = f"192.0.2.{rng.randint(1, 254)}" if rng.random() < 0.8 else ""
        secondary = f"198.51.100.{rng.randint(1, 254)}" if rng.random() < 0.3 else ""
        yield "".join(
            (
                "<site>",
                element("siteid", site.site_id),
                element("name", site.name, cdata=_cdata_for(fleet.seed, site.site_id)),
                element("connection_ok", int(rng.random() < 0.9)),
                element("creation_date", _date(fleet.now, rng, 3000)),
                element("primary_router", primary),
                element("secondary_router", secondary),
                "</site>",
            )
        )
    yield "</items></result>\n"


def device_fields(fleet: SimulatedFleet, device: DeviceInfo) -> list[tuple[str, str]]:
    """Return the ``list_servers``/``list_workstations`` fields of a device, in order."""
    rng = random.Random(f"{fleet.seed}:details:{device.device_id}")
    is_server = device.kind is DeviceKind.SERVER
    maker, models = rng.choice(_vocab.MANUFACTURERS)
    os_name, os_build = rng.choice(_vocab.SERVER_OS if is_server else _vocab.WORKSTATION_OS)
    user = rng.choice(_vocab.USERS)
    domain = rng.choice(_vocab.DOMAINS)
    booted = fleet.now - timedelta(seconds=rng.randint(600, 90 * 86400))
    scanned = fleet.now - timedelta(seconds=rng.randint(60, 14 * 86400))
    macs = [":".join(f"{rng.randint(0, 255):02X}" for _ in range(6)) for _ in range(3)]
    online = rng.random() < 0.85
    fields = [
        ("serverid" if is_server else "workstationid", str(device.device_id)),
        ("guid", f"{rng.getrandbits(128):032x}"),
        ("name", device.name),
        ("description", rng.choice(("", "Reception PC", "Backup & file server", "<spare>"))),
        ("install_date", _date(fleet.now, rng, 2500)),
        ("last_boot_time", "Not Available" if rng.random() < 0.1 else str(int(booted.timestamp()))),
        ("user", f"{device.name}\\{user}" + (" " if rng.random() < 0.3 else "") if user else ""),
        ("domain", domain),
        ("manufacturer", maker),
        ("model", rng.choice(models)),
        ("ip", f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"),
        ("external_ip", f"203.0.113.{rng.randint(1, 254)}"),
        ("mac1", macs[0]),
        ("mac2", macs[1] if rng.random() < 0.5 else ""),
        ("mac3", macs[2] if rng.random() < 0.2 else ""),
        ("os", os_name),
        ("os_details", f"{os_name}, build {os_build}"),
        ("agent_version", rng.choice(_vocab.AGENT_VERSIONS)),
        ("agent_mode", rng.choice(_vocab.AGENT_MODES)),
        ("online", str(int(online))),
        ("active_247", str(int(online and rng.random() < 0.9))),
        ("check_interval_247", rng.choice(("5", "10", "15", "60"))),
        ("status_247", rng.choice(("1", "1", "1", "0", "2"))),
        ("assetid", str(rng.randint(10_000, 9_999_999))),
        ("device_serial", f"SN{rng.getrandbits(40):010X}" if rng.random() < 0.9 else ""),
        ("total_memory", str(rng.choice((4, 8, 16, 32, 64, 128, 256)) * 2**30)),
        ("last_scan_time", "0000-00-00 00:00:00" if rng.random() < 0.1 else scanned.strftime(_FMT)),
    ]
    if is_server:
        fields += [("missed_247", str(rng.randint(0, 3))), ("email_overdue_alert", "1")]
    for n in range(1, 4 if rng.random() < 0.25 else 1):
        fields.append((f"custom_field_{n}", rng.choice(("Rack 4", "Büro 2", "", "Lease & co"))))
    return fields


def list_devices(fleet: SimulatedFleet, head: str, site_id: int, kind: DeviceKind) -> Iterator[str]:
    """Yield the ``list_servers`` or ``list_workstations`` document of a site."""
    yield head
    devices = fleet.devices_of(site_id, kind)
    if not devices:
        yield "<items/></result>\n"
        return
    yield "<items>"
    for device in devices:
        cdata = _cdata_for(fleet.seed, device.device_id)
        body = "".join(
            element(tag, value, cdata=cdata and tag in ("name", "description", "user"))
            for tag, value in device_fields(fleet, device)
        )
        yield f"<{kind.value}>{body}</{kind.value}>"
    yield "</items></result>\n"


_TREE_USERNAMES = tuple(element("username", user) for user in _vocab.USERS)
_TREE_DESCRIPTIONS = tuple(element("description", d) for d in ("", "Front desk", "Server & NAS"))


def _tree_device(fleet: SimulatedFleet, device: DeviceInfo) -> str:
    """Render one device of the tree (numbers written directly: they need no escaping)."""
    rng = random.Random(f"{fleet.seed}:tree:{device.device_id}")
    draw = rng.randrange  # randint(a, b) is randrange(a, b + 1): the same draws
    dsc, passed, clear, fail, takecontrol = draw(31), draw(31), draw(31), draw(31), draw(2)
    mav, systray, mavbreck, web, risk = draw(2), draw(2), draw(2), draw(2), draw(2)
    tag, device_id = device.kind.value, device.device_id
    name = element("name", device.name, cdata=_cdata_for(fleet.seed, device_id))
    username, description = rng.choice(_TREE_USERNAMES), rng.choice(_TREE_DESCRIPTIONS)
    status = "online" if rng.random() < 0.85 else "offline"
    return (
        f"<{tag}><id>{device_id}</id>{name}{username}{description}<status>{status}</status>"
        f"<checkcount><dsc_247>{dsc}</dsc_247><pass>{passed}</pass><clear>{clear}</clear>"
        f"<fail>{fail}</fail></checkcount><takecontrol>{takecontrol}</takecontrol>"
        f"<patch>{int(device.patch)}</patch><mav>{mav}</mav><mob>{int(device.mob)}</mob>"
        f"<systray>{systray}</systray><mavbreck>{mavbreck}</mavbreck>"
        f"<webprotection>{web}</webprotection><riskintelligence>{risk}</riskintelligence></{tag}>"
    )


def list_devices_at_client(
    fleet: SimulatedFleet, head: str, client_id: int, kind: DeviceKind | None
) -> Iterator[str]:
    """Yield the client → site → device tree; ``kind=None`` (mobile_device) gives ``<items/>``.

    The client always appears; only sites holding a device of the kind are listed.
    """
    yield head
    client = fleet.client(client_id)
    if client is None or kind is None:
        yield "<items/></result>\n"
        return
    yield "<items><client>" + element("id", client.client_id)
    yield element("name", client.name, cdata=_cdata_for(fleet.seed, client.client_id))
    for site in fleet.sites_of(client_id):
        devices = fleet.devices_of(site.site_id, kind)
        if not devices:
            continue
        yield "<site>" + element("id", site.site_id)
        yield element("name", site.name, cdata=_cdata_for(fleet.seed, site.site_id))
        for device in devices:
            yield _tree_device(fleet, device)
        yield "</site>"
    yield "</client></items></result>\n"


#: ``YYYY-MM-DD `` by day number since the epoch; cleared when full (strftime is slow).
_DATES: dict[int, str] = {}
_DATES_MAX = 16_384
_HOURS_MINUTES = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SECONDS = tuple(f"{s:02d}" for s in range(60))


def _date_text(day: int) -> str:
    """Return ``YYYY-MM-DD `` (with the space) of a day number, cached."""
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) >= _DATES_MAX:
            _DATES.clear()
        date = _DATES[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d ")
    return date


def list_mob_sessions(head: str, rows: Iterable[SessionRow]) -> Iterator[str]:
    """Yield the ``list_mob_sessions`` document: sessions directly under ``<result>``.

    Times are ``YYYY-MM-DD HH:MM:SS`` UTC, written from cached dates and tables.
    """
    yield head
    dates, date_text, hours_minutes, seconds = _DATES, _date_text, _HOURS_MINUTES, _SECONDS
    for (
        session_id, kind, storage, plugin, start, end, size, items, size_change, item_change,
        removed, processed_size, processed_items, transferred, errors, status,
    ) in rows:  # fmt: skip
        start_day, start = divmod(start, 86400)
        start_minute, start = divmod(start, 60)
        end_day, end = divmod(end, 86400)
        end_minute, end = divmod(end, 60)
        yield (
            f"<session><session_id>{session_id}</session_id><type>{kind}</type>"
            f"<storage_account_id>{storage}</storage_account_id><plugin>{plugin}</plugin>"
            f"<start>{dates.get(start_day) or date_text(start_day)}"
            f"{hours_minutes[start_minute]}{seconds[start]}</start>"
            f"<end>{dates.get(end_day) or date_text(end_day)}"
            f"{hours_minutes[end_minute]}{seconds[end]}</end>"
            f"<selection_size>{size}</selection_size>"
            f"<selection_item_count>{items}</selection_item_count>"
            f"<size_change>{size_change}</size_change>"
            f"<item_count_change>{item_change}</item_count_change>"
            f"<removed_item_count>{removed}</removed_item_count>"
            f"<processed_size>{processed_size}</processed_size>"
            f"<processed_item_count>{processed_items}</processed_item_count>"
            f"<transferred_size>{transferred}</transferred_size>"
            f"<error_count>{errors}</error_count><status>{status}</status></session>"
        )
    yield "</result>\n"


def patch_list_all(patches: Iterable[SimPatch]) -> Iterator[str]:
    """Yield the bare ISO-8859-1 ``<patches>`` document (no ``<result>``, camelCase fields)."""
    yield XML_DECL_LATIN1 + "<patches>"
    for p in patches:
        yield "".join(
            (
                "<patch>",
                element("patchid", p.patchid),
                element("policy", p.policy),
                element("policyLabel", p.policy_label, cdata=True),
                element("patchicon", f"patch_{p.status_label.lower().replace(' ', '_')}.png"),
                element("status", p.status),
                element("selectpatch", p.selectpatch),
                element("patchTitle", p.title, cdata=True),
                element("product", p.product),
                element("statusLabel", p.status_label, cdata=True),
                element("severity", p.severity),
                element("severityLabel", _vocab.SEVERITY_LABELS[p.severity], cdata=True),
                element("installdate", p.installdate),
                element("releaseDate", p.release_date),
                "</patch>",
            )
        )
    yield "</patches>\n"


def result_head(created: str, host: str) -> str:
    """Return the opening of an OK envelope."""
    return open_result(created=created, host=host, status="OK")
