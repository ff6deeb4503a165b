"""Tests for nsight_async._shapes (with the field tables of _specs): exact typed records."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from nsight_async import (
    ActionFailedError,
    CheckCounts,
    Client,
    Device,
    DeviceAtClient,
    DeviceKind,
    InvalidParameterError,
    MobSession,
    ParseError,
    Patch,
    PatchRetryResult,
    PatchStatus,
    Plugin,
    ServiceDescription,
    ServiceParameter,
    SessionStatus,
    SessionType,
    Site,
    parser_for,
)
from nsight_async._builders import builder
from nsight_async._models import GIB, MIB
from nsight_async._shapes import TYPED_SERVICES, parse_patch_retry_msg

SAMPLES = Path(__file__).parent / "samples"


def parse(
    sample: str,
    service: str,
    params: dict[str, str] | None = None,
    *,
    describe: bool = False,
) -> list[Any]:
    """Parse a sample whole with a fresh parser and return every record."""
    parser = parser_for(service, params, describe=describe)
    return parser.feed((SAMPLES / sample).read_bytes()) + parser.close()


def parse_bytes(service: str, body: bytes, params: dict[str, str] | None = None) -> list[Any]:
    parser = parser_for(service, params)
    return parser.feed(body) + parser.close()


# -- parser_for ------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(TYPED_SERVICES))
def test_parser_for_gives_a_fresh_parser_per_call(service: str) -> None:
    """Every call returns a new parser for that service with nothing emitted yet."""
    first, second = parser_for(service), parser_for(service)
    assert first is not second
    assert first.service == service
    assert first.records_emitted == 0
    assert first.envelope is None


def test_untyped_service_gets_the_generic_dict_view() -> None:
    """A service without a typed shape returns one xmltodict-style dict of the whole document."""
    (view,) = parse("list_checks.xml", "list_checks", {"deviceid": "880011"})
    result = view["result"]
    assert result["@status"] == "OK"
    assert result["@created"] == "2024-03-18T09:35:00-06:00"
    checks = result["items"]["check"]
    assert [c["checkid"] for c in checks] == ["7700101", "7700102"]
    assert checks[0]["description"] == "Disk Space Check - C: & D:"
    assert checks[0]["formatted_output"] == "C: 41% free"
    assert checks[1]["formatted_output"] is None


def test_generic_view_still_maps_fail_envelopes_to_errors() -> None:
    """The generic view raises the typed error for a FAIL envelope instead of returning it."""
    body = (SAMPLES / "fail_code4.xml").read_bytes()
    with pytest.raises(InvalidParameterError) as info:
        parse_bytes("list_checks", body)
    assert info.value.code == 4


def test_generic_view_accepts_any_root() -> None:
    """The generic view accepts roots other than ``<result>`` (anything but ``<html>``)."""
    (view,) = parse_bytes("list_templates", b"<templates><t>a</t><t>b</t></templates>")
    assert view == {"templates": {"t": ["a", "b"]}}


# -- list_clients ----------------------------------------------------------


def test_list_clients_reads_cdata_entities_sentinels_and_trailing_spaces() -> None:
    """Clients keep CDATA and ``&amp;`` names, strip spaces, and read ``none``/empty as None."""
    acme, baker, cafe, northwind = parse("list_clients.xml", "list_clients")
    assert acme == Client(
        client_id=1001,
        name="Acme Dental Group",
        view_dashboard=True,
        view_wkstsn_assets=True,
        dashboard_username="acme.admin",
        timezone="America/Denver",
        creation_date=date(2016, 4, 12),
        server_count=3,
        workstation_count=41,
        mobile_device_count=0,
        device_count=44,
    )
    assert baker.name == "Baker & Sons Plumbing"
    assert baker.dashboard_username is None
    assert baker.timezone == "America/Chicago"
    assert baker.view_dashboard is False
    assert cafe.name == "Café Zürich <Downtown> & Co"
    assert cafe.dashboard_username is None
    assert cafe.timezone is None
    assert cafe.extra == {"reseller_code": "EU-7"}
    assert northwind.creation_date is None
    assert northwind.device_count == 129


def test_list_clients_with_one_client_is_a_list_of_one() -> None:
    """A single ``<client>`` gives a one-element list (the xmltodict one-vs-many trap)."""
    records = parse("list_clients_one.xml", "list_clients")
    assert len(records) == 1
    assert isinstance(records[0], Client)
    assert records[0].client_id == 2001
    assert records[0].name == "Solo Accounting LLC"


def test_list_clients_empty_items_is_an_empty_list() -> None:
    """``<items/>`` gives no records and no error."""
    assert parse("list_clients_empty.xml", "list_clients") == []


def test_record_without_id_is_a_parse_error_naming_the_service() -> None:
    """A record without a readable id raises ParseError naming the service and the element."""
    body = b'<result status="OK"><items><client><name>x</name></client></items></result>'
    with pytest.raises(ParseError) as info:
        parse_bytes("list_clients", body)
    assert info.value.service == "list_clients"
    assert str(info.value).startswith("list_clients: ")
    assert "clientid" in str(info.value)


def test_unreadable_value_becomes_none_and_is_kept_raw() -> None:
    """A value a converter cannot read becomes None and is kept in extra as ``<field>_raw``."""
    body = (
        b'<result status="OK"><items><client><clientid>5</clientid>'
        b"<server_count>lots</server_count><creation_date>soon</creation_date>"
        b"<view_dashboard>maybe</view_dashboard></client></items></result>"
    )
    (client,) = parse_bytes("list_clients", body)
    assert client.server_count is None
    assert client.creation_date is None
    assert client.view_dashboard is None
    assert client.extra == {
        "server_count_raw": "lots",
        "creation_date_raw": "soon",
        "view_dashboard_raw": "maybe",
    }


# -- list_sites ------------------------------------------------------------


def test_list_sites_carries_the_requested_client_id() -> None:
    """Sites take ``client_id`` from the call's ``clientid`` and read routers and flags."""
    head, warehouse, home = parse("list_sites.xml", "list_sites", {"clientid": "1001"})
    assert head == Site(
        site_id=5101,
        name="Head Office",
        client_id=1001,
        connection_ok=True,
        creation_date=date(2016, 4, 12),
        primary_router="192.168.10.1",
        secondary_router=None,
    )
    assert warehouse.name == "Warehouse & Yard"
    assert warehouse.connection_ok is False
    assert home.primary_router is None
    assert home.client_id == 1001


def test_list_sites_without_clientid_param_has_no_client_id() -> None:
    """Without a numeric ``clientid`` parameter the sites' ``client_id`` is None."""
    (site,) = parse("created_offset_utf8.xml", "list_sites", {"clientid": "abc"})
    assert site.client_id is None
    assert site.name == "Köln – Büro „Süd“"


# -- list_servers / list_workstations -------------------------------------


def test_list_servers_reads_big_memory_sentinels_and_custom_fields() -> None:
    """Servers read >2**32 memory, epoch boot time, sentinels as None, and keep custom fields."""
    dc, fs = parse("list_servers.xml", "list_servers", {"siteid": "5101"})
    assert isinstance(dc, Device)
    assert dc.kind is DeviceKind.SERVER
    assert dc.device_id == 880011
    assert dc.site_id == 5101
    assert dc.name == "ACME-DC01"
    assert dc.description == "Domain controller & DNS"
    assert dc.user == "SERVER\\peter"
    assert dc.total_memory == 137438953472 > 2**32
    assert dc.last_boot_time == datetime(2024, 3, 15, 13, 20, tzinfo=UTC)
    assert dc.last_boot_time.tzinfo is UTC
    assert dc.last_scan_time == datetime(2024, 3, 17, 23, 4, 11)
    assert dc.last_scan_time.tzinfo is None  # server-local, zone unknown
    assert dc.install_date == date(2016, 4, 13)
    assert dc.agent_version == "10_13_8"
    assert dc.online is True
    assert dc.check_interval_247 == 5
    assert dc.missed_247 == 0
    assert dc.email_overdue_alert is True
    assert dc.mac3 is None
    assert dc.extra == {
        "custom_field_1": "Rack B, U12",
        "custom_field_2": "Warranty <ends> 2026 & renew",
    }
    assert fs.last_boot_time is None  # "Not Available"
    assert fs.last_scan_time is None  # "0000-00-00 00:00:00"
    assert fs.user is None  # "none"
    assert fs.description is None  # <description/>
    assert fs.total_memory == 2**32
    assert fs.online is False
    assert fs.extra == {}


def test_list_workstations_reads_workstation_fields() -> None:
    """Workstations take their id from ``workstationid`` and have no server-only fields."""
    reception, laptop = parse("list_workstations.xml", "list_workstations", {"siteid": "5101"})
    assert reception.kind is DeviceKind.WORKSTATION
    assert reception.device_id == 991201
    assert reception.user == "ACME\\j.müller"
    assert reception.total_memory == 17179869184
    assert reception.missed_247 is None
    assert reception.email_overdue_alert is None
    assert laptop.install_date is None  # 0000-00-00
    assert laptop.last_boot_time is None  # epoch 0
    assert laptop.external_ip is None
    assert laptop.device_serial is None
    assert laptop.extra == {"battery_health": "87%"}


# -- list_devices_at_client -----------------------------------------------


def test_devices_at_client_carry_their_client_and_site() -> None:
    """Each device carries the client and site around it; a site without devices gives none."""
    records = parse(
        "list_devices_at_client_server.xml",
        "list_devices_at_client",
        {"clientid": "1001", "devicetype": "server"},
    )
    assert [(r.client_id, r.site_id, r.device_id) for r in records] == [
        (1001, 5101, 880011),
        (1001, 5101, 880012),
        (1001, 5103, 880020),
        (1002, 5201, 880101),
    ]
    assert {r.client_name for r in records} == {"Acme Dental Group", "Baker & Sons Plumbing"}
    assert records[2].site_name == "Home Workers"
    assert all(type(r) is DeviceAtClient and r.kind is DeviceKind.SERVER for r in records)


def test_devices_at_client_read_checks_and_flags() -> None:
    """The ``<checkcount>`` block becomes CheckCounts and every flag a bool."""
    dc, fs, nas, _ = parse("list_devices_at_client_server.xml", "list_devices_at_client")
    assert dc == DeviceAtClient(
        kind=DeviceKind.SERVER,
        device_id=880011,
        name="ACME-DC01",
        client_id=1001,
        client_name="Acme Dental Group",
        site_id=5101,
        site_name="Head Office",
        username="SERVER\\peter",
        description="Domain controller & DNS",
        status="ok",
        checks=CheckCounts(dsc_247=12, passed=11, cleared=0, failed=1),
        takecontrol=True,
        patch=True,
        mav=True,
        mob=True,
        systray=False,
        mavbreck=False,
        webprotection=False,
        riskintelligence=True,
    )
    assert fs.username is None
    assert fs.checks == CheckCounts(dsc_247=0, passed=0, cleared=0, failed=0)
    assert not any((fs.takecontrol, fs.patch, fs.mav, fs.mob, fs.systray, fs.mavbreck))
    assert fs.extra == {"backup_vendor": "other"}
    assert nas.name == "NAS-Ü1"
    assert nas.description == "Synology <backup> target"
    flags = ("takecontrol", "patch", "mav", "mob", "systray", "mavbreck")
    assert all(getattr(nas, f) for f in (*flags, "webprotection", "riskintelligence"))


def test_devices_at_client_workstations_with_empty_checkcounts() -> None:
    """Workstation trees parse too; empty ``<checkcount>`` children become None."""
    kasse, buero, depot = parse(
        "list_devices_at_client_workstation.xml",
        "list_devices_at_client",
        {"clientid": "1003", "devicetype": "workstation"},
    )
    assert kasse.kind is DeviceKind.WORKSTATION
    assert kasse.client_name == "Café Zürich <Downtown> & Co"
    assert buero.name == "BÜRO-PC"
    assert buero.username == "CAFE\\andrea"
    assert buero.description == "Büro & Lager"
    assert buero.checks == CheckCounts(dsc_247=0, passed=4, cleared=1, failed=2)
    assert depot.client_id == 1004
    assert depot.site_name == "Depot"
    assert depot.checks == CheckCounts()
    assert depot.username is None
    assert depot.extra == {}


def test_device_outside_a_client_id_is_a_parse_error_saying_so() -> None:
    """A device whose ``<client>`` has no ``<id>`` raises ParseError naming the missing id."""
    body = (
        b'<result status="OK"><items><client><name>x</name><site><id>1</id>'
        b"<server><id>4</id></server></site></client></items></result>"
    )
    with pytest.raises(ParseError) as info:
        parse_bytes("list_devices_at_client", body)
    assert info.value.service == "list_devices_at_client"
    assert "<id>" in str(info.value)


# -- list_mob_sessions -----------------------------------------------------


def test_mob_session_has_exact_typed_values() -> None:
    """A session reads big byte sizes as ints and start/end as aware UTC datetimes."""
    sessions = parse("list_mob_sessions.xml", "list_mob_sessions", {"deviceid": "880011"})
    assert sessions[0] == MobSession(
        session_id=3100001,
        type=SessionType.BACKUP,
        plugin=Plugin.FILE_SYSTEM,
        status=SessionStatus.COMPLETED,
        start=datetime(2024, 3, 17, 1, 0, 2, tzinfo=UTC),
        end=datetime(2024, 3, 17, 1, 42, 59, tzinfo=UTC),
        storage_account_id=42001,
        selection_size=6442450944000,
        selection_item_count=1843221,
        size_change=104857600,
        item_count_change=312,
        removed_item_count=17,
        processed_size=5368709120,
        processed_item_count=329,
        transferred_size=1073741824,
        error_count=0,
    )
    assert sessions[0].start is not None
    assert sessions[0].start.tzinfo is UTC
    assert sessions[3].size_change == -2048
    assert sessions[7].selection_size == 2**63 - 1


@pytest.mark.parametrize(
    ("sample", "service"),
    [
        ("list_mob_sessions.xml", "list_mob_sessions"),
        ("list_clients.xml", "list_clients"),
        ("patch_list_all.xml", "patch_list_all"),
        ("list_devices_at_client_server.xml", "list_devices_at_client"),
    ],
)
def test_records_made_by_the_parser_are_what_init_makes(sample: str, service: str) -> None:
    """Records the builders make slot by slot (the fast path) are equal, hash, print,
    copy, pickle and refuse changes as records made by ``__init__`` do."""
    records = parse(sample, service)
    assert records
    for record in records:
        cls = type(record)
        made = cls(**{f.name: getattr(record, f.name) for f in attrs.fields(cls)})
        assert record == made
        assert repr(record) == repr(made)
        assert hash(record) == hash(made)
        assert attrs.evolve(record) == made
        assert copy.copy(record) == made
        assert pickle.loads(pickle.dumps(record)) == made  # noqa: S301  # our own bytes
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            record.extra = {}  # type: ignore[misc]


def test_a_record_class_with_a_hook_or_an_alias_is_made_by_its_init() -> None:
    """Only attrs' own ``__init__`` that just stores its arguments is skipped."""

    @attrs.frozen(kw_only=True)
    class Aliased:
        value: int = attrs.field(alias="value_", default=0)
        extra: dict[str, Any] = attrs.field(factory=dict)

    made: list[int] = []

    @attrs.frozen(kw_only=True)
    class Hooked:
        value: int = 0
        extra: dict[str, Any] = attrs.field(factory=dict)

        def __attrs_pre_init__(self) -> None:
            made.append(1)

    for cls, attr in ((Aliased, "value_"), (Hooked, "value")):
        build = builder(cls, (("value", attr, int),), attr).build
        assert build("r", {"value": "7"}, []).value == 7
    assert made == [1]


def test_mob_sessions_cover_every_plugin_and_status() -> None:
    """Known plugins and statuses equal their constants; unknown ones are accepted as values."""
    sessions = parse("list_mob_sessions.xml", "list_mob_sessions")
    plugins = [s.plugin for s in sessions[:9]]
    assert plugins[:8] == list(Plugin)
    assert plugins[2] == "EXCHANGE"
    assert sessions[6].plugin is Plugin.SHAREPOINT  # from CDATA
    hyper_v = sessions[8]
    assert hyper_v.plugin == "HYPER_V"
    assert isinstance(hyper_v.plugin, Plugin)
    assert not hyper_v.plugin.is_known
    assert Plugin.FILE_SYSTEM.is_known
    assert hyper_v.status == "IN_PROGRESS"
    assert isinstance(hyper_v.status, SessionStatus)
    assert not hyper_v.status.is_known
    assert hyper_v.extra == {"retention_days": "90"}
    assert {s.status for s in sessions[:6]} == set(SessionStatus)
    assert sessions[5].type is SessionType.RESTORE


def test_mob_session_with_empty_elements_is_all_none() -> None:
    """A session with empty elements has None for every field but its id."""
    empty = parse("list_mob_sessions.xml", "list_mob_sessions")[9]
    assert empty == MobSession(session_id=3100010)
    assert empty.extra == {}


def test_mob_session_size_helpers() -> None:
    """The MiB/GiB helpers divide bytes by 1048576 and 1073741824."""
    first = parse("list_mob_sessions.xml", "list_mob_sessions")[0]
    assert first.transferred_mib == 1024.0
    assert first.transferred_gib == 1.0
    assert first.processed_gib == 5.0
    assert first.selection_gib == 6442450944000 / GIB == 6000.0
    assert MIB == 1048576
    assert GIB == 1073741824


def test_mob_session_with_offset_or_bad_time() -> None:
    """A start with an offset is converted to UTC; an unreadable end is None and kept raw."""
    body = (
        b'<result status="OK"><session><session_id>1</session_id>'
        b"<start>2024-03-17T01:00:02+02:00</start><end>yesterday</end></session></result>"
    )
    (session,) = parse_bytes("list_mob_sessions", body)
    assert session.start == datetime(2024, 3, 16, 23, 0, 2, tzinfo=UTC)
    assert session.start.tzinfo is UTC
    assert session.end is None
    assert session.extra == {"end_raw": "yesterday"}


# -- patch_list_all --------------------------------------------------------


def test_patch_list_all_decodes_latin1_cdata_titles() -> None:
    """The ISO-8859-1 body is decoded as declared: é, ü and ® come through intact."""
    patches = parse("patch_list_all.xml", "patch_list_all", {"deviceid": "880011"})
    assert patches[0].title == "Mise à jour de sécurité pour Windows Server 2019 (KB5034127)"
    assert patches[1].title == "Sicherheitsupdate für Microsoft Office 2016 (KB5002537) - Prüfung"
    assert patches[3].title == "Actualización acumulativa de .NET Framework (KB5034466)"
    assert patches[6].title == "Pilote réseau Intel® Ethernet"


def test_patch_list_all_reads_every_status_code() -> None:
    """Status codes 1/2/4/8/16/64 map to PatchStatus; an unknown code is accepted."""
    patches = parse("patch_list_all.xml", "patch_list_all")
    statuses = [p.status for p in patches]
    assert statuses[:6] == list(PatchStatus)
    assert statuses[3] == 8
    assert statuses[3] is PatchStatus.INSTALLED
    unknown = statuses[6]
    assert unknown == 32
    assert isinstance(unknown, PatchStatus)
    assert not unknown.is_known
    assert unknown.name == "UNKNOWN_32"


def test_patch_has_exact_typed_values() -> None:
    """A patch reads policy, severity, labels and dates; other fields go to extra."""
    patches = parse("patch_list_all.xml", "patch_list_all")
    assert patches[3] == Patch(
        patch_id=104,
        status=PatchStatus.INSTALLED,
        title="Actualización acumulativa de .NET Framework (KB5034466)",
        product=".NET Framework",
        status_label="Installed",
        policy=2,
        policy_label="Approve",
        severity=4,
        severity_label="Critical",
        install_date=date(2024, 1, 15),
        release_date=date(2024, 1, 9),
        extra={"patchicon": "installed", "selectpatch": "0"},
    )
    assert patches[0].install_date is None  # 0000-00-00
    assert patches[1].install_date is None  # empty
    assert patches[2].title == "Mozilla Firefox 123.0 & ESR"
    assert patches[4].title == "Adobe Acrobat Reader DC 23.008 <security>"
    assert patches[6].extra["kbArticle"] == "KB0000000"


def test_patch_list_all_also_accepts_a_result_items_envelope() -> None:
    """Patches inside ``<result><items>`` parse like the bare ``<patches>`` root."""
    body = (
        b'<result status="OK"><items><patch><patchid>5</patchid><status>16</status>'
        b"</patch></items></result>"
    )
    assert parse_bytes("patch_list_all", body) == [Patch(patch_id=5, status=PatchStatus.FAILED)]


# -- patch_retry -----------------------------------------------------------


def test_patch_retry_reads_retrying_and_applied_ids() -> None:
    """The msg splits into retrying and already-applied ids; the rest is unaccounted."""
    (result,) = parse(
        "patch_retry_ok.xml",
        "patch_retry",
        {"deviceid": "880011", "patchids": "104,105,106,108,109"},
    )
    assert result == PatchRetryResult(
        device_id=880011,
        requested=(104, 105, 106, 108, 109),
        retrying=(105, 108),
        already_applied=(104, 106),
        message="Retrying patches: 105,108 Patches already applied: 104,106",
    )
    assert result.unaccounted == (109,)


def test_patch_retry_with_only_retrying() -> None:
    """A msg naming only retrying ids (with spaces) gives no already-applied ids."""
    (result,) = parse(
        "patch_retry_only_retrying.xml", "patch_retry", {"deviceid": "7", "patchids": "105,108"}
    )
    assert result.retrying == (105, 108)
    assert result.already_applied == ()
    assert result.unaccounted == ()


def test_patch_retry_with_only_already_applied() -> None:
    """A CDATA msg naming only already-applied ids gives no retrying ids."""
    (result,) = parse(
        "patch_retry_only_applied.xml", "patch_retry", {"deviceid": "7", "patchids": "105"}
    )
    assert result.retrying == ()
    assert result.already_applied == (105,)
    assert result.device_id == 7


def test_patch_retry_fail_with_msg_raises_action_failed() -> None:
    """A FAIL with only a ``<msg>`` raises ActionFailedError, never a result."""
    with pytest.raises(ActionFailedError, match="device is offline"):
        parse("patch_retry_fail_msg.xml", "patch_retry", {"deviceid": "7", "patchids": "1"})


def test_patch_retry_without_msg_is_a_parse_error() -> None:
    """An OK answer without ``<msg>`` raises ParseError."""
    with pytest.raises(ParseError, match="no <msg>"):
        parse_bytes("patch_retry", b'<result status="OK"/>', {"deviceid": "7", "patchids": "1"})


def test_parse_patch_retry_msg_ignores_unrelated_text() -> None:
    """A message naming neither list yields empty tuples and keeps the text."""
    result = parse_patch_retry_msg("Nothing to do", device_id=1, requested=(3,))
    assert (result.retrying, result.already_applied, result.unaccounted) == ((), (), (3,))
    assert result.message == "Nothing to do"


# -- describe=true ---------------------------------------------------------


def test_describe_reads_many_parameters_and_html() -> None:
    """A describe document gives a ServiceDescription with its parameters and HTML unescaped."""
    (desc,) = parse("describe_list_mob_sessions.xml", "list_mob_sessions", describe=True)
    assert isinstance(desc, ServiceDescription)
    assert desc.name == "list_mob_sessions"
    assert desc.url == (
        '<a href="https://SERVER/api/?service=list_mob_sessions&amp;deviceid=DEVICEID">'
        "list_mob_sessions</a>"
    )
    assert desc.description == "Lists all Backup & Recovery (MOB) sessions for a device."
    assert desc.parameters == (
        ServiceParameter(
            name="describe",
            type="boolean",
            default="0",
            values="true",
            description="Returns a description of the service.",
            required=False,
        ),
        ServiceParameter(
            name="deviceid",
            type="number",
            default="0",
            values=None,
            description="The deviceid must be a valid id",
            required=True,
        ),
    )
    assert desc.example == '<result created="..." status="OK"><session>...</session></result>'
    assert desc.field_descriptions == ("<table><tr><td>session_id</td><td>number</td></tr></table>")
    assert desc.extra == {}


def test_describe_with_a_single_parameter() -> None:
    """One ``<parameter>`` gives a one-element tuple; unknown service fields go to extra."""
    (desc,) = parse("describe_patch_list_all.xml", "patch_list_all", describe=True)
    assert [p.name for p in desc.parameters] == ["deviceid"]
    assert desc.parameters[0].required is True  # "yes"
    assert desc.url == "https://SERVER/api/?apikey=yourAPIkey&service=patch_list_all"
    assert desc.description == "Lists <b>all</b> patches for a device."
    assert desc.example is None
    assert desc.field_descriptions == "<p>patchid: <i>number</i></p>"
    assert desc.extra == {"version": "2"}


def test_describe_without_service_is_a_parse_error() -> None:
    """A describe answer without ``<service>`` raises ParseError."""
    parser = parser_for("list_clients", describe=True)
    assert parser.feed(b'<result status="OK"></result>') == []
    with pytest.raises(ParseError, match="no <service>"):
        parser.close()
