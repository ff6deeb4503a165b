"""Tests for nsight_async._client: every service method, retries, writes and stream resumes.

Most tests run the real client against the project's own fake, the simulator,
in process (``SimulatorTransport``); respx serves precise bodies where the exact
bytes matter. Time is injected: ``FakeTime`` records every sleep and advances
its clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from nsight_async import (
    ActionFailedError,
    AuthenticationError,
    Client,
    ConfigurationError,
    DeviceAtClient,
    DeviceKind,
    HtmlPageError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidParameterError,
    MissingParameterError,
    MobSession,
    NsightClient,
    NsightError,
    PatchRetryResult,
    PatchStatus,
    RateLimitedError,
    RetryPolicy,
    ServiceDescription,
    TransportError,
    UnknownServiceError,
    WriteOutcomeUnknownError,
    __version__,
    parser_for,
)
from nsight_async._transport import USER_AGENT
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorTransport,
    in_process_client,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "samples"
URL = "http://127.0.0.1:9/api/"
SESSIONS = 3000


class FakeTime:
    """A fake clock whose sleep records the wait and advances the clock at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        """Return the fake time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait and jump the clock forward."""
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


def _fleet(**kw: Any) -> SimulatedFleet:
    return SimulatedFleet(
        seed=kw.pop("seed", 11), clients=4, devices=30, now=kw.pop("now", NOW), **kw
    )


def _sim(*, script: Any = None, **kw: Any) -> Simulator:
    config = SimulatorConfig(fault_script=script, **kw.pop("config", {}))
    return Simulator(kw.pop("fleet", None) or _fleet(**kw), config=config)


@asynccontextmanager
async def _client(
    sim: Simulator, *, key: str = SIMULATOR_API_KEY, **kw: Any
) -> AsyncIterator[NsightClient]:
    time = kw.pop("time", None) or FakeTime()
    async with httpx.AsyncClient(transport=SimulatorTransport(sim)) as http:
        kw.setdefault("seed", 1)
        async with NsightClient(
            "http://127.0.0.1/", key, http_client=http, clock=time.clock, sleep=time.sleep, **kw
        ) as client:
            yield client


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [record async for record in iterator]


async def _collect_into(ids: list[int], sessions: AsyncIterator[MobSession]) -> None:
    async for session in sessions:
        ids.append(session.session_id)


def _failed_patch(sim: Simulator) -> tuple[int, int]:
    for device in sim.fleet.iter_devices():
        for patch in sim.patches(device.device_id):
            if patch.status == 16:
                return device.device_id, patch.patchid
    raise AssertionError("the fleet has no failed patch")


def _mob_device(sim: Simulator) -> int:
    return next(d.device_id for d in sim.fleet.iter_devices() if d.mob)


# -- every method against the simulator's realistic bodies ---------------------------


async def test_list_clients_matches_fleet() -> None:
    """list_clients yields one typed Client per client of the fleet, in order."""
    sim = _sim()
    async with _client(sim) as client:
        clients = await _collect(client.list_clients())
    assert all(isinstance(c, Client) for c in clients)
    assert [(c.client_id, c.name) for c in clients] == [
        (c.client_id, c.name) for c in sim.fleet.clients
    ]


async def test_list_sites_matches_fleet() -> None:
    """list_sites yields every site of a client."""
    sim = _sim()
    async with _client(sim) as client:
        for info in sim.fleet.clients:
            sites = await _collect(client.list_sites(info.client_id))
            assert [s.site_id for s in sites] == list(info.site_ids)


async def test_list_servers_and_workstations_match_fleet() -> None:
    """list_servers and list_workstations yield the devices of a site by kind."""
    sim = _sim()
    async with _client(sim) as client:
        for site in sim.fleet.sites:
            servers = await _collect(client.list_servers(site.site_id))
            stations = await _collect(client.list_workstations(site.site_id))
            expected = sim.fleet.devices_of(site.site_id)
            assert [d.device_id for d in servers + stations] == [d.device_id for d in expected]
            assert all(d.kind is DeviceKind.SERVER for d in servers)
            assert all(d.kind is DeviceKind.WORKSTATION for d in stations)


@pytest.mark.parametrize("kind", ["server", "workstation", DeviceKind.SERVER])
async def test_list_devices_at_client_matches_fleet(kind: str) -> None:
    """list_devices_at_client yields each device of the kind with its client and site."""
    sim = _sim()
    info = sim.fleet.clients[0]
    async with _client(sim) as client:
        devices = await _collect(client.list_devices_at_client(info.client_id, kind))
    assert all(isinstance(d, DeviceAtClient) for d in devices)
    expected = [
        d.device_id
        for s in sim.fleet.sites_of(info.client_id)
        for d in sim.fleet.devices_of(s.site_id)
        if d.kind.value == str(kind)
    ]
    assert [d.device_id for d in devices] == expected
    assert {d.client_id for d in devices} <= {info.client_id}


async def test_list_devices_at_client_mobile_is_empty() -> None:
    """mobile_device answers an empty list, not an error."""
    sim = _sim()
    async with _client(sim) as client:
        devices = await _collect(
            client.list_devices_at_client(sim.fleet.clients[0].client_id, "mobile_device")
        )
    assert devices == []


async def test_patch_list_all_matches_fleet() -> None:
    """patch_list_all yields every patch of a device with its status (ISO-8859-1 body)."""
    sim = _sim()
    device_id, _ = _failed_patch(sim)
    async with _client(sim) as client:
        patches = await _collect(client.patch_list_all(device_id))
    assert [(p.patch_id, int(p.status)) for p in patches] == [
        (p.patchid, p.status) for p in sim.patches(device_id)
    ]
    assert any(p.title for p in patches)


async def test_list_mob_sessions_matches_fleet() -> None:
    """list_mob_sessions yields a device's whole session history in order."""
    sim = _sim(big_device_sessions=SESSIONS)
    device_id = sim.fleet.big_device_id
    assert device_id is not None
    async with _client(sim) as client:
        sessions = await _collect(client.list_mob_sessions(device_id))
    assert all(isinstance(s, MobSession) for s in sessions)
    truth = list(sim.fleet.sessions(device_id))
    assert [s.session_id for s in sessions] == [t.session_id for t in truth]
    assert [s.start for s in sessions] == [t.start for t in truth]


async def test_patch_retry_moves_failed_patch_to_pending() -> None:
    """patch_retry reports a failed patch as retrying, then as already applied the second time."""
    sim = _sim()
    device_id, patch_id = _failed_patch(sim)
    async with _client(sim) as client:
        first = await client.patch_retry(device_id, [patch_id])
        second = await client.patch_retry(device_id, [patch_id])
    assert isinstance(first, PatchRetryResult)
    assert first.retrying == (patch_id,)
    assert second.already_applied == (patch_id,)
    status = {p.patchid: p.status for p in sim.patches(device_id)}[patch_id]
    assert status == PatchStatus.PENDING


async def test_describe_returns_service_description() -> None:
    """describe() returns the service's parameters."""
    sim = _sim()
    async with _client(sim) as client:
        description = await client.describe("list_mob_sessions")
    assert isinstance(description, ServiceDescription)
    assert description.name == "list_mob_sessions"
    assert "deviceid" in [p.name for p in description.parameters]
    assert sim.log.calls()[0].params["describe"] == "true"


async def test_call_returns_a_dict() -> None:
    """call() sends any read service and returns the document as a dict."""
    sim = _sim()
    info = sim.fleet.clients[0]
    async with _client(sim) as client:
        document = await client.call("list_sites", clientid=info.client_id)
    sites = document["result"]["items"]["site"]
    sites = sites if isinstance(sites, list) else [sites]
    assert [int(s["siteid"]) for s in sites] == list(info.site_ids)


@pytest.mark.parametrize(
    ("service", "sample", "call"),
    [
        ("list_clients", "list_clients.xml", lambda c: c.list_clients()),
        ("list_sites", "list_sites.xml", lambda c: c.list_sites(1)),
        ("list_servers", "list_servers.xml", lambda c: c.list_servers(1)),
        ("list_workstations", "list_workstations.xml", lambda c: c.list_workstations(1)),
        (
            "list_devices_at_client",
            "list_devices_at_client_server.xml",
            lambda c: c.list_devices_at_client(1, "server"),
        ),
        ("patch_list_all", "patch_list_all.xml", lambda c: c.patch_list_all(1)),
        ("list_mob_sessions", "list_mob_sessions.xml", lambda c: c.list_mob_sessions(1)),
    ],
)
@respx.mock
async def test_sample_bodies_stream_in_small_chunks(service: str, sample: str, call: Any) -> None:
    """Each method gives the same records from a sample body sent 7 bytes at a time as whole."""
    body = (SAMPLES / sample).read_bytes()
    respx.get(URL).mock(
        return_value=httpx.Response(
            200, stream=_Chunks([body[i : i + 7] for i in range(0, len(body), 7)])
        )
    )
    params = {"clientid": "1", "siteid": "1", "deviceid": "1", "devicetype": "server"}
    parser = parser_for(service, params)
    expected = [*parser.feed(body), *parser.close()]
    async with (
        httpx.AsyncClient() as http,
        NsightClient(URL, "k-0123456789", http_client=http) as c,
    ):
        records = await _collect(call(c))
    assert records == expected
    assert len(records) > 0


class _Chunks(httpx.AsyncByteStream):
    """A response body served chunk by chunk, optionally breaking off like a dropped connection."""

    def __init__(self, chunks: list[bytes], *, fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.served = 0

    async def __aiter__(self) -> Iterator[bytes]:  # type: ignore[override]
        for i, chunk in enumerate(self.chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise httpx.RemoteProtocolError("peer closed connection mid-body")
            self.served += 1
            yield chunk


@respx.mock
async def test_records_are_yielded_while_the_body_streams() -> None:
    """The first record is yielded before the rest of the body has been received."""
    body = (SAMPLES / "list_mob_sessions.xml").read_bytes()
    stream = _Chunks([body[i : i + 64] for i in range(0, len(body), 64)])
    respx.get(URL).mock(return_value=httpx.Response(200, stream=stream))
    async with (
        httpx.AsyncClient() as http,
        NsightClient(URL, "k-0123456789", http_client=http) as c,
    ):
        async for _ in c.list_mob_sessions(1):
            assert stream.served < len(stream.chunks)
            break


@respx.mock
async def test_user_agent_names_library_and_version() -> None:
    """Every request carries an explicit User-Agent with the library's version."""
    route = respx.get(URL).mock(
        return_value=httpx.Response(200, content=(SAMPLES / "list_clients.xml").read_bytes())
    )
    async with (
        httpx.AsyncClient(headers={"User-Agent": "caller/1"}) as http,
        NsightClient(URL, "k-0123456789", http_client=http) as c,
    ):
        await _collect(c.list_clients())
    agent = route.calls.last.request.headers["user-agent"]
    assert agent == USER_AGENT
    assert f"nsight-async/{__version__}" in agent


async def test_passed_http_client_stays_open() -> None:
    """Closing the NsightClient leaves an http_client the caller passed open."""
    sim = _sim()
    async with httpx.AsyncClient(transport=SimulatorTransport(sim)) as http:
        async with NsightClient("http://127.0.0.1/", SIMULATOR_API_KEY, http_client=http) as c:
            await _collect(c.list_clients())
        assert not http.is_closed


def test_repr_hides_the_key() -> None:
    """repr(client) shows the server and limits, never the key."""
    client = NsightClient("uk", "sk-REPR-000111222")
    text = repr(client)
    assert "sk-REPR-000111222" not in text
    assert "www.systemmonitor.co.uk" in text


# -- (g) bad arguments fail before any request ------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        lambda c: c.list_sites("abc"),
        lambda c: c.list_sites(0),
        lambda c: c.list_sites(-3),
        lambda c: c.list_sites(True),
        lambda c: c.list_sites(1.5),
        lambda c: c.list_servers(None),
        lambda c: c.list_workstations("1; DROP"),
        lambda c: c.patch_list_all("12a"),
        lambda c: c.list_mob_sessions(""),
        lambda c: c.list_devices_at_client(100, "laptop"),
        lambda c: c.list_devices_at_client(100, "Server"),
        lambda c: c.list_devices_at_client("x", "server"),
    ],
)
async def test_bad_list_arguments_send_nothing(bad: Any) -> None:
    """Bad ids and unknown device types raise InvalidArgumentError and send no request."""
    sim = _sim()
    async with _client(sim) as client:
        with pytest.raises(InvalidArgumentError):
            await _collect(bad(client))
    assert len(sim.log) == 0


@pytest.mark.parametrize(
    ("device", "patches"),
    [
        (1000001, []),
        (1000001, ["x"]),
        (1000001, [0]),
        (1000001, "12"),
        ("dev", [1]),
        (1000001, [1, None]),
    ],
)
async def test_bad_patch_retry_arguments_send_nothing(device: Any, patches: Any) -> None:
    """patch_retry with an empty or non-numeric id list, or a bad device, sends nothing."""
    sim = _sim()
    async with _client(sim) as client:
        with pytest.raises(InvalidArgumentError):
            await client.patch_retry(device, patches)
    assert len(sim.log) == 0


@pytest.mark.parametrize(
    ("service", "params"),
    [
        ("list sites", {}),
        ("patch_retry", {"deviceid": 1}),
        ("list_sites", {"apikey": "x"}),
        ("", {}),
    ],
)
async def test_bad_call_and_describe_arguments_send_nothing(
    service: str, params: dict[str, Any]
) -> None:
    """call() refuses bad service names, writes and reserved parameters without sending."""
    sim = _sim()
    async with _client(sim) as client:
        with pytest.raises(InvalidArgumentError):
            await client.call(service, **params)
        if service != "patch_retry" and not params:
            with pytest.raises(InvalidArgumentError):
                await client.describe(service)
    assert len(sim.log) == 0


# -- (e) FAIL envelopes: typed, never retried ---------------------------------------------


async def test_wrong_key_is_authentication_error_sent_once() -> None:
    """A wrong key answers code 3, raised as AuthenticationError after exactly one request."""
    sim = _sim()
    async with _client(sim, key="wrong-key-000000") as client:
        with pytest.raises(AuthenticationError) as info:
            await _collect(client.list_clients())
    assert info.value.code == 3
    assert "region" in str(info.value)
    assert len(sim.log) == 1


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (Fault.FAIL3, AuthenticationError, 3),
        (Fault.FAIL4, InvalidParameterError, 4),
        (Fault.FAIL5, MissingParameterError, 5),
    ],
)
async def test_fail_envelopes_are_typed_and_not_retried(
    fault: Fault, error: type, code: int
) -> None:
    """FAIL codes 3/4/5 raise their own ApiError subclass after one request."""
    sim = _sim(script=[fault])
    time = FakeTime()
    async with _client(sim, time=time) as client:
        with pytest.raises(error) as info:
            await _collect(client.list_mob_sessions(_mob_device(sim)))
    assert info.value.code == code
    assert info.value.service == "list_mob_sessions"
    assert len(sim.log) == 1
    assert time.sleeps == []


async def test_unknown_id_and_unknown_service_fail_once() -> None:
    """An unknown client id (code 4) and an unknown service raise once each, without retry."""
    sim = _sim()
    async with _client(sim) as client:
        with pytest.raises(InvalidParameterError):
            await _collect(client.list_sites(999999))
        with pytest.raises(UnknownServiceError):
            await client.call("list_everything")
    assert len(sim.log) == 2


async def test_patch_retry_unknown_patch_is_action_failed_sent_once() -> None:
    """patch_retry naming a patch not on the device raises ActionFailedError after one send."""
    sim = _sim()
    device_id, _ = _failed_patch(sim)
    async with _client(sim) as client:
        with pytest.raises(ActionFailedError):
            await client.patch_retry(device_id, [987654])
    assert len(sim.log.patch_retry_sends()) == 1


# -- (b) backoff ------------------------------------------------------------------------


async def test_backoff_sequence_is_seeded_full_jitter() -> None:
    """Four 502s are retried after seeded full-jitter waits under the exponential ceiling."""
    policy = RetryPolicy(attempts=5, wait_initial=0.5, wait_exp_base=2.0, wait_max=3.0)
    sim = _sim(script=[Fault.HTTP502, Fault.TIMEOUT, Fault.HTTP504, Fault.RESET])
    time = FakeTime()
    async with _client(sim, time=time, retry=policy, seed=42) as client:
        clients = await _collect(client.list_clients())
    assert len(clients) == sim.fleet.n_clients
    rng = random.Random(42)
    ceilings = [min(3.0, 0.5 * 2.0**n) for n in range(4)]
    assert time.sleeps == pytest.approx([rng.uniform(0, c) for c in ceilings])
    assert all(0 <= s <= c for s, c in zip(time.sleeps, ceilings, strict=True))
    assert len(sim.log) == 5
    assert client.calls_started == 5


async def test_same_seed_same_waits_other_seed_other_waits() -> None:
    """The jitter is reproducible from the seed and differs between seeds."""

    async def waits(seed: int) -> list[float]:
        time = FakeTime()
        async with _client(_sim(script=[Fault.HTTP502] * 3), time=time, seed=seed) as client:
            await _collect(client.list_clients())
        return time.sleeps

    assert await waits(5) == await waits(5)
    assert await waits(5) != await waits(6)


async def test_gives_up_after_attempts_with_the_last_error() -> None:
    """When every attempt fails, the last error is raised after `attempts` requests."""
    sim = _sim(script=[Fault.HTTP502] * 10)
    time = FakeTime()
    async with _client(sim, time=time, retry=RetryPolicy(attempts=3)) as client:
        with pytest.raises(HtmlPageError) as info:
            await _collect(client.list_clients())
    assert info.value.status == 502
    assert len(sim.log) == 3
    assert len(time.sleeps) == 2


async def test_retry_timeout_bounds_total_time() -> None:
    """RetryPolicy.timeout stops retrying once the next wait would pass it."""
    sim = _sim(script=[Fault.HTTP429] * 50)
    time = FakeTime()
    policy = RetryPolicy(attempts=50, timeout=3.5)
    async with _client(sim, time=time, retry=policy) as client:
        with pytest.raises(RateLimitedError):
            await _collect(client.list_clients())
    assert sum(time.sleeps) <= 3.5 + 1e-9


# -- (c) Retry-After ----------------------------------------------------------------------


async def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After 1 is retried after exactly 1 s (the simulator's value)."""
    sim = _sim(script=[Fault.HTTP429])
    time = FakeTime()
    async with _client(sim, time=time) as client:
        await _collect(client.list_clients())
    assert time.sleeps == [1.0]
    assert len(sim.log) == 2


@respx.mock
async def test_retry_after_is_capped() -> None:
    """A Retry-After of an hour waits only max_retry_after before the retry, in total."""
    body = (SAMPLES / "list_clients.xml").read_bytes()
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3600"}, text="no"),
            httpx.Response(200, content=body),
        ]
    )
    time = FakeTime()
    async with (
        httpx.AsyncClient() as http,
        NsightClient(
            URL,
            "k-0123456789",
            http_client=http,
            retry=RetryPolicy(max_retry_after=5.0),
            clock=time.clock,
            sleep=time.sleep,
        ) as client,
    ):
        await _collect(client.list_clients())
    assert route.call_count == 2
    assert time.sleeps[0] == 5.0
    assert sum(time.sleeps) <= 5.0 + 1e-9, f"waited {time.sleeps} before retrying"


@respx.mock
async def test_retry_after_http_date_is_understood() -> None:
    """Retry-After given as an HTTP date in the past retries without waiting long."""
    body = (SAMPLES / "list_clients.xml").read_bytes()
    respx.get(URL).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, text="x"),
            httpx.Response(200, content=body),
        ]
    )
    time = FakeTime()
    async with (
        httpx.AsyncClient() as http,
        NsightClient(
            URL, "k-0123456789", http_client=http, clock=time.clock, sleep=time.sleep
        ) as client,
    ):
        await _collect(client.list_clients())
    assert time.sleeps == [0.0]


# -- (d) writes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.RESET_AFTER, Fault.TRUNCATE, Fault.TIMEOUT, Fault.HTTP502, Fault.HTTP503, Fault.RESET],
)
async def test_ambiguous_write_failure_is_sent_once(fault: Fault) -> None:
    """A write that may have reached the server raises WriteOutcomeUnknownError after one send."""
    sim = _sim(script=[fault])
    device_id, patch_id = _failed_patch(sim)
    time = FakeTime()
    async with _client(sim, time=time) as client:
        with pytest.raises(WriteOutcomeUnknownError) as info:
            await client.patch_retry(device_id, [patch_id])
    assert len(sim.log.patch_retry_sends()) == 1
    assert info.value.device_id == device_id
    assert "patch_list_all" in str(info.value)


async def test_write_after_reset_after_changed_state() -> None:
    """reset-after really applied the write, which is why it must not be resent."""
    sim = _sim(script=[Fault.RESET_AFTER])
    device_id, patch_id = _failed_patch(sim)
    async with _client(sim) as client:
        with pytest.raises(WriteOutcomeUnknownError):
            await client.patch_retry(device_id, [patch_id])
    assert sim.log.patch_retry_applied() == [(device_id, patch_id)]


@pytest.mark.parametrize("fault", [Fault.REFUSE, Fault.HTTP429, Fault.HTTP429_BARE, Fault.HTML403])
async def test_write_retried_when_certainly_not_processed(fault: Fault) -> None:
    """A refused connection or a 429/403 refusal is retried, and the write is applied once."""
    sim = _sim(script=[fault])
    device_id, patch_id = _failed_patch(sim)
    async with _client(sim) as client:
        result = await client.patch_retry(device_id, [patch_id])
    assert result.retrying == (patch_id,)
    assert len(sim.log.calls("patch_retry")) == 2
    assert len([e for e in sim.log.patch_retry_sends() if e.processed]) == 1


@respx.mock
async def test_write_retried_after_connect_timeout() -> None:
    """A connect timeout (the request never left) lets the write be retried."""
    body = (SAMPLES / "patch_retry_ok.xml").read_bytes()
    route = respx.get(URL).mock(
        side_effect=[httpx.ConnectTimeout("connect timed out"), httpx.Response(200, content=body)]
    )
    time = FakeTime()
    async with (
        httpx.AsyncClient() as http,
        NsightClient(
            URL, "k-0123456789", http_client=http, clock=time.clock, sleep=time.sleep
        ) as client,
    ):
        result = await client.patch_retry(1, [4, 5])
    assert route.call_count == 2
    assert isinstance(result, PatchRetryResult)


async def test_write_through_httpx_aiohttp_is_refused() -> None:
    """An httpx client on httpx_aiohttp's transport is refused for writes (it can resend)."""
    httpx_aiohttp = pytest.importorskip("httpx_aiohttp")
    from nsight_async import ConfigurationError

    async with httpx_aiohttp.HttpxAiohttpClient() as http:
        with pytest.raises(ConfigurationError, match="write_client"):
            NsightClient("http://127.0.0.1/", "k-0123456789", http_client=http)


# -- (f) stream resume ----------------------------------------------------------------------


async def test_truncated_stream_resumes_without_duplicates() -> None:
    """A session list cut off after records were yielded is refetched; each record is seen once."""
    sim = _sim(script=[Fault.TRUNCATE], big_device_sessions=SESSIONS)
    device_id = sim.fleet.big_device_id
    assert device_id is not None
    seen_before_retry = 0
    ids: list[int] = []
    async with _client(sim) as client:
        async for session in client.list_mob_sessions(device_id):
            ids.append(session.session_id)
            if len(sim.log) == 1:
                seen_before_retry += 1
    truth = [s.session_id for s in sim.fleet.sessions(device_id)]
    assert seen_before_retry > 0, "the truncation happened before any record was yielded"
    assert ids == truth
    assert len(sim.log) == 2


def _changing_list(sim: Simulator, replacement: SimulatedFleet) -> Any:
    def script(context: FaultContext) -> Fault | None:
        if context.n == 0:
            return Fault.TRUNCATE
        sim.fleet = replacement
        return None

    return script


@pytest.mark.parametrize("change", ["content", "shrunk"])
async def test_stream_raises_when_the_list_changed(change: str) -> None:
    """If the list changed between attempts the client raises instead of yielding duplicates."""
    sim = _sim(big_device_sessions=SESSIONS)
    device_id = sim.fleet.big_device_id
    replacement = (
        _fleet(big_device_sessions=SESSIONS, now=NOW + timedelta(days=1))
        if change == "content"
        else _fleet(big_device_sessions=10)
    )
    assert replacement.big_device_id == device_id
    sim.configure(fault_script=_changing_list(sim, replacement))
    ids: list[int] = []
    async with _client(sim) as client:
        with pytest.raises(TransportError, match="changed") as info:
            await _collect_into(ids, client.list_mob_sessions(device_id))
    truth = [s.session_id for s in _fleet(big_device_sessions=SESSIONS).sessions(device_id)]
    assert ids == truth[: len(ids)]
    assert len(ids) > 0
    assert info.value.records_yielded == len(ids)


def _sessions_body(ids: range) -> bytes:
    rows = "".join(
        f"<session><session_id>{i}</session_id><type>BACKUP</type><plugin>FILE_SYSTEM</plugin>"
        f"<start>2024-03-17 01:00:{i % 60:02d}</start><end>2024-03-17 02:00:00</end>"
        f"<status>COMPLETED</status></session>"
        for i in ids
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<result created="2024-03-18T09:20:00-06:00" '
        f'host="h" status="OK">{rows}</result>\n'
    ).encode()


@respx.mock
async def test_stream_resumes_when_new_records_were_appended() -> None:
    """Sessions appended between attempts are yielded after the old ones, none twice."""
    first = _sessions_body(range(1, 101))
    second = _sessions_body(range(1, 121))
    cut = [first[i : i + 500] for i in range(0, len(first), 500)]
    respx.get(URL).mock(
        side_effect=[
            httpx.Response(200, stream=_Chunks(cut, fail_after=len(cut) // 2)),
            httpx.Response(200, content=second),
        ]
    )
    time = FakeTime()
    async with (
        httpx.AsyncClient() as http,
        NsightClient(
            URL, "k-0123456789", http_client=http, clock=time.clock, sleep=time.sleep
        ) as client,
    ):
        ids = [s.session_id async for s in client.list_mob_sessions(7)]
    assert ids == list(range(1, 121))


async def test_stream_error_after_exhausted_retries_keeps_count() -> None:
    """When every attempt breaks off, the error says how many records were yielded, none twice."""
    sim = _sim(script=[Fault.TRUNCATE] * 5, big_device_sessions=SESSIONS)
    device_id = sim.fleet.big_device_id
    ids: list[int] = []
    async with _client(sim, retry=RetryPolicy(attempts=3)) as client:
        with pytest.raises(NsightError) as info:
            await _collect_into(ids, client.list_mob_sessions(device_id))
    assert len(ids) == len(set(ids)) > 0
    assert info.value.records_yielded == len(ids)
    assert len(sim.log) == 3


# -- logging -----------------------------------------------------------------------------


async def test_one_log_line_per_retry_with_redacted_url(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry logs one line naming the service and a URL with the key masked."""
    caplog.set_level(logging.DEBUG, logger="nsight_async")
    sim = _sim(script=[Fault.HTTP502, Fault.HTTP502])
    async with _client(sim) as client:
        await _collect(client.list_sites(sim.fleet.clients[0].client_id))
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    for record in retries:
        message = record.getMessage()
        assert "list_sites" in message
        assert "apikey=***" in message
        assert SIMULATOR_API_KEY not in message


async def test_rate_limit_wait_is_logged_with_service_and_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call that waits for its turn under the rate limit logs the service and a redacted URL."""
    caplog.set_level(logging.DEBUG, logger="nsight_async")
    sim = _sim()
    async with _client(sim, max_per_minute=20) as client:
        await _collect(client.list_clients())
        await _collect(client.list_clients())
    waits = [r.getMessage() for r in caplog.records if "wait" in r.getMessage()]
    assert len(waits) == 1
    assert "list_clients" in waits[0]
    assert "apikey=***" in waits[0], f"no redacted URL in {waits[0]!r}"


@pytest.mark.parametrize("bad", ["²", "١٢", "1e3", " ", "-4"])
async def test_non_ascii_or_odd_ids_fail_before_sending(bad: str) -> None:
    """Ids that are not plain ASCII digits raise InvalidArgumentError, never a raw ValueError."""
    sim = Simulator(SimulatedFleet(seed=1, clients=1, devices=2))
    async with in_process_client(sim) as client:
        with pytest.raises(InvalidArgumentError):
            [s async for s in client.list_sites(bad)]  # type: ignore[arg-type]  # testing bad input
    assert sim.log.count() == 0


@pytest.mark.parametrize(
    ("server", "settings"),
    [
        ("https://[::1", {}),
        (5, {}),
        ("uk", {"timeout": "x"}),
        ("uk", {"timeout": -1}),
        ("uk", {"timeout": 0}),
        ("uk", {"max_per_minute": float("nan")}),
        ("uk", {"max_per_minute": float("inf")}),
    ],
)
def test_bad_settings_are_configuration_errors(server: object, settings: dict[str, Any]) -> None:
    """Malformed URLs, non-string servers and bad timeouts or rates fail at construction."""
    with pytest.raises(ConfigurationError):
        NsightClient(server, "key-1234", **settings)  # type: ignore[arg-type]  # testing bad input


@respx.mock
async def test_redirects_are_never_followed_even_if_the_http_client_would() -> None:
    """A 302 is an error, not a second request carrying the key to the Location."""
    route = respx.get("https://www.systemmonitor.co.uk/api/").mock(
        return_value=httpx.Response(302, headers={"Location": "http://elsewhere.invalid/"})
    )
    other = respx.get("http://elsewhere.invalid/").mock(return_value=httpx.Response(200))
    async with (
        httpx.AsyncClient(follow_redirects=True) as http,
        NsightClient("uk", "key-1234", http_client=http, max_per_minute=None) as c,
    ):
        with pytest.raises(HttpStatusError):
            [x async for x in c.list_clients()]
    assert route.call_count == 1
    assert other.call_count == 0


async def test_nested_listings_finish_with_a_single_slot() -> None:
    """Calls inside a listing loop never wait on the slot the outer one-chunk stream holds."""
    sim = Simulator(SimulatedFleet(seed=3, clients=3, devices=12))
    async with in_process_client(sim, max_at_once=1) as client:

        async def walk() -> int:
            count = 0
            async for c in client.list_clients():
                async for _ in client.list_devices_at_client(c.client_id, "server"):
                    count += 1
            return count

        count = await asyncio.wait_for(walk(), timeout=10)
    assert count == sum(1 for d in sim.fleet.iter_devices() if d.kind == "server")
