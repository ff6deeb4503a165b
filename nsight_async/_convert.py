"""Text → typed values, for the parser. Pure functions, no I/O.

Each converter takes the element's text as sent (surrounding whitespace
included: stripping only where a value needs it is cheaper than stripping
every field) and returns a typed value, or ``None`` for an empty value or a
sentinel. Converters never raise on odd values from the
server: a value they cannot read becomes ``None`` and the raw text is kept in
the record's ``extra`` under ``"<field>_raw"`` by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

T = TypeVar("T")

#: Text sentinels N-sight uses for "no value".
SENTINELS = frozenset({"none", "Not Available", "0000-00-00 00:00:00", "0000-00-00"})
_LOWER_SENTINELS = frozenset(s.lower() for s in SENTINELS)


class Unreadable(ValueError):
    """A value a converter could not read (kept raw by the caller)."""


def _str(value: object) -> str:
    if not isinstance(value, str):  # child elements or a repeated tag where text belongs
        raise Unreadable(repr(value))
    return value.strip()


def text(value: str) -> str | None:
    """Return stripped text, or ``None`` for an empty value or a sentinel."""
    value = _str(value)
    return None if not value or value in SENTINELS else value


def name(value: str) -> str | None:
    """Return a stripped name (names are never sentinels), ``None`` if empty."""
    return _str(value) or None


def integer(value: str) -> int | None:
    """Parse an integer (ids, counts, byte sizes of any size)."""
    try:
        return int(value)  # accepts surrounding whitespace
    except ValueError:
        value = _str(value)
        if not value or value in SENTINELS:
            return None
        raise Unreadable(value) from None


def flag(value: str) -> bool | None:
    """Parse a 0/1 (or true/false, yes/no) flag."""
    v = _str(value).lower()
    if v in {"1", "true", "yes", "y", "on"}:
        return True
    if v in {"0", "false", "no", "n", "off"}:
        return False
    if not v or v in _LOWER_SENTINELS:
        return None
    raise Unreadable(value)


def day(value: str) -> date | None:
    """Parse ``YYYY-MM-DD`` (a longer timestamp keeps its date part)."""
    value = _str(value)
    if not value or value.startswith("0000"):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        if value in SENTINELS:
            return None
        raise Unreadable(value) from None


def utc_datetime(value: str) -> datetime | None:
    """Parse ``YYYY-MM-DD HH:MM:SS`` documented as UTC into an aware datetime."""
    try:
        if len(value) == 19 and value[0] != "0":
            # The documented form; appending the zone is 6x faster than replace().
            return datetime.fromisoformat(value + "+00:00")
        value = _str(value)
        if not value or value.startswith("0000"):
            return None
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(value) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def local_datetime(value: str) -> datetime | None:
    """Parse a server-local ``YYYY-MM-DD HH:MM:SS`` (zone unknown: stays naive)."""
    value = _str(value)
    if not value or value.startswith("0000"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(value) from None


def epoch(value: str) -> datetime | None:
    """Parse Unix epoch seconds (``last_boot_time``) into an aware UTC datetime."""
    value = _str(value)
    if not value or value in SENTINELS:
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise Unreadable(value) from None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what the platform's time_t holds
        raise Unreadable(value) from None


def lenient_timestamp(value: str | None) -> datetime | None:
    """Parse the envelope's ``created`` attribute; never fails (docs show malformed ones)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        try:
            return datetime.fromisoformat(value[:19].replace("T", " "))
        except ValueError:
            return None


def flag0(raw: str) -> bool:
    """Parse a 0/1 flag that is never unknown: empty or a sentinel is ``False``."""
    return bool(flag(raw))


class Open(Generic[T]):
    """Converts to an open vocabulary's member: a table lookup (the Enum call is slow)."""

    def __init__(self, cls: Callable[[str], T]) -> None:
        self.cls = cls
        self.members: dict[str, T] = getattr(cls, "_value2member_map_")  # noqa: B009  # Enum's cache

    def __call__(self, value: str) -> T | None:
        member = self.members.get(value)
        if member is None:
            stripped = text(value)
            if stripped is None:
                return None  # empty, or a sentinel
            member = self.members.get(stripped)
            if member is None:
                return self.cls(stripped)
        return member
