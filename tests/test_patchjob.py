"""Tests for nsight_async._patchjob: building, saving and splitting a patch retry plan.

Plans are built by the real client against the project's own fake, the
simulator, in process; the fleet's patch lists are the ground truth.
``split_ids`` is pure and checked with hypothesis.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import failing_device

from nsight_async import (
    DeviceKind,
    Filters,
    InvalidArgumentError,
    InvalidParameterError,
    PatchPlan,
    PatchStatus,
    plan_patch_retry,
)
from nsight_async._patchjob import MAX_IDS_CHARS, split_ids
from nsight_async.testing import (
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    in_process_client,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
URL = "http://127.0.0.1:1"


connect = in_process_client


def make_fleet(**kw: Any) -> SimulatedFleet:
    """Build a seeded fleet ending at NOW."""
    kw.setdefault("seed", "patchjob-tests")
    kw.setdefault("history_days", 0)
    return SimulatedFleet(now=NOW, **kw)


def truth(sim: Simulator, statuses: set[int]) -> dict[int, list[int]]:
    """Return {device: [patch ids]} of patch-enabled devices with patches in ``statuses``."""
    out = {}
    for d in sim.fleet.iter_devices():
        ids = [p.patchid for p in sim.patches(d.device_id) if p.status in statuses]
        if d.patch and ids:
            out[d.device_id] = ids
    return out


def planned(plan: PatchPlan) -> dict[int, list[int]]:
    """Return {device: [patch ids]} of a plan."""
    return {i.device.device_id: i.patch_ids for i in plan.items}


async def test_default_plan_is_every_failed_patch_of_patch_enabled_devices() -> None:
    """The default plan holds exactly the failed (16) patches, and only patch=1 devices are read."""
    fleet = make_fleet(clients=4, devices=80, patch_fraction=0.6)
    sim = Simulator(fleet)
    async with connect(sim) as client:
        plan = await plan_patch_retry(client)
    assert planned(plan) == truth(sim, {16})
    assert all(p.status == PatchStatus.FAILED for i in plan.items for p in i.patches)
    read = [int(e.params["deviceid"]) for e in sim.log.calls("patch_list_all")]
    assert sorted(read) == sorted(d.device_id for d in fleet.iter_devices() if d.patch)
    assert len(sim.log) == 1 + 2 * fleet.n_clients + fleet.n_patch_devices
    assert plan.patch_count == sum(len(v) for v in planned(plan).values())
    assert plan.errors == ()
    assert plan.criteria["statuses"] == [16]
    keys = [(i.device.client_id, i.device.site_id, i.device.device_id) for i in plan.items]
    assert keys == sorted(keys)


async def test_statuses_choose_which_patches_are_planned() -> None:
    """statuses=(missing, failed) plans both kinds of patch."""
    sim = Simulator(make_fleet(clients=3, devices=40))
    async with connect(sim) as client:
        plan = await plan_patch_retry(client, statuses=(PatchStatus.MISSING, PatchStatus.FAILED))
    assert planned(plan) == truth(sim, {1, 16})


async def test_title_and_product_filters_narrow_the_plan() -> None:
    """Title and product filters keep matching patches (glob or substring, any case)."""
    sim = Simulator(make_fleet(clients=3, devices=60))
    async with connect(sim) as client:
        by_product = await plan_patch_retry(client, products=["windows 1?"], statuses=(1, 16))
        by_title = await plan_patch_retry(client, titles=["cumulative update"], statuses=(1, 16))
        both = await plan_patch_retry(
            client, titles=["*windows 11*"], products=["Windows 11"], statuses=(1, 16)
        )
    products = {p.product for i in by_product.items for p in i.patches}
    assert products == {"Windows 10", "Windows 11"}
    assert all(
        "cumulative update" in (p.title or "").lower() for i in by_title.items for p in i.patches
    )
    assert by_title.patch_count > 0
    assert {p.product for i in both.items for p in i.patches} == {"Windows 11"}
    expected = sum(
        1
        for d in sim.fleet.iter_devices()
        if d.patch
        for p in sim.patches(d.device_id)
        if p.status in (1, 16) and p.product in ("Windows 10", "Windows 11")
    )
    assert by_product.patch_count == expected


async def test_filters_narrow_the_walk() -> None:
    """Client and device-type filters apply to the plan's walk before calls are spent."""
    fleet = make_fleet(clients=4, devices=80)
    target = fleet.clients[0].client_id
    sim = Simulator(fleet)
    async with connect(sim) as client:
        plan = await plan_patch_retry(
            client, filters=Filters(clients=[target], device_types=(DeviceKind.SERVER,))
        )
    assert sim.log.count("list_devices_at_client") == 1
    assert all(i.device.client_id == target for i in plan.items)
    assert all(i.device.kind is DeviceKind.SERVER for i in plan.items)
    assert plan.criteria["filters"]["clients"] == [target]


async def test_device_whose_patches_cannot_be_read_is_an_error_of_the_plan() -> None:
    """A device whose patch list fails is listed in plan.errors, not silently dropped."""
    fleet = make_fleet(clients=3, devices=40, patch_fraction=1.0)
    sim, victim = failing_device(fleet)
    async with connect(sim) as client:
        plan = await plan_patch_retry(client)
    assert [d.device_id for d, _ in plan.errors] == [victim]
    assert victim not in planned(plan)


async def test_failed_client_listing_fails_the_plan() -> None:
    """A plan must cover the whole selection: a client that cannot be listed raises."""
    fleet = make_fleet(clients=3, devices=40)
    bad = str(fleet.clients[0].client_id)

    def script(ctx: FaultContext) -> Fault | None:
        hit = ctx.service == "list_devices_at_client" and ctx.params["clientid"] == bad
        return Fault.FAIL4 if hit else None

    sim = Simulator(fleet, config=SimulatorConfig(fault_script=script))
    async with connect(sim) as client:
        with pytest.raises(InvalidParameterError):
            await plan_patch_retry(client)


async def test_plan_save_and_load_round_trip(tmp_path: Path) -> None:
    """A saved plan loads back equal, with its criteria, items and errors."""
    fleet = make_fleet(clients=3, devices=40, patch_fraction=1.0)
    sim, victim = failing_device(fleet)
    async with connect(sim) as client:
        plan = await plan_patch_retry(client, titles=["*"], statuses=(16, 64))
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = PatchPlan.load(path)
    assert loaded == plan
    assert loaded.to_json() == plan.to_json()
    assert [d.device_id for d, _ in loaded.errors] == [victim]
    assert any(not p.title.isascii() for i in loaded.items for p in i.patches if p.title)


@given(
    st.lists(st.integers(1, 10**12), unique=True, max_size=400),
    st.integers(14, 3000),
)
def test_split_ids_keeps_every_id_once_within_the_budget(ids: list[int], budget: int) -> None:
    """Chunks hold every id once, in order, and each comma-joined chunk fits the budget."""
    chunks = split_ids(ids, budget)
    assert [i for c in chunks for i in c] == ids
    assert all(c for c in chunks)
    assert all(len(",".join(map(str, c))) <= budget for c in chunks)
    # Greedy: a chunk is only closed when the next id would not fit (with a spare comma).
    for left, right in itertools.pairwise(chunks):
        assert len(",".join(map(str, [*left, right[0]]))) >= budget


def test_split_ids_default_budget_for_a_long_list() -> None:
    """Thousands of ids split under MAX_IDS_CHARS; a short list stays one chunk."""
    ids = list(range(100_000, 103_000))
    chunks = split_ids(ids)
    assert len(chunks) > 1
    assert all(len(",".join(map(str, c))) <= MAX_IDS_CHARS for c in chunks)
    assert split_ids([1, 2, 3]) == [[1, 2, 3]]
    assert split_ids([]) == []


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"created": "2026-01-01T00:00:00+00:00"}', '{"created": 5, "items": []}'],
)
def test_a_broken_plan_file_is_an_invalid_argument(tmp_path: Path, content: str) -> None:
    """A truncated or hand-broken plan file raises InvalidArgumentError, not a raw error."""
    path = tmp_path / "plan.json"
    path.write_text(content, "utf-8")
    with pytest.raises(InvalidArgumentError):
        PatchPlan.load(path)


async def test_a_plan_listing_a_device_twice_is_refused(tmp_path: Path) -> None:
    """Two items for one device would collide in the journal, so loading refuses them."""
    sim = Simulator(make_fleet(clients=2, devices=30))
    async with connect(sim) as client:
        plan = await plan_patch_retry(client)
    assert plan.items
    data = plan.to_json()
    data["items"].append(data["items"][0])
    with pytest.raises(InvalidArgumentError, match="twice"):
        PatchPlan.from_json(data)
