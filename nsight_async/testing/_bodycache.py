"""Rendered bodies of the simulator's reads that do not change between calls (listings).

Only an answer's head changes between calls (its ``created`` time), so a
listing is rendered once, as it is first streamed, and later answers are its
kept chunks under a fresh head. Re-rendering the 4.3 MB of listings of a
10,000-device fleet for every audit cost the simulator 185 ms of CPU, most of
it while the audit's first session calls waited, on the cores its clients use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from nsight_async.testing._xml import chunked

#: The most bytes `BodyCache` keeps, and the longest body it keeps.
CACHE_BYTES = 64 << 20
CACHE_BODY_MAX = 8 << 20

Key = tuple[str, ...]


class BodyCache:
    """Bodies kept from their first rendering; answers identical to a fresh rendering.

    - A body is kept only when its answer was streamed to its end (a client
      that went away leaves nothing half-kept), by one answer at a time (the
      others render their own and keep nothing).
    - The chunks are those of a rendering with the head (``chunked`` counts
      the head), so a later answer whose head has the same length gets the
      same chunks as a fresh rendering: the same ``Content-Length`` or chunked
      framing, and the same cut under the ``truncate`` fault. A head of
      another length (another ``host``) gets a fresh rendering.
    - Bodies belong to what they were rendered from (:meth:`follow`: the
      fleet and its ``now``); anything else starts the cache over.
    - Bounded: at most ``budget`` bytes kept (past it the cache starts over),
      at most ``budget`` more held by answers still gathering theirs, and no
      body longer than ``body_max``.
    """

    def __init__(self, budget: int = CACHE_BYTES, body_max: int = CACHE_BODY_MAX) -> None:
        self.budget = budget
        self.body_max = min(body_max, budget)
        self._bodies: dict[Key, tuple[int, tuple[bytes, ...]]] = {}  # head length, chunks
        self._bytes = 0
        self._gathering: set[Key] = set()
        self._gathered = 0
        self._state: tuple[object, ...] = ()
        self._generation = 0

    @property
    def size(self) -> int:
        """Bytes of the bodies kept."""
        return self._bytes

    @property
    def gathered(self) -> int:
        """Bytes held by answers still gathering their bodies to keep."""
        return self._gathered

    def follow(self, *state: object) -> None:
        """Keep bodies rendered from ``state``; another state than last time starts over."""
        if state != self._state:
            self._state = state
            self._bodies.clear()
            self._bytes = 0
            self._generation += 1  # answers still gathering keep nothing

    def serve(self, key: Key, render: Callable[[str], Iterator[str]], head: str) -> Iterator[bytes]:
        """The chunks of the document ``render(head)`` gives, from the cache if kept."""
        kept = self._bodies.get(key)
        if kept is not None and kept[0] == len(head):
            chunks = kept[1]
            return iter((head.encode() + chunks[0], *chunks[1:]))
        return self._gather(key, chunked(render(head)), head)

    def _gather(self, key: Key, chunks: Iterator[bytes], head: str) -> Iterator[bytes]:
        """Yield ``chunks``, keeping them if no other answer keeps or gathers this body."""
        if key in self._gathering or key in self._bodies:
            yield from chunks
            return
        prefix = head.encode()
        generation = self._generation
        kept: list[bytes] | None = []
        size = 0
        self._gathering.add(key)
        try:
            for chunk in chunks:
                if kept is not None:
                    part = chunk if kept else chunk[len(prefix) :]  # the first: without the head
                    if (
                        (kept or chunk.startswith(prefix))
                        and size + len(part) <= self.body_max
                        and self._gathered + len(part) <= self.budget
                    ):
                        kept.append(part)
                        size += len(part)
                        self._gathered += len(part)
                    else:  # longer than body_max, or the gathered budget is spent
                        kept = None
                        self._gathered -= size
                        size = 0
                yield chunk
        finally:
            self._gathering.discard(key)
            self._gathered -= size
        if kept is None or generation != self._generation:  # too long, or the fleet changed
            return
        if self._bytes + size > self.budget:
            self._bodies.clear()
            self._bytes = 0
        self._bodies[key] = (len(head), tuple(kept))
        self._bytes += size
