"""Records to JSON-ready values and back (for the run store and output files)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import attrs

from ._models import CheckCounts, DeviceAtClient
from ._vocab import DeviceKind


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON types: attrs records become dicts, times ISO 8601."""
    if attrs.has(type(value)):
        return {f.name: jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def device_from_json(data: Mapping[str, Any]) -> DeviceAtClient:
    """Rebuild a :class:`DeviceAtClient` from :func:`jsonable` output."""
    fields = dict(data)
    fields["kind"] = DeviceKind(fields["kind"])
    checks = fields.get("checks")
    fields["checks"] = CheckCounts(**checks) if isinstance(checks, Mapping) else CheckCounts()
    fields["extra"] = dict(fields.get("extra") or {})
    return DeviceAtClient(**fields)
