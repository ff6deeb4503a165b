"""The expat side's helpers: the event queue, envelope errors, error positions."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as EtParseError

from ._errors import ApiError, HtmlPageError, NsightError, ParseError, api_error

Event = tuple[str, Element]


def take_events(
    pull: XMLPullParser[Element],
) -> tuple[Element | None, Event | None, Exception | None]:
    """Empty the parse-event queue; return its first element, last event and a syntax error.

    Only the root's start event and the last event are ever needed, and the
    queue would otherwise keep every element alive. XMLPullParser keeps it in
    ``_events_queue`` (a deque): peeking at its ends and clearing it is
    C-speed, where reading the events one by one cost a Python loop turn per
    element. ``feed`` queues a syntax error as the last item instead of raising it.
    """
    queue = getattr(pull, "_events_queue", None)
    if queue is None:  # pragma: no cover - another Python's XMLPullParser
        events: list[Any] = []
        try:
            events.extend(pull.read_events())
        except EtParseError as exc:
            return first_element(events), None, exc
        return first_element(events), (events[-1] if events else None), None
    if not queue:
        return None, None, None
    first = queue[0]
    last = queue[-1]
    queue.clear()
    if isinstance(last, Exception):
        return first_element([first]), None, last
    return first_element([first]), last, None


def first_element(events: list[Any]) -> Element | None:
    for event in events:
        if isinstance(event, tuple) and isinstance(event[-1], Element):
            return event[-1]
    return None


def envelope_error(children: object, service: str) -> ApiError:
    fields = children if isinstance(children, dict) else {}
    raw_code = fields.get("errorcode")
    message = fields.get("message")
    try:
        code = int(raw_code) if isinstance(raw_code, str) else None
    except ValueError:
        code = None
    return api_error(code, message if isinstance(message, str) else "", service=service)


def wrong_root(tag: str, roots: Collection[str], service: str) -> NsightError:
    """The error for a document whose root is not one the response may have."""
    if tag.lower() == "html":
        return HtmlPageError(
            f"{service}: the server answered an HTML page, not XML "
            "(a firewall, proxy or maintenance page)",
            service=service,
        )
    expected = " or ".join(f"<{r}>" for r in sorted(roots)) or "an XML"
    return ParseError(f"{service}: expected a {expected} document, got <{tag}>", service=service)


#: expat's codes for "the document ended too early": no element found (3),
#: unclosed token (5), partial character (6), unclosed CDATA section (20).
TRUNCATION_CODES = frozenset({3, 5, 6, 20})


class Lines:
    """Where expat's error positions are in the document, across text the scanner skipped."""

    def __init__(self) -> None:
        self.skipped = False
        self.line, self.col = 1, 0  # the document's position so far
        self.expat_line, self.expat_col = 1, 0  # expat's own count of what it read
        self.mark: tuple[int, int, int, int] | None = None  # both, where expat resumed

    def skip(self, text: str, start: int, end: int) -> None:
        """The scanner read ``text[start:end]``."""
        if end > start:
            self.line, self.col = advance(text, start, end, self.line, self.col)
            self.skipped, self.mark = True, None

    def expat(self, text: str, start: int, end: int) -> None:
        """Expat is about to read ``text[start:end]``."""
        if self.mark is None:
            self.mark = (self.expat_line, self.expat_col, self.line, self.col)
        self.line, self.col = advance(text, start, end, self.line, self.col)
        self.expat_line, self.expat_col = advance(text, start, end, self.expat_line, self.expat_col)

    def replay(self, text: str) -> None:
        """Expat reads ``text``, which the document had earlier (a head read without it)."""
        self.expat_line, self.expat_col = advance(text, 0, len(text), self.expat_line, 0)
        self.skipped, self.mark = True, None

    def located(self, exc: EtParseError) -> str:
        """Expat's message, with its position moved to where it is in the document."""
        message = str(exc)
        if not self.skipped:
            return message
        line, col = exc.position
        el, ec, dl, dc = self.mark or (self.expat_line, self.expat_col, self.line, self.col)
        if line < el:
            return message
        true = (dl + line - el, dc + col - ec if line == el else col)
        return message.replace(f"line {line}, column {col}", "line {}, column {}".format(*true))


def advance(text: str, start: int, end: int, line: int, col: int) -> tuple[int, int]:
    """The position after ``text[start:end]``, counting line ends as expat does: ``\r\n``,
    ``\n`` and a lone ``\r`` (a ``\r`` whose ``\n`` comes after ``end`` counts with it)."""
    newlines = text.count("\n", start, end)
    if text.find("\r", start, end) >= 0:
        stop = end - 1 if text.startswith("\r\n", end - 1) else end
        newlines += text.count("\r", start, stop) - text.count("\r\n", start, end)
        last = max(text.rfind("\n", start, end), text.rfind("\r", start, stop))
    elif newlines:
        last = text.rfind("\n", start, end)
    if newlines:
        return line + newlines, end - last - 1
    return line, col + end - start


def syntax_error(
    exc: EtParseError,
    service: str,
    *,
    head: bytes,
    root_seen: bool,
    truncated: bool,
    complete: int,
    fed: int,
    where: str,
) -> ParseError:
    """The ``ParseError`` for expat's syntax error: empty, not XML, cut off or malformed."""
    if not head.strip():
        return ParseError(f"{service}: the response body was empty", service=service)
    head = head.lstrip()
    if not root_seen and not head.startswith(b"<"):
        snippet = head[:60].decode("latin-1", "replace")
        return ParseError(
            f"{service}: the response is not XML (it starts with {snippet!r})", service=service
        )
    if truncated:
        return ParseError(
            f"{service}: the response was cut off after {fed} bytes "
            f"({complete} records were complete)",
            service=service,
        )
    return ParseError(
        f"{service}: malformed XML ({where}; the response is not a well-formed document)",
        service=service,
    )
