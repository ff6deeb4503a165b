"""The element side of the parser: walk expat's tree and build what completed.

Every child of an open element except the last is complete, so after each
feed the walk goes down the open spine only: complete records are built and
deleted, leaf children of contexts (a ``<client>``'s ``<id>`` and ``<name>``)
are collected as fields for the records inside them, and an ``<error>``
becomes the API's error. Where expat stops between records, the walk makes
the scanner that reads on (``scanner_after``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar
from xml.etree.ElementTree import Element

from ._expat import Event, envelope_error
from ._layout import ERROR, RECORD, Layout
from ._scan import Fields, LevelScanner, RecordBuilder
from ._tree import Repeated, element_value, record_fields

T = TypeVar("T")


class ElementWalk(Generic[T]):
    """Builds records from completed elements into ``out``; holds the contexts' fields."""

    def __init__(
        self,
        records: Mapping[tuple[str, ...], RecordBuilder[T]],
        kinds: dict[tuple[str, ...], int],
        containers: frozenset[tuple[str, ...]],
        service: str,
    ) -> None:
        self.records = records
        self.kinds = kinds
        self.containers = containers
        self.service = service
        self.out: list[T] = []
        self.root_fields: Fields = {}
        #: Each open context's fields by depth, with the element they belong to.
        self.context: dict[int, tuple[Element, Fields]] = {}

    def spine(self, root: Element) -> list[tuple[Element, tuple[str, ...], Fields]]:
        """The open elements the walk descends into, root first."""
        element: Element = root
        path: tuple[str, ...] = (root.tag,)
        spine: list[tuple[Element, tuple[str, ...], Fields]] = [(element, path, self.root_fields)]
        while len(element):
            child = element[-1]
            child_path = (*path, child.tag)
            if child_path not in self.containers:
                break
            element, path = child, child_path
            spine.append((element, path, self.fields_of(element, len(path))))
        return spine

    def walk(
        self,
        element: Element,
        path: tuple[str, ...],
        fields: Fields,
        ancestors: list[Fields],
        complete: bool,
    ) -> None:
        count = len(element)
        done = count if complete else count - 1
        if count == 0:
            return
        ancestors = [*ancestors, fields]
        for index in range(max(done, 0)):
            self.complete_child(element[index], path, fields, ancestors)
        if done > 0:
            del element[:done]
        if not complete:  # the last child is still open: descend into it if it matters
            child = element[-1]
            child_path = (*path, child.tag)
            if child_path in self.containers:
                held = self.fields_of(child, len(child_path))
                self.walk(child, child_path, held, ancestors, False)

    def complete_child(
        self, child: Element, path: tuple[str, ...], fields: Fields, ancestors: list[Fields]
    ) -> None:
        child_path = (*path, child.tag)
        kind = self.kinds.get(child_path, 0)
        if kind == RECORD:
            build = self.records[child_path].build
            self.out.append(build(child.tag, record_fields(child), ancestors))
        elif kind == ERROR:
            raise envelope_error(element_value(child), self.service)
        elif child_path in self.containers:  # <items>, or a context such as <client>
            held = self.fields_of(child, len(child_path))
            self.walk(child, child_path, held, ancestors, True)
        else:
            value = element_value(child)
            old = fields.get(child.tag)
            if old is None and child.tag not in fields:
                fields[child.tag] = value
            elif isinstance(old, Repeated):
                old.append(value)
            else:
                fields[child.tag] = Repeated((old, value))

    def scanner_after(
        self, root: Element | None, last: Event | None, layout: Layout
    ) -> LevelScanner[T] | None:
        """A scanner for the records that may follow, if expat stopped between records."""
        if last is None or root is None:
            return None
        spine = self.spine(root)
        parent, path, fields = spine[-1]
        builders = layout.levels.get(path)
        if builders is None:
            return None
        ancestors = [f for _, _, f in spine]
        event, element = last
        if event == "end":  # a record just closed: the walk left it, thinking it open
            if len(parent) == 0 or parent[-1] is not element or element.tag not in builders:
                return None
            self.complete_child(element, path, fields, ancestors)
            del parent[-1]
        elif element is not parent:
            return None
        return LevelScanner(builders, ancestors, layout.learned.setdefault(path, []))

    def fields_of(self, element: Element, depth: int) -> Fields:
        held = self.context.get(depth)
        if held is None or held[0] is not element:
            held = (element, {})
            self.context[depth] = held
        return held[1]
