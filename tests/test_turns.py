"""Long bodies, and short ones while calls wait for a slot, are parsed a piece per loop
turn, across all of a client's streams.

Turns are counted by a ticker task that adds one per loop turn: while a long
body arriving in one chunk is parsed, other tasks must get a turn between its
pieces (before, the whole chunk was parsed in one step and the ticker stood
still), and bodies read at once must take turns with each other. Records
are checked against the whole body parsed in one go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from nsight_async import NsightClient, NsightError, ParseError, RetryPolicy, parser_for
from nsight_async._parser import StreamParser
from nsight_async._turns import LONG, PIECE, Turns, pieces
from nsight_async.testing import SIMULATOR_API_KEY, SimulatedFleet, Simulator

URL = "http://127.0.0.1:9/api/"
SAMPLES = Path(__file__).parent / "samples"


def _listing(sim: Simulator, client_id: int) -> bytes:
    async def render() -> bytes:
        answer = await sim.handle(
            method="GET",
            path="/api/",
            query={
                "apikey": SIMULATOR_API_KEY,
                "service": "list_devices_at_client",
                "clientid": str(client_id),
                "devicetype": "workstation",
            },
        )
        return b"".join(answer.chunks)

    return asyncio.run(render())


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimulatedFleet(seed=5, clients=2, devices=1200))


@pytest.fixture(scope="module")
def bodies(sim: Simulator) -> dict[int, bytes]:
    found = {c.client_id: _listing(sim, c.client_id) for c in sim.fleet.clients}
    assert all(len(body) > 8 * LONG for body in found.values())  # long enough to matter
    return found


class _Parts(httpx.AsyncByteStream):
    """A body in the given chunks (one: the whole body at once, as loopback delivers it)."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


Parts = Callable[[int], list[bytes]]
_Client = Callable[..., AbstractAsyncContextManager[NsightClient]]


def _answer(parts_of: Parts, sessions: bytes = b"") -> httpx.MockTransport:
    """Listings come as ``parts_of(client_id)``, each part a chunk; sessions as ``sessions``."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params["service"] == "list_mob_sessions":
            return httpx.Response(200, content=sessions)
        return httpx.Response(200, stream=_Parts(parts_of(int(params["clientid"]))))

    return httpx.MockTransport(answer)


def _serving(parts_of: Parts, sessions: bytes = b"") -> _Client:
    """An ``NsightClient`` factory (limits as keywords) over `_answer`."""

    @contextlib.asynccontextmanager
    async def client(**limits: Any) -> AsyncIterator[NsightClient]:
        async with (
            httpx.AsyncClient(transport=_answer(parts_of, sessions)) as http,
            NsightClient(URL, "k-0123456789", http_client=http, max_per_minute=None, **limits) as c,
        ):
            yield c

    return client


class _Ticker:
    """Counts loop turns while it runs."""

    def __init__(self) -> None:
        self.turns = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            self.turns += 1
            await asyncio.sleep(0)

    def __enter__(self) -> _Ticker:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _whole(body: bytes) -> list[Any]:
    parser = parser_for("list_devices_at_client", {})
    return [*parser.feed(body), *parser.close()]


def _turns_needed(body: bytes) -> int:
    """The pieces parsed in turns: those past the first LONG bytes."""
    return (len(body) - LONG) // PIECE


async def _read(client: NsightClient, client_id: int) -> list[Any]:
    return [d async for d in client.list_devices_at_client(client_id, "workstation")]


async def _read_counting_turns(bodies: dict[int, bytes]) -> tuple[list[list[Any]], int]:
    """Read the listings at once, each in one chunk; return them and the turns others got."""
    async with _serving(lambda client_id: [bodies[client_id]])() as c:
        with _Ticker() as ticker:
            await asyncio.sleep(0)
            before = ticker.turns
            results = await asyncio.gather(*(_read(c, cid) for cid in bodies))
            return list(results), ticker.turns - before


async def test_other_tasks_get_turns_while_a_long_body_is_parsed(
    bodies: dict[int, bytes],
) -> None:
    """A 1-chunk listing is parsed a piece per turn; its records are the whole body's."""
    client_id, body = next(iter(bodies.items()))
    (devices,), during = await _read_counting_turns({client_id: body})
    assert devices == _whole(body)
    assert during >= _turns_needed(body)


async def test_two_long_bodies_take_turns_with_each_other(bodies: dict[int, bytes]) -> None:
    """Read at once, two long bodies parse one piece per turn between them, not one each."""
    results, during = await _read_counting_turns(bodies)
    assert results == [_whole(body) for body in bodies.values()]
    assert during >= sum(_turns_needed(body) for body in bodies.values())


class _Together(httpx.AsyncByteStream):
    """A body held back until ``gate`` opens: answers that come in at the same moment."""

    def __init__(self, body: bytes, gate: asyncio.Event) -> None:
        self.body, self.gate = body, gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await self.gate.wait()
        yield self.body


@pytest.mark.parametrize("calls_wait", [True, False], ids=["calls wait", "no call waits"])
async def test_short_answers_that_come_in_together_are_parsed_a_turn_apart_while_calls_wait(
    monkeypatch: pytest.MonkeyPatch, calls_wait: bool
) -> None:
    """Ten one-piece answers arriving in the same loop turn, while ten more calls wait for
    a slot, are parsed one per turn: between two of them the loop reads the network and
    sends a waiting call. With no call waiting they are parsed at once, as they come."""
    sessions = (SAMPLES / "list_mob_sessions.xml").read_bytes()
    expected = [*parser_for("list_mob_sessions", {}).feed(sessions)]
    gate = asyncio.Event()
    asked = 0
    parsed_in_turn: list[int] = []
    feed = StreamParser.feed

    def counted(self: StreamParser[Any], data: bytes) -> list[Any]:
        parsed_in_turn.append(ticker.turns)
        return feed(self, data)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal asked
        asked += 1
        if asked == 10:
            asyncio.get_running_loop().call_soon(gate.set)
        return httpx.Response(200, stream=_Together(sessions, gate))

    monkeypatch.setattr(StreamParser, "feed", counted)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        NsightClient(
            URL, "k-0123456789", http_client=http, max_per_minute=None, max_at_once=10
        ) as c,
    ):
        with _Ticker() as ticker:

            async def read(device_id: int) -> list[Any]:
                return [s async for s in c.list_mob_sessions(device_id)]

            calls = 20 if calls_wait else 10
            reads = asyncio.gather(*(read(d) for d in range(1, calls + 1)))
            results = await asyncio.wait_for(reads, 10)
    assert results == [expected] * calls
    first_ten = parsed_in_turn[:10]
    assert len(set(first_ten)) == (10 if calls_wait else 1), first_ten


async def test_calls_inside_a_long_one_chunk_listing_finish_with_a_single_slot(
    bodies: dict[int, bytes],
) -> None:
    """A long body in one chunk is still handed on only after its slot is free.

    Pieces parsed in turns could hand records on while the response is open;
    a call made inside the loop would then wait for the slot the loop holds.
    """
    sessions = (SAMPLES / "list_mob_sessions.xml").read_bytes()
    client_id, body = next(iter(bodies.items()))
    async with _serving(lambda _: [body], sessions)(max_at_once=1) as client:

        async def walk() -> int:
            count = 0
            async for device in client.list_devices_at_client(client_id, "workstation"):
                async for _ in client.list_mob_sessions(device.device_id):
                    pass
                count += 1
            return count

        count = await asyncio.wait_for(walk(), timeout=20)
    assert count == len(_whole(body))


def _cuts() -> Iterator[tuple[int, int]]:
    yield 100, 0  # a short body: as it is
    yield LONG, 0  # exactly LONG: as it is
    yield 3 * PIECE + 5, LONG  # past LONG: pieces
    yield 40 * PIECE, 0  # a long first chunk: pieces
    yield PIECE, LONG  # one piece's worth past LONG: as it is


@pytest.mark.parametrize(("size", "received"), list(_cuts()))
def test_pieces_keep_every_byte_in_order(size: int, received: int) -> None:
    """Chunks are cut only once the body is long, into pieces of at most PIECE bytes."""
    chunk = bytes(range(256)) * (size // 256) + bytes(size % 256)
    cut = list(pieces(chunk, received))
    assert b"".join(cut) == chunk
    if received + size <= LONG or size <= PIECE:
        assert cut == [chunk]
    else:
        assert all(len(p) <= PIECE for p in cut)
        assert len(cut) == -(-size // PIECE)


@pytest.mark.parametrize("last", [False, True], ids=["not the last chunk", "the last chunk"])
async def test_records_before_a_malformed_spot_in_a_long_chunk_still_go_out(
    bodies: dict[int, bytes], last: bool
) -> None:
    """Records that end before a malformed spot are handed on before the ParseError.

    The parser returns them and raises at its next feed: a later piece of the
    same chunk must not be fed, or the chunk's good records are dropped; and
    when no chunk comes after, they go out before ``close`` raises.
    """
    client_id, body = next(iter(bodies.items()))
    spot = body.index(b"<", 120_000)
    bad = body[:spot] + b"<&&&>" + body[spot + 1 :]
    parts = [bad] if last else [bad[:150_000], bad[150_000:]]
    good = parser_for("list_devices_at_client", {}).feed(parts[0])
    assert good  # records before the spot, in the same chunk as it
    got: list[Any] = []
    async with _serving(lambda _: parts)(retry=RetryPolicy(attempts=1)) as client:

        async def read() -> None:
            async for device in client.list_devices_at_client(client_id, "workstation"):
                got.append(device)

        with pytest.raises(ParseError) as raised:
            await read()
    assert got == good
    assert raised.value.records_yielded == len(good)


@pytest.mark.parametrize(
    "body",
    [
        b'<result status="FAIL"><session><session_id>1</session_id></session></result>',
        b'<result status="OK"><session a="1"><session_id>1</session_id></session></result',
        b'<result status="OK"><session><session_id>1</session_id></session><x></result>',
    ],
    ids=["FAIL envelope", "cut off", "malformed"],
)
async def test_records_before_an_error_at_the_end_go_out_then_the_error(body: bytes) -> None:
    """An error found by ``close`` (a FAIL envelope, a body cut off or malformed at
    its end) comes after the records before it, read by the scanner or by expat."""
    got: list[Any] = []
    async with _serving(lambda _: [], body)(retry=RetryPolicy(attempts=1)) as client:

        async def read() -> None:
            async for session in client.list_mob_sessions(7):
                got.append(session.session_id)

        with pytest.raises(NsightError) as raised:
            await read()
    assert got == [1]
    assert raised.value.records_yielded == 1


def test_one_client_reads_long_bodies_under_two_event_loops_in_turn(
    bodies: dict[int, bytes],
) -> None:
    """The turn is remade for a new loop (a lock binds to the loop it first waited in)."""
    http = httpx.AsyncClient(transport=_answer(lambda client_id: [bodies[client_id]]))
    client = NsightClient(URL, "k-0123456789", http_client=http, max_per_minute=None)

    async def both() -> list[list[Any]]:
        reads = (_read(client, client_id) for client_id in bodies)
        return list(await asyncio.wait_for(asyncio.gather(*reads), 20))

    expected = [_whole(body) for body in bodies.values()]
    assert asyncio.run(both()) == expected
    assert asyncio.run(both()) == expected


class _Fed:
    """A stand-in parser that notes the ticker's count at each piece it is fed."""

    def __init__(self, ticker: _Ticker, log: list[tuple[str, int]], name: str) -> None:
        self.ticker, self.log, self.name = ticker, log, name

    def feed(self, piece: bytes) -> list[Any]:
        self.log.append((self.name, self.ticker.turns))
        return [piece]


@pytest.mark.parametrize("turns_before_cancel", range(5))
async def test_a_stream_cancelled_while_queued_or_just_handed_the_turn_does_not_stall_others(
    turns_before_cancel: int,
) -> None:
    """Three pieces queue in one loop turn; the second's stream is cancelled a few turns
    later (queued, or handed the turn but not yet run): the third is still parsed, and
    the turn is free afterwards."""
    turns = Turns()
    log: list[tuple[str, int]] = []
    with _Ticker() as ticker:

        async def one(name: str) -> list[Any]:
            return await turns.parse(_Fed(ticker, log, name), name.encode())  # type: ignore[arg-type]

        tasks = [asyncio.create_task(one(name)) for name in "abc"]
        for _ in range(turns_before_cancel):
            await asyncio.sleep(0)
        tasks[1].cancel()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
        assert done[0] == [b"a"]
        assert done[2] == [b"c"]
        assert await asyncio.wait_for(one("d"), 2) == [b"d"]
    names = [name for name, _ in log]
    assert names[0] == "a"
    assert names[-2:] == ["c", "d"]
    at = [turn for _, turn in log]
    assert len(set(at)) == len(at)  # never two pieces in one loop turn
