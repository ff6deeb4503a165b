"""Keep the API key out of every log line, message and repr.

The key travels in the URL (``?apikey=…``), and httpx logs full URLs at INFO.
:class:`RedactingFilter` scrubs ``apikey=`` values and every registered key
from log records of the ``httpx``, ``httpcore`` and ``nsight_async`` loggers;
:func:`redact` does the same for any string.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref

_APIKEY_PARAM = re.compile(r"(apikey=)[^&\s'\"<>]+", re.IGNORECASE)
_MASK = "***"


class Secret:
    """A string that never shows itself in ``repr`` or ``str``."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        _register(self)

    def reveal(self) -> str:
        """Return the secret itself (only to build the request)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


_secrets: weakref.WeakSet[Secret] = weakref.WeakSet()
_lock = threading.Lock()


def _register(secret: Secret) -> None:
    with _lock:
        _secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with ``apikey=`` values and every live key masked."""
    text = _APIKEY_PARAM.sub(rf"\1{_MASK}", text)
    with _lock:
        values = [s.reveal() for s in _secrets]
    for value in values:
        if len(value) >= 4 and value in text:
            text = text.replace(value, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks the API key in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
        return True


_FILTER = RedactingFilter()
_LOGGERS = ("httpx", "httpcore", "nsight_async", "aiohttp.client", "aiohttp.access")


def install_log_filter() -> None:
    """Attach the filter to the loggers that may see URLs (idempotent)."""
    for name in _LOGGERS:
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)


def scrub_exception(exc: BaseException) -> None:
    """Mask the key in an exception and every cause and context it chains to, in place."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception types
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        message = getattr(current, "message", None)
        if isinstance(message, str):
            with contextlib.suppress(AttributeError):  # a read-only attribute
                current.message = redact(message)  # type: ignore[attr-defined]  # checked above
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [redact(n) if isinstance(n, str) else n for n in notes]
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
