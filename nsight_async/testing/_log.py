"""The simulator's request log: one entry per request, never holding the API key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from nsight_async.testing._faults import Fault


@attrs.frozen(kw_only=True)
class RequestLogEntry:
    """One request as the simulator saw it.

    Attributes:
        n: Request number, from 0.
        time: Arrival time on the simulator's injected clock.
        method: HTTP method.
        path: URL path.
        service: The ``service`` parameter (None if absent).
        params: Query parameters *without* ``apikey``.
        key_ok: Whether the key was valid.
        status: HTTP status sent, or None when no response was sent (reset, refuse, timeout).
        fault: The injected fault, or None.
        rate_limited: Whether the call was answered as over the rate limit.
        processed: Whether the service itself ran (for ``patch_retry``: state may have changed).
    """

    n: int
    time: float
    method: str
    path: str
    service: str | None
    params: Mapping[str, str]
    key_ok: bool
    status: int | None
    fault: Fault | None
    rate_limited: bool = False
    processed: bool = False


@attrs.define
class RequestLog:
    """The ordered list of requests a simulator received, with query helpers."""

    entries: list[RequestLogEntry] = attrs.field(factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[RequestLogEntry]:
        return iter(list(self.entries))

    def append(self, entry: RequestLogEntry) -> None:
        """Record one request."""
        self.entries.append(entry)

    def clear(self) -> None:
        """Forget every entry."""
        self.entries.clear()

    def calls(self, service: str | None = None) -> list[RequestLogEntry]:
        """Return the entries, optionally only those of one service."""
        return [e for e in self.entries if service is None or e.service == service]

    def count(self, service: str | None = None) -> int:
        """Return how many requests (of one service) arrived, refused connections excluded."""
        return sum(1 for e in self.calls(service) if e.fault is not Fault.REFUSE)

    def patch_retry_sends(self) -> list[RequestLogEntry]:
        """Return the ``patch_retry`` requests that reached the server (refused ones excluded)."""
        return [e for e in self.calls("patch_retry") if e.fault is not Fault.REFUSE]

    def patch_retry_applied(self) -> list[tuple[int, int]]:
        """Return ``(deviceid, patchid)`` for every patch id a processed ``patch_retry`` named."""
        applied = []
        for entry in self.patch_retry_sends():
            if entry.processed:
                device = int(entry.params["deviceid"])
                ids = entry.params["patchids"].split(",")
                applied += [(device, int(p)) for p in ids if p.strip().isdigit()]
        return applied
