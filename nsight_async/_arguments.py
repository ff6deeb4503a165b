"""Argument checks for the client's methods: bad input fails before any request is sent."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import InvalidArgumentError


def check_id(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgumentError(f"{name} must be a positive integer id, got {value!r}")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise InvalidArgumentError(f"{name} must be a positive integer id, got {value!r}")
    return str(int(text))


def check_patch_ids(patch_ids: Iterable[int]) -> list[int]:
    if isinstance(patch_ids, str | bytes):
        raise InvalidArgumentError("patch_ids must be a list of integer ids, not a string")
    ids = [int(check_id("patch id", p)) for p in patch_ids]
    if not ids:
        raise InvalidArgumentError("patch_ids is empty: give at least one patch id to retry")
    return list(dict.fromkeys(ids))


def check_service_name(service: str) -> None:
    if not isinstance(service, str) or not service.replace("_", "").isalnum():
        raise InvalidArgumentError(f"not a service name: {service!r}")


def check_param(name: str, value: object) -> str:
    if name.lower() in {"apikey", "service"}:
        raise InvalidArgumentError(f"{name!r} is set by the client, not passed as a parameter")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
