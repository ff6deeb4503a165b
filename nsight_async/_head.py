"""Read a simple envelope without expat: the prolog, the containers, the moves, the end.

Most responses are an XML declaration, ``<result …>``, perhaps ``<items>``, a
run of records and the matching end tags. A device listing also opens and
closes contexts between its runs of records (``</site><site><id>…</id>``).
When the whole document is that, the parser never needs expat at all:
:func:`read_head` reads the beginning, :func:`read_move` each step from one
run of records to the next, and :func:`tail_state` the end; the scanner
reads the records between. All three accept only what expat would accept (a
declaration of version 1.0, attribute values without entities, tabs, line
ends or characters XML forbids, no repeated attribute, no namespace
declaration, no comment or processing instruction, container tags without
attributes, end tags that match). On anything else they stop and say where:
the parser keeps the text for the next feed if it was only cut short
(:func:`cut_short`), and otherwise hands the rest to expat as before.

A container's leaf children before its first container or record (a
client's ``<id>`` and ``<name>``) are read as the element walk reads them:
stripped text, CDATA and the five entities resolved, ``""`` when empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container

import attrs

from ._scan import CUT, FIELD, Fields, record_cut_short, unescape

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
_CLOSE = re.compile(f"{_S}*+</({_NAME}){_S}*>")
#: The next tag's name, complete: ``(/ or "", name)``.
_AHEAD = re.compile(f"{_S}*+<(/?)({_NAME})[ \t\r\n/>]")
#: The deepest a head or a move opens (N-sight documents open four).
_MAX_OPEN = 8
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
    fields: list[Fields]  # each opened container's leaf children (not the root's)
    root_end: int  # where the root's start tag ends
    #: ``None`` if the head reached records; else where reading stopped (see `cut_short`).
    stopped: int | None = None


@attrs.frozen
class Move:
    """What :func:`read_move` read: where it ended, how many of the open containers it
    left open, and the containers it opened after them, each with its leaf children."""

    end: int
    kept: int
    path: tuple[str, ...]
    fields: list[Fields]


@attrs.define
class Opened:
    """What is open, read without expat: the prolog and root's start tag as sent, the
    open path, and each open level's fields (one list, the scanner's ancestors)."""

    prefix: str
    path: tuple[str, ...]
    fields: list[Fields]

    def take(self, move: Move) -> None:
        """Close and open what ``move`` read (the fields list is changed in place)."""
        del self.fields[move.kept :]
        self.fields.extend(move.fields)
        self.path = move.path

    def replayed(self) -> str:
        """What brings expat to this point: the prolog and root's start tag as sent, then
        a bare start tag per open container (its leaves are already in the fields)."""
        return self.prefix + "".join(f"<{name}>" for name in self.path[1:])


@attrs.frozen
class Paths:
    """Which element paths are record levels, containers and records (from the layout)."""

    is_level: Callable[[tuple[str, ...]], bool]
    is_container: Callable[[tuple[str, ...]], bool]
    is_known: Callable[[tuple[str, ...]], bool]  # records, contexts, errors


def read_head(text: str, paths: Paths) -> Head | None:
    """Read the prolog, the root's start tag and the containers down to the first records.

    ``None`` if the root's start tag is not simple; a head ``stopped`` where
    what follows is anything else or does not reach a path where records live.
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
    opened = _open(text, root.end(), path, paths)
    if isinstance(opened, int):
        return Head(root.end(), path[0], attributes, path, [], root.end(), stopped=opened)
    end, path, fields = opened
    return Head(end, path[0], attributes, path, fields, root.end())


def read_move(text: str, pos: int, path: tuple[str, ...], paths: Paths) -> Move | int:
    """Read end tags of the open containers (not the root's), then containers opened
    down to the next records: ``</site><site><id>2</id>…``.

    Where it stopped if ``text[pos:]`` is anything else (see :func:`cut_short`).
    """
    kept, end = len(path), pos
    while kept > 1 and (closing := _CLOSE.match(text, end)) is not None:
        if closing.group(1) != path[kept - 1]:
            return pos  # a mismatched end tag: expat names the error
        kept, end = kept - 1, closing.end()
    if kept == len(path):
        return end
    opened = _open(text, end, path[:kept], paths)
    if isinstance(opened, int):
        return opened
    end, new_path, fields = opened
    return Move(end, kept, new_path, fields)


def cut_short(text: str, start: int, stop: int, records: Container[str]) -> bool:
    """Whether reading ``text[start:]`` stopped at ``stop`` only because the text ran out.

    Either what follows ``stop`` is a tag or a leaf not all arrived (``<``,
    ``</si``, ``<name>Wareh``), or ``text[start:]`` is one of ``records`` cut
    short. Then nothing in ``text[start:]`` is complete or malformed: kept for
    the next feed, it delays no error and cannot make a record that the last
    call (``close``) would have to hand out before an error.
    """
    if CUT.fullmatch(text, stop) is not None:
        return True
    return record_cut_short(text, start) in records


def _open(
    text: str, pos: int, path: tuple[str, ...], paths: Paths
) -> tuple[int, tuple[str, ...], list[Fields]] | int:
    """Open plain container start tags, reading each one's leading leaves, down to records.

    Ends only where the next tag has all arrived and is a record of that
    level, a container or an end tag; otherwise returns where it stopped, so
    a head or move cut short by the end of the text is read again once more
    has come.
    """
    fields: list[Fields] = []
    for _ in range(_MAX_OPEN):
        if paths.is_level(path):
            ahead = _AHEAD.match(text, pos)
            if ahead is None:  # the text ended: read again with more, unless nothing is open
                return (pos, path, fields) if not fields and _SPACE.fullmatch(text, pos) else pos
            closing, name = ahead.groups()
            if closing or paths.is_known((*path, name)) or paths.is_container((*path, name)):
                return pos, path, fields
            return pos
        child = _CHILD.match(text, pos)
        if child is None or not paths.is_container((*path, child.group(1))):
            return pos
        path, pos = (*path, child.group(1)), child.end()
        leaves: Fields = {}
        while (leaf := FIELD.match(text, pos)) is not None:
            name = leaf.group(1)
            if paths.is_known((*path, name)) or paths.is_container((*path, name)):
                break
            if name in leaves:
                return pos  # a repeated leaf: the element walk collects it
            leaves[name] = (unescape(leaf.group(2)) or "").strip()
            pos = leaf.end()
        fields.append(leaves)
    return pos


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
