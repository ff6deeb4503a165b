"""Long bodies are parsed a piece at a time, one piece per loop turn across a client's streams.

A listing of a few hundred devices arrives in one 64–256 KiB read and takes
milliseconds to parse. Parsed in one go, it holds up every answer that arrives
meanwhile, and at 100 calls in flight with 50 ms latency those answers come
every half millisecond: each millisecond the loop is held costs about a
millisecond of the whole run, the pipeline of per-device calls being shifted
by it. Measured against pre-rendered answers (a fleet walked from a cache
while the 80 listings of a 40-client fleet were fetched and parsed beside
it): parsing whole chunks took the run from 1.07 to 1.15 times its ideal,
8 KiB pieces with a loop turn between them in each stream still 1.15 (eight
listings arrive together, so each turn parsed eight pieces), one piece per
turn across all streams 1.09.

So a body's chunks are parsed as they come while the body is within ``LONG``
bytes (a per-device answer is shorter than that and never waits); a chunk
that takes it past ``LONG`` is cut into ``PIECE``-byte pieces from its start,
and each piece that ends past ``LONG`` is parsed while holding the client's
turn, followed by a loop turn, so answers to other calls are read between the
pieces of long bodies. In the latency-bound audit against pre-rendered
answers, 8, 16 and 32 KiB pieces did equally well (medians of three
interleaved rounds: 1.11–1.14× at 40 clients, 1.13–1.15× at 2). The
cost, for a long body read alone, was that each piece's end split a record
the parser then read the slow way (a 1.8 MB listing took 55 ms whole, 59 ms
in 32 KiB pieces, 69 ms in 8 KiB ones), hence 32 KiB. Since a cut record
waits for the next piece instead, pieces cost next to nothing: a 0.42 MB
listing parses in 10.4–10.8 ms whole, 10.6–10.7 ms in 32 KiB pieces and
11.0–11.3 ms in 8 KiB ones (best of 7, two runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ._parser import StreamParser

#: A body is parsed as it comes up to this many bytes; past it, a piece per loop turn.
LONG = 16 * 1024
#: The size of those pieces: some seventy listed devices, under a millisecond to parse.
PIECE = 32 * 1024


def pieces(chunk: bytes, received: int) -> Iterable[bytes]:
    """Cut ``chunk`` into ``PIECE``-byte pieces if the body (``received`` so far) gets long."""
    if received + len(chunk) <= LONG or len(chunk) <= PIECE:
        return (chunk,)
    return (chunk[i : i + PIECE] for i in range(0, len(chunk), PIECE))


class Turns:
    """The turn that the long bodies of one client's streams take to parse a piece."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None  # made in the running loop, on first use
        self._loop: asyncio.AbstractEventLoop | None = None  # a Lock binds to one loop

    async def parse(self, parser: StreamParser[Any], piece: bytes) -> list[Any]:
        """Parse one piece of a long body in this client's turn, then give the loop a turn."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            records = parser.feed(piece)
            await asyncio.sleep(0)  # before the next piece of any long body
        return records
