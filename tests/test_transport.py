"""Tests for nsight_async._transport: status checks, Retry-After, the key in the query only."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gc
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import respx

from nsight_async import (
    ConfigurationError,
    HtmlPageError,
    HttpStatusError,
    NsightClient,
    RateLimitedError,
    RetryPolicy,
)
from nsight_async._transport import USER_AGENT, parse_retry_after
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)
from nsight_async.testing import SimulatorTransport as SimTransport

URL = "http://127.0.0.1:9/api/"
KEY = "k-transport-0123456789"
ONE_TRY = RetryPolicy(attempts=1)


async def _no_wait(seconds: float) -> None:
    """Sleep that returns at once."""


async def _first_error(response: httpx.Response) -> BaseException:
    respx.get(URL).mock(return_value=response)
    async with (
        httpx.AsyncClient() as http,
        NsightClient(URL, KEY, http_client=http, retry=ONE_TRY, sleep=_no_wait) as client,
    ):
        try:
            async for _ in client.list_clients():
                pass
        except Exception as exc:
            return exc
    raise AssertionError("no error raised")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 2.5 ", 2.5), ("-3", 0.0), ("0", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    """Retry-After in seconds is read as a non-negative float; garbage gives None."""
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    """Retry-After as an HTTP date gives the seconds until then (0 for the past)."""
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert parse_retry_after(future) == pytest.approx(120, abs=2)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@respx.mock
async def test_429_is_rate_limited_with_retry_after() -> None:
    """A 429 becomes RateLimitedError carrying status and Retry-After."""
    error = await _first_error(httpx.Response(429, headers={"Retry-After": "9"}, text="busy"))
    assert isinstance(error, RateLimitedError)
    assert error.status == 429
    assert error.retry_after == 9.0
    assert error.service == "list_clients"


@respx.mock
async def test_html_page_is_html_page_error() -> None:
    """An HTML 403 from the firewall becomes HtmlPageError that mentions the User-Agent."""
    page = "<!DOCTYPE html><html><body>Request Rejected</body></html>"
    error = await _first_error(
        httpx.Response(403, headers={"Content-Type": "text/html"}, text=page)
    )
    assert isinstance(error, HtmlPageError)
    assert error.status == 403
    assert "User-Agent" in str(error)


@respx.mock
async def test_html_200_page_is_an_error_not_a_parse_crash() -> None:
    """An HTML page served with 200 raises HtmlPageError, not a raw parser exception."""
    error = await _first_error(
        httpx.Response(200, headers={"Content-Type": "text/html"}, text="<html><p>down</p></html>")
    )
    assert isinstance(error, HtmlPageError)


@respx.mock
@pytest.mark.parametrize(("status", "retryable"), [(404, False), (500, True), (504, True)])
async def test_other_statuses_are_http_status_errors(status: int, retryable: bool) -> None:
    """Other statuses without HTML become HttpStatusError, retryable only for 5xx gateways."""
    error = await _first_error(httpx.Response(status, content=b"x"))
    assert isinstance(error, HttpStatusError)
    assert error.status == status
    assert error.retryable is retryable


@respx.mock
async def test_404_is_not_retried() -> None:
    """A 404 is sent once: retrying cannot help."""
    route = respx.get(URL).mock(return_value=httpx.Response(404, content=b"nope"))
    async with (
        httpx.AsyncClient() as http,
        NsightClient(URL, KEY, http_client=http, sleep=_no_wait) as client,
    ):
        with pytest.raises(HttpStatusError):
            async for _ in client.list_clients():
                pass
    assert route.call_count == 1


@respx.mock
async def test_query_carries_key_service_and_params() -> None:
    """The request is GET /api/?apikey=KEY&service=NAME&param=value with lower-case names."""
    route = respx.get(URL).mock(
        return_value=httpx.Response(200, content=b'<result status="OK"><items/></result>')
    )
    async with httpx.AsyncClient() as http, NsightClient(URL, KEY, http_client=http) as client:
        async for _ in client.list_devices_at_client(12, "workstation"):
            pass
    request = route.calls.last.request
    assert request.method == "GET"
    assert dict(request.url.params) == {
        "apikey": KEY,
        "service": "list_devices_at_client",
        "clientid": "12",
        "devicetype": "workstation",
    }
    assert request.headers["user-agent"] == USER_AGENT


async def test_display_url_masks_the_key() -> None:
    """The URL used in logs and messages shows apikey=*** and never the key."""
    sim = Simulator()
    async with (
        httpx.AsyncClient(transport=SimTransport(sim)) as http,
        NsightClient("http://127.0.0.1/", SIMULATOR_API_KEY, http_client=http) as client,
    ):
        url = client._transport.display_url("list_sites", {"clientid": "5"})
    assert url == "http://127.0.0.1/api/?apikey=***&service=list_sites&clientid=5"


async def test_calls_started_counts_every_request() -> None:
    """calls_started counts each HTTP request, retries included."""
    sim = Simulator(config=SimulatorConfig(fault_script=[Fault.HTTP502, Fault.RESET]))
    async with (
        httpx.AsyncClient(transport=SimTransport(sim)) as http,
        NsightClient(
            "http://127.0.0.1/", SIMULATOR_API_KEY, http_client=http, sleep=_no_wait
        ) as client,
    ):
        async for _ in client.list_clients():
            pass
        assert client.calls_started == 3
        assert client.governor.in_flight == 0


@contextlib.contextmanager
def _server_in_a_thread(sim: Simulator) -> Iterator[str]:
    """Serve ``sim`` on 127.0.0.1 from its own thread and event loop; yield its URL."""
    started = threading.Event()
    running: list[tuple[str, asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        async with SimulatorServer(sim) as server:
            running.append((server.url, asyncio.get_running_loop(), stop))
            started.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert started.wait(10)
        yield running[0][0]
    finally:
        if running:
            _, loop, stop = running[0]
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)


async def _gathered_names(client: NsightClient, times: int) -> list[list[str]]:
    async def names() -> list[str]:
        return [c.name async for c in client.list_clients()]

    return list(await asyncio.gather(*(names() for _ in range(times))))


def test_a_client_open_in_another_event_loop_says_so() -> None:
    """Each asyncio.run() starts a new loop; the open client's connections belong to the first."""
    sim = Simulator()
    with _server_in_a_thread(sim) as url:
        client = NsightClient(url, SIMULATOR_API_KEY, max_at_once=2)
        assert asyncio.run(_gathered_names(client, 4))  # left open: its connections stay
        with pytest.raises(ConfigurationError, match="open in another event loop"):
            asyncio.run(_gathered_names(client, 1))
        with pytest.raises(ConfigurationError, match="open in another event loop"):
            asyncio.run(client.aclose())
        assert sim.log.count("list_clients") == 4  # nothing was sent from the second loop
        del client  # asyncio says what was left open in the closed loop
        with pytest.warns(ResourceWarning) as left_open:
            gc.collect()
        assert any("unclosed transport" in str(w.message) for w in left_open)


def test_a_client_closed_in_its_event_loop_starts_afresh_in_the_next() -> None:
    """Closed at the end of each asyncio.run(), one client serves several, contended or not."""
    sim = Simulator()
    with _server_in_a_thread(sim) as url:
        client = NsightClient(url, SIMULATOR_API_KEY, max_at_once=2)

        async def run_and_close(times: int) -> list[list[str]]:
            async with client:
                return await _gathered_names(client, times)

        first = asyncio.run(run_and_close(5))  # 5 calls at 2 at once: they wait for slots
        assert asyncio.run(run_and_close(5)) == first
        asyncio.run(client.aclose())  # closed already: nothing to do, in any loop
        assert client.calls_started == 10
    assert sim.log.count("list_clients") == 10


def test_a_client_created_outside_any_loop_works_in_the_loop_that_uses_it() -> None:
    sim = Simulator()
    with _server_in_a_thread(sim) as url:
        client = NsightClient(url, SIMULATOR_API_KEY)

        async def names() -> list[str]:
            async with client:
                return [c.name async for c in client.list_clients()]

        assert asyncio.run(names())
