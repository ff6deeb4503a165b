"""The simulated API: one place decides every answer, fault and state change.

`Simulator.handle` turns ``(method, path, query)`` into a `SimResponse`; the
in-process httpx transport and the aiohttp loopback server only carry it. A
request goes through, in order: the fault script/draw (``refuse`` stops here),
the per-key sliding-window rate limit, the other faults, then routing, the key
check, service lookup, ``describe``, parameter validation and finally the
service. The latency counts from arrival: a read is rendered first and answered
when it is up; a write, or a call given a fault, sleeps it before anything else.

Decisions where the vendor is silent (documented in the package docstring too):
an unknown service answers errorcode 2 "Service unknown"; a missing
``service`` answers errorcode 5 "Missing parameter: service"; ``patch_retry``
naming an id not on the device fails as a whole, ``status="FAIL"`` with only a
``<msg>``, and changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from nsight_async.testing import _render
from nsight_async.testing._bodycache import BodyCache
from nsight_async.testing._config import SIMULATOR_API_KEY, RateLimitMode, SimulatorConfig
from nsight_async.testing._describe import SERVICES, describe_document
from nsight_async.testing._faults import (
    PROCESSED_FAULTS,
    Fault,
    FaultContext,
    choose_fault,
    fault_answer,
    firewall_page,
    html_error_page,
)
from nsight_async.testing._fleet import SimulatedFleet
from nsight_async.testing._history import SimPatch
from nsight_async.testing._log import RequestLog, RequestLogEntry
from nsight_async.testing._services import InvalidRequest, run_service
from nsight_async.testing._xml import chunked, created_stamp, escape, fail_document, open_result

API_PATHS = frozenset({"/api", "/api/", "/api/default.php"})
UNKNOWN_SERVICE_CODE = 2
_XML = (("Content-Type", "text/xml; charset=utf-8"),)
_HTML = (("Content-Type", "text/html; charset=utf-8"),)
_WRITES = frozenset({"patch_retry"})  # services that change the fleet
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class SimResponse:
    """An answer to carry: status, headers, body chunks, and the fault the carrier must act out.

    ``content_length`` is set when the body is small enough to have been rendered
    whole; otherwise the carrier streams ``chunks`` (chunked encoding). With
    ``fault`` ``truncate`` the chunks are already cut and the carrier must close
    the connection after them; with ``refuse``, ``reset``, ``reset-after`` or
    ``timeout`` it must send nothing.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: Iterator[bytes]
    content_length: int | None
    fault: Fault | None = None


def _measured(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], int | None]:
    """Peek two chunks: a one-chunk body gets a Content-Length, a longer one streams."""
    first = next(chunks, b"")
    second = next(chunks, None)
    if second is None:
        return iter((first,)), len(first)
    return itertools.chain((first, second), chunks), None


def _truncated(chunks: Iterator[bytes], length: int | None) -> Iterator[bytes]:
    """Keep the first half of a whole body; of a streamed one, the first chunk and a half.

    Cutting a streamed body inside its second chunk means a client has received
    whole chunks (and may have handed records on) before the connection drops.
    """
    first = next(chunks, b"")
    if length is not None:
        yield first[: len(first) // 2]
        return
    yield first
    second = next(chunks, None)
    if second:
        yield second[: len(second) // 2]


@attrs.define(init=False)
class Simulator:
    """A stateful, seeded N-sight Data Extraction API.

    Args:
        fleet: The fleet to serve (default: a small fleet with seed 0).
        config: Controls (latency, rate limit, faults); replace with `configure`.
        api_keys: Keys that log in; any other key answers errorcode 3.
        clock: Monotonic clock for the rate window and log times.
        sleep: Awaitable sleep used for latency and stalls.
        wall_clock: Source of the root ``created`` timestamp (aware datetime).
    """

    fleet: SimulatedFleet
    config: SimulatorConfig
    api_keys: frozenset[str]
    log: RequestLog
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _wall_clock: Callable[[], datetime]
    _windows: dict[str, deque[float]]
    _patch_state: dict[int, dict[int, int]]
    _counter: int
    _cache: BodyCache
    _created: tuple[tuple[int, int, int], str]
    _head: tuple[str, str, str]

    def __init__(
        self,
        fleet: SimulatedFleet | None = None,
        *,
        config: SimulatorConfig | None = None,
        api_keys: Iterable[str] = (SIMULATOR_API_KEY,),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.fleet = fleet if fleet is not None else SimulatedFleet()
        self.config = config if config is not None else SimulatorConfig()
        self.api_keys = frozenset(api_keys)
        self.log = RequestLog()
        self._clock, self._sleep, self._wall_clock = clock, sleep, wall_clock
        self._windows, self._patch_state, self._counter = {}, {}, 0
        self._cache = BodyCache()
        self._created = ((0, 0, 0), "")
        self._head = ("", "", "")

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Replace some controls at runtime (``attrs.evolve``) and return the new config."""
        self.config = attrs.evolve(self.config, **changes)
        return self.config

    async def sleep(self, seconds: float) -> None:
        """Sleep with the injected sleep (used by the servings for stalls)."""
        await self._sleep(seconds)

    def patches(self, device_id: int) -> list[SimPatch]:
        """Return a device's patches in their current state (after retries)."""
        state = self._patch_state.get(device_id, {})
        return [
            attrs.evolve(p, status=state.get(p.patchid, p.status))
            for p in self.fleet.patches(device_id)
        ]

    # -- the request pipeline -------------------------------------------------
    async def handle(self, *, method: str, path: str, query: Mapping[str, str]) -> SimResponse:
        """Answer one request; see the module docstring for the order of checks."""
        n, self._counter = self._counter, self._counter + 1
        arrived = self._clock()
        service = query.get("service")
        params = {k: v for k, v in query.items() if k != "apikey"}
        key = query.get("apikey", "")
        key_ok = key in self.api_keys
        config = self.config

        def record(status: int | None, fault: Fault | None, **extra: bool) -> None:
            entry = RequestLogEntry(
                n=n, time=arrived, method=method, path=path, service=service, params=params,
                key_ok=key_ok, status=status, fault=fault, **extra,
            )  # fmt: skip
            self.log.append(entry)

        fault = None
        if config.fault_script is not None or config.fault_rate > 0.0:
            fault = choose_fault(
                seed=self.fleet.seed,
                context=FaultContext(n=n, service=service or "", params=params),
                script=config.fault_script,
                rate=config.fault_rate,
                kinds=config.fault_kinds,
                services=config.fault_services,
            )
        if fault is Fault.REFUSE:
            record(None, fault)
            return SimResponse(status=0, headers=(), chunks=iter(()), content_length=0, fault=fault)
        limited = self._over_limit(key, arrived)
        if limited is not None:
            record(limited.status, None, rate_limited=True)
            return limited
        latency = config.latency_for(service or "")
        if fault is not None or service in _WRITES:
            # The answer is decided after the latency: a client that gives up first
            # leaves a write unapplied, and a fault is chosen for that moment.
            if latency > 0:
                await self._sleep(latency)
            latency = 0.0
        created = self._created_stamp(config.utc_offset_minutes)
        if fault in (Fault.RESET, Fault.TIMEOUT):
            record(None, fault)
            return SimResponse(status=0, headers=(), chunks=iter(()), content_length=0, fault=fault)
        if fault is not None and fault not in PROCESSED_FAULTS:
            answer = fault_answer(fault, created=created, host=config.host, retry_after=1)
            assert answer is not None  # every non-processed, non-connection fault has a page
            code, page_headers, page = answer
            record(code, fault)
            return SimResponse(
                status=code, headers=tuple(page_headers.items()), chunks=iter((page,)),
                content_length=len(page), fault=fault,
            )  # fmt: skip
        if fault is Fault.STALL:
            await self._sleep(config.stall_seconds)
        status, headers, chunks, processed = self._serve(
            method, path, service, params, key_ok, created
        )
        body, length = _measured(chunks)
        if fault is Fault.TRUNCATE:
            body = _truncated(body, length)
        record(None if fault is Fault.RESET_AFTER else status, fault, processed=processed)
        if latency > 0:
            # A read is rendered as it arrives and answered ``latency`` after arrival, as a
            # server with many workers would: rendering after the sleep made the answers
            # to requests that arrived together queue behind each other in one burst.
            await self._sleep(max(0.0, arrived + latency - self._clock()))
        return SimResponse(
            status=status, headers=headers, chunks=body, content_length=length, fault=fault
        )

    def _created_stamp(self, offset_minutes: int) -> str:
        """Return the ``created`` text of now, rendered once per wall-clock second."""
        moment = self._wall_clock()
        if moment.utcoffset() is None:
            return created_stamp(moment, offset_minutes)
        since = moment - _EPOCH  # exact: the text depends on the whole second and the offset
        key = (since.days, since.seconds, offset_minutes)
        if key != self._created[0]:
            self._created = (key, created_stamp(moment, offset_minutes))
        return self._created[1]

    def _result_head(self, created: str, host: str) -> str:
        """Return the OK envelope's opening, kept while ``created`` and ``host`` stay the same."""
        if self._head[0] != created or self._head[1] != host:
            self._head = (created, host, _render.result_head(created, host))
        return self._head[2]

    def _over_limit(self, key: str, now: float) -> SimResponse | None:
        """Apply the sliding-window limit; admitted calls are counted, refused ones are not."""
        limit = self.config.rate_limit_per_minute
        if limit is None:
            return None
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - self.config.rate_window:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        retry_after = max(1, math.ceil(window[0] + self.config.rate_window - now))
        mode = self.config.rate_limit_mode
        headers: tuple[tuple[str, str], ...]
        if mode is RateLimitMode.HTML403:
            status, headers, body = 403, _HTML, firewall_page(403)
        elif mode is RateLimitMode.HTML503:
            status, headers, body = 503, _HTML, html_error_page(503)
        else:
            status, headers, body = 429, _HTML, html_error_page(429)
            if mode is RateLimitMode.HTTP429:
                headers = (*headers, ("Retry-After", str(retry_after)))
        return SimResponse(
            status=status, headers=headers, chunks=iter((body,)), content_length=len(body)
        )

    def _serve(
        self, method: str, path: str, service: str | None, params: Mapping[str, str],
        key_ok: bool, created: str,
    ) -> tuple[int, tuple[tuple[str, str], ...], Iterator[bytes], bool]:  # fmt: skip
        """Route, authenticate, validate and run a service: ``(status, headers, chunks, ran)``."""
        host = self.config.host
        if path not in API_PATHS:
            return 404, _HTML, iter((html_error_page(404),)), False
        if method != "GET":
            return 405, _HTML, iter((html_error_page(405),)), False
        try:
            if not key_ok:
                raise InvalidRequest(3, "Login failed")
            if not service:
                raise InvalidRequest(5, "Missing parameter: service")
            spec = SERVICES.get(service)
            if spec is None:
                raise InvalidRequest(UNKNOWN_SERVICE_CODE, "Service unknown")
            head = self._result_head(created, host)
            if params.get("describe", "").lower() in ("true", "1"):
                return 200, _XML, chunked(describe_document(spec, head)), False
            for p in spec.params:
                value = params.get(p.name, "")
                if p.required and not value:
                    raise InvalidRequest(5, f"Missing parameter: {p.name}")
                if p.type == "number" and value and not value.isdigit():
                    raise InvalidRequest(4, f"Invalid value for parameter: {p.name}")
            return (*run_service(self, service, params, head, created, self._cache), True)
        except InvalidRequest as exc:
            body = fail_document(created=created, host=host, code=exc.code, message=exc.message)
            return 200, _XML, iter((body.encode(),)), False

    def retry_patches(self, device_id: int, patch_ids: list[int], created: str) -> Iterator[bytes]:
        """Apply ``patch_retry``: failed → pending; unknown ids fail the whole call."""
        current = {p.patchid: p.status for p in self.patches(device_id)}
        unknown = [p for p in patch_ids if p not in current]
        if unknown:
            message = "Invalid patch ids for device: " + ",".join(map(str, unknown))
            status = "FAIL"
        else:
            retrying = [p for p in patch_ids if current[p] == 16]
            applied = [p for p in patch_ids if current[p] != 16]
            state = self._patch_state.setdefault(device_id, {})
            state.update(dict.fromkeys(retrying, 2))
            message = "Retrying patches:" + "".join(
                f" {p}" for p in [",".join(map(str, retrying))] if p
            )
            message += " Patches already applied:" + (
                " " + ",".join(map(str, applied)) if applied else ""
            )
            status = "OK"
        head = open_result(created=created, host=self.config.host, status=status)
        return iter(((head + f"<msg>{escape(message)}</msg></result>\n").encode(),))
