"""Record builders generated from field tables: straight-line code per table.

:func:`builder` turns a table of ``(xml name, attribute, converter)`` into a
function that converts the known children (common converters inlined) and
keeps the rest in the record's ``extra``; a second variant per child order
reads the scanner's groups by position. The tables themselves are in
``_specs``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

from . import _convert as c
from ._errors import ParseError
from ._scan import Children, Fields, PositionalBuild, RecordBuilder, unescape

T = TypeVar("T")
_FACTORY: Any = attrs.Factory
#: What a converter raises on a value it cannot read (kept raw in ``extra`` instead).
_UNREADABLE = (c.Unreadable, ValueError, TypeError, AttributeError)
#: What an inlined first try raises on a value its converter must look at (see `_inline`).
_FIRST_TRY = (*_UNREADABLE, KeyError)
_FLAGS = {"0": False, "1": True}
Spec = tuple[tuple[str, str, Callable[[Any], Any]], ...]


def builder(
    cls: Callable[..., T],
    spec: Spec,
    ident: str,
    fixed: Callable[[str, list[Fields]], Fields] | None = None,
) -> RecordBuilder[T]:
    """Make a record builder: convert known children, keep the rest in ``extra``.

    ``fixed`` adds fields that come from outside the record (its client and
    site, the request's parameters). The builder is generated once per table
    as straight-line code with locals and one ``try`` per field (ints converted
    inline): it runs once per record, and a loop over the table cost about a
    third of the parser's time per record. A second variant per child order
    reads the scanner's groups by position (no dict at all).
    """
    build = _compiled(cls, spec, ident, None)

    def by_position(children: Children) -> PositionalBuild[T]:
        positional = _compiled(cls, spec, ident, children)
        if fixed is None:
            return positional
        return lambda name, groups, ancestors: positional(name, groups, ancestors, fixed)

    if fixed is None:
        return RecordBuilder(build, by_position)
    return RecordBuilder(
        lambda name, fields, ancestors: build(name, fields, ancestors, fixed), by_position
    )


@functools.lru_cache(maxsize=1024)  # bounded: child orders come from the server
def _compiled(
    cls: Callable[..., Any], spec: Spec, ident: str, children: Children | None
) -> Callable[..., Any]:
    """Generate a builder reading a dict (``children`` is None) or the scanner's groups.

    Positional builders read a leaf as ``g[i] or g[i + 1] or _unescape(g[i + 2])``
    (its text, its CDATA content, or its text with entities resolved) and a
    nested child as a dict of its stripped leaves, as the template lays out
    its groups; children the table does not know go to ``extra``.
    """
    record_type: Any = cls
    defaults: dict[str, Any] = {f.name: f.default for f in attrs.fields(record_type)}
    known = frozenset(xml for xml, _, _ in spec)
    slot = _sources(children or ())
    env: dict[str, Any] = {
        "cls": cls,
        "_UNREADABLE": _UNREADABLE,
        "_FIRST_TRY": _FIRST_TRY,
        "KNOWN": known,
        "_kept": _kept,
        "_leaf": _leaf,
        "_unescape": unescape,
    }
    env["missing"] = _missing
    lines = [
        "def build(name, fields, ancestors, fixed=None):"
        if children is None
        else "def build(name, g, ancestors, fixed=None):",
        "    get = fields.get" if children is None else "    pass",
        "    bad = None",
    ]
    values: dict[str, str] = {}  # attribute: the local holding its value
    for i, (xml, attr, conv) in enumerate(spec):
        default = defaults.get(attr)
        env[f"conv{i}"] = conv
        if isinstance(default, _FACTORY):  # a fresh value per record, as attrs would make
            env[f"make{i}"] = default.factory
            fallback = f"make{i}()"
        else:
            env[f"d{i}"] = None if default is attrs.NOTHING else default
            fallback = f"d{i}"
        call = _inline(conv, i, env)
        if children is None:
            source = f"get({xml!r})"
        elif xml in slot:
            source = slot[xml]
        else:
            source = "None"
        lines += [
            f"    v = {source}",
            "    if v:",
            "        try:",
            f"            a{i} = {call}",
            "        except _FIRST_TRY:",
            "            try:",
            f"                a{i} = conv{i}(v)",
            "            except _UNREADABLE:",
            f"                a{i} = {fallback}",
            "                bad = bad or {}",
            f"                bad[{xml + '_raw'!r}] = _kept(v)",
            "    else:",
            f"        a{i} = {fallback}",
        ]
        values[attr] = f"a{i}"
        if attr == ident:
            seen = "fields" if children is None else f"{{{xml!r}: v}}"
            lines += [f"    if a{i} is None:", f"        missing(name, {xml!r}, {seen})"]
    if children is None:
        lines += [
            "    if fields.keys() <= KNOWN:",
            "        extra = {}",
            "    else:",
            "        extra = {k: _kept(v) for k, v in fields.items() if k not in KNOWN}",
        ]
    else:
        unknown = [f"{xml!r}: _kept({source})" for xml, source in slot.items() if xml not in known]
        lines.append(f"    extra = {{{', '.join(unknown)}}}")
    args = ", ".join(f"{attr}={local}" for attr, local in values.items())
    lines += [
        "    if bad:",
        "        extra.update(bad)",
        "    if fixed is None:",
        *_made(record_type, values, env),
        f"    return cls({args}, extra=extra, **fixed(name, ancestors))",
    ]
    name = getattr(cls, "__name__", "record")
    code = compile("\n".join(lines), f"<builder {name}>", "exec")
    exec(code, env)  # noqa: S102  # generated from our own field tables, no outside input
    build: Callable[..., Any] = env["build"]
    return build


def _made(cls: Any, values: dict[str, str], env: dict[str, Any]) -> list[str]:
    """The lines that make the record from ``values`` (attribute: expression) and ``extra``.

    A frozen slotted record whose ``__init__`` is attrs' own and would only store
    its arguments (no validator, converter, hook, alias or field left out of
    ``__init__``) is made by setting each slot directly: calling ``__init__``
    with seventeen keywords cost about a seventh of a MOB session's parse. Any
    other class is called as usual.
    """
    call = [f"        return cls({', '.join(f'{k}={v}' for k, v in values.items())}, extra=extra)"]
    fields = attrs.fields(cls)
    plain = all(
        f.validator is None
        and f.converter is None
        and f.on_setattr in (None, attrs.NOTHING)
        and f.init
        and f.alias == f.name
        for f in fields
    )
    hooks = hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__")
    code = getattr(cls.__init__, "__code__", None)
    own_init = "attrs generated" in getattr(code, "co_filename", "")
    slots = set(vars(cls).get("__slots__", ())) - {"__weakref__"}
    if not plain or hooks or not own_init or slots != {f.name for f in fields}:
        return call  # a hook, an __init__ of its own, or a slot __init__ sets beyond the fields
    lines = ["        record = _new(cls)"]
    env["_new"] = object.__new__
    for i, field in enumerate(fields):
        setter = vars(cls).get(field.name)
        if setter is None or not hasattr(setter, "__set__"):
            return call
        env[f"set{i}"] = setter.__set__
        if field.name in values:
            value = values[field.name]
        elif field.name == "extra":
            value = "extra"
        elif isinstance(field.default, _FACTORY):
            env[f"default{i}"] = field.default.factory
            value = f"default{i}()"
        elif field.default is attrs.NOTHING:
            return call  # a required field the table does not give: __init__ says so
        else:
            env[f"default{i}"] = field.default
            value = f"default{i}"
        lines.append(f"        set{i}(record, {value})")
    return [*lines, "        return record"]


def _inline(conv: Callable[[Any], Any], i: int, env: dict[str, Any]) -> str:
    """The first try at converting ``v``, inlined for the common converters.

    Each gives exactly what the converter gives for the values it accepts and
    raises for the rest, which then go to the converter itself: ``int()`` for
    integers, a table for 0/1 flags and for open vocabularies, and the
    documented UTC form for timestamps (as `~._convert.utc_datetime` reads it).
    """
    if conv is c.integer:
        return "int(v)"
    if conv is c.flag or conv is c.flag0:
        env["_FLAGS"] = _FLAGS
        return "_FLAGS[v]"
    if conv is c.utc_datetime:
        # Only the documented 19-character form: fromisoformat takes any character
        # between date and time, so "2026-11-20+00:00" would be a naive midnight.
        env["_fromiso"] = datetime.fromisoformat
        return f'_fromiso(v + "+00:00") if len(v) == 19 else conv{i}(v)'
    if isinstance(conv, c.Open):
        env[f"members{i}"] = conv.members
        return f"members{i}[v]"
    return f"conv{i}(v)"


def _sources(children: Children) -> dict[str, str]:
    """Each child's value as an expression over the template's groups ``g``."""
    sources: dict[str, str] = {}
    at = 0
    for child in children:
        if isinstance(child, str):
            sources[child] = f"g[{at}] or g[{at + 1}] or _unescape(g[{at + 2}])"
            at += 3
        else:
            name, leaves = child
            items = ", ".join(f"{leaf!r}: _leaf(g[{at + i}])" for i, leaf in enumerate(leaves))
            sources[name] = f"{{{items}}}"
            at += len(leaves)
    return sources


def _leaf(text: str | None) -> str:
    """A nested child's leaf as the element walk gives it: stripped, "" when empty."""
    return text.strip() if text else ""


def _kept(value: object) -> object:
    """An unknown field as kept in ``extra``: stripped text ("" when empty), or as parsed."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else value


def _missing(name: str, xml: str, fields: Fields) -> None:
    raise ParseError(f"a <{name}> record has no readable <{xml}> (got {fields.get(xml)!r})")
