"""patch_retry under every fault: nothing sent twice, every ambiguous outcome ``unknown``.

The plan is made on a clean simulator, then executed while the simulator faults
``patch_retry`` requests (the first send to half the devices for each kind alone;
a seeded draw at 10-30% for the mixed runs). The simulator's request log is the
witness: no (device, patch) is ever processed twice, no call is resent after an
answer that may mean "applied", and each call's reported state matches what its
faults allow the client to know.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chaos_support import (
    AMBIGUOUS_WRITE,
    FAILED_WRITE,
    FULL,
    REFUSED_WRITE,
    RETRY,
    STALL_SECONDS,
    TIMEOUT,
    FaultDraw,
    matrix_cell,
)

from nsight_async import (
    NsightClient,
    PatchOutcome,
    PatchPlan,
    RunStore,
    execute_patch_plan,
    plan_patch_retry,
)
from nsight_async.testing import (
    SIMULATOR_API_KEY,
    Fault,
    FaultContext,
    SimulatedFleet,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)

pytestmark = pytest.mark.chaos

KINDS = list(Fault)


@contextlib.asynccontextmanager
async def planned(
    seed: str, devices: int
) -> AsyncIterator[tuple[Simulator, NsightClient, PatchPlan]]:
    """Serve a fleet, plan its failed-patch retries fault-free, and yield the pieces."""
    fleet = SimulatedFleet(seed=seed, clients=3, devices=devices)
    sim = Simulator(fleet, config=SimulatorConfig(stall_seconds=STALL_SECONDS))
    async with (
        SimulatorServer(sim) as server,
        NsightClient(server.url, SIMULATOR_API_KEY, retry=RETRY, timeout=TIMEOUT, seed=3) as client,
    ):
        plan = await plan_patch_retry(client)
        assert plan.items, "the fleet has no failed patches: the test proves nothing"
        sim.log.clear()
        yield sim, client, plan


def expected_state(faults: list[Fault | None], attempts: int) -> str:
    """What a call may report, given the faults its sends met in order (``None``: clean)."""
    for sent, fault in enumerate(faults, start=1):
        if fault is None:
            return "done"
        if fault in AMBIGUOUS_WRITE:
            return "unknown"
        if fault in FAILED_WRITE:
            return "failed"
        assert fault in REFUSED_WRITE, fault
        if sent >= attempts:
            return "failed"  # refused every time: certainly never applied
    return "done"


def check_never_twice(sim: Simulator) -> None:
    """Assert no patch was applied twice and no call resent after a maybe-applied answer."""
    applied = sim.log.patch_retry_applied()
    twice = [k for k, n in Counter(applied).items() if n > 1]
    assert not twice, f"patches applied twice: {twice[:5]}"
    # Sends refused unprocessed (429, the firewall's 403) may be resent; no other send may.
    resendable = {429, 403}
    sends = [
        (int(e.params["deviceid"]), p)
        for e in sim.log.patch_retry_sends()
        if not (e.status in resendable and not e.processed)
        for p in e.params["patchids"].split(",")
    ]
    repeated = [k for k, n in Counter(sends).items() if n > 1]
    assert not repeated, f"device+patch sent twice: {repeated[:5]}"


async def _execute(
    client: NsightClient, plan: PatchPlan, store: RunStore
) -> dict[int, PatchOutcome]:
    outcomes: dict[int, PatchOutcome] = {}
    async for outcome in execute_patch_plan(client, plan, store=store):
        assert outcome.device.device_id not in outcomes, "two outcomes for one call"
        outcomes[outcome.device.device_id] = outcome
    return outcomes


def _check_journal(store: RunStore, outcomes: dict[int, PatchOutcome]) -> None:
    run_id = store.latest_run("patch", unfinished=False)
    assert run_id is not None
    journal = {e["device_id"]: e["state"] for e in store.journal(run_id)}
    assert journal == {d: o.state for d, o in outcomes.items()}


@pytest.mark.parametrize("kind", KINDS, ids=str)
async def test_patch_retry_reports_each_fault_honestly_and_never_sends_twice(
    kind: Fault, tmp_path: Path
) -> None:
    """With one fault kind on the first send, each call is done/failed/unknown as it must be."""
    async with planned(f"chaos-patch-{kind.value}", devices=40) as (sim, client, plan):
        devices = [item.device.device_id for item in plan.items]
        faulted = set(devices[::2])
        first_sends: set[str] = set()

        def script(context: FaultContext) -> Fault | None:
            device = context.device_id
            if context.service != "patch_retry" or device is None or int(device) not in faulted:
                return None
            if device in first_sends:
                return None
            first_sends.add(device)
            return kind

        sim.configure(fault_script=script)
        with RunStore(tmp_path / "journal.sqlite") as store:
            outcomes = await _execute(client, plan, store)
            _check_journal(store, outcomes)
        check_never_twice(sim)
    assert set(outcomes) == set(devices)
    want = expected_state([kind, None], RETRY.attempts)
    got = Counter(outcomes[d].state for d in faulted)
    cell = ", ".join(f"{n} {state}" for state, n in sorted(got.items()))
    if set(got) != {want}:
        cell += f" (**expected {want}**)"
    matrix_cell(kind.value, "patch_retry, first send faulted", cell + "; none applied twice")
    for device in devices:
        outcome = outcomes[device]
        expected = want if device in faulted else "done"
        assert outcome.state == expected, (
            f"{kind.value}: device {device} reported {outcome.state!r}, expected {expected!r} "
            f"({outcome.error})"
        )
        if outcome.state == "unknown":
            assert outcome.error is not None
            assert "unknown" in outcome.error


MIXED_RATES = (0.1, 0.3) if not FULL else (0.1, 0.2, 0.3)


@pytest.mark.parametrize("rate", MIXED_RATES, ids=lambda r: f"{r:.0%}")
async def test_patch_retry_under_mixed_faults_never_sends_twice(
    rate: float, tmp_path: Path
) -> None:
    """With every fault kind mixed at 10-30%, each call's state follows from the faults it met."""
    devices = 300 if FULL else 100
    async with planned(f"chaos-patch-mixed-{rate}", devices=devices) as (sim, client, plan):
        draw = FaultDraw(
            rate=rate, kinds=tuple(Fault), services=frozenset({"patch_retry"}), seed=str(rate)
        )
        met: dict[int, list[Fault | None]] = defaultdict(list)

        def script(context: FaultContext) -> Fault | None:
            fault = draw(context)
            if context.device_id is not None:
                met[int(context.device_id)].append(fault)
            return fault

        sim.configure(fault_script=script)
        with RunStore(tmp_path / "journal.sqlite") as store:
            outcomes = await _execute(client, plan, store)
            _check_journal(store, outcomes)
        check_never_twice(sim)
    assert set(outcomes) == {item.device.device_id for item in plan.items}
    wrong = {
        device: (outcome.state, met[device])
        for device, outcome in outcomes.items()
        if outcome.state != expected_state(met[device], RETRY.attempts)
    }
    states = Counter(o.state for o in outcomes.values())
    matrix_cell(
        f"mixed {rate:.0%}",
        "patch_retry, first send faulted",
        f"(at {rate:.0%}) "
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + f"; {len(draw.fired)} faults; none applied twice"
        + (f"; **{len(wrong)} state(s) wrong**" if wrong else ""),
    )
    assert not wrong, f"states that do not follow from the faults met: {wrong}"
