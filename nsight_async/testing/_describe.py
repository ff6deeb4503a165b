"""Service catalogue: parameters each service takes and its ``describe=true`` document.

The catalogue is also what the simulator validates requests against, so the
describe output and the validation cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nsight_async.testing._xml import element, escape


@attrs.frozen(kw_only=True)
class ParamSpec:
    """One query parameter of a service, as the vendor's parameter table lists it."""

    name: str
    type: str
    required: bool
    description: str
    values: str = ""
    default: str = "0"


@attrs.frozen(kw_only=True)
class ServiceSpec:
    """One service of the Data Extraction API."""

    name: str
    description: str
    params: tuple[ParamSpec, ...]
    fields: tuple[tuple[str, str], ...]
    example: str


_DESCRIBE = ParamSpec(
    name="describe",
    type="boolean",
    required=False,
    values="true",
    description="Optional. Returns a description of the service.",
)
_CLIENT = ParamSpec(
    name="clientid", type="number", required=True, description="The clientid must be a valid id."
)
_SITE = ParamSpec(
    name="siteid", type="number", required=True, description="The siteid must be a valid id."
)
_DEVICE = ParamSpec(
    name="deviceid", type="number", required=True, description="The deviceid must be a valid id."
)
_DEVICETYPE = ParamSpec(
    name="devicetype",
    type="string",
    required=True,
    values="server, workstation, mobile_device",
    default="",
    description="The type of device to list.",
)
_PATCHIDS = ParamSpec(
    name="patchids",
    type="string",
    required=True,
    description="A sequence of comma separated patchid's as returned by patch_list_all.",
)
_DEVICE_FIELDS = (
    ("name", "Device name, may be CDATA"),
    ("last_boot_time", "Unix epoch seconds or <b>Not Available</b>"),
    ("total_memory", "Memory in bytes"),
)


def _spec(
    name: str, description: str, params: tuple[ParamSpec, ...], fields: tuple[tuple[str, str], ...]
) -> ServiceSpec:
    query = "".join(f"&{p.name}={p.name.upper()}" for p in params if p.required)
    return ServiceSpec(
        name=name,
        description=description,
        params=(_DESCRIBE, *params),
        fields=fields,
        example=f"https://SERVER/api/?apikey=yourAPIkey&service={name}{query}",
    )


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        _spec(
            "list_clients",
            "Lists all clients.",
            (),
            (("clientid", "Unique client id"), ("dashboard_username", "<i>none</i> if unset")),
        ),
        _spec("list_sites", "Lists all sites for a client.", (_CLIENT,), (("siteid", "Site id"),)),
        _spec("list_servers", "Lists all servers for a site.", (_SITE,), _DEVICE_FIELDS),
        _spec("list_workstations", "Lists all workstations for a site.", (_SITE,), _DEVICE_FIELDS),
        _spec(
            "list_devices_at_client",
            "Lists all devices of a type at a client, grouped by site.",
            (_CLIENT, _DEVICETYPE),
            (("mob", "1 if Backup &amp; Recovery is enabled"), ("patch", "1 if patching on")),
        ),
        _spec(
            "patch_list_all",
            "Lists all patches for a device.",
            (_DEVICE,),
            (("status", "1 missing, 2 pending, 4 queued, 8 installed, 16 failed, 64 reboot"),),
        ),
        _spec(
            "patch_retry",
            "Retry specific software patches on the specified device.",
            (_DEVICE, _PATCHIDS),
            (("msg", "Message related to the action status."),),
        ),
        _spec(
            "list_mob_sessions",
            "Lists all Backup &amp; Recovery (MOB) sessions for a device.",
            (_DEVICE,),
            (("start", "start time, <b>UTC</b>"), ("selection_size", "size in bytes")),
        ),
    )
}


def describe_document(spec: ServiceSpec, head: str) -> Iterator[str]:
    """Yield the ``describe=true`` document of a service (url escaped, fields as CDATA HTML)."""
    yield head + "<service>" + element("name", spec.name)
    yield f"<url>{escape(spec.example.split('&')[0] + '&service=' + spec.name)}</url>"
    yield element("description", spec.description, cdata=True)
    yield "<parameters>"
    for p in spec.params:
        yield "".join(
            (
                "<parameter>",
                element("name", p.name),
                element("type", p.type),
                element("default", p.default),
                element("values", p.values),
                element("description", p.description),
                element("required", "yes" if p.required else "no"),
                "</parameter>",
            )
        )
    yield "</parameters>" + element("example", spec.example)
    rows = "".join(f"<tr><td>{name}</td><td>{text}</td></tr>" for name, text in spec.fields)
    yield element("fielddescriptions", f"<table>{rows}</table>", cdata=True)
    yield "</service></result>\n"
