"""Fault kinds, how they are chosen, and the canned bodies they answer with.

Faults are chosen per request, first by the script (a sequence indexed by the
request number, or a callable given a `FaultContext`), then by probability
(``fault_rate``) with ``random.Random(f"{seed}:fault:{n}")`` so a run is
reproducible from the seed and the request order.

Whether the service did its work depends on the fault (it matters for the
write ``patch_retry``): `PROCESSED_FAULTS` run the service (state changes) and
then lose or delay the answer; every other fault answers *instead of* the service.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping, Sequence

import attrs

from nsight_async.testing._xml import XML_DECL_UTF8, fail_document


class Fault(enum.StrEnum):
    """The failures the simulator can inject."""

    REFUSE = "refuse"  # connection refused: the request certainly never arrived
    RESET = "reset"  # connection reset before processing and before any response
    RESET_AFTER = "reset-after"  # processed (state changed), then reset: the answer is lost
    TRUNCATE = "truncate"  # processed, headers and half the body sent, then closed
    STALL = "stall"  # sleep ``stall_seconds`` (injected sleep), then process and answer
    TIMEOUT = "timeout"  # in-process: raise httpx.ReadTimeout at once; on sockets: as stall
    HTTP500 = "http500"
    HTTP502 = "http502"
    HTTP503 = "http503"
    HTTP504 = "http504"
    HTML403 = "html403"  # web application firewall block page
    HTML200 = "html200"  # an HTML maintenance page with status 200
    MALFORMED = "malformed"  # XML that is not well-formed
    DOCTYPE = "doctype"  # a DOCTYPE declaring nested entities (small billion laughs)
    FAIL3 = "fail3"
    FAIL4 = "fail4"
    FAIL5 = "fail5"
    HTTP429 = "429"  # 429 with Retry-After
    HTTP429_BARE = "429-bare"  # 429 without Retry-After


PROCESSED_FAULTS = frozenset({Fault.RESET_AFTER, Fault.TRUNCATE, Fault.STALL})
CONNECTION_FAULTS = frozenset({Fault.REFUSE, Fault.RESET, Fault.RESET_AFTER, Fault.TRUNCATE})
#: Default kinds drawn by ``fault_rate``: everything except the slow ones.
DEFAULT_FAULT_KINDS: tuple[Fault, ...] = tuple(
    f for f in Fault if f not in (Fault.STALL, Fault.TIMEOUT)
)


@attrs.frozen(kw_only=True)
class FaultContext:
    """What a fault script sees about a request: its number (from 0), service and params."""

    n: int
    service: str
    params: Mapping[str, str]

    @property
    def device_id(self) -> str | None:
        """Return the ``deviceid`` parameter, if any."""
        return self.params.get("deviceid")


FaultScript = Sequence[Fault | str | None] | Callable[[FaultContext], Fault | str | None]


def choose_fault(
    *,
    seed: str,
    context: FaultContext,
    script: FaultScript | None,
    rate: float,
    kinds: Sequence[Fault],
    services: frozenset[str] | None,
) -> Fault | None:
    """Return the fault for one request, or None."""
    chosen: Fault | str | None = None
    if callable(script):
        chosen = script(context)
    elif script is not None and context.n < len(script):
        chosen = script[context.n]
    if chosen is not None:
        return Fault(chosen)
    if rate <= 0.0 or not kinds or (services is not None and context.service not in services):
        return None
    rng = random.Random(f"{seed}:fault:{context.n}")
    return rng.choice(list(kinds)) if rng.random() < rate else None


_HTML_TITLES = {
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def html_error_page(status: int) -> bytes:
    """Return an nginx-style HTML error page."""
    title = _HTML_TITLES.get(status, f"{status} Error")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def firewall_page(status: int = 403) -> bytes:
    """Return a web application firewall block page (HTML, not XML)."""
    return (
        "<!DOCTYPE html>\n<html><head><title>Request Rejected</title></head><body>"
        "<h1>Access Denied</h1><p>The requested URL was rejected. Please consult with "
        "your administrator.</p><p>Your support ID is: 1234567890123456789</p>"
        f"<!-- status {status} --></body></html>\n"
    ).encode()


def maintenance_page() -> bytes:
    """Return an HTML page served with status 200 (maintenance splash)."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>Scheduled maintenance</title></head><body>"
        b"<h1>We&rsquo;ll be back soon</h1><p>N-sight RMM is undergoing maintenance.</p>"
        b"</body></html>\n"
    )


def malformed_body(created: str, host: str) -> bytes:
    """Return an XML document that is not well-formed (mismatched tags)."""
    return (
        f'{XML_DECL_UTF8}<result created="{created}" host="{host}" status="OK"><items>'
        "<client><name>Broken &amp Co</name><clientid>1</clientid></items></result>\n"
    ).encode()


def doctype_body(created: str, host: str) -> bytes:
    """Return a document with a DOCTYPE declaring nested entities (a small billion laughs)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 4)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE result [{entities}]>\n'
        f'<result created="{created}" host="{host}" status="OK"><items><client>'
        "<name>&lol3;</name><clientid>1</clientid></client></items></result>\n"
    ).encode()


FAIL_MESSAGES = {
    Fault.FAIL3: (3, "Login failed"),
    Fault.FAIL4: (4, "Invalid value for parameter: deviceid"),
    Fault.FAIL5: (5, "Missing parameter: deviceid"),
}


def fault_answer(
    fault: Fault, *, created: str, host: str, retry_after: int
) -> tuple[int, dict[str, str], bytes] | None:
    """Return ``(status, headers, body)`` for a fault that replaces the answer, else None."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    xml = {"Content-Type": "text/xml; charset=utf-8"}
    if fault in (Fault.HTTP500, Fault.HTTP502, Fault.HTTP503, Fault.HTTP504):
        status = int(fault.value[4:])
        return status, html, html_error_page(status)
    if fault is Fault.HTML403:
        return 403, html, firewall_page(403)
    if fault is Fault.HTML200:
        return 200, html, maintenance_page()
    if fault is Fault.MALFORMED:
        return 200, xml, malformed_body(created, host)
    if fault is Fault.DOCTYPE:
        return 200, xml, doctype_body(created, host)
    if fault in FAIL_MESSAGES:
        code, message = FAIL_MESSAGES[fault]
        body = fail_document(created=created, host=host, code=code, message=message)
        return 200, xml, body.encode()
    if fault is Fault.HTTP429:
        return 429, {**html, "Retry-After": str(retry_after)}, html_error_page(429)
    if fault is Fault.HTTP429_BARE:
        return 429, html, html_error_page(429)
    return None
