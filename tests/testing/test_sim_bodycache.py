"""The simulator's BodyCache: listings rendered once, answers as a fresh rendering gives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nsight_async import NsightClient
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    SimulatedFleet,
    Simulator,
    SimulatorTransport,
    _render,
)
from nsight_async.testing._app import _truncated
from nsight_async.testing._bodycache import BodyCache
from nsight_async.testing._fleet import DeviceKind
from nsight_async.testing._xml import CHUNK_SIZE, chunked

NOW = datetime(2026, 11, 22, tzinfo=UTC)
WALL = datetime(2026, 11, 22, 13, 40, 12, tzinfo=UTC)


async def _get(sim: Simulator, path: str = "/api/", **params: object) -> httpx.Response:
    query = {"apikey": SIMULATOR_API_KEY, **params}
    async with httpx.AsyncClient(transport=SimulatorTransport(sim), base_url="http://sim") as http:
        return await http.get(path, params=query)


def _fleet(now: datetime = NOW, devices: int = 400) -> SimulatedFleet:
    return SimulatedFleet(seed=7, clients=2, devices=devices, now=now)


def _biggest_site(fleet: SimulatedFleet) -> int:
    return max(fleet.sites, key=lambda s: s.n_workstations).site_id


def _smallest_site(fleet: SimulatedFleet) -> int:
    return min((s for s in fleet.sites if s.n_workstations), key=lambda s: s.n_workstations).site_id


async def test_a_listing_is_rendered_once_and_served_again_with_a_new_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long listing (many chunks) asked for again is served from its first rendering:
    the same bytes a fresh rendering gives, under the head of the moment it is asked."""
    from nsight_async.testing import _render

    renders: list[int] = []
    real = _render.list_devices_at_client

    def counted(*args: Any) -> Iterator[str]:
        renders.append(1)
        return real(*args)

    monkeypatch.setattr(_render, "list_devices_at_client", counted)
    now = [WALL]
    fleet = SimulatedFleet(seed=3, clients=1, devices=400, now=NOW)
    sim = Simulator(fleet, wall_clock=lambda: now[0])
    params = {"service": "list_devices_at_client", "devicetype": "workstation"}
    params["clientid"] = str(fleet.clients[0].client_id)
    first = (await _get(sim, **params)).content
    assert len(first) > 2 * CHUNK_SIZE  # streamed in several chunks
    now[0] = WALL + timedelta(seconds=5)
    again = (await _get(sim, **params)).content
    assert len(renders) == 1
    fresh = Simulator(
        SimulatedFleet(seed=3, clients=1, devices=400, now=NOW), wall_clock=lambda: now[0]
    )
    assert again == (await _get(fresh, **params)).content
    assert again != first  # only the head's created time differs
    assert again[again.index(b"<items>") :] == first[first.index(b"<items>") :]


@pytest.mark.parametrize("long", [True, False], ids=["long", "one-chunk"])
@pytest.mark.parametrize("change", ["fleet", "now"])
async def test_a_kept_listing_follows_the_fleet_it_was_rendered_from(
    long: bool, change: str
) -> None:
    """Tests replace ``sim.fleet`` (or its ``now``) to change what the API lists."""
    sim = Simulator(_fleet(), wall_clock=lambda: WALL)
    site = (_biggest_site if long else _smallest_site)(sim.fleet)
    params = {"service": "list_workstations", "siteid": site}
    before = (await _get(sim, **params)).content
    assert (len(before) > 2 * CHUNK_SIZE) is long
    later = NOW + timedelta(days=1)
    if change == "fleet":
        sim.fleet = _fleet(later)
    else:
        sim.fleet.now = later
    after = (await _get(sim, **params)).content
    truth = (await _get(Simulator(_fleet(later), wall_clock=lambda: WALL), **params)).content
    assert truth != before
    assert after == truth


async def test_the_client_sees_a_changed_listing() -> None:
    sim = Simulator(_fleet())
    site = _biggest_site(sim.fleet)
    async with (
        httpx.AsyncClient(transport=SimulatorTransport(sim)) as http,
        NsightClient("http://127.0.0.1/", SIMULATOR_API_KEY, http_client=http) as client,
    ):
        first = [d async for d in client.list_workstations(site)]
        sim.fleet = _fleet(NOW + timedelta(days=3))
        second = [d async for d in client.list_workstations(site)]
    assert second != first
    assert [d.device_id for d in second] == [d.device_id for d in first]


async def test_truncate_cuts_a_kept_listing_where_a_fresh_rendering_is_cut() -> None:
    fleet = _fleet(devices=700)
    sim = Simulator(fleet, wall_clock=lambda: WALL)
    site = _biggest_site(fleet)
    query = {"apikey": SIMULATOR_API_KEY, "service": "list_workstations", "siteid": str(site)}
    kept = await sim.handle(method="GET", path="/api/", query=query)
    b"".join(kept.chunks)  # streamed to its end: kept
    sim.configure(fault_script=lambda context: Fault.TRUNCATE)
    answer = await sim.handle(method="GET", path="/api/", query=query)
    head = _render.result_head(sim._created_stamp(sim.config.utc_offset_minutes), sim.config.host)
    fresh = chunked(_render.list_devices(fleet, head, site, DeviceKind.WORKSTATION))
    assert answer.content_length is None
    assert b"".join(answer.chunks) == b"".join(_truncated(fresh, None))


def _body(pieces: int) -> Callable[[str], Iterator[str]]:
    return lambda head: iter([head, *(f"<p>{i:05d}</p>" * 2000 for i in range(pieces))])


def test_body_cache_keeps_only_bodies_streamed_to_their_end() -> None:
    cache = BodyCache()
    chunks = cache.serve(("a",), _body(3), "H")
    assert next(chunks).startswith(b"H<p>")
    chunks.close()  # the client went away mid-body
    assert (cache.size, cache.gathered) == (0, 0)
    whole = b"".join(cache.serve(("a",), _body(3), "H"))
    assert cache.size == len(whole) - 1
    assert b"".join(cache.serve(("a",), _body(0), "G")) == b"G" + whole[1:]  # from the cache
    assert b"".join(cache.serve(("a",), _body(3), "GG")) == b"GG" + whole[1:]  # rendered anew


def test_body_cache_keeps_a_body_once_however_many_answers_render_it_at_once() -> None:
    cache = BodyCache()
    answers = [cache.serve(("k",), _body(40), str(i)) for i in range(10)]
    firsts = [next(a) for a in answers]
    one = len("".join(_body(40)("")))
    while any([next(a, None) is not None for a in answers]):
        assert cache.gathered <= one  # only one of them gathers the body
    assert cache.size == one
    assert all(f.startswith(str(i).encode() + b"<p>") for i, f in enumerate(firsts))


def test_body_cache_is_bounded() -> None:
    one = len("".join(_body(2)("")))
    cache = BodyCache(budget=2 * one, body_max=one)
    b"".join(cache.serve(("long",), _body(3), ""))
    assert cache.size == 0  # longer than body_max: never kept
    for key in ("a", "b"):
        b"".join(cache.serve((key,), _body(2), ""))
    assert cache.size == 2 * one
    b"".join(cache.serve(("c",), _body(2), ""))
    assert cache.size == one  # past the budget: started over
    assert b"".join(cache.serve(("a",), _body(1), "")) == "".join(_body(1)("")).encode()  # anew
    small = BodyCache(budget=1000, body_max=10_000)
    b"".join(small.serve(("k",), _body(1), ""))
    assert small.size == 0  # body_max is at most the budget


def test_answers_still_gathering_keep_nothing_once_the_fleet_changed() -> None:
    cache = BodyCache()
    cache.follow("fleet 1")
    answer = cache.serve(("k",), _body(3), "")
    next(answer)
    cache.follow("fleet 2")
    b"".join(answer)
    assert cache.size == 0
