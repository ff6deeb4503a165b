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

Between records, a :class:`~nsight_async._scan.LevelScanner` reads the
simple ones straight from the decoded text, so most records never become
elements at all; expat reads everything else (the prolog, the envelope,
contexts, errors and any record the scanner does not read exactly), and
takes over again at the next place where records start (see ``_scan``).

A :class:`Shape` says which element paths are records, which are context
(the client and site around a ``list_devices_at_client`` device) and what to
build from the root's own children at the end (an action's ``<msg>``).

Errors follow h11's rule: once the parser has failed, every later call raises
the same error. Records completed before an error are returned first and the
error is raised by the next call, so nothing already received is lost.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any, Generic, TypeVar
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as _EtParseError

import attrs

from ._convert import lenient_timestamp
from ._errors import ActionFailedError, ApiError, HtmlPageError, NsightError, ParseError
from ._expat import TRUNCATION_CODES, Event, Lines, envelope_error, take_events
from ._layout import ERROR, RECORD, Finisher, Shape, layout
from ._prolog import PrologGuard
from ._scan import Fields, LevelScanner, RecordBuilder, codec_of, decoder
from ._tree import Repeated, element_value, record_fields

T = TypeVar("T")
__all__ = ["Envelope", "Fields", "Finisher", "RecordBuilder", "Shape", "StreamParser"]

_SLICE = 8 * 1024


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
    """Incremental parser: ``feed(bytes) -> records``, ``close() -> records``.

    ``scan=False`` reads every record through expat's elements (the scanner's
    reference, for differential tests); the results are the same either way.
    """

    def __init__(self, shape: Shape[T], *, service: str, scan: bool = True) -> None:
        self.service = service
        self.envelope: Envelope | None = None
        self.records_emitted = 0
        self.bytes_fed = 0
        self._shape = shape
        self._layout = layout(shape)
        self._kinds, self._containers = self._layout.kinds, self._layout.containers
        scans = scan and self._layout.boundary is not None
        self._scans = scans
        self._pull: XMLPullParser[Element] = XMLPullParser(
            events=("start", "end") if scans else ("start",)
        )
        self._guard = PrologGuard(service)
        self._root: Element | None = None
        self._root_fields: Fields = {}
        self._context: dict[int, tuple[Element, Fields]] = {}
        self._kept: list[bytes] | None = [] if shape.keep_bytes else None
        self._out: list[T] = []
        self._error: NsightError | None = None
        self._closed = False
        # The text route (set once the prolog is read): decoded text not yet read.
        self._codec: str | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._text = ""
        self._pos = 0
        self._scanner: LevelScanner[T] | None = None
        self._lines = Lines()

    def feed(self, data: bytes) -> list[T]:
        """Parse more bytes; return the records they completed (maybe none)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise RuntimeError("feed() after close()")
        self.bytes_fed += len(data)
        if self._kept is not None:
            self._kept.append(data)
        return self._step(data, final=False)

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
            if not self._guard.done:
                self._guard.feed(data, final=final)
                if not self._guard.done and not final:
                    # Nothing reaches expat before the prolog is cleared, so where
                    # the body was split cannot change which error is raised.
                    return []
                data = self._guard.head  # everything held back so far
                if self._scans and self._guard.done:
                    self._codec = codec_of(data)
                    self._decoder = decoder(self._codec) if self._codec else None
            if self._decoder is not None:
                self._read_text(data, final)
            elif data:
                self._to_expat(data)
            if final:
                try:
                    self._pull.close()
                finally:
                    self._drain()
                self._finish()
        except NsightError as exc:
            if exc.service is None:  # raised by a record builder, which knows no service
                exc.service = self.service
                exc.message = f"{self.service}: {exc.message}"
                exc.args = (exc.message,)
            self._error = exc
        except _EtParseError as exc:
            self._error = self._syntax_error(exc, final=final)
        except (
            ValueError,
            TypeError,
            LookupError,
            AttributeError,
            ArithmeticError,
            RecursionError,
        ) as exc:
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

    def _read_text(self, data: bytes, final: bool) -> None:
        """Decode, then alternate: the scanner reads records, expat the rest."""
        assert self._decoder is not None
        assert self._codec is not None
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            # Not valid text: expat reads the rest as bytes and reports where.
            rest = self._text[self._pos :].encode(self._codec) + pending + data
            self._decoder, self._scanner, self._text, self._pos = None, None, "", 0
            self._to_expat(rest)
            return
        text = self._text[self._pos :] + text if self._pos < len(self._text) else text
        pos = 0
        find = self._layout.boundary.search  # type: ignore[union-attr]  # set when decoding
        try:
            while True:
                if self._scanner is not None:
                    start = pos
                    pos = self._scanner.scan(text, pos, self._out)
                    self._lines.skip(text, start, pos)
                    self._scanner = None
                found = find(text, pos)
                if found is None:
                    if len(text) > pos:
                        self._lines.expat(text, pos, len(text))
                        self._to_expat(text[pos:].encode(self._codec))
                        pos = len(text)
                    break
                start, end = found.span()
                self._lines.expat(text, pos, end)
                if start > pos:
                    self._to_expat(text[pos:start].encode(self._codec))
                # The boundary token alone must make expat's event. Inside a comment,
                # a CDATA section, a processing instruction or a tag whose attribute
                # holds ">", it makes none, and the scanner must not read what
                # expat is not reading as markup.
                last = self._to_expat(text[start:end].encode(self._codec))
                pos = end
                self._scanner = self._scanner_after(last)
        finally:
            self._text, self._pos = text, pos

    def _to_expat(self, data: bytes) -> Event | None:
        """Feed expat in slices; return the last parse event.

        The elements of one slice are freed before the next is parsed, so fewer
        than the garbage collector's 700-allocation threshold are ever alive at
        once. Fed whole, a 64 KiB chunk triggered ~1,100 collections per 20 MB.
        """
        last = None
        for start in range(0, len(data), _SLICE):
            self._pull.feed(data[start : start + _SLICE])
            last = self._drain()
        return last

    def _drain(self) -> Event | None:
        first, last, error = take_events(self._pull)
        if self._root is None and first is not None:
            self._start_root(first)
        if self._root is not None:
            # Records completed before a syntax error still come out first.
            self._walk(self._root, (self._root.tag,), self._root_fields, [], False)
        if error is not None:
            raise error
        return last

    def _scanner_after(self, last: Event | None) -> LevelScanner[T] | None:
        """A scanner for the records that may follow, if expat stopped between records."""
        if last is None or self._root is None:
            return None
        spine = self._spine()
        parent, path, fields = spine[-1]
        builders = self._layout.levels.get(path)
        if builders is None:
            return None
        ancestors = [f for _, _, f in spine]
        event, element = last
        if event == "end":  # a record just closed: the walk left it, thinking it open
            if len(parent) == 0 or parent[-1] is not element or element.tag not in builders:
                return None
            self._complete_child(element, path, fields, ancestors)
            del parent[-1]
        elif element is not parent:
            return None
        return LevelScanner(builders, ancestors, self._layout.learned.setdefault(path, []))

    def _spine(self) -> list[tuple[Element, tuple[str, ...], Fields]]:
        """The open elements the walk descends into, root first."""
        assert self._root is not None
        element: Element = self._root
        path: tuple[str, ...] = (self._root.tag,)
        spine: list[tuple[Element, tuple[str, ...], Fields]] = [(element, path, self._root_fields)]
        while len(element):
            child = element[-1]
            child_path = (*path, child.tag)
            if child_path not in self._containers:
                break
            element, path = child, child_path
            spine.append((element, path, self._fields_of(element, len(path))))
        return spine

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
        if kind == RECORD:
            build = self._shape.records[child_path].build
            self._out.append(build(child.tag, record_fields(child), ancestors))
        elif kind == ERROR:
            raise envelope_error(element_value(child), self.service)
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
        if final and exc.code in TRUNCATION_CODES:
            return ParseError(
                f"{self.service}: the response was cut off after {self.bytes_fed} bytes "
                f"({self.records_emitted + len(self._out)} records were complete)",
                service=self.service,
            )
        return ParseError(
            f"{self.service}: malformed XML ({self._lines.located(exc)}; "
            "the response is not a well-formed document)",
            service=self.service,
        )
