"""Tests of every service's document, the error envelopes and patch_retry state."""

# These tests check that every document parses with a plain XML parser, as the
# brief demands; the bodies come from our own simulator, not from a network.
# ruff: noqa: S314

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from nsight_async.testing import (
    SIMULATOR_API_KEY,
    SimulatedFleet,
    Simulator,
    SimulatorTransport,
)
from nsight_async.testing._describe import SERVICES
from nsight_async.testing._xml import created_stamp

NOW = datetime(2026, 11, 22, tzinfo=UTC)
INVALID = "Invalid value for parameter: "
WALL = datetime(2026, 11, 22, 13, 40, 12, tzinfo=UTC)


def _sim(**kwargs: object) -> Simulator:
    fleet = SimulatedFleet(seed=3, clients=5, devices=60, now=NOW)
    return Simulator(fleet, wall_clock=lambda: WALL, **kwargs)  # type: ignore[arg-type]


async def _get(sim: Simulator, path: str = "/api/", **params: object) -> httpx.Response:
    query = {"apikey": SIMULATOR_API_KEY, **params}
    transport = SimulatorTransport(sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        return await client.get(path, params=query)


def _ids(sim: Simulator) -> dict[str, object]:
    fleet = sim.fleet
    site = next(s for s in fleet.sites if s.n_servers and s.n_workstations)
    mob = next(d for d in fleet.iter_devices() if d.mob and list(fleet.sessions(d.device_id)))
    patch = next(d for d in fleet.iter_devices() if d.patch)
    return {
        "clientid": site.client_id,
        "siteid": site.site_id,
        "mob": mob.device_id,
        "patch": patch.device_id,
    }


async def test_list_clients_envelope() -> None:
    """list_clients answers an OK ``<result>`` with ``<items><client>`` and every field."""
    sim = _sim()
    response = await _get(sim, service="list_clients")
    root = ET.fromstring(response.content)
    assert response.status_code == 200
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert root.tag == "result"
    assert root.get("status") == "OK"
    assert root.get("created") == "2026-11-22T07:40:12-06:00"
    clients = root.findall("./items/client")
    assert len(clients) == sim.fleet.n_clients
    fields = [child.tag for child in clients[0]]
    assert fields == [
        "name", "clientid", "view_dashboard", "view_wkstsn_assets", "dashboard_username",
        "timezone", "creation_date", "server_count", "workstation_count",
        "mobile_device_count", "device_count",
    ]  # fmt: skip


async def test_list_sites_and_devices_parse() -> None:
    """list_sites, list_servers and list_workstations parse and list the fleet's ids."""
    sim = _sim()
    ids = _ids(sim)
    sites = ET.fromstring((await _get(sim, service="list_sites", clientid=ids["clientid"])).content)
    site_ids = [int(e.text or 0) for e in sites.iter("siteid")]
    assert site_ids == [s.site_id for s in sim.fleet.sites_of(int(str(ids["clientid"])))]
    for service, tag, id_tag in (
        ("list_servers", "server", "serverid"),
        ("list_workstations", "workstation", "workstationid"),
    ):
        root = ET.fromstring((await _get(sim, service=service, siteid=ids["siteid"])).content)
        devices = root.findall(f"./items/{tag}")
        assert devices
        assert all(d.findtext(id_tag) for d in devices)
        assert all(int(d.findtext("total_memory") or 0) >= 4 * 2**30 for d in devices)


async def test_server_fields_include_247_extras() -> None:
    """Servers carry missed_247 and email_overdue_alert; workstations do not."""
    sim = _sim()
    ids = _ids(sim)
    server = ET.fromstring((await _get(sim, service="list_servers", siteid=ids["siteid"])).content)
    wks = ET.fromstring(
        (await _get(sim, service="list_workstations", siteid=ids["siteid"])).content
    )
    assert server.find("./items/server/missed_247") is not None
    assert wks.find("./items/workstation/missed_247") is None


async def test_empty_site_answers_empty_items() -> None:
    """A site without devices answers ``<items/>``."""
    sim = _sim()
    empty = next(s for s in sim.fleet.sites if s.n_devices == 0)
    response = await _get(sim, service="list_servers", siteid=empty.site_id)
    assert b"<items/>" in response.content
    ET.fromstring(response.content)


async def test_devices_at_client_tree() -> None:
    """list_devices_at_client nests client, site and device with flags; mobile is empty."""
    sim = _sim()
    ids = _ids(sim)
    response = await _get(
        sim, service="list_devices_at_client", clientid=ids["clientid"], devicetype="server"
    )
    root = ET.fromstring(response.content)
    servers = root.findall("./items/client/site/server")
    assert servers
    first = servers[0]
    device = sim.fleet.device(int(first.findtext("id") or 0))
    assert device is not None
    assert first.findtext("mob") == str(int(device.mob))
    assert first.find("checkcount/dsc_247") is not None
    mobile = await _get(
        sim, service="list_devices_at_client", clientid=ids["clientid"], devicetype="mobile_device"
    )
    assert ET.fromstring(mobile.content).find("items") is not None
    assert b"<items/>" in mobile.content


async def test_mob_sessions_are_direct_children() -> None:
    """list_mob_sessions puts ``<session>`` elements directly under ``<result>``."""
    sim = _sim()
    ids = _ids(sim)
    root = ET.fromstring(
        (await _get(sim, service="list_mob_sessions", deviceid=ids["mob"])).content
    )
    sessions = root.findall("session")
    truth = list(sim.fleet.sessions(int(str(ids["mob"]))))
    assert len(sessions) == len(truth)
    assert sessions[0].findtext("start") == truth[0].start.strftime("%Y-%m-%d %H:%M:%S")
    assert root.find("items") is None


async def test_patch_list_is_latin1() -> None:
    """patch_list_all is a bare ``<patches>`` in real ISO-8859-1, so é round-trips."""
    sim = _sim()
    ids = _ids(sim)
    response = await _get(sim, service="patch_list_all", deviceid=ids["patch"])
    assert response.content.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    root = ET.fromstring(response.content)
    assert root.tag == "patches"
    truth = sim.patches(int(str(ids["patch"])))
    titles = [p.findtext("patchTitle") for p in root.findall("patch")]
    assert titles == [p.title for p in truth]


async def test_patch_list_accent_round_trips() -> None:
    """An é in a patch title is sent as the single Latin-1 byte and parses back to é."""
    sim = Simulator(SimulatedFleet(seed=3, clients=5, devices=300, now=NOW))
    device, title = next(
        (d.device_id, p.title)
        for d in sim.fleet.iter_devices()
        for p in sim.patches(d.device_id)
        if "é" in p.title
    )
    response = await _get(sim, service="patch_list_all", deviceid=device)
    assert title.encode("latin-1") in response.content
    assert "é".encode() not in response.content
    titles = [e.text for e in ET.fromstring(response.content).iter("patchTitle")]
    assert title in titles


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_describe_documents_parse(service: str) -> None:
    """``describe=true`` answers the service description for every service."""
    response = await _get(_sim(), service=service, describe="true")
    root = ET.fromstring(response.content)
    assert root.findtext("service/name") == service
    assert root.find("service/parameters/parameter/required") is not None
    assert "<table>" in (root.findtext("service/fielddescriptions") or "")
    assert "&service=" in (root.findtext("service/url") or "")


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"service": "list_sites"}, "5", "Missing parameter: clientid"),
        ({"service": "list_sites", "clientid": "abc"}, "4", f"{INVALID}clientid"),
        ({"service": "list_sites", "clientid": "99999"}, "4", f"{INVALID}clientid"),
        ({"service": "patch_list_all", "deviceid": "5"}, "4", f"{INVALID}deviceid"),
        ({"service": "list_devices_at_client", "clientid": "100", "devicetype": "Server"}, "4",
         "Invalid value for parameter: devicetype"),
        ({"service": "no_such_service"}, "2", "Service unknown"),
        ({}, "5", "Missing parameter: service"),
    ],
)  # fmt: skip
async def test_error_envelopes(params: dict[str, str], code: str, message: str) -> None:
    """Bad requests answer HTTP 200 with a FAIL envelope, errorcode and message."""
    response = await _get(_sim(), **params)
    root = ET.fromstring(response.content)
    assert response.status_code == 200
    assert root.get("status") == "FAIL"
    assert root.findtext("error/errorcode") == code
    assert root.findtext("error/message") == message


async def test_login_failed_for_unknown_key() -> None:
    """An unknown key answers errorcode 3 "Login failed" and is logged as key_ok False."""
    sim = _sim()
    transport = SimulatorTransport(sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        response = await client.get("/api/", params={"apikey": "wrong", "service": "list_clients"})
    root = ET.fromstring(response.content)
    assert root.findtext("error/errorcode") == "3"
    assert root.findtext("error/message") == "Login failed"
    assert sim.log.calls()[0].key_ok is False


async def test_default_php_path_and_unknown_path() -> None:
    """``/api/default.php`` works like ``/api/``; other paths answer an HTML 404."""
    sim = _sim()
    assert (await _get(sim, "/api/default.php", service="list_clients")).status_code == 200
    missing = await _get(sim, "/nope", service="list_clients")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]


async def test_patch_retry_moves_failed_to_pending_once() -> None:
    """Retrying a failed patch makes it pending; retrying again reports it already applied."""
    sim = _sim()
    device = int(str(_ids(sim)["patch"]))
    failed = next(p.patchid for p in sim.patches(device) if p.status == 16)
    installed = next(p.patchid for p in sim.patches(device) if p.status == 8)
    first = await _get(
        sim, service="patch_retry", deviceid=device, patchids=f"{failed},{installed}"
    )
    root = ET.fromstring(first.content)
    assert root.get("status") == "OK"
    assert (
        root.findtext("msg") == f"Retrying patches: {failed} Patches already applied: {installed}"
    )
    assert {p.patchid: p.status for p in sim.patches(device)}[failed] == 2
    second = await _get(sim, service="patch_retry", deviceid=device, patchids=str(failed))
    assert ET.fromstring(second.content).findtext("msg") == (
        f"Retrying patches: Patches already applied: {failed}"
    )
    assert sim.log.patch_retry_applied() == [
        (device, failed),
        (device, installed),
        (device, failed),
    ]


async def test_patch_retry_unknown_id_fails_without_change() -> None:
    """Retrying an id not on the device fails with only a ``<msg>`` and changes nothing."""
    sim = _sim()
    device = int(str(_ids(sim)["patch"]))
    before = sim.patches(device)
    failed = next(p.patchid for p in before if p.status == 16)
    response = await _get(sim, service="patch_retry", deviceid=device, patchids=f"{failed},99999")
    root = ET.fromstring(response.content)
    assert root.get("status") == "FAIL"
    assert root.find("error") is None
    assert "99999" in (root.findtext("msg") or "")
    assert sim.patches(device) == before


async def test_patch_retry_rejects_non_numeric_ids() -> None:
    """Non-numeric patch ids answer errorcode 4 for ``patchids``."""
    sim = _sim()
    device = _ids(sim)["patch"]
    response = await _get(sim, service="patch_retry", deviceid=device, patchids="1,x")
    assert ET.fromstring(response.content).findtext("error/errorcode") == "4"


async def test_same_seed_same_bytes() -> None:
    """Two simulators with the same seed and wall clock answer byte-identical documents."""
    a, b = _sim(), _sim()
    ids = _ids(a)
    for params in (
        {"service": "list_clients"},
        {"service": "list_workstations", "siteid": ids["siteid"]},
        {"service": "list_mob_sessions", "deviceid": ids["mob"]},
        {"service": "patch_list_all", "deviceid": ids["patch"]},
    ):
        assert (await _get(a, **params)).content == (await _get(b, **params)).content


async def test_log_never_holds_the_key() -> None:
    """The request log keeps every parameter except ``apikey``."""
    sim = _sim()
    await _get(sim, service="list_clients")
    entry = sim.log.calls("list_clients")[0]
    assert entry.params == {"service": "list_clients"}
    assert SIMULATOR_API_KEY not in repr(sim.log)
    assert sim.log.count("list_clients") == 1
    assert entry.key_ok
    assert entry.status == 200


async def test_created_follows_the_wall_clock_to_the_second() -> None:
    """``created`` is rendered once per second but always shows the current instant."""
    chicago = ZoneInfo("America/Chicago")
    moments = [
        WALL,
        WALL.replace(microsecond=999_999),
        WALL + timedelta(seconds=1),
        WALL.astimezone(chicago),
        datetime(2026, 11, 1, 1, 30, tzinfo=chicago),  # the same wall time twice (fold)
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=chicago),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 11, 22, 13, 40, 12),  # naive: read as local time
        datetime(2026, 11, 22, 13, 40, 12),
    ]
    now = [WALL]
    sim = Simulator(SimulatedFleet(seed=3, clients=1, devices=0), wall_clock=lambda: now[0])
    for offset in (-360, 330, 330):
        sim.configure(utc_offset_minutes=offset)
        for moment in moments:
            now[0] = moment
            response = await _get(sim, service="list_clients")
            created = ET.fromstring(response.content).get("created")
            assert created == created_stamp(moment, offset)
