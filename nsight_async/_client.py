"""``NsightClient``: one typed method per N-sight service, governed and retried.

Each list method is an async iterator that yields records while the body is
still streaming in. The retried unit is the whole "send, stream, parse" call;
a stream that already yielded records is resumed by fetching the list again
and skipping what was yielded, after checking that the last record yielded is
where the new list says it is — otherwise it raises, so no record is ever
yielded twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, Self

import httpx

from ._arguments import check_id, check_param, check_patch_ids, check_service_name
from ._backends import Backend, HttpxBackend
from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    Limits,
    RetryPolicy,
    Server,
    check_timeout,
    env_settings,
    resolve_server,
)
from ._errors import (
    ConfigurationError,
    InvalidArgumentError,
    NsightError,
    ResumeError,
    WriteOutcomeUnknownError,
)
from ._h1 import H1Backend
from ._limiter import Clock, Governor, Sleep
from ._models import (
    Client,
    Device,
    DeviceAtClient,
    MobSession,
    Patch,
    PatchRetryResult,
    ServiceDescription,
    Site,
)
from ._policy import decide, slows_everyone
from ._redact import Secret, install_log_filter, redact, scrub_exception
from ._shapes import parser_for
from ._stream import last_records, past_skipped
from ._transport import USER_AGENT, Transport
from ._turns import Turns, pieces, waits_for_turn
from ._vocab import DeviceKind

logger = logging.getLogger("nsight_async")

_UNSET: Any = object()


class NsightClient:
    """An async client for the N-sight RMM Data Extraction API.

    Use it as an async context manager::

        async with NsightClient("uk", api_key) as client:
            async for session in client.list_mob_sessions(device_id):
                ...

    Its connections belong to the event loop its calls are made in. It goes
    on in another loop (a later ``asyncio.run()``) once nothing of the old one
    is under way: closed there (``async with``, :meth:`aclose`), or left open
    in a loop that has ended (those connections are dropped; asyncio warns
    they were left open). Used from a loop running in another thread, or
    with connections open in a loop that has not ended, it raises
    :class:`ConfigurationError`. An ``http_client`` you pass keeps its own
    connections by its own rules (httpx's belong to the loop that opened them).

    Args:
        server: a region name (``"uk"``, ``"us"``, ``"americas"``, ``"europe"``, …)
            or an ``https://`` URL (plain ``http://`` only for loopback hosts);
            defaults to ``$NSIGHT_SERVER``.
        api_key: the partner's API key; defaults to ``$NSIGHT_API_KEY``.
        max_at_once: requests in flight at once (default 10).
        max_per_minute: calls per minute, spaced evenly; default 60 for real
            servers and no limit for loopback ones; ``None`` for no limit.
        retry: the :class:`RetryPolicy`.
        timeout: seconds to wait for the server on each read.
        http_client: an ``httpx.AsyncClient`` to send with (shared pools, custom
            transports, mocks, the simulator's in-process transport); the caller
            keeps ownership of it. By default the client owns a pool of kept-alive
            HTTP/1.1 connections (:mod:`._h1`), several times cheaper per request.
        write_client: an ``httpx.AsyncClient`` for writes (default: the same as
            reads). A write is never sent twice: the default pool resends
            nothing, and httpx's own transport never resends.
        clock, sleep: injectable time, for tests that never really wait.
        seed: seeds the backoff jitter (for reproducible tests).
    """

    def __init__(
        self,
        server: str | None = None,
        api_key: str | None = None,
        *,
        max_at_once: int = _UNSET,
        max_per_minute: float | None = _UNSET,
        retry: RetryPolicy | None = None,
        timeout: float = _UNSET,
        http_client: httpx.AsyncClient | None = None,
        write_client: httpx.AsyncClient | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        env = env_settings()
        server = server if server is not None else env.get("server")  # type: ignore[assignment]
        key = api_key if api_key is not None else env.get("api_key")
        if not server:
            raise ConfigurationError(
                "no server: pass server= (a region or URL) or set NSIGHT_SERVER"
            )
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError("no API key: pass api_key= or set NSIGHT_API_KEY")
        self.server: Server = resolve_server(server)
        self._key = Secret(key.strip())
        if max_at_once is _UNSET:
            max_at_once = env.get("max_at_once", Limits().max_at_once)  # type: ignore[assignment]
        if max_per_minute is _UNSET:
            default_rate = None if self.server.loopback else Limits().max_per_minute
            max_per_minute = env.get("max_per_minute", default_rate)  # type: ignore[assignment]
        if timeout is _UNSET:
            timeout = env.get("timeout", DEFAULT_TIMEOUT)  # type: ignore[assignment]
        self.limits = Limits(max_at_once=max_at_once, max_per_minute=max_per_minute)
        timeout = check_timeout(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._turns = Turns()
        reads: Backend
        if http_client is None:
            reads = H1Backend(
                max_connections=self.limits.max_at_once,
                timeout=timeout,
                connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                user_agent=USER_AGENT,
            )
        else:
            reads = HttpxBackend(http_client, user_agent=USER_AGENT, owned=False)
        writes: Backend = reads
        if write_client is not None:
            writes = HttpxBackend(write_client, user_agent=USER_AGENT, owned=False)
        if isinstance(writes, HttpxBackend):
            writes.check_write_safe()
        self.governor = Governor(self.limits, clock=clock, sleep=sleep)
        self._transport = Transport(
            self.server, self._key, self.governor, reads=reads, writes=writes
        )
        install_log_filter()

    def __repr__(self) -> str:
        return (
            f"NsightClient(server={self.server.base_url!r}, api_key='***', "
            f"max_at_once={self.limits.max_at_once}, max_per_minute={self.limits.max_per_minute})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (an ``http_client`` passed in stays open)."""
        await self._transport.aclose()

    @property
    def calls_started(self) -> int:
        """How many HTTP requests this client has sent (retries included)."""
        return self.governor.calls_started

    # -- the services ------------------------------------------------------

    def list_clients(self) -> AsyncGenerator[Client]:
        """Yield every client of the partner."""
        return self._records("list_clients", {})

    def list_sites(self, client_id: int) -> AsyncGenerator[Site]:
        """Yield the sites of a client."""
        return self._records("list_sites", {"clientid": check_id("client_id", client_id)})

    def list_servers(self, site_id: int) -> AsyncGenerator[Device]:
        """Yield the servers at a site."""
        return self._records("list_servers", {"siteid": check_id("site_id", site_id)})

    def list_workstations(self, site_id: int) -> AsyncGenerator[Device]:
        """Yield the workstations at a site."""
        return self._records("list_workstations", {"siteid": check_id("site_id", site_id)})

    def list_devices_at_client(
        self, client_id: int, device_type: DeviceKind | str
    ) -> AsyncGenerator[DeviceAtClient]:
        """Yield every device of one type at a client, with its site: one call per type."""
        try:
            kind = DeviceKind(device_type)
        except ValueError:
            choices = ", ".join(k.value for k in DeviceKind)
            raise InvalidArgumentError(
                f"unknown device_type {device_type!r}: use one of {choices}"
            ) from None
        params = {"clientid": check_id("client_id", client_id), "devicetype": kind.value}
        return self._records("list_devices_at_client", params)

    def patch_list_all(self, device_id: int) -> AsyncGenerator[Patch]:
        """Yield every patch known on a device."""
        return self._records("patch_list_all", {"deviceid": check_id("device_id", device_id)})

    def list_mob_sessions(self, device_id: int) -> AsyncGenerator[MobSession]:
        """Yield a device's Backup & Recovery sessions (its whole history)."""
        return self._records("list_mob_sessions", {"deviceid": check_id("device_id", device_id)})

    async def patch_retry(self, device_id: int, patch_ids: Iterable[int]) -> PatchRetryResult:
        """Retry patches on a device: a write, sent at most once.

        Raises:
            WriteOutcomeUnknownError: the request may have reached the server but
                no answer came back; check ``patch_list_all`` before resending.
            ActionFailedError: the server refused the action.
        """
        ids = check_patch_ids(patch_ids)
        params = {"deviceid": check_id("device_id", device_id), "patchids": ",".join(map(str, ids))}
        results = [r async for r in self._run("patch_retry", params, write=True)]
        result: PatchRetryResult = results[0]
        return result

    async def describe(self, service: str) -> ServiceDescription:
        """Return a service's ``describe=true`` description."""
        check_service_name(service)
        results = [r async for r in self._run(service, {"describe": "true"}, describe=True)]
        description: ServiceDescription = results[0]
        return description

    async def call(self, service: str, **params: object) -> dict[str, Any]:
        """Call any service and return its response as a dict (xmltodict-style).

        Only for reads: a write through ``call`` would lose the write safeguards,
        so ``patch_retry`` must go through :meth:`patch_retry`.
        """
        check_service_name(service)
        if service == "patch_retry":
            raise InvalidArgumentError("use patch_retry() for writes, not call()")
        query = {k: check_param(k, v) for k, v in params.items()}
        results = [r async for r in self._run(service, query, generic=True)]
        document: dict[str, Any] = results[0]
        return document

    # -- machinery ---------------------------------------------------------

    def _records(self, service: str, params: Mapping[str, str]) -> AsyncGenerator[Any]:
        return self._run(service, params)

    async def _run(
        self,
        service: str,
        params: Mapping[str, str],
        *,
        write: bool = False,
        describe: bool = False,
        generic: bool = False,
    ) -> AsyncGenerator[Any]:
        yielded = 0
        last: object = None
        attempt = 0
        started = self._clock()
        while True:
            attempt += 1
            parser = parser_for(service, params, describe=describe, generic=generic)
            skip, seen = yielded, 0  # a resumed attempt skips what the consumer already has
            # One chunk of look-ahead: a chunk's records go out once the next chunk has
            # arrived, so the last ones go out after the response is closed and its
            # governor slot is free. A consumer that makes calls inside the loop (nested
            # listings) then never waits on a slot its own stream holds, for any body
            # that fits in one chunk; longer bodies still stream. A read body's pieces
            # are parsed in turns across the client's streams when `waits_for_turn`
            # says so; a write's answer always at once: the sooner its outcome is
            # journaled, the narrower the window in which an interruption leaves it
            # unknown.
            held: list[Any] = []
            received = 0
            try:
                async with self._transport.open(service, params, write=write) as response:
                    async for chunk in response.chunks():
                        for record in held:
                            yield record
                            yielded, last = yielded + 1, record
                        held = []
                        for piece in pieces(chunk, received):
                            received += len(piece)
                            if write or not waits_for_turn(received, self.governor.waiting):
                                records = parser.feed(piece)
                            else:
                                records = await self._turns.parse(parser, piece)
                            fresh, seen = past_skipped(service, records, seen, skip, last)
                            held += fresh
                            if parser.failed:
                                break  # its error surfaces at the next chunk, as before
                    if not parser.failed:
                        more, seen = past_skipped(service, last_records(parser), seen, skip, last)
                        held += more
                for record in held:
                    yield record
                    yielded, last = yielded + 1, record
                if parser.failed:  # the records before an error at the end went out first
                    parser.close()  # raises it
                if seen < skip:
                    raise ResumeError(
                        f"{service}: a retried call returned {seen} records, fewer than the "
                        f"{yielded} already yielded; the list changed, so it cannot be resumed",
                        service=service,
                        records_yielded=yielded,
                    )
                self.governor.succeeded()
                return
            except NsightError as exc:
                exc.records_yielded = yielded
                decision = decide(
                    exc,
                    attempt=attempt,
                    elapsed=self._clock() - started,
                    policy=self.retry,
                    write=write,
                    rng=self._rng,
                )
                if slows_everyone(exc):
                    pause = exc.retry_after
                    if pause is not None:
                        pause = min(pause, self.retry.max_retry_after)
                    self.governor.over_limit(pause)
                if not decision.retry:
                    final = self._final_error(exc, service, params, decision.outcome_unknown)
                    if final is exc:
                        raise
                    raise final from exc
                logger.info(
                    "%s: attempt %d failed (%s); retrying in %.2f s: %s",
                    service,
                    attempt,
                    type(exc).__name__,
                    decision.wait,
                    self._transport.display_url(service, params),
                )
                await self._sleep(decision.wait)

    def _final_error(
        self, exc: NsightError, service: str, params: Mapping[str, str], unknown: bool
    ) -> NsightError:
        exc.redact(self._key.reveal())
        scrub_exception(exc)
        if not unknown:
            return exc
        device = params.get("deviceid")
        error = WriteOutcomeUnknownError(
            redact(
                f"{service}: the outcome is unknown — the request may have reached the server "
                f"but no answer came back ({exc}). It was not resent; check the device "
                f"(patch_list_all) before retrying."
            ),
            service=service,
            device_id=int(device) if device and device.isdigit() else None,
        )
        return error
