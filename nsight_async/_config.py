"""Client settings: regional servers, limits and retry policy, validated when built.

Every setting has a named default and can come from the environment
(``NSIGHT_SERVER``, ``NSIGHT_API_KEY``, ``NSIGHT_MAX_AT_ONCE``,
``NSIGHT_MAX_PER_MINUTE``, ``NSIGHT_TIMEOUT``). Change a frozen setting with
``attrs.evolve``.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from ._errors import ConfigurationError

#: N-able's regional servers (``nsight-api.md``). Aliases map to the same host.
REGIONS: Mapping[str, str] = {
    "americas": "www.am.remote.management",
    "asia": "wwwasia.system-monitor.com",
    "australia": "www.system-monitor.com",
    "europe": "wwweurope1.systemmonitor.eu.com",
    "france": "wwwfrance.systemmonitor.eu.com",
    "france1": "wwwfrance1.systemmonitor.eu.com",
    "germany": "wwwgermany1.systemmonitor.eu.com",
    "ireland": "wwwireland.systemmonitor.eu.com",
    "poland": "wwwpoland1.systemmonitor.eu.com",
    "uk": "www.systemmonitor.co.uk",
    "united-kingdom": "www.systemmonitor.co.uk",
    "us": "www.systemmonitor.us",
    "united-states": "www.systemmonitor.us",
}

#: Community clients cap themselves at 60 calls a minute per key (``nsight-api.md``).
DEFAULT_MAX_PER_MINUTE = 60.0
DEFAULT_MAX_AT_ONCE = 10
DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0


@attrs.frozen(kw_only=True)
class Server:
    """Where the API lives: ``base_url`` ends in ``/api/``."""

    base_url: str
    host: str
    loopback: bool


def resolve_server(server: str) -> Server:
    """Turn a region name or URL into a :class:`Server`; refuse insecure URLs.

    Raises:
        ConfigurationError: unknown region, unparsable URL, or plain ``http://``
            to a host that is not loopback.
    """
    if not isinstance(server, str):
        raise ConfigurationError(_server_hint(f"server must be a string, got {server!r}"))
    name = server.strip()
    if not name:
        raise ConfigurationError(_server_hint("no server given"))
    host = REGIONS.get(name.lower().replace("_", "-").replace(" ", "-"))
    if host is not None:
        return Server(base_url=f"https://{host}/api/", host=host, loopback=False)
    if "://" not in name:
        if "." in name:  # a bare host name
            name = f"https://{name}"
        else:
            raise ConfigurationError(_server_hint(f"unknown region {server!r}"))
    try:
        parts = urlsplit(name)
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise ConfigurationError(_server_hint(f"cannot parse the URL {name!r} ({exc})")) from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigurationError(_server_hint(f"cannot use {parts.scheme!r} URL"))
    loopback = _is_loopback(parts.hostname)
    if parts.scheme == "http" and not loopback:
        raise ConfigurationError(
            f"refusing plain http:// to {parts.hostname}: the API key travels in the URL, so "
            "only https:// is allowed (plain http is accepted for loopback hosts only, "
            "such as the simulator)"
        )
    if parts.query or parts.username or parts.password:
        raise ConfigurationError("the server URL must not carry a query or credentials")
    path = parts.path.rstrip("/")
    if not path.endswith("/api") and not path.endswith("default.php"):
        path = f"{path}/api"
    base = f"{parts.scheme}://{parts.netloc}{path}"
    if not base.endswith(".php"):
        base += "/"
    return Server(base_url=base, host=parts.hostname, loopback=loopback)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_hint(problem: str) -> str:
    regions = ", ".join(sorted(REGIONS))
    return f"{problem}: give a region ({regions}) or an https:// URL"


def _positive(name: str, value: float | None, *, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise ConfigurationError(f"{name} is required")
        return
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name} must be a positive number, got {value!r}"
            + (" (use None for no limit)" if allow_none else "")
        )


@attrs.frozen(kw_only=True)
class Limits:
    """How hard the client may use the server: one set per client, shared by every call.

    Attributes:
        max_at_once: requests in flight at the same time.
        max_per_minute: a smooth rate (calls are spaced evenly, no burst), or
            ``None`` for no rate limit (the default only for loopback servers).
    """

    max_at_once: int = DEFAULT_MAX_AT_ONCE
    max_per_minute: float | None = DEFAULT_MAX_PER_MINUTE

    def __attrs_post_init__(self) -> None:
        _positive("max_at_once", self.max_at_once, allow_none=False)
        if not isinstance(self.max_at_once, int):
            raise ConfigurationError(f"max_at_once must be an int, got {self.max_at_once!r}")
        _positive("max_per_minute", self.max_per_minute, allow_none=True)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Which failures are retried and how long to wait between attempts.

    The wait before attempt ``n + 1`` is full jitter over an exponential
    ceiling: ``uniform(0, min(wait_max, wait_initial * wait_exp_base ** (n - 1)))``,
    unless the server sent ``Retry-After``, which is honoured up to
    ``max_retry_after`` seconds. ``attempts`` counts the first try; ``timeout``
    bounds the total time spent retrying one call (``None``: no bound).
    """

    attempts: int = 5
    timeout: float | None = 300.0
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_exp_base: float = 2.0
    max_retry_after: float = 120.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigurationError(f"attempts must be an int >= 1, got {self.attempts!r}")
        _positive("timeout", self.timeout, allow_none=True)
        for name in ("wait_initial", "wait_max", "wait_exp_base", "max_retry_after"):
            _positive(name, getattr(self, name), allow_none=False)


def check_timeout(timeout: float) -> float:
    """Validate a read timeout in seconds (a positive, finite number)."""
    _positive("timeout", timeout, allow_none=False)
    return float(timeout)


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Read the ``NSIGHT_*`` environment variables into constructor keywords."""
    env = os.environ if environ is None else environ
    out: dict[str, object] = {}
    if env.get("NSIGHT_SERVER"):
        out["server"] = env["NSIGHT_SERVER"]
    if env.get("NSIGHT_API_KEY"):
        out["api_key"] = env["NSIGHT_API_KEY"]
    for var, key, kind in (
        ("NSIGHT_MAX_AT_ONCE", "max_at_once", int),
        ("NSIGHT_MAX_PER_MINUTE", "max_per_minute", float),
        ("NSIGHT_TIMEOUT", "timeout", float),
    ):
        raw = env.get(var)
        if raw:
            try:
                out[key] = None if raw.lower() in {"none", "off", "0"} else kind(raw)
            except ValueError:
                raise ConfigurationError(f"{var}={raw!r} is not a number") from None
    return out
