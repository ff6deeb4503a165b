"""A sans-I/O incremental parser for N-sight XML responses.

Feed it the body's **bytes** as they arrive; :meth:`StreamParser.feed` returns
the records completed so far (an empty list means "need more data") and
:meth:`StreamParser.close` finishes the document, raising if it is incomplete.
It imports neither httpx nor asyncio.

Expat tokenizes and honours the declared encoding (ISO-8859-1 for
``patch_list_all``, UTF-8 elsewhere), and ElementTree's C tree builder makes
the elements; after each feed the walk (``_walk``) goes down the tree's open
spine only, builds the records that completed and deletes them. Memory stays
flat however long the document is.

Between records, a :class:`~nsight_async._scan.LevelScanner` reads the
simple ones straight from the decoded text, so most records never become
elements at all; expat reads everything else (contexts, errors and any
record the scanner does not read exactly), and the scanner takes over again
at the next place where records start. A simple envelope (``_head``: the
head, each move from one run of records to the next such as a listing's
``</site><site><id>…``, and the end) is read without expat too, and fed to it
only if something else needs it. A head, record or move that the end of a
feed cut short is kept for the next feed (at most ``MAX_HOLD`` characters,
``MAX_HOLDS`` feeds in a row), so a plain response, however it arrives (unless a
feed ends inside the root's start tag), never creates an expat parser at all.

A :class:`Shape` says which element paths are records, which are context
(the client and site around a ``list_devices_at_client`` device) and what to
build from the root's own children at the end (an action's ``<msg>``).

Errors follow h11's rule: once the parser has failed, every later call raises
the same error. Records completed before an error are returned first and the
error is raised by the next call, so nothing already received is lost.
"""

from __future__ import annotations

import codecs
from typing import Generic, Literal, TypeVar
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as _EtParseError

from ._errors import ActionFailedError, ApiError, NsightError, ParseError
from ._expat import TRUNCATION_CODES, Event, Lines, syntax_error, take_events, wrong_root
from ._head import MAX_TAIL, Head, Move, Opened, cut_short, read_head, read_move, tail_state
from ._layout import Envelope, Finisher, Shape, layout
from ._prolog import PrologGuard
from ._scan import Fields, LevelScanner, RecordBuilder, codec_of, decoder
from ._walk import ElementWalk

T = TypeVar("T")
__all__ = ["Envelope", "Fields", "Finisher", "RecordBuilder", "Shape", "StreamParser"]

_SLICE = 8 * 1024
#: The most text kept back for the next feed when a record or a move between
#: records was cut by the end of a feed, and how many feeds in a row may add to
#: it without the scanner reading on (a server trickling bytes goes to expat).
MAX_HOLD = 16 * 1024
MAX_HOLDS = 4


class StreamParser(Generic[T]):
    """Incremental parser: ``feed(bytes) -> records``, ``close() -> records``.

    ``scan=False`` reads every record through expat's elements (the scanner's
    reference, for differential tests); the results are the same either way.
    """

    def __init__(self, shape: Shape[T], *, service: str, scan: bool = True) -> None:
        self.service = service
        self.envelope: Envelope | None = None
        self.records_emitted = 0
        #: The records ``close`` completed before the error it raised (see `close`).
        self.before_error: list[T] = []
        self.bytes_fed = 0
        self._shape = shape
        self._layout = layout(shape)
        scans = scan and self._layout.boundary is not None
        self._scans = scans
        self._pull: XMLPullParser[Element] | None = None  # made when first needed
        self._guard = PrologGuard(service)
        self._root: Element | None = None
        self._tree: ElementWalk[T] = ElementWalk(
            shape.records, self._layout.kinds, self._layout.containers, service
        )
        self._root_fields = self._tree.root_fields
        self._kept: list[bytes] | None = [] if shape.keep_bytes else None
        self._out = self._tree.out  # shared: the walk and the scanner build into it
        self._error: NsightError | None = None
        self._closed = False
        # The text route (set once the prolog is read): decoded text not yet read.
        self._codec: str | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._text = ""
        self._pos = 0
        self._scanner: LevelScanner[T] | None = None
        self._lines = Lines()
        # A head read without expat (see _head): fed to expat only if it is needed.
        self._lazy: Opened | None = None
        self._tried_lazy = False
        self._holds = 0  # feeds in a row that ended holding text back (see MAX_HOLD)
        self._expat_free = False  # the whole document was read without expat

    @property
    def failed(self) -> bool:
        """Whether an error is pending (raised by the next feed or close)."""
        return self._error is not None

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
        """Finish the document; return the last records or raise if it is incomplete.

        Nothing comes after ``close``, so an error it finds is raised at once, even
        after records it completed on the way (the end of a FAIL envelope that
        holds records, records expat finishes before a truncated end): those are
        left in ``before_error``, for a caller that hands on every record first.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            return []
        self._closed = True
        records = self._step(b"", final=True)
        if self._error is not None:
            self.before_error = records
            raise self._error
        return records

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
                if not self._expat_free:
                    if self._lazy is not None:
                        self._replay()
                    try:
                        self._expat().close()
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
            self._error = syntax_error(
                exc,
                self.service,
                head=self._guard.head,
                root_seen=self._root is not None,
                truncated=final and exc.code in TRUNCATION_CODES,
                complete=self.records_emitted + len(self._out),
                fed=self.bytes_fed,
                where=self._lines.located(exc),
            )
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
        out = self._out[:]
        self._out.clear()
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
            if not self._tried_lazy:
                head = read_head(text, self._layout.paths)
                if head is not None and head.root not in self._shape.roots:
                    head = None  # expat reads it, and says what it is (an HTML page)
                if head is not None and head.stopped is not None:
                    if self._hold(text, 0, head.stopped, final):
                        self.envelope = Envelope(root=head.root, attributes=head.attributes)
                        return  # the head cut by the end of the feed: read it with the rest
                    head = None
                self._tried_lazy = True
                if head is not None:
                    pos = self._start_without_expat(text, head)
            while True:
                if self._scanner is not None:
                    start = pos
                    pos = self._scanner.scan(text, pos, self._out)
                    self._lines.skip(text, start, pos)
                    if pos > start:
                        self._holds = 0
                    if self._lazy is not None:  # expat unneeded so far: what comes next?
                        closed = tail_state(text, pos, self._lazy.path)
                        if closed and final:
                            self._lines.skip(text, pos, len(text))
                            pos, self._expat_free = len(text), True
                            break
                        if closed is not None and not final and len(text) - pos <= MAX_TAIL:
                            break  # the end tags (or part of them): wait for the rest
                        move = read_move(text, pos, self._lazy.path, self._layout.paths)
                        if isinstance(move, Move):
                            pos = self._moved(text, pos, move)
                            continue
                        if self._hold(text, pos, move, final):
                            break  # a record or a move cut by the end of the feed
                    self._scanner = None
                found = find(text, pos)
                if found is None:
                    if len(text) > pos:
                        self._expat_reads(text, pos, len(text))
                        pos = len(text)
                    break
                start, end = found.span()
                if start > pos:
                    self._expat_reads(text, pos, start)
                # The boundary token alone must make expat's event. Inside a comment,
                # a CDATA section, a processing instruction or a tag whose attribute
                # holds ">", it makes none, and the scanner must not read what
                # expat is not reading as markup.
                last = self._expat_reads(text, start, end)
                pos = end
                self._scanner = self._tree.scanner_after(self._root, last, self._layout)
        finally:
            self._text, self._pos = text, pos

    def _start_without_expat(self, text: str, head: Head) -> int:
        """Start the scanner after a simple head (see ``_head``); return where it ended."""
        self.envelope = Envelope(root=head.root, attributes=head.attributes)
        fields = [self._root_fields, *head.fields]
        self._lazy = Opened(text[: head.root_end], head.path, fields)
        self._lines.skip(text, 0, head.end)
        self._scanner = self._level_scanner(head.path, fields)
        return head.end

    def _level_scanner(self, path: tuple[str, ...], ancestors: list[Fields]) -> LevelScanner[T]:
        learned = self._layout.learned.setdefault(path, [])
        return LevelScanner(self._layout.levels[path], ancestors, learned)

    def _moved(self, text: str, pos: int, move: Move) -> int:
        """Step from one run of records to the next without expat (see ``read_move``)."""
        assert self._lazy is not None
        self._lazy.take(move)
        self._lines.skip(text, pos, move.end)
        self._scanner = self._level_scanner(move.path, self._lazy.fields)
        self._holds = 0
        return move.end

    def _hold(self, text: str, pos: int, stop: int, final: bool) -> bool:
        """Whether to keep ``text[pos:]`` for the next feed: a head, record or move that
        reading without expat stopped in at ``stop`` because the feed ended there."""
        if final or len(text) - pos > MAX_HOLD or self._holds >= MAX_HOLDS:
            return False
        records = self._layout.levels[self._lazy.path] if self._lazy is not None else ()
        if not cut_short(text, pos, stop, records):
            return False  # something else (an error, a comment): expat reads it now
        self._holds += 1
        return True

    def _replay(self) -> None:
        """Feed expat what was read without it (see ``Opened.replayed``); adopt the fields."""
        assert self._lazy is not None
        assert self._codec is not None
        lazy, self._lazy = self._lazy, None
        replayed = lazy.replayed()
        self._lines.replay(replayed)
        self._feed(replayed.encode(self._codec))
        element = self._root
        for depth, fields in enumerate(lazy.fields[1:], start=2):
            if element is None or not len(element):
                break
            element = element[-1]
            self._tree.context[depth] = (element, fields)

    def _expat(self) -> XMLPullParser[Element]:
        if self._pull is None:
            events: tuple[Literal["start", "end"], ...] = ("start",)
            if self._scans:
                events = ("start", "end")
            self._pull = XMLPullParser(events=events)
        return self._pull

    def _expat_reads(self, text: str, start: int, end: int) -> Event | None:
        if self._lazy is not None:
            self._replay()
        assert self._codec is not None
        self._lines.expat(text, start, end)
        return self._feed(text[start:end].encode(self._codec))

    def _to_expat(self, data: bytes) -> Event | None:
        """Feed expat (after the head it has not seen yet); return the last parse event."""
        if self._lazy is not None:
            self._replay()
        return self._feed(data)

    def _feed(self, data: bytes) -> Event | None:
        """Feed expat in slices; return the last parse event.

        The elements of one slice are freed before the next is parsed, so fewer
        than the garbage collector's 700-allocation threshold are ever alive at
        once. Fed whole, a 64 KiB chunk triggered ~1,100 collections per 20 MB.
        """
        last = None
        pull = self._expat()
        for start in range(0, len(data), _SLICE):
            pull.feed(data[start : start + _SLICE])
            last = self._drain()
        return last

    def _drain(self) -> Event | None:
        if self._pull is None:
            return None
        first, last, error = take_events(self._pull)
        if self._root is None and first is not None:
            self._start_root(first)
        if self._root is not None:
            # Records completed before a syntax error still come out first.
            self._tree.walk(self._root, (self._root.tag,), self._root_fields, [], False)
        if error is not None:
            raise error
        return last

    def _start_root(self, root: Element) -> None:
        if root.tag not in self._shape.roots:
            raise wrong_root(root.tag, self._shape.roots, self.service)
        self._root = root
        self.envelope = Envelope(root=root.tag, attributes=dict(root.attrib))

    def _finish(self) -> None:
        if self._root is not None:
            self._tree.walk(self._root, (self._root.tag,), self._root_fields, [], True)
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
