"""What a response looks like: which element paths are records, contexts, errors.

A :class:`Shape` is declared once per response shape (``_shapes``); its
:class:`Layout` (the paths worked out, and where the scanner may take over)
is computed once per shape and cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._convert import lenient_timestamp
from ._head import Paths
from ._scan import Fields, RecordBuilder, Template, boundary

T = TypeVar("T")
#: Builds the results found only at the end (an action's ``<msg>``, a description).
Finisher = Callable[[str, Fields, Mapping[str, str], bytes], list[T]]

RECORD = 1
CONTEXT = 2
ERROR = 3


@attrs.frozen(kw_only=True, eq=False)  # hashed by identity: its layout is cached per shape
class Shape(Generic[T]):
    """What one response shape looks like: its roots, records and context."""

    roots: frozenset[str]
    records: Mapping[tuple[str, ...], RecordBuilder[T]] = attrs.field(factory=dict)
    contexts: frozenset[tuple[str, ...]] = frozenset()
    finish: Finisher[T] | None = None
    keep_bytes: bool = False  # the generic dict view re-reads the whole (small) document


@attrs.frozen(eq=False)
class Layout:
    """A shape's paths, worked out once: kinds, containers, record levels, scanner re-entry."""

    kinds: dict[tuple[str, ...], int]
    containers: frozenset[tuple[str, ...]]
    levels: dict[tuple[str, ...], dict[str, RecordBuilder[Any]]]
    boundary: re.Pattern[str] | None
    #: The same paths as predicates, for reading the envelope without expat (``_head``).
    paths: Paths
    #: Templates the scanners of each level learned, shared by every response of the shape.
    learned: dict[tuple[str, ...], list[Template[Any]]] = attrs.field(factory=dict)


@functools.lru_cache(maxsize=256)
def layout(shape: Shape[Any]) -> Layout:
    kinds: dict[tuple[str, ...], int] = dict.fromkeys(shape.records, RECORD)
    kinds.update(dict.fromkeys(shape.contexts, CONTEXT))
    for root in {"result", *shape.roots}:
        kinds[(root, "error")] = ERROR
    containers = {path[:i] for path in kinds for i in range(1, len(path))} | shape.contexts
    levels: dict[tuple[str, ...], dict[str, RecordBuilder[Any]]] = {}
    for path, build in shape.records.items():
        levels.setdefault(path[:-1], {})[path[-1]] = build
    found = boundary({p[-1] for p in shape.records}, {p[-1] for p in levels}) if levels else None
    frozen = frozenset(containers)
    paths = Paths(levels.__contains__, frozen.__contains__, kinds.__contains__)
    return Layout(kinds, frozen, levels, found, paths)


@attrs.frozen(kw_only=True)
class Envelope:
    """The root element's name and attributes (``status``, ``created``, ``host``)."""

    root: str
    attributes: Mapping[str, str]

    @property
    def status(self) -> str | None:
        """``OK``, ``FAIL`` or ``None`` (``patch_list_all`` has no status)."""
        return self.attributes.get("status")

    @property
    def created(self) -> Any:
        """The ``created`` timestamp, parsed leniently (``None`` if unreadable)."""
        return lenient_timestamp(self.attributes.get("created"))
