"""Tests for nsight_async._transport: status checks, Retry-After, the key in the query only."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
import respx

from nsight_async import (
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
