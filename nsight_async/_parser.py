"""A sans-I/O incremental parser for N-sight XML responses.

Feed it the body's **bytes** as they arrive; :meth:`StreamParser.feed` returns
the records completed so far (an empty list means "need more data") and
:meth:`StreamParser.close` finishes the document, raising if it is incomplete.
It imports neither httpx nor asyncio.

Expat tokenizes and honours the declared encoding (ISO-8859-1 for
``patch_list_all``, UTF-8 elsewhere), and ElementTree's C tree builder makes
the elements: calling back into Python for every element was most of the
cost of a pure expat-handler parser. After each feed the parser walks only the
open spine of the tree: every child of an open element except the last is
complete, so complete records are built, handed out and deleted. Memory stays
flat however long the document is.

A :class:`Shape` says which element paths are records, which are context
(the client and site around a ``list_devices_at_client`` device) and what to
build from the root's own children at the end (an action's ``<msg>``).

Errors follow h11's rule: once the parser has failed, every later call raises
the same error. Records completed before an error are returned first and the
error is raised by the next call, so nothing already received is lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as _EtParseError

import attrs

from ._convert import lenient_timestamp
from ._errors import ActionFailedError, ApiError, HtmlPageError, NsightError, ParseError, api_error
from ._prolog import PrologGuard
from ._tree import Repeated, element_value, record_fields

T = TypeVar("T")

Fields = dict[str, Any]
#: Builds a record from the element's name, its children as a dict, and the
#: collected leaf children of every open ancestor (index = depth - 1).
RecordBuilder = Callable[[str, Fields, list[Fields]], T]
#: Builds the results found only at the end (an action's ``<msg>``, a description).
Finisher = Callable[[str, Fields, Mapping[str, str], bytes], list[T]]

_SLICE = 8 * 1024
_RECORD = 1
_CONTEXT = 2
_ERROR = 3


@attrs.frozen(kw_only=True, eq=False)  # hashed by identity: its layout is cached per shape
class Shape(Generic[T]):
    """What one response shape looks like: its roots, records and context."""

    roots: frozenset[str]
    records: Mapping[tuple[str, ...], RecordBuilder[T]] = attrs.field(factory=dict)
    contexts: frozenset[tuple[str, ...]] = frozenset()
    finish: Finisher[T] | None = None
    keep_bytes: bool = False  # the generic dict view re-reads the whole (small) document


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


class StreamParser(Generic[T]):
    """Incremental parser: ``feed(bytes) -> records``, ``close() -> records``."""

    def __init__(self, shape: Shape[T], *, service: str) -> None:
        self.service = service
        self.envelope: Envelope | None = None
        self.records_emitted = 0
        self.bytes_fed = 0
        self._shape = shape
        self._kinds, self._containers = _layout(shape)
        self._pull: XMLPullParser[Element] = XMLPullParser(events=("start",))
        self._guard = PrologGuard(service)
        self._root: Element | None = None
        self._root_fields: Fields = {}
        self._context: dict[int, tuple[Element, Fields]] = {}
        self._kept: list[bytes] | None = [] if shape.keep_bytes else None
        self._out: list[T] = []
        self._error: NsightError | None = None
        self._closed = False

    def feed(self, data: bytes) -> list[T]:
        """Parse more bytes; return the records they completed (maybe none)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise RuntimeError("feed() after close()")
        self.bytes_fed += len(data)
        if self._kept is not None:
            self._kept.append(data)
        if len(data) <= _SLICE:
            return self._step(data, final=False)
        # Parse in slices: the elements of one slice are freed before the next is
        # parsed, so fewer than the garbage collector's 700-allocation threshold
        # are ever alive at once. Fed whole, a 64 KiB chunk triggered ~1,100
        # collections per 20 MB; sliced, one (and 20% less CPU).
        out: list[T] = []
        for start in range(0, len(data), _SLICE):
            try:
                out += self._step(data[start : start + _SLICE], final=False)
            except NsightError:
                if not out:
                    raise
            if self._error is not None:
                break  # records first; the error is raised by the next call
        return out

    def close(self) -> list[T]:
        """Finish the document; return the last records or raise if it is incomplete."""
        if self._error is not None:
            raise self._error
        if self._closed:
            return []
        self._closed = True
        return self._step(b"", final=True)

    # -- machinery --------------------------------------------------------

    def _step(self, data: bytes, *, final: bool) -> list[T]:
        try:
            try:
                if not self._guard.done:
                    self._guard.feed(data, final=final)
                    if not self._guard.done and not final:
                        # Nothing reaches expat before the prolog is cleared, so where
                        # the body was split cannot change which error is raised.
                        return []
                    data = self._guard.head  # everything held back so far
                if data:
                    self._pull.feed(data)
                if final:
                    self._pull.close()
            finally:
                self._drain(final=False)
            if final:
                self._finish()
        except NsightError as exc:
            if exc.service is None:  # raised by a record builder, which knows no service
                exc.service = self.service
                exc.message = f"{self.service}: {exc.message}"
                exc.args = (exc.message,)
            self._error = exc
        except _EtParseError as exc:
            self._error = self._syntax_error(exc, final=final)
        except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
            # A record the builders could not read: still a typed error, never a crash.
            self._error = ParseError(
                f"{self.service}: unreadable record ({type(exc).__name__}: {exc})",
                service=self.service,
            )
        out, self._out = self._out, []
        self.records_emitted += len(out)
        if self._error is not None:
            self._error.records_yielded = self.records_emitted
            if not out:
                raise self._error
        return out

    def _drain(self, *, final: bool) -> None:
        first, error = _take_events(self._pull)
        if self._root is None and first is not None:
            self._start_root(first)
        if self._root is not None:
            # Records completed before a syntax error still come out first.
            self._walk(self._root, (self._root.tag,), self._root_fields, [], final)
        if error is not None:
            raise error

    def _walk(
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
            self._complete_child(element[index], path, fields, ancestors)
        if done > 0:
            del element[:done]
        if not complete:  # the last child is still open: descend into it if it matters
            child = element[-1]
            child_path = (*path, child.tag)
            if child_path in self._containers:
                held = self._fields_of(child, len(child_path))
                self._walk(child, child_path, held, ancestors, False)

    def _complete_child(
        self, child: Element, path: tuple[str, ...], fields: Fields, ancestors: list[Fields]
    ) -> None:
        child_path = (*path, child.tag)
        kind = self._kinds.get(child_path, 0)
        if kind == _RECORD:
            build = self._shape.records[child_path]
            self._out.append(build(child.tag, record_fields(child), ancestors))
        elif kind == _ERROR:
            raise _envelope_error(element_value(child), self.service)
        elif child_path in self._containers:  # <items>, or a context such as <client>
            held = self._fields_of(child, len(child_path))
            self._walk(child, child_path, held, ancestors, True)
        else:
            value = element_value(child)
            old = fields.get(child.tag)
            if old is None and child.tag not in fields:
                fields[child.tag] = value
            elif isinstance(old, Repeated):
                old.append(value)
            else:
                fields[child.tag] = Repeated((old, value))

    def _fields_of(self, element: Element, depth: int) -> Fields:
        held = self._context.get(depth)
        if held is None or held[0] is not element:
            held = (element, {})
            self._context[depth] = held
        return held[1]

    def _start_root(self, root: Element) -> None:
        if root.tag not in self._shape.roots:
            if root.tag.lower() == "html":
                raise HtmlPageError(
                    f"{self.service}: the server answered an HTML page, not XML "
                    "(a firewall, proxy or maintenance page)",
                    service=self.service,
                )
            expected = " or ".join(f"<{r}>" for r in sorted(self._shape.roots)) or "an XML"
            raise ParseError(
                f"{self.service}: expected a {expected} document, got <{root.tag}>",
                service=self.service,
            )
        self._root = root
        self.envelope = Envelope(root=root.tag, attributes=dict(root.attrib))

    def _finish(self) -> None:
        self._drain(final=True)
        if self._root is not None:
            self._walk(self._root, (self._root.tag,), self._root_fields, [], True)
        envelope = self.envelope
        if envelope is None:
            raise ParseError(f"{self.service}: the response body was empty", service=self.service)
        if (envelope.status or "").upper() == "FAIL":
            msg = self._root_fields.get("msg")
            if isinstance(msg, str) and msg:
                raise ActionFailedError(
                    f"{self.service}: the action failed: {msg}", service=self.service
                )
            raise ApiError(f"{self.service}: the API answered FAIL", service=self.service)
        if self._shape.finish is not None:
            body = b"".join(self._kept) if self._kept is not None else b""
            self._out.extend(
                self._shape.finish(envelope.root, self._root_fields, envelope.attributes, body)
            )

    def _syntax_error(self, exc: _EtParseError, *, final: bool) -> ParseError:
        if not self._guard.head.strip():
            return ParseError(f"{self.service}: the response body was empty", service=self.service)
        head = self._guard.head.lstrip()
        if self._root is None and not head.startswith(b"<"):
            snippet = head[:60].decode("latin-1", "replace")
            return ParseError(
                f"{self.service}: the response is not XML (it starts with {snippet!r})",
                service=self.service,
            )
        if final and exc.code in _TRUNCATION_CODES:
            return ParseError(
                f"{self.service}: the response was cut off after {self.bytes_fed} bytes "
                f"({self.records_emitted + len(self._out)} records were complete)",
                service=self.service,
            )
        return ParseError(
            f"{self.service}: malformed XML ({exc}; the response is not a well-formed document)",
            service=self.service,
        )


@functools.lru_cache(maxsize=256)
def _layout(shape: Shape[Any]) -> tuple[dict[tuple[str, ...], int], frozenset[tuple[str, ...]]]:
    """Each special path's kind, and the paths records live under (once per shape)."""
    kinds: dict[tuple[str, ...], int] = dict.fromkeys(shape.records, _RECORD)
    kinds.update(dict.fromkeys(shape.contexts, _CONTEXT))
    for root in {"result", *shape.roots}:
        kinds[(root, "error")] = _ERROR
    containers = {path[:i] for path in kinds for i in range(1, len(path))} | shape.contexts
    return kinds, frozenset(containers)


def _take_events(pull: XMLPullParser[Element]) -> tuple[Element | None, Exception | None]:
    """Empty the parse-event queue; return its first element and a queued syntax error.

    Only the root's start event is ever needed, and the queue would otherwise
    keep every element alive. XMLPullParser keeps it in ``_events_queue`` (a
    deque): peeking at its ends and clearing it is C-speed, where reading the
    events one by one cost a Python loop turn per element. ``feed`` queues a
    syntax error as the last item instead of raising it.
    """
    queue = getattr(pull, "_events_queue", None)
    if queue is None:  # pragma: no cover - another Python's XMLPullParser
        events: list[Any] = []
        try:
            events.extend(pull.read_events())
        except _EtParseError as exc:
            return _first_element(events), exc
        return _first_element(events), None
    if not queue:
        return None, None
    first = queue[0]
    last = queue[-1]
    queue.clear()
    error = last if isinstance(last, Exception) else None
    return _first_element([first]), error


def _first_element(events: list[Any]) -> Element | None:
    for event in events:
        if isinstance(event, tuple) and isinstance(event[-1], Element):
            return event[-1]
    return None


def _envelope_error(children: object, service: str) -> ApiError:
    fields = children if isinstance(children, dict) else {}
    raw_code = fields.get("errorcode")
    message = fields.get("message")
    try:
        code = int(raw_code) if isinstance(raw_code, str) else None
    except ValueError:
        code = None
    return api_error(code, message if isinstance(message, str) else "", service=service)


#: expat's codes for "the document ended too early": no element found (3),
#: unclosed token (5), partial character (6), unclosed CDATA section (20).
_TRUNCATION_CODES = frozenset({3, 5, 6, 20})
