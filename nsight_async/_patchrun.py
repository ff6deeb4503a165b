"""Execute a :class:`PatchPlan`: every planned call sent at most once, journaled.

Before a call is sent its intent is committed to the run store's journal;
after, its result. A resumed run reads the journal first: calls with a result
are reported as they ended, and calls with an intent but no result (the
process died while they were in flight) are reported as ``unknown`` and not
re-sent unless ``resend_unknown`` is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from ._client import NsightClient
from ._errors import InvalidArgumentError, NsightError, WriteOutcomeUnknownError
from ._patchjob import PATCH, PatchOutcome, PatchPlan, PlanItem, split_ids
from ._pool import Passthrough, pool_map
from ._store import RunStore

_UNKNOWN_EARLIER = (
    "this call may have been sent by an interrupted run (its intent was journaled but no "
    "result); it was not resent — check the device's patches, then resume with resend_unknown"
)


async def execute_patch_plan(
    client: NsightClient,
    plan: PatchPlan | None,
    *,
    store: RunStore | None = None,
    resume: bool = False,
    resend_unknown: bool = False,
    on_run: Callable[[str], None] | None = None,
) -> AsyncGenerator[PatchOutcome]:
    """Send the plan's retries in parallel; yield one :class:`PatchOutcome` per call.

    Args:
        plan: the plan to execute (``None`` with ``resume``: the stored plan).
        store: the journal (default: an in-memory one, for this run only).
        resume: continue the newest unfinished patch run in ``store``, with the
            plan it started with.
        resend_unknown: with ``resume``, send again the calls whose outcome is unknown.
    """
    store = store if store is not None else RunStore(":memory:")
    # resend_unknown may reopen a run that finished with unknown outcomes
    run_id = store.latest_run(PATCH, unfinished=not resend_unknown) if resume else None
    if run_id is not None:
        saved = store.plan(run_id)
        if saved is None:
            raise InvalidArgumentError(f"run {run_id} has no stored plan")
        plan = PatchPlan.from_json(saved)
    elif plan is None:
        raise InvalidArgumentError("no plan to execute, and no unfinished patch run to resume")
    else:
        _refuse_replay(store, plan)
        run_id = store.start_run(PATCH, {"plan_created": plan.created.isoformat()})
        store.save_plan(run_id, plan.to_json())
    if on_run is not None:
        on_run(run_id)
    journal = {(e["device_id"], e["chunk"]): e for e in store.journal(run_id)}
    run = run_id

    async def source() -> AsyncIterator[Any]:
        assert plan is not None  # narrowed above; closures do not keep narrowing
        for item in plan.items:
            for chunk, ids in enumerate(split_ids(item.patch_ids)):
                entry = journal.get((item.device.device_id, chunk))
                if entry is None:
                    yield (item, chunk, ids)
                elif entry["state"] in {"sending", "unknown"}:
                    if resend_unknown:
                        store.forget_intent(run, item.device.device_id, chunk)
                        yield (item, chunk, ids)
                    else:
                        if entry["state"] == "sending":
                            store.journal_result(
                                run, item.device.device_id, chunk, "unknown", error=_UNKNOWN_EARLIER
                            )
                        yield Passthrough(_earlier(item, chunk, ids, entry, "unknown"))
                else:
                    yield Passthrough(_earlier(item, chunk, ids, entry, entry["state"]))

    async def send(job: tuple[PlanItem, int, list[int]]) -> PatchOutcome:
        item, chunk, ids = job
        device = item.device
        store.journal_intent(run, device.device_id, chunk, ids)
        try:
            result = await client.patch_retry(device.device_id, ids)
        except WriteOutcomeUnknownError as exc:
            store.journal_result(run, device.device_id, chunk, "unknown", error=str(exc))
            return PatchOutcome(
                device=device, chunk=chunk, patch_ids=tuple(ids), state="unknown", error=str(exc)
            )
        except NsightError as exc:
            store.journal_result(run, device.device_id, chunk, "failed", error=str(exc))
            return PatchOutcome(
                device=device, chunk=chunk, patch_ids=tuple(ids), state="failed", error=str(exc)
            )
        store.journal_result(
            run,
            device.device_id,
            chunk,
            "done",
            result={"retrying": result.retrying, "already_applied": result.already_applied},
        )
        return PatchOutcome(
            device=device,
            chunk=chunk,
            patch_ids=tuple(ids),
            state="done",
            retrying=result.retrying,
            already_applied=result.already_applied,
        )

    finished = False
    try:
        pool = pool_map(source(), send, workers=client.limits.max_at_once)
        async with contextlib.aclosing(pool) as outcomes:
            async for outcome in outcomes:
                yield outcome
        finished = True
    finally:
        store.finish_run(run, "finished" if finished else "interrupted")


def _refuse_replay(store: RunStore, plan: PatchPlan) -> None:
    """Refuse to send a plan again, or beside an unfinished run, in the same journal."""
    for run in store.runs(PATCH):
        if run["status"] not in {"finished"}:
            raise InvalidArgumentError(
                f"the journal {store.path} holds an unfinished patch run ({run['run_id']}): "
                "resume it (--resume) so nothing is sent twice, or use a new journal (--store)"
            )
        if run["params"].get("plan_created") == plan.created.isoformat():
            raise InvalidArgumentError(
                f"this plan was already executed by run {run['run_id']} in {store.path}; "
                "plan again (a new plan lists only the patches that are still failed)"
            )


def _earlier(
    item: PlanItem, chunk: int, ids: list[int], entry: dict[str, Any], state: str
) -> PatchOutcome:
    result = entry.get("result") or {}
    return PatchOutcome(
        device=item.device,
        chunk=chunk,
        patch_ids=tuple(ids),
        state=state,  # type: ignore[arg-type]  # journal states are the outcome states
        retrying=tuple(result.get("retrying", ())),
        already_applied=tuple(result.get("already_applied", ())),
        error=_UNKNOWN_EARLIER if state == "unknown" else entry.get("error"),
        earlier=True,
    )
