"""Low-level XML writing: escaping, CDATA, envelopes and byte chunking.

Documents are produced as iterables of ``str`` pieces and turned into byte
chunks of about `CHUNK_SIZE` by `chunked`, so a body is never rendered whole
(a listing sent to its end is kept, up to a bound: `_bodycache`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone

CHUNK_SIZE = 16 * 1024
XML_DECL_UTF8 = '<?xml version="1.0" encoding="UTF-8"?>\n'
XML_DECL_LATIN1 = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'


def escape(text: str) -> str:
    """Escape text for element content (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """Escape text for a double-quoted attribute value."""
    return escape(text).replace('"', "&quot;")


def element(tag: str, value: str | int, *, cdata: bool = False) -> str:
    """Render ``<tag>value</tag>``; an empty value alternates ``<x/>`` and ``<x></x>``."""
    text = str(value)
    if not text:
        # Both spellings of an empty element occur live; pick one stably per tag.
        return f"<{tag}/>" if len(tag) % 2 else f"<{tag}></{tag}>"
    if cdata and "]]>" not in text:
        return f"<{tag}><![CDATA[{text}]]></{tag}>"
    return f"<{tag}>{escape(text)}</{tag}>"


def created_stamp(moment: datetime, offset_minutes: int) -> str:
    """Render the root ``created`` attribute: ISO 8601 in the server's local offset."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="seconds")


def open_result(*, created: str, host: str, status: str) -> str:
    """Render the UTF-8 declaration and the opening ``<result>`` tag."""
    return (
        f'{XML_DECL_UTF8}<result created="{escape_attr(created)}" '
        f'host="{escape_attr(host)}" status="{status}">'
    )


def fail_document(*, created: str, host: str, code: int, message: str) -> str:
    """Render an error envelope (HTTP 200, ``status="FAIL"``)."""
    return (
        open_result(created=created, host=host, status="FAIL")
        + f"<error><errorcode>{code}</errorcode><message>{escape(message)}</message></error>"
        + "</result>\n"
    )


def chunked(
    pieces: Iterable[str], *, encoding: str = "utf-8", size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Join string pieces into encoded byte chunks of roughly ``size`` bytes."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode(encoding, "xmlcharrefreplace")
            buffer.clear()
            length = 0
    if buffer:
        yield "".join(buffer).encode(encoding, "xmlcharrefreplace")
