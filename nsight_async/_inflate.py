"""Decoding a gzip or deflate response body in bounded pieces (for :mod:`._h1`).

A compressed body is checked to its end: a stream cut short, or bytes after a
deflate stream, are a :class:`~._errors.ParseError`, never short data. A gzip
body may hold several members (RFC 1952), each decoded in turn. Output comes
in pieces of at most ``PIECE`` bytes, so a small body that inflates to a huge
one is read as it is consumed, not held whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from ._errors import ParseError

PIECE = 1 << 20


class Inflater:
    """Decodes one body sent with ``Content-Encoding: coding``."""

    def __init__(self, coding: str, service: str) -> None:
        if coding not in ("gzip", "x-gzip", "deflate"):
            message = f"{service}: the body is in an encoding this client cannot read"
            raise ParseError(f"{message} ({coding[:40]!r})", service=service)
        self._gzip = coding != "deflate"
        self._service = service
        self._stream = self._new()
        self._started = False  # whether any compressed byte came (an empty body is fine)

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj((16 if self._gzip else 0) + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes of ``data``, in pieces of at most ``PIECE``."""
        self._started = self._started or bool(data)
        stream = self._stream
        while data:
            try:
                piece = stream.decompress(data, PIECE)
            except zlib.error:
                raise self._error("the body could not be decoded (zlib error)") from None
            if stream.eof:
                data = stream.unused_data
                if data:
                    if not self._gzip:
                        raise self._error("the body has bytes after its deflate stream")
                    self._stream = stream = self._new()  # the next gzip member
            else:
                data = stream.unconsumed_tail
            if piece:
                yield piece

    def end(self) -> Iterator[bytes]:
        """Yield what the decoder still holds; raise if the stream did not end."""
        if not self._started:
            return
        if tail := self._stream.flush():
            yield tail
        if not self._stream.eof:
            raise self._error("the compressed body ended early")

    def _error(self, what: str) -> ParseError:
        return ParseError(f"{self._service}: {what}", service=self._service)
