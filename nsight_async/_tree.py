"""Turn ElementTree elements into plain fields for the record builders."""

from __future__ import annotations

from operator import attrgetter
from typing import Any
from xml.etree.ElementTree import Element

from ._errors import ParseError

_TAG = attrgetter("tag")
_TEXT = attrgetter("text")


class Repeated(list[Any]):
    """A list made by the parser from repeated child elements."""


def record_fields(element: Element) -> dict[str, Any]:
    """Return a record's children as ``{tag: text as sent, or nested dict}``."""
    # Fast path: every child is a leaf and no tag repeats (a MOB session, a client).
    # The texts stay as sent: the converters strip what they read.
    if not sum(map(len, element)):
        fields = dict(zip(map(_TAG, element), map(_TEXT, element), strict=True))
        if len(fields) == len(element):
            return fields
    value = element_value(element)
    return value if isinstance(value, dict) else {}


#: Deeper nesting than any N-sight document has; deeper is refused, not recursed into.
MAX_DEPTH = 64


def element_value(element: Element, depth: int = 0) -> Any:
    """Return a leaf's stripped text, or a dict of an element's children."""
    if len(element) == 0:
        return (element.text or "").strip()
    if depth >= MAX_DEPTH:
        raise ParseError(f"elements nested more than {MAX_DEPTH} deep inside <{element.tag}>")
    out: dict[str, Any] = {}
    for child in element:
        value = element_value(child, depth + 1)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], Repeated):
            out[child.tag].append(value)
        else:
            out[child.tag] = Repeated((out[child.tag], value))
    return out


def as_list(value: object) -> list[Any]:
    """Return a collected child as a list, whether it appeared once or many times."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]
