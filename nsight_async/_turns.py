"""Long bodies, and any read body while calls wait for a slot, are parsed a piece per loop turn.

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

Short answers too, while calls wait for a slot. At 100 in flight and 50 ms
about 1,800 answers come in a second, so a loop turn of a few milliseconds
reads several together, and parsed in the same turn they delay the calls
that follow them: the last one's next call waits
for all the others' parsing. Now a connection is free the moment its answer
is in (``_h1``), a worker waits with its call ready (``Fleet``'s spare
workers), and the answers are parsed one per turn, so between two of them
the loop reads the network and those calls go out. In the latency-bound
audit against pre-rendered answers (one server, client versions alternated,
four rounds: the scratch forerunner of ``python -m benchmarks.ab --server
pre``) this took the ratio from 1.10–1.13 to 1.08–1.09. Each part
alone gained 0.01 at most. A parsing budget per turn instead of one piece
kept less of the gain: none of it at 0.5 ms, 0.027 of 0.035 at 0.1 ms.

A turn per answer costs a loop turn: a one-record call at 50 in flight with
no latency took 0.11 ms of client CPU instead of 0.08
(``python -m benchmarks.profile_client``). It buys nothing when no call
waits for a slot (no call can go out sooner), so a short body is then parsed
at once, as it comes, and that call costs what it did (0.072–0.090 ms
against 0.072–0.100 before, three runs each, alternated); the audit kept its
gain (1.088–1.089 against 1.075–1.084 with a turn per answer always, same
rounds). A write's answer is always parsed at once (see ``NsightClient._run``).

Past its first ``LONG`` bytes a chunk is cut into ``PIECE``-byte pieces. In the
latency-bound audit against pre-rendered answers, 8, 16 and 32 KiB pieces
did equally well (medians of three interleaved rounds: 1.11–1.14× at 40
clients, 1.13–1.15× at 2). A record cut by a piece's end waits for the next
piece, so pieces cost next to nothing: a 0.42 MB listing parses in
10.4–10.8 ms whole, 10.6–10.7 ms in 32 KiB pieces and 11.0–11.3 ms in 8 KiB
ones (best of 7, two runs).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from typing import Any

from ._parser import StreamParser

#: A body is parsed as it comes up to this many bytes unless calls wait for a slot.
LONG = 16 * 1024
#: The size of those pieces: some seventy listed devices, under a millisecond to parse.
PIECE = 32 * 1024


def waits_for_turn(received: int, calls_waiting: int) -> bool:
    """Whether a read body's piece ending at ``received`` bytes is parsed in a turn.

    Past ``LONG`` bytes always; before, only while calls wait for a slot
    (``calls_waiting``): a turn then lets them go out, else it costs a loop turn
    for nothing. A write's answer never waits (see ``NsightClient._run``).
    """
    return received > LONG or calls_waiting > 0


def pieces(chunk: bytes, received: int) -> Iterable[bytes]:
    """Cut ``chunk`` into ``PIECE``-byte pieces if the body (``received`` so far) gets long."""
    if received + len(chunk) <= LONG or len(chunk) <= PIECE:
        return (chunk,)
    return (chunk[i : i + PIECE] for i in range(0, len(chunk), PIECE))


class Turns:
    """One piece parsed per loop turn, across one client's streams (for pieces sent here).

    The first piece of a loop turn is parsed at once; later ones queue, and
    each turn's end (a callback one loop turn later) hands the turn to the
    next piece in the queue, or frees it.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._taken = False  # a piece was parsed in this loop turn
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()

    async def parse(self, parser: StreamParser[Any], piece: bytes) -> list[Any]:
        """Parse one piece in this client's turn: at once, or after the pieces queued before it."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: the last one's turn and queue are gone
            self._loop, self._taken, self._queue = loop, False, collections.deque()
        if self._taken:
            turn = loop.create_future()
            self._queue.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # handed the turn: pass it on
                    loop.call_soon(self._next, loop)
                raise
        else:
            self._taken = True
        loop.call_soon(self._next, loop)
        return parser.feed(piece)

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop turn has passed since the last piece: hand the turn on, or free it."""
        if loop is not self._loop:  # a callback left from a loop this client no longer runs in
            return
        queue = self._queue
        while queue:
            turn = queue.popleft()
            if not turn.done():  # skips pieces whose stream was cancelled while queued
                turn.set_result(None)
                return
        self._taken = False
