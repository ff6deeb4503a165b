"""``Fleet``: walk clients → sites → devices and run per-device work, pipelined.

Enumeration spends the fewest calls the API allows: one ``list_clients`` and
one ``list_devices_at_client`` per client and device type. Per-device work
starts as soon as the first device streams in, runs in a fixed pool of
workers fed through bounded queues (no task per device, no list of results),
and each device yields exactly one :class:`Outcome`: a value, an error, or
skipped with its reason. A client whose enumeration failed yields a
:class:`ClientFailure`. The crawler never builds a URL or touches XML.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Iterable
from typing import Any, Generic, Literal, TypeVar

import attrs

from ._client import NsightClient
from ._errors import NsightError
from ._models import Client, DeviceAtClient
from ._pool import Passthrough, pool_map, single_error
from ._vocab import DeviceKind

R = TypeVar("R")

#: Why a device is not worked on: returns a reason, or ``None`` to do the work.
Skip = Callable[[DeviceAtClient], str | None]
Work = Callable[[DeviceAtClient], Awaitable[R]]


@attrs.frozen(kw_only=True)
class Outcome(Generic[R]):
    """What happened to one device: ``ok`` (with ``value``), ``error`` or ``skipped``."""

    device: DeviceAtClient
    status: Literal["ok", "error", "skipped"]
    value: R | None = None
    error: NsightError | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class ClientFailure:
    """A client whose devices could not be listed (its devices are unknown)."""

    client: Client
    device_type: DeviceKind
    error: NsightError


@attrs.frozen(kw_only=True)
class Progress:
    """A snapshot for progress bars: counts so far and calls still needed (estimated)."""

    clients_total: int
    clients_listed: int
    devices_known: int
    devices_done: int
    devices_failed: int
    devices_skipped: int
    calls_spent: int
    calls_needed: int


@attrs.frozen(kw_only=True)
class Filters:
    """Narrow the walk before calls are spent: ids or names (``fnmatch`` patterns)."""

    clients: Collection[int | str] = ()
    sites: Collection[int | str] = ()
    devices: Collection[int | str] = ()
    device_types: Collection[DeviceKind] = (DeviceKind.SERVER, DeviceKind.WORKSTATION)

    def client_ok(self, client: Client) -> bool:
        """Whether the client passes the client filter."""
        return _matches(self.clients, client.client_id, client.name)

    def device_ok(self, device: DeviceAtClient) -> bool:
        """Whether the device passes the site and device filters."""
        return _matches(self.sites, device.site_id, device.site_name) and _matches(
            self.devices, device.device_id, device.name
        )


def _matches(wanted: Collection[int | str], ident: int, name: str | None) -> bool:
    if not wanted:
        return True
    for item in wanted:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            if int(item) == ident:
                return True
        elif name is not None and fnmatch.fnmatchcase(name.lower(), str(item).lower()):
            return True
    return False


_END: Any = object()


@attrs.frozen
class _Listed:
    """Marks the end of a client's devices in the hand-on queue."""

    client: Client


class Fleet:
    """Walks one client's fleet with the calls of an :class:`NsightClient`.

    Args:
        client: the client whose limits govern every call.
        filters: which clients, sites, devices and device types to walk.
        workers: devices worked on at once (default: twice the client's
            ``max_at_once``). Calls in flight stay within ``max_at_once``; the
            other workers wait with their call ready, so it goes out the moment
            an answer is in, while that answer is still being read. Listing calls
            queue for the same slots; none is held while waiting.
        list_ahead: clients listed at once at most (default 4), each client's
            device types together, so listing keeps ahead of the workers; a new
            listing starts only while fewer than ``2 × workers`` listed devices
            wait for a worker.
        on_progress: called with a :class:`Progress` after every change.
        cached_devices: devices already listed for a client (a resumed run's
            store), returned instead of spending calls; ``None`` when unknown.
    """

    def __init__(
        self,
        client: NsightClient,
        *,
        filters: Filters | None = None,
        workers: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cached_devices: Callable[[int, DeviceKind], Iterable[DeviceAtClient] | None] | None = None,
        on_devices_listed: Callable[[int, DeviceKind, list[DeviceAtClient]], None] | None = None,
        list_ahead: int = 4,
    ) -> None:
        self.client = client
        self.filters = filters or Filters()
        self.workers = workers or 2 * client.limits.max_at_once
        self.list_ahead = list_ahead
        self._on_progress = on_progress
        self._cached = cached_devices
        self._on_listed = on_devices_listed
        self._calls_at_start = client.calls_started
        self._clients_total = 0
        self._clients_listed = 0
        self._known = 0
        self._done = 0
        self._failed = 0
        self._skipped = 0
        self._work_pending = 0  # devices known that still need a call
        self._clients_pending_calls = 0
        self._unlisted_estimate = 0  # devices of clients not listed yet, from list_clients counts

    # -- enumeration -------------------------------------------------------

    async def clients(self) -> list[Client]:
        """Return the clients that pass the filter (one ``list_clients`` call)."""
        clients = [c async for c in self.client.list_clients() if self.filters.client_ok(c)]
        self._clients_total = len(clients)
        self._unlisted_estimate = sum(self._expected(c) for c in clients)
        self._clients_pending_calls = len(clients) * len(tuple(self.filters.device_types))
        self._emit()
        return clients

    async def devices(self) -> AsyncGenerator[DeviceAtClient | ClientFailure]:
        """Yield every device that passes the filters as it streams in.

        Up to ``list_ahead`` clients are listed at once, so listing (the head of
        the pipeline) keeps ahead of the per-device calls, and a new listing
        starts only while fewer than ``2 × workers`` devices wait to be taken,
        so it never runs far ahead: memory holds that many devices and the
        listings in flight. Many small clients in a row thus get listed several
        at once. A device is handed on as soon as its listing's chunk is read,
        so work starts before a big client's listing ends. A listing never
        waits for the consumer (paused, it would hold its connection and
        governor slot while the workers wait for slots: a deadlock with
        ``max_at_once <= 2``).
        """
        clients = await self.clients()
        found: asyncio.Queue[Any] = asyncio.Queue()  # unbounded: a listing never waits on it
        hand_on = found.put_nowait
        room = asyncio.Event()
        ahead = asyncio.Semaphore(self.list_ahead)
        waiting_at_most = 2 * self.workers

        async def list_client(client: Client) -> None:
            try:
                async with asyncio.TaskGroup() as group:  # the device types at once
                    for kind in self.filters.device_types:
                        group.create_task(self._devices_of(client, kind, hand_on))
            finally:
                ahead.release()
            hand_on(_Listed(client))

        async def lister() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    for client in clients:  # one task per client, started as slots free up
                        while found.qsize() >= waiting_at_most:
                            room.clear()
                            await room.wait()
                        await ahead.acquire()
                        group.create_task(list_client(client))
            finally:
                hand_on(_END)  # after an error too: wakes the consumer, which re-raises

        task = asyncio.create_task(lister())
        try:
            while (item := await found.get()) is not _END:
                if found.qsize() < waiting_at_most:
                    room.set()
                if isinstance(item, _Listed):
                    self._clients_listed += 1
                    self._unlisted_estimate -= self._expected(item.client)
                    self._emit()
                    continue
                yield item
            await single_error(task)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _devices_of(
        self, client: Client, kind: DeviceKind, hand_on: Callable[[Any], None]
    ) -> None:
        """List one client's devices of one type, handing each on as it arrives.

        A listing that fails hands on a `ClientFailure` after the devices that
        arrived before the failure (each is then accounted for as usual; the
        client's other devices are unknown, as the failure says).
        """
        cached = self._cached(client.client_id, kind) if self._cached else None
        self._clients_pending_calls -= 1
        device_ok = self.filters.device_ok
        if cached is not None:
            for device in cached:
                if device_ok(device):
                    hand_on(device)
            return
        listed: list[DeviceAtClient] = []  # what the store caches for a resumed run
        try:
            async for device in self.client.list_devices_at_client(client.client_id, kind):
                listed.append(device)
                if device_ok(device):
                    hand_on(device)
        except NsightError as exc:
            hand_on(ClientFailure(client=client, device_type=kind, error=exc))
            return
        if self._on_listed is not None:
            self._on_listed(client.client_id, kind, listed)

    # -- per-device work ---------------------------------------------------

    async def map(
        self,
        work: Work[R],
        *,
        skip: Skip | None = None,
        already_done: Callable[[int], bool] | None = None,
    ) -> AsyncGenerator[Outcome[R] | ClientFailure]:
        """Run ``work`` on every device, yielding one outcome per device as it completes.

        ``skip`` names devices that need no call (reported as skipped, with the
        reason); ``already_done`` drops devices a resumed run recorded before.
        Closing the iterator early cancels the workers: devices in flight are
        then not reported, and a resumed run does them again.
        """

        async def source() -> AsyncIterator[Any]:
            async for item in self.devices():
                if isinstance(item, ClientFailure):
                    yield Passthrough(item)
                    continue
                if already_done is not None and already_done(item.device_id):
                    continue
                self._known += 1
                reason = skip(item) if skip is not None else None
                if reason is not None:
                    self._skipped += 1
                    self._emit()
                    yield Passthrough(Outcome(device=item, status="skipped", reason=reason))
                    continue
                self._work_pending += 1
                self._emit()
                yield item

        async def work_on(device: DeviceAtClient) -> Outcome[R]:
            outcome: Outcome[R]
            try:
                value = await work(device)
            except NsightError as exc:
                self._failed += 1
                outcome = Outcome(device=device, status="error", error=exc)
            else:
                self._done += 1
                outcome = Outcome(device=device, status="ok", value=value)
            finally:
                self._work_pending -= 1
            self._emit()
            return outcome

        async with contextlib.aclosing(pool_map(source(), work_on, workers=self.workers)) as it:
            async for result in it:
                yield result

    # -- progress ------------------------------------------------------------

    def _expected(self, client: Client) -> int:
        counts = {
            DeviceKind.SERVER: client.server_count,
            DeviceKind.WORKSTATION: client.workstation_count,
            DeviceKind.MOBILE_DEVICE: client.mobile_device_count,
        }
        return sum(counts.get(kind) or 0 for kind in self.filters.device_types)

    def progress(self) -> Progress:
        """Return the current :class:`Progress`."""
        return Progress(
            clients_total=self._clients_total,
            clients_listed=self._clients_listed,
            devices_known=self._known,
            devices_done=self._done,
            devices_failed=self._failed,
            devices_skipped=self._skipped,
            calls_spent=self.client.calls_started - self._calls_at_start,
            calls_needed=self._calls_needed(),
        )

    def _calls_needed(self) -> int:
        # Devices of clients not listed yet need work in the proportion seen so far.
        seen = self._known
        share = (seen - self._skipped) / seen if seen >= 20 else 1.0  # too few seen: assume all
        unlisted = max(0, self._unlisted_estimate) * share
        return max(0, self._clients_pending_calls) + max(0, self._work_pending) + round(unlisted)

    def _emit(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.progress())
