"""One :class:`~nsight_async._parser.Shape` per response shape, chosen by service.

The shapes (see ``nsight-api.md``): ``<result><items>`` lists, the nested
client → site → device tree of ``list_devices_at_client``, ``<session>``
directly under ``<result>``, the bare ISO-8859-1 ``<patches>`` root, the
``<msg>`` of actions, ``describe=true`` documents, and a generic dict view
for every other service.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import xmltodict

from ._builders import builder
from ._errors import ParseError
from ._models import (
    Client,
    Device,
    DeviceAtClient,
    MobSession,
    Patch,
    PatchRetryResult,
    ServiceDescription,
    ServiceParameter,
    Site,
)
from ._parser import Fields, Shape, StreamParser
from ._specs import (
    CLIENT,
    DEVICE_AT_CLIENT,
    MOB_SESSION,
    PATCH,
    SERVER,
    SITE,
    WORKSTATION,
    no_context,
)
from ._tree import as_list
from ._vocab import DeviceKind

_ITEMS = ("result", "items")


def _int_param(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key)
    return int(value) if value is not None and value.isdigit() else None


#: The services with a typed shape; every other service gets the generic dict view.
TYPED_SERVICES = frozenset(
    {
        "list_clients",
        "list_sites",
        "list_servers",
        "list_workstations",
        "list_devices_at_client",
        "list_mob_sessions",
        "patch_list_all",
        "patch_retry",
    }
)


def parser_for(
    service: str,
    params: Mapping[str, str] | None = None,
    *,
    describe: bool = False,
    generic: bool = False,
) -> StreamParser[Any]:
    """Return a new parser for one response of ``service`` called with ``params``.

    ``describe=True`` parses a ``describe=true`` document into a
    :class:`ServiceDescription`; a service without a typed shape gets the
    generic dict view (one ``dict`` at close, xmltodict-style), as does any
    service when ``generic=True``.
    """
    if describe:
        shape = DESCRIBE
    elif service in TYPED_SERVICES and not generic:
        shape = list_shape(service, params or {})
    else:
        shape = generic_shape()
    return StreamParser(shape, service=service)


#: Services whose shape does not depend on the request's parameters.
_STATIC = frozenset(
    {"list_clients", "list_devices_at_client", "list_mob_sessions", "patch_list_all"}
)


def list_shape(service: str, params: Mapping[str, str]) -> Shape[Any]:
    """Return the shape for a crawl-path ``service`` called with ``params``."""
    if service in _STATIC:
        return _static_shape(service)
    return _make_shape(service, params)


@functools.cache
def _static_shape(service: str) -> Shape[Any]:
    return _make_shape(service, {})


def _make_shape(service: str, params: Mapping[str, str]) -> Shape[Any]:
    if service == "list_clients":
        return Shape(
            roots=frozenset({"result"}),
            records={(*_ITEMS, "client"): builder(Client, CLIENT, "client_id", no_context)},
        )
    if service == "list_sites":
        cid = _int_param(params, "clientid")
        return Shape(
            roots=frozenset({"result"}),
            records={
                (*_ITEMS, "site"): builder(Site, SITE, "site_id", lambda n, a: {"client_id": cid})
            },
        )
    if service in {"list_servers", "list_workstations"}:
        sid = _int_param(params, "siteid")
        kind = DeviceKind.SERVER if service == "list_servers" else DeviceKind.WORKSTATION
        spec = SERVER if kind is DeviceKind.SERVER else WORKSTATION
        device_build = builder(
            Device, spec, "device_id", lambda n, a: {"kind": kind, "site_id": sid}
        )
        return Shape(roots=frozenset({"result"}), records={(*_ITEMS, kind.value): device_build})
    if service == "list_devices_at_client":
        build = builder(DeviceAtClient, DEVICE_AT_CLIENT, "device_id", _client_site)
        site = (*_ITEMS, "client", "site")
        return Shape(
            roots=frozenset({"result"}),
            records={(*site, k.value): build for k in DeviceKind},
            contexts=frozenset({(*_ITEMS, "client"), site}),
        )
    if service == "list_mob_sessions":
        return Shape(
            roots=frozenset({"result"}),
            records={
                ("result", "session"): builder(MobSession, MOB_SESSION, "session_id", no_context)
            },
        )
    if service == "patch_list_all":
        return Shape(
            roots=frozenset({"patches", "result"}),
            records={
                ("patches", "patch"): builder(Patch, PATCH, "patch_id", no_context),
                (*_ITEMS, "patch"): builder(Patch, PATCH, "patch_id", no_context),
            },
        )
    if service == "patch_retry":
        return Shape(roots=frozenset({"result"}), finish=_patch_retry_finisher(params))
    raise KeyError(service)


def _client_site(name: str, ancestors: list[Fields]) -> Fields:
    client, site = ancestors[2], ancestors[3]
    client_id, site_id = _digits(client.get("id")), _digits(site.get("id"))
    if client_id is None or site_id is None:
        raise ParseError(
            f"a <{name}> is not inside a <client> and <site> with numeric <id>s "
            f"(client id {client.get('id')!r}, site id {site.get('id')!r})"
        )
    return {
        "kind": DeviceKind(name),
        "client_id": client_id,
        "client_name": client.get("name") or None,
        "site_id": site_id,
        "site_name": site.get("name") or None,
    }


def _digits(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


_RETRYING = re.compile(r"Retrying patches:\s*([\d,\s]*)", re.IGNORECASE)
_APPLIED = re.compile(r"already applied:\s*([\d,\s]*)", re.IGNORECASE)


def _ids(pattern: re.Pattern[str], msg: str) -> tuple[int, ...]:
    m = pattern.search(msg)
    if not m:
        return ()
    return tuple(int(x) for x in re.findall(r"\d+", m.group(1)))


def parse_patch_retry_msg(msg: str, *, device_id: int, requested: tuple[int, ...]) -> Any:
    """Parse ``Retrying patches: 4,5 Patches already applied: 1,6`` into a result."""
    return PatchRetryResult(
        device_id=device_id,
        requested=requested,
        retrying=_ids(_RETRYING, msg),
        already_applied=_ids(_APPLIED, msg),
        message=msg,
    )


def _patch_retry_finisher(params: Mapping[str, str]) -> Any:
    device_id = _int_param(params, "deviceid") or 0
    requested = tuple(int(x) for x in params.get("patchids", "").split(",") if x.strip().isdigit())

    def finish(root: str, children: Fields, attrs: Mapping[str, str], body: bytes) -> list[Any]:
        msg = children.get("msg")
        if not isinstance(msg, str):
            raise ParseError("patch_retry: the response has no <msg>", service="patch_retry")
        return [parse_patch_retry_msg(msg, device_id=device_id, requested=requested)]

    return finish


def _describe_finish(
    root: str, children: Fields, attrs: Mapping[str, str], body: bytes
) -> list[Any]:
    service = children.get("service")
    if not isinstance(service, dict):
        raise ParseError("describe: the response has no <service>", service="describe")
    params_block = service.pop("parameters", None)
    raw_params = as_list(params_block.get("parameter") if isinstance(params_block, dict) else None)
    parameters = tuple(
        ServiceParameter(
            name=str(p.get("name", "")),
            type=p.get("type") or None,
            default=p.get("default") or None,
            values=p.get("values") or None,
            description=p.get("description") or None,
            required=str(p.get("required", "")).lower() in {"1", "true", "yes", "y"},
        )
        for p in raw_params
        if isinstance(p, dict)
    )
    return [
        ServiceDescription(
            name=str(service.pop("name", "")),
            url=service.pop("url", None) or None,
            description=service.pop("description", None) or None,
            parameters=parameters,
            example=service.pop("example", None) or None,
            field_descriptions=service.pop("fielddescriptions", None) or None,
            extra=service,
        )
    ]


DESCRIBE: Shape[Any] = Shape(roots=frozenset({"result"}), finish=_describe_finish)


def _generic_finish(
    root: str, children: Fields, attrs: Mapping[str, str], body: bytes
) -> list[Any]:
    # The document already passed our checks (no DOCTYPE, no FAIL); xmltodict gives
    # the familiar dict view (``@attr``, ``#text``) of any service.
    return [xmltodict.parse(body, disable_entities=True)]


def generic_shape() -> Shape[Any]:
    """The dict view of any service's response (a single dict at close)."""
    return Shape(
        roots=_ANY_ROOT,
        finish=_generic_finish,
        keep_bytes=True,
    )


class _AnyRoot(frozenset[str]):
    """Accepts any root name except ``html`` (a firewall page)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() != "html"


_ANY_ROOT: frozenset[str] = _AnyRoot()
