"""Dispatch a validated request to the service that answers it.

Looks up the ids a service names (an unknown id is errorcode 4, as the vendor
documents for invalid values) and picks the renderer and encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from nsight_async.testing import _render as _render_mod
from nsight_async.testing._bodycache import BodyCache
from nsight_async.testing._fleet import DeviceKind
from nsight_async.testing._xml import chunked

if TYPE_CHECKING:
    from nsight_async.testing._app import Simulator

Headers = tuple[tuple[str, str], ...]
XML_UTF8: Headers = (("Content-Type", "text/xml; charset=utf-8"),)
XML_LATIN1: Headers = (("Content-Type", "text/xml; charset=ISO-8859-1"),)
DEVICE_TYPES = ("server", "workstation", "mobile_device")


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
    cache.follow(fleet, fleet.now)  # what the listings are rendered from
    return 200, XML_UTF8, cache.serve(key, render, head)
