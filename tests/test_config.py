"""Tests for nsight_async._config: server resolution, limits, retry policy and env settings."""

from __future__ import annotations

import attrs
import pytest

from nsight_async import REGIONS, ConfigurationError, Limits, NsightClient, RetryPolicy
from nsight_async._config import env_settings, resolve_server

KEY = "k-config-0123456789"


@pytest.mark.parametrize(("region", "host"), sorted(REGIONS.items()))
def test_every_region_resolves_to_https_api(region: str, host: str) -> None:
    """Each region name maps to https://HOST/api/ and is not loopback."""
    server = resolve_server(region)
    assert server.base_url == f"https://{host}/api/"
    assert not server.loopback


@pytest.mark.parametrize("name", ["UK", " uk ", "United Kingdom", "united_kingdom"])
def test_region_names_are_forgiving(name: str) -> None:
    """Region names ignore case, surrounding blanks, and accept spaces or underscores."""
    assert resolve_server(name).host == "www.systemmonitor.co.uk"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("www.systemmonitor.co.uk", "https://www.systemmonitor.co.uk/api/"),
        ("https://www.systemmonitor.us", "https://www.systemmonitor.us/api/"),
        ("https://www.systemmonitor.us/api", "https://www.systemmonitor.us/api/"),
        (
            "https://www.systemmonitor.us/api/default.php",
            "https://www.systemmonitor.us/api/default.php",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/"),
        ("http://localhost:8080/api/", "http://localhost:8080/api/"),
        ("http://[::1]:9000", "http://[::1]:9000/api/"),
    ],
)
def test_urls_and_bare_hosts(given: str, base: str) -> None:
    """Bare hosts become https; URLs get /api/ unless they already name the handler."""
    assert resolve_server(given).base_url == base


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "localhost", "[::1]"])
def test_plain_http_allowed_for_loopback(host: str) -> None:
    """Plain http:// is accepted for loopback hosts and marks the server as loopback."""
    assert resolve_server(f"http://{host}:1234").loopback


@pytest.mark.parametrize(
    "url", ["http://www.systemmonitor.co.uk", "http://10.0.0.5", "http://127.0.0.1.nip.io"]
)
def test_plain_http_refused_for_remote_hosts_with_reason(url: str) -> None:
    """Plain http:// to a remote host is refused with a message explaining the key would leak."""
    with pytest.raises(ConfigurationError) as info:
        resolve_server(url)
    message = str(info.value)
    assert "https://" in message
    assert "key" in message
    assert "loopback" in message


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("mars", "unknown region"),
        ("", "no server"),
        ("ftp://www.systemmonitor.us", "ftp"),
        ("https://www.systemmonitor.us/api/?apikey=x", "query"),
        ("https://user:pw@www.systemmonitor.us", "credentials"),
    ],
)
def test_bad_servers_are_refused_with_a_hint(given: str, hint: str) -> None:
    """Unknown regions, other schemes, and URLs carrying queries or credentials are refused."""
    with pytest.raises(ConfigurationError, match=hint):
        resolve_server(given)


def test_unknown_region_lists_the_regions() -> None:
    """The error for an unknown region names the valid ones."""
    with pytest.raises(ConfigurationError, match="americas") as info:
        resolve_server("atlantis")
    assert "https://" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_at_once": 0},
        {"max_at_once": -1},
        {"max_at_once": 1.5},
        {"max_at_once": True},
        {"max_per_minute": 0},
        {"max_per_minute": -60},
        {"max_per_minute": "60"},
    ],
)
def test_limits_are_validated(kwargs: dict[str, object]) -> None:
    """Limits refuse zero, negative, non-numeric and boolean values."""
    with pytest.raises(ConfigurationError):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_limits_none_means_no_rate_limit() -> None:
    """max_per_minute=None is accepted and means no rate limit."""
    assert Limits(max_per_minute=None).max_per_minute is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"wait_initial": 0},
        {"wait_max": -1},
        {"max_retry_after": 0},
        {"timeout": 0},
    ],
)
def test_retry_policy_is_validated(kwargs: dict[str, object]) -> None:
    """RetryPolicy refuses values that would make no sense."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen_and_evolvable() -> None:
    """RetryPolicy cannot be mutated, only evolved."""
    policy = RetryPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.attempts = 9  # type: ignore[misc]
    assert attrs.evolve(policy, attempts=9).attempts == 9


def test_env_settings_reads_every_variable() -> None:
    """env_settings reads the five NSIGHT_* variables with their types."""
    env = {
        "NSIGHT_SERVER": "uk",
        "NSIGHT_API_KEY": KEY,
        "NSIGHT_MAX_AT_ONCE": "4",
        "NSIGHT_MAX_PER_MINUTE": "30",
        "NSIGHT_TIMEOUT": "12.5",
    }
    assert env_settings(env) == {
        "server": "uk",
        "api_key": KEY,
        "max_at_once": 4,
        "max_per_minute": 30.0,
        "timeout": 12.5,
    }


def test_env_settings_rejects_garbage_numbers() -> None:
    """A non-numeric NSIGHT_MAX_PER_MINUTE is a ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match="NSIGHT_MAX_PER_MINUTE"):
        env_settings({"NSIGHT_MAX_PER_MINUTE": "fast"})


def test_env_none_disables_the_rate_limit() -> None:
    """NSIGHT_MAX_PER_MINUTE=none means no rate limit."""
    assert env_settings({"NSIGHT_MAX_PER_MINUTE": "none"}) == {"max_per_minute": None}


async def test_client_takes_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """NsightClient() with no arguments reads server, key and limits from NSIGHT_* variables."""
    monkeypatch.setenv("NSIGHT_SERVER", "europe")
    monkeypatch.setenv("NSIGHT_API_KEY", KEY)
    monkeypatch.setenv("NSIGHT_MAX_AT_ONCE", "3")
    monkeypatch.setenv("NSIGHT_MAX_PER_MINUTE", "20")
    monkeypatch.setenv("NSIGHT_TIMEOUT", "7")
    async with NsightClient() as client:
        assert client.server.base_url == "https://wwweurope1.systemmonitor.eu.com/api/"
        assert client.limits == Limits(max_at_once=3, max_per_minute=20.0)


async def test_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit arguments override the environment."""
    monkeypatch.setenv("NSIGHT_SERVER", "europe")
    monkeypatch.setenv("NSIGHT_API_KEY", "k-from-env-000")
    monkeypatch.setenv("NSIGHT_MAX_PER_MINUTE", "20")
    async with NsightClient("us", KEY, max_per_minute=45) as client:
        assert client.server.host == "www.systemmonitor.us"
        assert client.limits.max_per_minute == 45


async def test_default_rate_depends_on_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default rate is 60/min for real servers and unlimited for loopback."""
    monkeypatch.delenv("NSIGHT_MAX_PER_MINUTE", raising=False)
    async with NsightClient("uk", KEY) as remote, NsightClient("http://127.0.0.1:1", KEY) as local:
        assert remote.limits.max_per_minute == 60
        assert local.limits.max_per_minute is None


def test_missing_server_or_key_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a server or a key the client says which variable or argument to set."""
    monkeypatch.delenv("NSIGHT_SERVER", raising=False)
    monkeypatch.delenv("NSIGHT_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="NSIGHT_SERVER"):
        NsightClient(api_key=KEY)
    with pytest.raises(ConfigurationError, match="NSIGHT_API_KEY"):
        NsightClient("uk")
    with pytest.raises(ConfigurationError, match="NSIGHT_API_KEY"):
        NsightClient("uk", "   ")


def test_client_validates_limits() -> None:
    """Bad limits given to the client are refused when it is built."""
    with pytest.raises(ConfigurationError, match="max_at_once"):
        NsightClient("uk", KEY, max_at_once=0)
    with pytest.raises(ConfigurationError, match="max_per_minute"):
        NsightClient("uk", KEY, max_per_minute=-1)


def test_client_refuses_plain_http_to_remote() -> None:
    """The client refuses a plain http:// remote server before sending anything."""
    with pytest.raises(ConfigurationError, match="refusing plain http"):
        NsightClient("http://www.systemmonitor.co.uk", KEY)
