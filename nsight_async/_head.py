"""Read a simple envelope without expat: the prolog, the root's start tag, the end.

Most responses are an XML declaration, ``<result …>``, perhaps ``<items>``, a
run of records and the matching end tags. When the whole document is that,
the parser never needs expat at all: :func:`read_head` reads the beginning
and :func:`tail_state` the end, and the scanner reads the records between.
Both accept only what expat would accept (a declaration of version 1.0,
attribute values without entities, tabs, line ends or characters XML forbids,
no repeated attribute, no namespace declaration, no comment or processing
instruction); anything else
returns ``None`` and the parser hands the whole text to expat as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

_S = "[ \t\r\n]"
_NAME = "[A-Za-z_][A-Za-z0-9_.-]*"
_VALUE = "[^<&\t\r\n\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\ufffe\\uffff"
_DECLARATION = (
    f"<\\?xml{_S}+version{_S}*={_S}*(?:\"1\\.0\"|'1\\.0')"
    f"(?:{_S}+encoding{_S}*={_S}*(?:\"[A-Za-z][A-Za-z0-9._-]*\"|'[A-Za-z][A-Za-z0-9._-]*'))?"
    f"(?:{_S}+standalone{_S}*={_S}*(?:\"(?:yes|no)\"|'(?:yes|no)'))?{_S}*\\?>"
)
_ATTRIBUTE = f"{_S}+({_NAME}){_S}*={_S}*(?:\"({_VALUE}\"]*)\"|'({_VALUE}']*)')"
_ANY_ATTRIBUTE = f"{_S}+{_NAME}{_S}*={_S}*(?:\"{_VALUE}\"]*\"|'{_VALUE}']*')"
_ROOT = re.compile(f"\\ufeff?(?:{_DECLARATION})?{_S}*+<({_NAME})((?:{_ANY_ATTRIBUTE})*+){_S}*>")
_ATTRIBUTES = re.compile(_ATTRIBUTE)
_CHILD = re.compile(f"{_S}*+<({_NAME})>")
_SPACE = re.compile(f"{_S}*+")
#: The most text kept waiting for the end tags; past it (whitespace without end),
#: expat reads on, in linear time, rather than the text being joined again and again.
MAX_TAIL = 4096


@attrs.frozen
class Head:
    """What :func:`read_head` read: where it ended, the root and the open containers."""

    end: int
    root: str
    attributes: dict[str, str]
    path: tuple[str, ...]  # the root, then each container opened after it


def read_head(
    text: str,
    is_level: Callable[[tuple[str, ...]], bool],
    is_context: Callable[[tuple[str, ...]], bool],
) -> Head | None:
    """Read the prolog, the root's start tag and plain container start tags.

    Stops at the first path where records live (``is_level``); ``None`` if the
    beginning is anything else, passes a context (whose own fields expat must
    collect), or does not reach such a path.
    """
    root = _ROOT.match(text)
    if root is None:
        return None
    attributes: dict[str, str] = {}
    for name, double, single in _ATTRIBUTES.findall(root.group(2)):
        if name in attributes or name.startswith("xmlns"):
            return None  # expat refuses a repeated attribute; a namespace renames tags
        attributes[name] = double or single
    path: tuple[str, ...] = (root.group(1),)
    end = root.end()
    for _ in range(8):
        if is_level(path):
            return Head(end=end, root=path[0], attributes=attributes, path=path)
        child = _CHILD.match(text, end)
        if child is None:
            return None
        path, end = (*path, child.group(1)), child.end()
        if is_context(path):
            return None
    return None


def tail_state(text: str, pos: int, path: tuple[str, ...]) -> bool | None:
    """Whether ``text[pos:]`` closes ``path``: ``True`` (then only whitespace), ``False``
    (not yet all arrived) or ``None`` (something else: expat must read it)."""
    end = len(text)
    for name in reversed(path):
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # matches ""
        closing = "</" + name
        piece = text[pos : pos + len(closing)]
        if piece != closing:
            return False if closing.startswith(piece) and pos + len(piece) == end else None
        pos = _SPACE.match(text, pos + len(closing)).end()  # type: ignore[union-attr]
        if pos == end:
            return False
        if text[pos] != ">":
            return None
        pos += 1
    return True if not text[pos:].strip(" \t\r\n") else None
