"""Bulk patch retry: a plan first, then exactly that plan, each write sent at most once.

:func:`plan_patch_retry` walks the fleet (devices with patch management on),
lists each device's patches and keeps those that match (status *failed* by
default; client, site, device, title and product filters). The
:class:`PatchPlan` can be shown, saved as JSON and reviewed.

:func:`execute_patch_plan` runs that plan in parallel within the client's
limits: one ``patch_retry`` per device (split when the id list would make the
URL too long). Each call is journaled in the run store *before* it is sent and
its result after, so a resumed run never sends a call twice: a call whose
result was never recorded is reported as ``unknown`` and left alone unless
``resend_unknown`` is given.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from ._client import NsightClient
from ._errors import InvalidArgumentError
from ._fleet import ClientFailure, Filters, Fleet, Progress
from ._models import DeviceAtClient, Patch
from ._serial import device_from_json, jsonable
from ._vocab import PatchStatus

PATCH = "patch"
#: Characters of comma-separated ids per call: keeps the URL far below common
#: 2,048-character limits of proxies and firewalls in front of the server.
MAX_IDS_CHARS = 1500


@attrs.frozen(kw_only=True)
class PlannedPatch:
    """One patch the plan will retry."""

    patch_id: int
    title: str | None = None
    product: str | None = None
    status: int | None = None


@attrs.frozen(kw_only=True)
class PlanItem:
    """The patches to retry on one device."""

    device: DeviceAtClient
    patches: tuple[PlannedPatch, ...]

    @property
    def patch_ids(self) -> list[int]:
        """The ids, in plan order."""
        return [p.patch_id for p in self.patches]


@attrs.frozen(kw_only=True)
class PatchPlan:
    """A reviewed list of retries: what will be sent, device by device."""

    created: datetime
    criteria: dict[str, Any]
    items: tuple[PlanItem, ...]
    errors: tuple[tuple[DeviceAtClient, str], ...] = ()

    @property
    def patch_count(self) -> int:
        """How many patches the plan retries."""
        return sum(len(i.patches) for i in self.items)

    def to_json(self) -> dict[str, Any]:
        """Return the plan as JSON-ready values (to save and review)."""
        return {
            "created": self.created.isoformat(),
            "criteria": jsonable(self.criteria),
            "items": [jsonable(i) for i in self.items],
            "errors": [{"device": jsonable(d), "error": e} for d, e in self.errors],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PatchPlan:
        """Rebuild a plan saved by :meth:`to_json`.

        Raises:
            InvalidArgumentError: the data is not a plan, or lists a device twice.
        """
        try:
            plan = cls(
                created=datetime.fromisoformat(data["created"]),
                criteria=dict(data.get("criteria") or {}),
                items=tuple(
                    PlanItem(
                        device=device_from_json(i["device"]),
                        patches=tuple(PlannedPatch(**p) for p in i["patches"]),
                    )
                    for i in data["items"]
                ),
                errors=tuple(
                    (device_from_json(e["device"]), e["error"]) for e in data.get("errors", [])
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgumentError(
                f"not a plan saved by --plan-out ({type(exc).__name__}: {exc})"
            ) from None
        seen: set[int] = set()
        for item in plan.items:
            if item.device.device_id in seen:
                raise InvalidArgumentError(
                    f"the plan lists device {item.device.device_id} twice: merge its patches "
                    "into one item"
                )
            seen.add(item.device.device_id)
        return plan

    def save(self, path: str | Path) -> None:
        """Write the plan to a JSON file."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True), "utf-8")

    @classmethod
    def load(cls, path: str | Path) -> PatchPlan:
        """Read a plan written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{path} is not a plan saved by --plan-out: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{path} is not a plan saved by --plan-out")
        return cls.from_json(data)


def _wanted(
    statuses: Collection[int], titles: Collection[str], products: Collection[str]
) -> Callable[[Patch], bool]:
    def match(patch: Patch) -> bool:
        if patch.status is None or int(patch.status) not in statuses:
            return False
        if titles and not _any_glob(titles, patch.title):
            return False
        return not products or _any_glob(products, patch.product)

    return match


def _any_glob(patterns: Collection[str], text: str | None) -> bool:
    value = (text or "").lower()
    return any(fnmatch.fnmatchcase(value, p.lower()) or p.lower() in value for p in patterns)


async def plan_patch_retry(
    client: NsightClient,
    *,
    filters: Filters | None = None,
    statuses: Collection[int] = (PatchStatus.FAILED,),
    titles: Collection[str] = (),
    products: Collection[str] = (),
    on_progress: Callable[[Progress], None] | None = None,
) -> PatchPlan:
    """Walk the fleet and build the plan: which patches to retry on which devices."""
    match = _wanted({int(s) for s in statuses}, titles, products)

    async def patches(device: DeviceAtClient) -> tuple[PlannedPatch, ...]:
        found = [
            PlannedPatch(patch_id=p.patch_id, title=p.title, product=p.product, status=p.status)
            async for p in client.patch_list_all(device.device_id)
            if match(p)
        ]
        return tuple(found)

    items: list[PlanItem] = []
    errors: list[tuple[DeviceAtClient, str]] = []
    fleet = Fleet(client, filters=filters, on_progress=on_progress)
    skip = _patch_disabled
    async with contextlib.aclosing(fleet.map(patches, skip=skip)) as outcomes:
        async for outcome in outcomes:
            if isinstance(outcome, ClientFailure):
                raise outcome.error  # a plan must cover the whole selection or not exist
            if outcome.status == "ok" and outcome.value:
                items.append(PlanItem(device=outcome.device, patches=outcome.value))
            elif outcome.status == "error":
                errors.append((outcome.device, str(outcome.error)))
    items.sort(key=lambda i: (i.device.client_id, i.device.site_id, i.device.device_id))
    criteria = {
        "statuses": sorted(int(s) for s in statuses),
        "titles": list(titles),
        "products": list(products),
        "filters": jsonable(filters or Filters()),
    }
    return PatchPlan(
        created=datetime.now(UTC), criteria=criteria, items=tuple(items), errors=tuple(errors)
    )


def _patch_disabled(device: DeviceAtClient) -> str | None:
    return None if device.patch else "patch management is not enabled on this device"


@attrs.frozen(kw_only=True)
class PatchOutcome:
    """How one planned call ended: ``done``, ``failed`` or ``unknown`` (maybe applied)."""

    device: DeviceAtClient
    chunk: int
    patch_ids: tuple[int, ...]
    state: Literal["done", "failed", "unknown"]
    retrying: tuple[int, ...] = ()
    already_applied: tuple[int, ...] = ()
    error: str | None = None
    earlier: bool = False  # recorded by an earlier, interrupted run


def split_ids(ids: Iterable[int], max_chars: int = MAX_IDS_CHARS) -> list[list[int]]:
    """Split patch ids into lists whose comma-joined text fits ``max_chars``."""
    chunks: list[list[int]] = [[]]
    size = 0
    for patch_id in ids:
        width = len(str(patch_id)) + 1
        if chunks[-1] and size + width > max_chars:
            chunks.append([])
            size = 0
        chunks[-1].append(patch_id)
        size += width
    return [c for c in chunks if c]
