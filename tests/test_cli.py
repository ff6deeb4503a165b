"""End-to-end tests of ``nsight-async`` through ``main(argv)``, in process.

Every command runs against the simulator served on 127.0.0.1 from a thread
(``serve_in_thread``), configured with ``NSIGHT_SERVER``/``NSIGHT_API_KEY``
like a technician's shell, or against ``--demo``. Output is parsed back in
every format; exit codes, the dry run of ``patch-retry`` (read from the
simulator's request log), Ctrl-C and resume, and the rule that the API key is
never written anywhere are checked here.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import re
import shlex
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from html import escape as html_escape
from pathlib import Path
from typing import Any

import attrs
import pytest
from support import isolated_cli

from nsight_async import _client
from nsight_async._config import RetryPolicy
from nsight_async.cli import _commands, _connect, _progress, main
from nsight_async.testing import FaultContext, SimulatedFleet, Simulator, serve_in_thread
from nsight_async.testing._run import RunningServer

KEY = "sk-CLITEST-7f3c9a"
WRONG_KEY = "sk-WRONGKEY-d41d8c"
VERDICTS = {"never", "stale", "failing", "not_audited", "not_enabled", "healthy"}


@attrs.frozen
class Result:
    """What one ``main(argv)`` call returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run every test in an empty directory, with no NSIGHT_* variables and no user config."""
    monkeypatch.setattr(sys, "argv", ["nsight-async"])
    with isolated_cli(monkeypatch, tmp_path):
        yield


def _simulator(**config: Any) -> Simulator:
    sim = Simulator(SimulatedFleet(seed="cli-tests", clients=4, devices=40), api_keys=(KEY,))
    if config:
        sim.configure(**config)
    return sim


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """Serve a small fleet on 127.0.0.1 that only accepts KEY, configured via the environment."""
    with serve_in_thread(_simulator()) as running:
        monkeypatch.setenv("NSIGHT_SERVER", running.url)
        monkeypatch.setenv("NSIGHT_API_KEY", KEY)
        yield running


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI's client give up after two quick attempts (the default waits seconds)."""
    policy = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.01)
    monkeypatch.setattr(
        _connect, "NsightClient", functools.partial(_client.NsightClient, retry=policy)
    )


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Call ``main(argv)`` and return its exit code and what it printed."""
    capfd.readouterr()
    code = main(list(argv))
    captured = capfd.readouterr()
    return Result(code, captured.out, captured.err)


def assert_no_key(*texts: str, key: str = KEY) -> None:
    """Fail if the API key (or its distinctive tail) appears in any text."""
    for text in texts:
        assert key not in text
        assert key[-6:] not in text


def assert_no_key_in_files(directory: Path, key: str = KEY) -> None:
    """Fail if the API key appears in any file under ``directory`` (stores, logs, reports)."""
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data, f"the API key is written to {path.name}"


def read_csv(path: Path) -> list[dict[str, str]]:
    """Parse a CSV file written by the CLI into dict rows."""
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))


def free_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fleet_device_ids(sim: Simulator) -> set[int]:
    """Every device id of the simulated fleet."""
    return {d.device_id for d in sim.fleet.iter_devices()}


def first_device(sim: Simulator, *, mob: bool | None = None, patch: bool | None = None) -> int:
    """The id of the first device matching the flags."""
    for d in sim.fleet.iter_devices():
        if (mob is None or d.mob == mob) and (patch is None or d.patch == patch):
            return d.device_id
    raise AssertionError("no such device in the fleet")


# -- listings: every command, every format -------------------------------------


def _listing(sim: Simulator, command: str) -> tuple[list[str], str, set[int]]:
    """The argv, the id field and the expected ids of one listing command."""
    fleet = sim.fleet
    if command == "clients":
        return ["clients"], "client_id", {c.client_id for c in fleet.clients}
    if command == "sites":
        client = fleet.clients[0].client_id
        return ["sites", str(client)], "site_id", {s.site_id for s in fleet.sites_of(client)}
    if command == "devices":
        return ["devices"], "device_id", fleet_device_ids(sim)
    if command == "patches":
        device = first_device(sim, patch=True)
        ids = {p.patchid for p in sim.patches(device)}
        return ["patches", str(device)], "patch_id", ids
    device = first_device(sim, mob=True)
    ids = {s.session_id for s in fleet.sessions(device)}
    return ["sessions", str(device)], "session_id", ids


LISTINGS = ["clients", "sites", "devices", "patches", "sessions"]


@pytest.mark.parametrize("command", LISTINGS)
def test_listing_json_parses_back(
    command: str, server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--format json`` prints one JSON array holding every record."""
    argv, field, expected = _listing(server.simulator, command)
    result = run(capfd, *argv, "--format", "json")
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert isinstance(records, list)
    assert expected
    assert {r[field] for r in records} == expected
    assert len(records) == len(expected)


@pytest.mark.parametrize("command", LISTINGS)
def test_listing_jsonl_is_one_object_per_line(
    command: str, server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--format jsonl`` prints exactly one JSON object per line and nothing else."""
    argv, field, expected = _listing(server.simulator, command)
    result = run(capfd, *argv, "--format", "jsonl")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    assert [o[field] for o in objects].count(objects[0][field]) == 1
    assert {o[field] for o in objects} == expected
    assert len(lines) == len(expected)


@pytest.mark.parametrize("command", LISTINGS)
def test_listing_csv_has_a_header_and_one_row_per_record(
    command: str, server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--format csv`` parses with csv.DictReader into one row per record."""
    argv, field, expected = _listing(server.simulator, command)
    result = run(capfd, *argv, "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert {int(r[field]) for r in rows} == expected
    assert len(rows) == len(expected)


@pytest.mark.parametrize("command", LISTINGS)
def test_listing_table_shows_every_record(
    command: str, server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """The default table format shows the id column, every id, and the row count."""
    argv, field, expected = _listing(server.simulator, command)
    result = run(capfd, *argv)
    assert result.code == 0, result.err
    assert field in result.out
    assert f"{len(expected)} rows" in result.out
    for record_id in expected:
        assert str(record_id) in result.out


def test_listing_for_an_unknown_device_is_an_api_error(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Listing the patches of a device that does not exist exits 3 with the API's message."""
    result = run(capfd, "patches", "999999999")
    assert result.code == 3
    assert "patch_list_all" in result.err
    assert_no_key(result.out, result.err)


def test_devices_filters_by_client_name_glob(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``devices --client GLOB`` lists only that client's devices."""
    client = server.simulator.fleet.clients[0]
    expected = {
        d.device_id
        for d in server.simulator.fleet.iter_devices()
        if d.client_id == client.client_id
    }
    result = run(capfd, "devices", "--client", client.name[:3] + "*", "--format", "jsonl")
    assert result.code == 0, result.err
    assert {json.loads(line)["device_id"] for line in result.out.splitlines()} == expected


# -- call, describe, simulate ------------------------------------------------------


def test_call_prints_the_response_as_json(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``call SERVICE key=value`` prints the decoded response as one JSON document."""
    client = server.simulator.fleet.clients[0].client_id
    result = run(capfd, "call", "list_sites", f"clientid={client}")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["result"]["@status"] == "OK"
    assert_no_key(result.out, result.err)
    sent = server.simulator.log.calls("list_sites")
    assert [e.params.get("clientid") for e in sent] == [str(client)]


def test_call_rejects_a_parameter_without_equals(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``call SERVICE word`` exits 2 and explains the KEY=VALUE form."""
    result = run(capfd, "call", "list_sites", "clientid")
    assert result.code == 2
    assert "KEY=VALUE" in result.err


def test_call_unknown_service_is_an_api_error(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``call`` of a service the API does not know exits 3."""
    result = run(capfd, "call", "no_such_service")
    assert result.code == 3
    assert "no_such_service" in result.err


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_describe_in_every_format(
    fmt: str, server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``describe SERVICE`` shows the service's parameters in each format."""
    result = run(capfd, "describe", "list_devices_at_client", "--format", fmt)
    assert result.code == 0, result.err
    if fmt == "table":
        assert "list_devices_at_client" in result.out
        assert "clientid" in result.out
    elif fmt == "json":
        (description,) = json.loads(result.out)
        assert description["name"] == "list_devices_at_client"
        assert "clientid" in {p["name"] for p in description["parameters"]}
    elif fmt == "jsonl":
        (line,) = result.out.splitlines()
        assert json.loads(line)["name"] == "list_devices_at_client"
    else:
        (row,) = list(csv.DictReader(io.StringIO(result.out)))
        assert row["name"] == "list_devices_at_client"


def test_simulate_help_returns_zero_through_main(capfd: pytest.CaptureFixture[str]) -> None:
    """``main(["simulate", "--help"])`` returns 0 like every other --help, and shows the options."""
    capfd.readouterr()
    try:
        code = main(["simulate", "--help"])
    except SystemExit as exc:
        pytest.fail(f"main() raised SystemExit({exc.code!r}) instead of returning an exit code")
    assert code == 0
    out = capfd.readouterr().out
    assert "--port" in out
    assert "--api-key" in out


def test_simulate_bad_option_returns_two_through_main(capfd: pytest.CaptureFixture[str]) -> None:
    """``main(["simulate", "--bogus"])`` returns the usage exit code 2 instead of raising."""
    try:
        code = main(["simulate", "--bogus"])
    except SystemExit as exc:
        pytest.fail(f"main() raised SystemExit({exc.code!r}) instead of returning an exit code")
    assert code == 2


# -- backup-audit ---------------------------------------------------------------


def test_audit_csv_has_one_row_per_device(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``backup-audit --out x.csv`` writes one row per device of the fleet, and exits 0."""
    result = run(capfd, "backup-audit", "--out", "audit.csv", "-q")
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "audit.csv")
    ids = [int(r["device_id"]) for r in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == fleet_device_ids(server.simulator)
    assert {r["verdict"] for r in rows} <= VERDICTS
    assert "total" in result.out
    assert re.search(rf"total\W+{len(ids)}\b", result.out), result.out
    assert (tmp_path / "nsight-audit.sqlite").exists()  # the default store, for --resume


def test_audit_jsonl_has_one_object_per_device(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``backup-audit --out x.jsonl`` writes one JSON object per line, one per device."""
    result = run(capfd, "backup-audit", "--out", "audit.jsonl", "-q")
    assert result.code == 0, result.err
    lines = (tmp_path / "audit.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["device_id"] for r in rows) == sorted(fleet_device_ids(server.simulator))
    assert {r["verdict"] for r in rows} <= VERDICTS


def test_audit_sqlite_out_is_the_store(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``backup-audit --out x.sqlite`` records every device once there and uses no other store."""
    result = run(capfd, "backup-audit", "--out", "audit.sqlite", "-q")
    assert result.code == 0, result.err
    with contextlib.closing(sqlite3.connect(tmp_path / "audit.sqlite")) as db:
        ids = [r[0] for r in db.execute("SELECT device_id FROM outcomes")]
        statuses = [r[0] for r in db.execute("SELECT status FROM runs")]
    assert sorted(ids) == sorted(fleet_device_ids(server.simulator))
    assert statuses == ["finished"]
    assert not (tmp_path / "nsight-audit.sqlite").exists()


def test_audit_html_report_is_self_contained(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--html`` writes a report that loads nothing from the network."""
    result = run(capfd, "backup-audit", "--html", "report.html", "--out", "audit.csv", "-q")
    assert result.code == 0, result.err
    html = (tmp_path / "report.html").read_text("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    urls = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", html, re.IGNORECASE)
    external = [u for u in urls if not u.split("//", 1)[1].startswith("www.w3.org/")]
    assert external == []
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html
    unhealthy = [r for r in read_csv(tmp_path / "audit.csv") if r["verdict"] in {"stale", "never"}]
    assert unhealthy
    for row in unhealthy:
        assert html_escape(row["device_name"]) in html


def test_fail_on_stale_exits_one_on_the_demo_fleet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--demo --fail-on stale`` exits 1: the demo fleet has stale and never-backed-up devices."""
    result = run(
        capfd, "backup-audit", "--demo", "--max-per-minute", "100000", "-q",
        "--fail-on", "stale", "--out", "demo.csv",
    )  # fmt: skip
    assert result.code == 1, result.err
    verdicts = Counter(r["verdict"] for r in read_csv(tmp_path / "demo.csv"))
    assert verdicts["stale"] + verdicts["never"] > 0


def test_fail_on_is_ignored_when_every_device_is_fine(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--fail-on any`` exits 0 when the selection holds no unhealthy device."""
    healthy_free = first_device(server.simulator, mob=False)
    result = run(capfd, "backup-audit", "--device", str(healthy_free), "--fail-on", "any", "-q")
    assert result.code == 0, result.err
    assert re.search(r"total\W+1\b", result.out), result.out


def test_some_devices_not_audited_exits_five(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A device whose sessions cannot be read is reported as not audited and the run exits 5."""
    sim = server.simulator
    broken = first_device(sim, mob=True)

    def script(ctx: FaultContext) -> str | None:
        return (
            "fail4" if ctx.service == "list_mob_sessions" and ctx.device_id == str(broken) else None
        )

    sim.configure(fault_script=script)
    result = run(capfd, "backup-audit", "--out", "audit.csv", "-q")
    assert result.code == 5, result.err
    rows = {int(r["device_id"]): r for r in read_csv(tmp_path / "audit.csv")}
    assert rows[broken]["verdict"] == "not_audited"
    assert rows[broken]["error"]
    assert len(rows) == len(fleet_device_ids(sim))


def test_unlisted_client_exits_five_and_is_named(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """A client whose devices cannot be listed is named in the summary and the run exits 5."""
    sim = server.simulator
    client = sim.fleet.clients[0]

    def script(ctx: FaultContext) -> str | None:
        listing = ctx.service == "list_devices_at_client"
        return "fail4" if listing and ctx.params.get("clientid") == str(client.client_id) else None

    sim.configure(fault_script=script)
    result = run(capfd, "backup-audit", "-q")
    assert result.code == 5, result.err
    assert "could not be listed" in result.out
    assert str(client.client_id) in result.out


# -- errors: wrong key (3), network (4) ------------------------------------------


def test_wrong_key_exits_three_and_names_key_or_region(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A key the server rejects exits 3 with a message naming the key or region as the cause."""
    monkeypatch.setenv("NSIGHT_API_KEY", WRONG_KEY)
    result = run(capfd, "clients", "-vv")
    assert result.code == 3
    assert "API key" in result.err
    assert "region" in result.err
    assert_no_key(result.out, result.err, key=WRONG_KEY)
    assert server.simulator.log.count("list_clients") == 1  # a rejected key is not retried


def test_closed_port_exits_four(
    fast_retries: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A server URL on a closed 127.0.0.1 port exits 4 and says it could not connect."""
    monkeypatch.setenv("NSIGHT_SERVER", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NSIGHT_API_KEY", KEY)
    result = run(capfd, "backup-audit", "-q", "-vv")
    assert result.code == 4
    assert "connect" in result.err
    assert_no_key(result.out, result.err)


# -- configuration precedence through main ------------------------------------------


def test_config_file_env_and_flags_in_order(
    server: RunningServer,
    fast_retries: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The config file is used alone, the environment overrides it, and flags override both."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "config.toml"
    config.write_text(f'server = "{server.url}"\napi_key = "{KEY}"\n', "utf-8")
    monkeypatch.delenv("NSIGHT_SERVER")
    monkeypatch.delenv("NSIGHT_API_KEY")
    assert run(capfd, "clients", "--config", str(config)).code == 0  # the file alone works
    monkeypatch.setenv("NSIGHT_SERVER", dead)
    assert run(capfd, "clients", "--config", str(config)).code == 4  # env beats the file
    flag = run(capfd, "clients", "--config", str(config), "--server", server.url)
    assert flag.code == 0  # the flag beats the env
    monkeypatch.setenv("NSIGHT_API_KEY", WRONG_KEY)
    wrong = run(capfd, "clients", "--config", str(config), "--server", server.url)
    assert wrong.code == 3  # the env key beats the file's
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n", "utf-8")
    good = run(
        capfd, "clients", "--config", str(config), "--server", server.url,
        "--api-key-file", str(key_file),
    )  # fmt: skip
    assert good.code == 0  # the key file beats the env key
    for result in (flag, wrong, good):
        assert_no_key(result.out, result.err)
        assert_no_key(result.out, result.err, key=WRONG_KEY)


# -- the key is never written ------------------------------------------------------


def test_key_never_written_by_a_full_audit(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A verbose audit with every output never writes the key: console, log, store, CSV, HTML."""
    result = run(
        capfd, "backup-audit", "-vv", "--log-file", "run.log", "--out", "audit.csv",
        "--html", "report.html", "--store", "store.sqlite",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert (tmp_path / "run.log").stat().st_size > 0
    assert_no_key(result.out, result.err)
    assert_no_key_in_files(tmp_path)


@pytest.mark.parametrize("failure", ["wrong-key", "closed-port", "api-error", "http-500"])
def test_key_never_written_on_failure_paths(
    failure: str,
    server: RunningServer,
    fast_retries: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Failing runs at -vv with a log file never write the key, whatever went wrong."""
    key = KEY
    if failure == "wrong-key":
        key = WRONG_KEY
        monkeypatch.setenv("NSIGHT_API_KEY", WRONG_KEY)
    elif failure == "closed-port":
        monkeypatch.setenv("NSIGHT_SERVER", f"http://127.0.0.1:{free_port()}")
    elif failure == "api-error":
        server.simulator.configure(fault_rate=1.0, fault_kinds=["fail5"])
    else:
        server.simulator.configure(fault_rate=1.0, fault_kinds=["http500"])
    result = run(
        capfd, "backup-audit", "-vv", "--log-file", "run.log", "--out", "audit.csv",
        "--html", "report.html",
    )  # fmt: skip
    assert result.code in {3, 4}, result.err
    assert_no_key(result.out, result.err, key=key)
    assert_no_key_in_files(tmp_path, key=key)


# -- patch-retry ------------------------------------------------------------------


def _plan_pairs(path: Path) -> list[tuple[int, int]]:
    plan = json.loads(path.read_text("utf-8"))
    return sorted(
        (item["device"]["device_id"], patch["patch_id"])
        for item in plan["items"]
        for patch in item["patches"]
    )


def test_patch_retry_dry_run_sends_no_write(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without --apply, patch-retry shows the plan, says it is a dry run, and sends no write."""
    result = run(capfd, "patch-retry", "-q")
    assert result.code == 0, result.err
    assert "Patch retry plan" in result.out
    assert "dry run" in result.err
    assert server.simulator.log.count("patch_retry") == 0
    assert server.simulator.log.count("patch_list_all") > 0


def test_patch_retry_plan_in_json_parses_back(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--format json`` prints the plan: failed patches on patch-enabled devices only."""
    result = run(capfd, "patch-retry", "--format", "json", "-q")
    assert result.code == 0, result.err
    items = json.loads(result.out)
    assert items, "the test fleet should have failed patches"
    sim = server.simulator
    for item in items:
        device = item["device"]["device_id"]
        info = sim.fleet.device(device)
        assert info is not None
        assert info.patch
        statuses = {p.patchid: p.status for p in sim.patches(device)}
        assert {statuses[p["patch_id"]] for p in item["patches"]} == {16}
    assert server.simulator.log.count("patch_retry") == 0


def test_patch_retry_apply_sends_each_planned_patch_once(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--apply --yes`` retries exactly the planned patches, each exactly once."""
    result = run(
        capfd, "patch-retry", "--apply", "--yes", "-q", "--plan-out", "plan.json",
        "--store", "journal.sqlite",
    )  # fmt: skip
    assert result.code == 0, result.err
    applied = server.simulator.log.patch_retry_applied()
    assert len(applied) == len(set(applied))
    planned = _plan_pairs(tmp_path / "plan.json")
    assert planned
    assert sorted(applied) == planned
    assert "done:" in result.out
    assert_no_key_in_files(tmp_path)


def test_patch_retry_executes_exactly_the_saved_plan(
    server: RunningServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--plan FILE --apply --yes`` sends exactly the reviewed plan and walks nothing again."""
    assert run(capfd, "patch-retry", "-q", "--plan-out", "plan.json").code == 0
    plan_file = tmp_path / "plan.json"
    plan = json.loads(plan_file.read_text("utf-8"))
    assert len(plan["items"]) >= 2
    plan["items"] = plan["items"][:2]  # the technician kept only two devices
    plan_file.write_text(json.dumps(plan), "utf-8")
    log = server.simulator.log
    log.clear()
    result = run(capfd, "patch-retry", "--plan", "plan.json", "--apply", "--yes", "-q")
    assert result.code == 0, result.err
    assert sorted(log.patch_retry_applied()) == _plan_pairs(plan_file)
    assert {e.service for e in log} == {"patch_retry"}


def test_patch_retry_apply_without_yes_refuses_when_not_interactive(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--apply`` without ``--yes`` and stdin not a terminal exits 2 and sends nothing."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    result = run(capfd, "patch-retry", "--apply", "-q")
    assert result.code == 2
    assert "--yes" in result.err
    assert server.simulator.log.count("patch_retry") == 0


def test_patch_retry_apply_without_yes_refuses_before_walking_the_fleet(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The non-interactive ``--apply`` refusal comes before any call, not after a full plan walk."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    result = run(capfd, "patch-retry", "--apply", "-q")
    assert result.code == 2
    assert len(server.simulator.log) == 0, "planned the whole fleet, then refused"


def test_patch_retry_failed_call_exits_five(
    server: RunningServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """A patch_retry call the API rejects is reported as failed and the run exits 5."""
    assert run(capfd, "patch-retry", "-q", "--plan-out", "plan.json").code == 0
    device = json.loads(Path("plan.json").read_text("utf-8"))["items"][0]["device"]["device_id"]

    def script(ctx: FaultContext) -> str | None:
        return "fail4" if ctx.service == "patch_retry" and ctx.device_id == str(device) else None

    server.simulator.configure(fault_script=script)
    result = run(capfd, "patch-retry", "--plan", "plan.json", "--apply", "--yes", "-q")
    assert result.code == 5, result.err
    assert "failed" in result.out


# -- Ctrl-C and resume --------------------------------------------------------------


@contextlib.asynccontextmanager
async def _interrupted_connect(args: Any) -> AsyncIterator[Any]:
    """Stand-in for ``connect``: the user presses Ctrl-C while it connects."""
    signal.raise_signal(signal.SIGINT)
    await asyncio.sleep(30)
    yield None  # pragma: no cover - never reached


def _require_default_sigint() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has a non-default handler here; asyncio.run would not catch it")


def _hint_command(err: str) -> str:
    lines = err.splitlines()
    index = next(i for i, line in enumerate(lines) if "resume with" in line)
    return lines[index + 1].strip()


def test_ctrl_c_exits_130_with_a_resume_hint(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C exits 130 and prints where progress is saved and the command to resume."""
    _require_default_sigint()
    monkeypatch.setattr(_commands, "connect", _interrupted_connect)
    argv = ["backup-audit", "--demo", "--store", "audit.sqlite"]
    monkeypatch.setattr(sys, "argv", ["nsight-async", *argv])
    result = run(capfd, *argv)
    assert result.code == 130
    assert "interrupted" in result.err
    assert "audit.sqlite" in result.err
    assert _hint_command(result.err) == shlex.join(["nsight-async", *argv, "--resume"])


def test_resume_hint_repeats_the_argv_given_to_main(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The resume hint is built from the argv ``main`` was called with, not from sys.argv."""
    _require_default_sigint()
    monkeypatch.setattr(_commands, "connect", _interrupted_connect)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/some-wrapper", "--unrelated"])
    argv = ["backup-audit", "--demo", "--store", "audit.sqlite"]
    result = run(capfd, *argv)
    assert result.code == 130
    assert _hint_command(result.err) == shlex.join(["nsight-async", *argv, "--resume"])


def test_resume_hint_is_shell_quoted(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A resume hint with globs and spaces can be pasted into a shell as it is."""
    _require_default_sigint()
    monkeypatch.setattr(_commands, "connect", _interrupted_connect)
    argv = ["backup-audit", "--client", "Acme Corp*", "--store", "my audit.sqlite"]
    monkeypatch.setattr(sys, "argv", ["nsight-async", *argv])
    result = run(capfd, *argv)
    assert result.code == 130
    assert shlex.split(_hint_command(result.err)) == ["nsight-async", *argv, "--resume"]


class _CtrlC:
    """Presses Ctrl-C (a real SIGINT) once the audit has recorded some devices.

    A watchdog thread rescues a run that does not stop (cancelling its stuck
    tasks, as a second Ctrl-C would), so a hang fails the test instead of
    freezing the session.
    """

    def __init__(self, after_devices: int) -> None:
        self.after_devices = after_devices
        self.pressed_at: float | None = None
        self.returned = threading.Event()
        self.rescues = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog = threading.Thread(target=self._watch, daemon=True)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = _progress.ProgressDisplay.update
        ctrl_c = self

        def update(display: _progress.ProgressDisplay, p: Any) -> None:
            original(display, p)
            if ctrl_c.pressed_at is None and p.devices_done >= ctrl_c.after_devices:
                ctrl_c._loop = asyncio.get_running_loop()
                ctrl_c.pressed_at = time.monotonic()
                ctrl_c._watchdog.start()
                signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(_progress.ProgressDisplay, "update", update)

    def _watch(self) -> None:
        for _ in range(10):
            if self.returned.wait(2.5):
                return
            self.rescues += 1
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._cancel_stuck_tasks)

    def _cancel_stuck_tasks(self) -> None:
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            if getattr(coro, "__name__", "") != "_dispatch":  # not the command itself
                task.cancel()


def test_ctrl_c_mid_audit_then_resume_records_every_device_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C mid-audit exits 130 promptly, keeping what was done; --resume does the rest once."""
    _require_default_sigint()
    sim = Simulator(SimulatedFleet(seed="cli-ctrl-c", clients=6, devices=120), api_keys=(KEY,))
    with serve_in_thread(sim) as running:
        monkeypatch.setenv("NSIGHT_SERVER", running.url)
        monkeypatch.setenv("NSIGHT_API_KEY", KEY)
        argv = ["backup-audit", "--store", "audit.sqlite", "--max-per-minute", "1200", "-q"]
        monkeypatch.setattr(sys, "argv", ["nsight-async", *argv])
        original_update = _progress.ProgressDisplay.update
        ctrl_c = _CtrlC(after_devices=30)
        ctrl_c.install(monkeypatch)
        try:
            first = run(capfd, *argv)
        finally:
            ctrl_c.returned.set()
        stopped_after = time.monotonic() - (ctrl_c.pressed_at or time.monotonic())
        assert ctrl_c.pressed_at is not None, "the audit finished before Ctrl-C was pressed"
        assert first.code == 130, first.err
        assert "resume with" in first.err
        with contextlib.closing(sqlite3.connect(tmp_path / "audit.sqlite")) as db:
            done_before = {r[0] for r in db.execute("SELECT device_id FROM outcomes")}
            listed_before = set(db.execute("SELECT client_id, device_type FROM listings"))
            (status,) = db.execute("SELECT status FROM runs").fetchone()
        every = fleet_device_ids(sim)
        assert 0 < len(done_before) < len(every)
        assert status != "finished"

        monkeypatch.setattr(_progress.ProgressDisplay, "update", original_update)
        sim.log.clear()
        second = run(capfd, *argv, "--resume", "--out", "audit.csv", "--max-per-minute", "0")
        assert second.code == 0, second.err
        rows = read_csv(tmp_path / "audit.csv")
        ids = [int(r["device_id"]) for r in rows]
        assert sorted(ids) == sorted(every)  # every device exactly once
        with contextlib.closing(sqlite3.connect(tmp_path / "audit.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        relisted = {
            (int(e.params["clientid"]), e.params["devicetype"])
            for e in sim.log.calls("list_devices_at_client")
        }
        assert relisted.isdisjoint(listed_before), "clients listed before Ctrl-C were listed again"
        resessioned = {int(e.params["deviceid"]) for e in sim.log.calls("list_mob_sessions")}
        assert resessioned.isdisjoint(done_before), (
            "devices audited before Ctrl-C were audited again"
        )
        assert_no_key(first.out, first.err, second.out, second.err)
        assert_no_key_in_files(tmp_path)
    hung = (
        f"Ctrl-C did not stop the audit: it hung until the test cancelled its tasks "
        f"{ctrl_c.rescues} time(s), {stopped_after:.1f} s after the SIGINT"
    )
    assert ctrl_c.rescues == 0, hung
    assert stopped_after < 2.0, hung
