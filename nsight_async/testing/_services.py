"""Dispatch a validated request to the service that answers it.

Looks up the ids a service names (an unknown id is errorcode 4, as the vendor
documents for invalid values) and picks the renderer and encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from nsight_async.testing import _render as _render_mod
from nsight_async.testing._fleet import DeviceKind
from nsight_async.testing._xml import chunked

if TYPE_CHECKING:
    from nsight_async.testing._app import Simulator

Headers = tuple[tuple[str, str], ...]
XML_UTF8: Headers = (("Content-Type", "text/xml; charset=utf-8"),)
XML_LATIN1: Headers = (("Content-Type", "text/xml; charset=ISO-8859-1"),)
DEVICE_TYPES = ("server", "workstation", "mobile_device")
#: What `BodyCache` keeps: this many bytes of bodies in all, none longer than the second.
CACHE_BYTES = 64 << 20
CACHE_BODY_MAX = 8 << 20


class InvalidRequest(Exception):
    """A request the API answers with a FAIL envelope (errorcode and message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _id(params: Mapping[str, str], name: str, exists: bool) -> int:
    if not exists:
        raise InvalidRequest(4, f"Invalid value for parameter: {name}")
    return int(params[name])


def _render(
    sim: Simulator, service: str, params: Mapping[str, str]
) -> Callable[[str], Iterator[str]]:
    """Validate ids and return the read service's renderer, called with the head to prepend."""
    fleet = sim.fleet
    if service == "list_clients":
        return lambda head: _render_mod.list_clients(fleet, head)
    if service == "list_sites":
        client_id = _id(params, "clientid", fleet.client(int(params["clientid"])) is not None)
        return lambda head: _render_mod.list_sites(fleet, head, client_id)
    if service in ("list_servers", "list_workstations"):
        site_id = _id(params, "siteid", fleet.site(int(params["siteid"])) is not None)
        kind = DeviceKind.SERVER if service == "list_servers" else DeviceKind.WORKSTATION
        return lambda head: _render_mod.list_devices(fleet, head, site_id, kind)
    if service == "list_devices_at_client":
        client_id = _id(params, "clientid", fleet.client(int(params["clientid"])) is not None)
        devicetype = params["devicetype"]
        if devicetype not in DEVICE_TYPES:
            raise InvalidRequest(4, "Invalid value for parameter: devicetype")
        tree_kind = None if devicetype == "mobile_device" else DeviceKind(devicetype)
        return lambda head: _render_mod.list_devices_at_client(fleet, head, client_id, tree_kind)
    device_id = _id(params, "deviceid", fleet.has_device(int(params["deviceid"])))
    return lambda head: _render_mod.list_mob_sessions(head, fleet.session_rows(device_id))


class BodyCache:
    """Rendered bodies of the reads that do not change (listings), without their head.

    Only the head changes between calls (its ``created`` time), so a body is
    rendered once, as it is first streamed, and later served from its chunks:
    a fleet's device listings, rendered anew for every audit, cost the
    simulator as much CPU as thousands of session answers, on the cores its
    clients use. A body is kept only when it was streamed to its end (a
    client that went away leaves nothing half-kept). Bounded: a body longer
    than ``body_max`` bytes is never kept, and past ``budget`` bytes in all
    the cache starts over.
    """

    def __init__(self, budget: int = CACHE_BYTES, body_max: int = CACHE_BODY_MAX) -> None:
        self.budget = budget
        self.body_max = body_max
        self._bodies: dict[tuple[str, ...], tuple[bytes, ...]] = {}
        self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes of bodies kept."""
        return self._bytes

    def serve(
        self, key: tuple[str, ...], render: Callable[[str], Iterator[str]], head: str
    ) -> Iterator[bytes]:
        """The chunks of ``head`` + the body ``render`` gives (itself called with a head)."""
        body = self._bodies.get(key)
        if body is None:
            return self._keeping(key, chunked(render("")), head)
        return iter((head.encode() + body[0], *body[1:]))

    def _keeping(self, key: tuple[str, ...], chunks: Iterator[bytes], head: str) -> Iterator[bytes]:
        kept: list[bytes] | None = []
        size = 0
        first = True
        for chunk in chunks:
            if kept is not None:
                size += len(chunk)
                kept.append(chunk)
                if size > self.body_max:
                    kept = None
            yield head.encode() + chunk if first else chunk
            first = False
        if first:  # no chunk at all: the head alone
            kept = [b""]
            yield head.encode()
        if kept is None or key in self._bodies:
            return
        if self._bytes + size > self.budget:
            self._bodies.clear()
            self._bytes = 0
        self._bodies[key] = tuple(kept)
        self._bytes += size


def run_service(
    sim: Simulator,
    service: str,
    params: Mapping[str, str],
    head: str,
    created: str,
    cache: BodyCache,
) -> tuple[int, Headers, Iterator[bytes]]:
    """Run one service on validated parameters; return ``(status, headers, chunks)``."""
    fleet = sim.fleet
    if service == "patch_list_all":
        device_id = _id(params, "deviceid", fleet.has_device(int(params["deviceid"])))
        pieces = _render_mod.patch_list_all(sim.patches(device_id))
        return 200, XML_LATIN1, chunked(pieces, encoding="latin-1")
    if service == "patch_retry":
        device_id = _id(params, "deviceid", fleet.has_device(int(params["deviceid"])))
        raw = [p.strip() for p in params["patchids"].split(",")]
        if not raw or not all(p.isdigit() for p in raw):
            raise InvalidRequest(4, "Invalid value for parameter: patchids")
        return 200, XML_UTF8, sim.retry_patches(device_id, [int(p) for p in raw], created)
    render = _render(sim, service, params)
    if service == "list_mob_sessions":
        return 200, XML_UTF8, chunked(render(head))
    key = (service, *(params.get(n, "") for n in ("clientid", "siteid", "devicetype")))
    return 200, XML_UTF8, cache.serve(key, render, head)
