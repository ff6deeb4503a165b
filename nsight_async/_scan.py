"""Read simple records straight from the decoded text, without building elements.

Most N-sight records are flat runs of ``<tag>text</tag>`` children. A regular
expression that matches such a record whole validates it and extracts its
values in one pass at C speed, where building an element per child and
walking them cost most of the parser's time. The parser hands the scanner the
text between records; the scanner reads every record it can and stops at the
first thing it does not read exactly, which expat then parses as before.

The scanner accepts only records that are well-formed by construction: start
tags without attributes, leaf children (each tag at most once), text without
``<``, ``>``, carriage returns or characters XML forbids, the five predefined
entities and CDATA sections. Anything else (a comment, an attribute, a
character reference, a nested or repeated child, a malformed record) is left
to expat, and so is every error. Because a scanned record is balanced, expat's
state after the scanner skipped it is the state it would have had after
reading it. The values it returns are the texts expat would have given.

Two ways to read a record:

- **template**: for a record whose children come in an order seen before, one
  compiled pattern per ``(tag, children)``, with three groups per child (plain
  text, CDATA content, text with entities), read positionally by a builder
  generated for that order;
- **generic**: a loop over the children, into a dict for the usual builder;
  the first record read this way teaches the scanner its template.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

T = TypeVar("T")

Fields = dict[str, Any]
#: Builds a record from the template's groups (three per child: see `template`).
PositionalBuild = Callable[[str, tuple[str | None, ...], list[Fields]], T]


#: A record's children as learned: a leaf's name, or a nested child's name with
#: the names of its own (leaf) children, such as a device's ``<checkcount>``.
Children = tuple["str | tuple[str, tuple[str, ...]]", ...]


@attrs.frozen(eq=False)
class RecordBuilder(Generic[T]):
    """How one record type is built.

    ``build(name, fields, ancestors)`` takes the record's element name, its
    children as a dict and the collected leaf children of every open ancestor
    (index = depth - 1). ``by_position(children)``, when given, returns a
    builder for records whose children come in exactly that order, reading
    the scanner's groups (without it, scanned records go through ``build``).
    """

    build: Callable[[str, Fields, list[Fields]], T]
    by_position: Callable[[Children], PositionalBuild[T]] | None = None


# XML whitespace; characters the scanner leaves to expat: controls XML forbids,
# and "\r" (expat normalises line ends in text).
_WS = "[ \t\r\n]*+"
_BAD = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\r\\ufffe\\uffff"
_PLAIN = f"[^<&>{_BAD}]*+"
_CDATA = f"[^\\]{_BAD}]*+"
_ESCAPED = f"(?:[^<&>{_BAD}]++|&(?:lt|gt|amp|quot|apos);)*+"
_NAME = "[A-Za-z_][A-Za-z0-9_.-]*"
# Possessive quantifiers (Python 3.11): a run that cannot match fails at once
# instead of backtracking through every way of splitting the text.
_MIXED = (
    f"(?:[^<&>{_BAD}]++|&(?:lt|gt|amp|quot|apos);"
    f"|<!\\[CDATA\\[(?:[^\\]{_BAD}]|\\](?!\\]>))*+\\]\\]>)*+"
)
#: A leaf child: its name and raw text (``None`` when empty).
FIELD = re.compile(f"{_WS}<({_NAME}){_WS}(?:>({_MIXED})</\\1{_WS}>|/>)")
_OPEN = re.compile(f"{_WS}<({_NAME}){_WS}>")
_UNESCAPE = re.compile("<!\\[CDATA\\[(.*?)\\]\\]>|&(lt|gt|amp|quot|apos);", re.DOTALL)
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
#: The most children a template is made for (three groups each).
_MAX_TEMPLATE_FIELDS = 200
#: The most templates one level keeps (records of one type rarely vary).
_MAX_TEMPLATES = 4


def unescape(raw: str | None) -> str | None:
    """Resolve CDATA sections and the five predefined entities; ``None`` for no text."""
    if not raw:
        return None  # as ElementTree: no text is None
    if "&" not in raw and "<" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: m.group(1) or _ENTITIES.get(m.group(2), ""), raw)


@functools.lru_cache(maxsize=512)
def template(tag: str, children: Children) -> re.Pattern[str]:
    """The pattern for a ``<tag>`` record with exactly these children, in this order.

    Groups: three per leaf, of which at most one is not empty: its plain text,
    its CDATA content, or its text with entities (still escaped: the plain
    alternative fails on ``&`` first, so only such texts pay for unescaping).
    Each leaf is an atomic group: plain text also matches the third
    alternative, and a record failing late must not retry every leaf both
    ways (2**leaves attempts);
    one per leaf of a nested child (its text: CDATA or entities there fall
    back to the loop).
    """
    parts = [f"{_WS}<{re.escape(tag)}>"]
    for child in children:
        if isinstance(child, str):
            name = re.escape(child)
            parts.append(
                f"{_WS}<{name}(?>>(?:({_PLAIN})|<!\\[CDATA\\[({_CDATA})\\]\\]>|({_ESCAPED}))"
                f"</{name}>|{_WS}/>)"
            )
            continue
        name = re.escape(child[0])
        parts.append(f"{_WS}<{name}>")
        for leaf in map(re.escape, child[1]):
            parts.append(f"{_WS}<{leaf}(?:>({_PLAIN})</{leaf}>|{_WS}/>)")
        parts.append(f"{_WS}</{name}>")
    parts.append(f"{_WS}</{re.escape(tag)}>")
    return re.compile("".join(parts))


@functools.lru_cache(maxsize=256)
def _closer(tag: str) -> re.Pattern[str]:
    return re.compile(f"{_WS}</{re.escape(tag)}{_WS}>")


def boundary(record_tags: set[str], parent_tags: set[str]) -> re.Pattern[str]:
    """Where the scanner may take over again: after a record's end tag or a parent's start tag."""
    records = "|".join(sorted(map(re.escape, record_tags)))
    parents = "|".join(sorted(map(re.escape, parent_tags)))
    return re.compile(f"</(?:{records}){_WS}>|<(?:{parents})(?:[ \t\r\n][^<>]*)?>")


#: A learned template: its pattern, the record's tag, and its positional builder.
Template = tuple[re.Pattern[str], str, PositionalBuild[T]]
#: How deep the generic reader follows children of children (``<checkcount>``).
_MAX_NESTING = 2


class LevelScanner(Generic[T]):
    """Reads the records directly inside one open element (a list's container)."""

    def __init__(
        self,
        builders: Mapping[str, RecordBuilder[T]],
        ancestors: list[Fields],
        learned: list[Template[T]] | None = None,
    ) -> None:
        """``learned``: templates shared by every scanner of this level (only appended to)."""
        self._builders = builders
        self._ancestors = ancestors
        self._learned = learned if learned is not None else []
        self._templates = list(self._learned)

    def scan(self, text: str, pos: int, out: list[T]) -> int:
        """Build the records in ``text[pos:]`` into ``out``; return where it stopped.

        Expat reads on from there: whatever the scanner does not read exactly,
        including a record that has not all arrived (so a syntax error in it
        is still raised by the feed that delivers it).
        """
        ancestors = self._ancestors
        templates = self._templates
        while True:
            if templates:
                pattern, tag, build = templates[0]
                match = pattern.match
                m = match(text, pos)
                while m is not None:
                    out.append(build(tag, m.groups(), ancestors))
                    pos = m.end()
                    m = match(text, pos)
            step = self._slow_step(text, pos, out)
            if step is None:
                return pos
            pos = step

    def _slow_step(self, text: str, pos: int, out: list[T]) -> int | None:
        """Read one record the first template did not; return its end, or None."""
        opened = _OPEN.match(text, pos)
        if opened is None:
            return None
        tag = opened.group(1)
        builder = self._builders.get(tag)
        if builder is None:
            return None  # not a record at this level: a context, an error, the end
        for i, (pattern, name, build) in enumerate(self._templates):
            if name == tag and (m := pattern.match(text, pos)) is not None:
                self._templates.insert(0, self._templates.pop(i))
                out.append(build(tag, m.groups(), self._ancestors))
                return m.end()
        read = _generic(text, opened.end(), tag, 0)
        if read is None:
            return None
        end, fields, children = read
        out.append(builder.build(tag, fields, self._ancestors))
        if children is not None:
            self._learn(tag, children, builder)
        return end

    def _learn(self, tag: str, children: Children, builder: RecordBuilder[T]) -> None:
        if (
            builder.by_position is None
            or len(self._templates) >= _MAX_TEMPLATES
            or len(children) > _MAX_TEMPLATE_FIELDS
        ):
            return
        pattern = template(tag, children)
        if all(p is not pattern for p, _, _ in self._templates):
            learned = (pattern, tag, builder.by_position(children))
            self._templates.insert(0, learned)
            if len(self._learned) < _MAX_TEMPLATES and all(
                p is not pattern for p, _, _ in self._learned
            ):
                self._learned.append(learned)


def _generic(
    text: str, pos: int, tag: str, depth: int
) -> tuple[int, Fields, Children | None] | None:
    """Read the children of the ``<tag>`` open before ``pos``: (end, fields, children).

    Values are as the element walk gives them: a record of leaves keeps each
    text as sent (``None`` when empty); one with nested children (a device's
    ``<checkcount>``) gives stripped texts, ``""`` when empty, and dicts.
    ``children`` is what a template can be made from (``None``: too deep).
    """
    fields: Fields = {}
    children: list[Any] | None = []
    flat = True
    while True:
        m = FIELD.match(text, pos)
        if m is not None:
            key, raw = m.group(1), m.group(2)
            value: Any = unescape(raw) if raw else None
            child: Any = key
        elif depth < _MAX_NESTING and (opened := _OPEN.match(text, pos)) is not None:
            key = opened.group(1)
            inner = _generic(text, opened.end(), key, depth + 1)
            if inner is None:
                return None
            flat = False
            m, value = None, inner[1]
            pos = inner[0]
            nested = inner[2]
            simple = nested is not None and depth == 0 and all(isinstance(n, str) for n in nested)
            child = (key, nested) if simple else None
        else:
            break
        if key in fields:
            return None  # a repeated child: the element walk collects it
        fields[key] = value
        if child is None:
            children = None
        elif children is not None:
            children.append(child)
        if m is not None:
            pos = m.end()
    closed = _closer(tag).match(text, pos)
    if closed is None:
        return None
    if not flat or depth:
        fields = {k: _stripped(v) for k, v in fields.items()}
    return closed.end(), fields, None if children is None else tuple(children)


def _stripped(value: Any) -> Any:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else value


# -- encodings -------------------------------------------------------------------------

_DECLARATION = re.compile(rb"<\?xml[ \t\r\n][^>]*?encoding[ \t\r\n]*=[ \t\r\n]*[\"']([\w.-]+)")
#: Encodings expat knows itself whose text round-trips exactly through Python's codec.
_CODECS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1", "us-ascii": "ascii"}


def codec_of(head: bytes) -> str | None:
    """The Python codec for a document starting with ``head``, or ``None`` to leave it to expat."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16: rare, and left whole to expat
    bom = head.startswith(b"\xef\xbb\xbf")
    declared = _DECLARATION.match(head[3:] if bom else head)
    name = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    codec = _CODECS.get(name)
    return None if bom and codec != "utf-8" else codec


def decoder(codec: str) -> codecs.IncrementalDecoder:
    """A strict incremental decoder: bytes that are not valid text are left to expat."""
    return codecs.getincrementaldecoder(codec)(errors="strict")


# -- text cut short by the end of a feed -----------------------------------------------

#: A leaf's text so far, and what may cut it: an end tag, a CDATA section or an
#: entity begun (``</i``, ``<![CDA``, ``<![CDATA[Wa``, ``&am``).
_SO_FAR = f"(?:[^<>&{_BAD}]++|&(?:lt|gt|amp|quot|apos);|<!\\[CDATA\\[{_CDATA}\\]\\]>)*+"
_CUT_AT = (
    f"<(?:/(?:{_NAME}{_WS})?|!(?:\\[(?:C(?:D(?:A(?:T(?:A(?:\\[[^\\]{_BAD}]*+\\]?\\]?)?)?)?)?)?)?)?)?"
    "|&[a-z]*+"
)
_CUT_TAIL = (
    f"{_WS}(?:<(?:/(?:{_NAME}{_WS})?|{_NAME}{_WS}/?)?|<{_NAME}{_WS}>{_SO_FAR}(?:{_CUT_AT})?)?"
)
#: Whitespace, then perhaps a tag or a leaf not all arrived (``<``, ``</si``,
#: ``<session``, ``<description/``, ``<name>Wareh``).
CUT = re.compile(_CUT_TAIL)


def _leaf(group: str) -> str:
    return f"{_WS}<(?P<{group}>{_NAME}){_WS}(?:>{_MIXED}</(?P={group}){_WS}>|/>)"


_RECORD_CUT = re.compile(
    f"{_WS}<({_NAME}){_WS}>"
    f"(?:{_leaf('a')}|{_WS}<(?P<n>{_NAME}){_WS}>(?:{_leaf('b')})*+{_WS}</(?P=n){_WS}>)*+"
    f"(?:{_WS}<{_NAME}{_WS}>(?:{_leaf('c')})*+)?{_CUT_TAIL}"
)


def record_cut_short(text: str, pos: int) -> str | None:
    """The tag of the record ``text[pos:]`` begins, if it is one the scanner could read
    that the end of the text cut short (leaves, one level of nesting, then a cut)."""
    cut = _RECORD_CUT.fullmatch(text, pos)
    return None if cut is None else cut.group(1)
