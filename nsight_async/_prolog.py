"""Refuse DOCTYPE declarations before the parser ever sees them.

A DOCTYPE can declare entities that expand without bound (the "billion
laughs"). N-sight never sends one, so any document that declares one is
refused, and an HTML page (``<!DOCTYPE html>``, from a firewall or proxy) is
named as such. The guard reads only the prolog, token by token from the
start (whitespace, a byte-order mark, the XML declaration, comments,
processing instructions) until the root element's start tag.
"""

from __future__ import annotations

import re

from ._errors import ForbiddenXmlError, HtmlPageError, ParseError

_TOKEN = re.compile(
    rb"(?P<skip>\s+|\xef\xbb\xbf|<!--.*?-->|<\?.*?\?>)"
    rb"|<!(?P<doctype>[Dd][Oo][Cc][Tt][Yy][Pp][Ee])\s+(?P<name>[^\s>\[]*)(?=[\s>\[])"
    rb"|(?P<root><[A-Za-z_:])",
    re.DOTALL,
)
_MAX_PROLOG = 64 * 1024


class PrologGuard:
    """Watch the prolog for a DOCTYPE; ``done`` once the root element has started."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.done = False
        self.head = b""
        self._pos = 0

    def feed(self, data: bytes, *, final: bool = False) -> None:
        """Read more of the prolog; raise if it declares a DOCTYPE."""
        self.head += data
        while not self.done:
            token = _TOKEN.match(self.head, self._pos)
            if token is None:
                break  # an incomplete token, or something expat will reject
            if token.group("root"):
                self.done = True
            elif token.group("doctype"):
                self._refuse(token.group("name").decode("latin-1", "replace"))
            else:
                self._pos = token.end()
        if not self.done and len(self.head) - self._pos > _MAX_PROLOG:
            raise ParseError(
                f"{self.service}: no root element in the first {_MAX_PROLOG} bytes",
                service=self.service,
            )

    def _refuse(self, name: str) -> None:
        if name.lower() == "html":
            raise HtmlPageError(
                f"{self.service}: the server answered an HTML page, not XML "
                "(a firewall, proxy or maintenance page)",
                service=self.service,
            )
        raise ForbiddenXmlError(
            f"{self.service}: the document declares <!DOCTYPE {name}>, which is refused "
            "(its entity declarations could expand without bound)",
            service=self.service,
        )
