"""Per-device backup session histories and patch lists, generated lazily.

A history is a generator driven by one ``random.Random`` seeded from
``f"{seed}:mob:{device_id}"``: it yields sessions oldest first, so a
million-session device costs constant memory. Devices get a *profile*:
``healthy`` (mostly COMPLETED), ``stale`` (no success in the last weeks),
``never`` (never succeeded), ``empty`` (enabled but nothing recorded yet) and
``flaky`` (about half the batches fail).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs

from nsight_async.testing import _vocab

SENTINEL_DATETIME = "0000-00-00 00:00:00"
_SUCCESS = ("COMPLETED", "COMPLETED_WITH_ERRORS")
_HEALTHY_WEIGHTS = (
    ("COMPLETED", 85.0),
    ("COMPLETED_WITH_ERRORS", 7.0),
    ("INTERRUPTED", 3.0),
    ("FAILED", 2.5),
    ("NOT_STARTED", 1.0),
    ("CANCELED", 1.0),
    ("IN_PROGRESS", 0.3),
    ("OVER_QUOTA", 0.2),
)

_HEALTHY_STATUSES = tuple(s for s, _ in _HEALTHY_WEIGHTS)
_HEALTHY_CUMULATIVE = tuple(
    sum(w for _, w in _HEALTHY_WEIGHTS[: i + 1]) / sum(w for _, w in _HEALTHY_WEIGHTS)
    for i in range(len(_HEALTHY_WEIGHTS) - 1)
)


@attrs.frozen(kw_only=True)
class SimSession:
    """One Backup & Recovery session, as the fields of ``list_mob_sessions`` (bytes, UTC)."""

    session_id: int
    type: str
    storage_account_id: int
    plugin: str
    start: datetime
    end: datetime
    selection_size: int
    selection_item_count: int
    size_change: int
    item_count_change: int
    removed_item_count: int
    processed_size: int
    processed_item_count: int
    transferred_size: int
    error_count: int
    status: str

    @classmethod
    def from_row(cls, row: SessionRow) -> SimSession:
        """Build a session from a generator row (epoch seconds become aware UTC datetimes)."""
        return cls(
            session_id=row[0],
            type=row[1],
            storage_account_id=row[2],
            plugin=row[3],
            start=datetime.fromtimestamp(row[4], UTC),
            end=datetime.fromtimestamp(row[5], UTC),
            selection_size=row[6],
            selection_item_count=row[7],
            size_change=row[8],
            item_count_change=row[9],
            removed_item_count=row[10],
            processed_size=row[11],
            processed_item_count=row[12],
            transferred_size=row[13],
            error_count=row[14],
            status=row[15],
        )


@attrs.frozen(kw_only=True)
class SimPatch:
    """One patch of ``patch_list_all``; ``status`` is the vendor code (1, 2, 4, 8, 16, 64)."""

    patchid: int
    policy: int
    status: int
    title: str
    product: str
    severity: int
    installdate: str
    release_date: str
    selectpatch: int

    @property
    def status_label(self) -> str:
        """Return the vendor label of the status code."""
        return _vocab.PATCH_STATUS_LABELS.get(self.status, "Unknown")

    @property
    def policy_label(self) -> str:
        """Return the vendor label of the policy code."""
        return _vocab.PATCH_POLICY_LABELS.get(self.policy, "Do Nothing")


#: Every value `mob_profile` returns.
PROFILES = ("healthy", "stale", "never", "empty", "flaky")


def mob_profile(seed: str, device_id: int) -> str:
    """Return the history profile of a device (see the module docstring)."""
    roll = random.Random(f"{seed}:profile:{device_id}").random()
    if roll < 0.72:
        return "healthy"
    if roll < 0.84:
        return "stale"
    if roll < 0.90:
        return "never"
    if roll < 0.95:
        return "empty"
    return "flaky"


#: One session as a plain tuple, in ``list_mob_sessions`` field order; times are epoch seconds.
SessionRow = tuple[int, str, int, str, int, int, int, int, int, int, int, int, int, int, int, str]


def iter_session_rows(
    *,
    seed: str,
    device_id: int,
    now: datetime,
    days: int,
    count: int | None = None,
    profile: str | None = None,
) -> Iterator[SessionRow]:
    """Yield a device's sessions oldest first, as tuples (the fast path the renderer uses).

    Args:
        seed: The fleet seed.
        device_id: The device.
        now: End of the history (aware UTC).
        days: Number of daily batches (ignored when ``count`` is given).
        count: Exact number of sessions wanted (hourly batches), for huge histories.
        profile: The device's `mob_profile` if the caller knows it (``healthy`` with ``count``).
    """
    rng = random.Random(f"{seed}:mob:{device_id}")
    rand = rng.random
    if profile is None:
        profile = "healthy" if count is not None else mob_profile(seed, device_id)
    if profile == "empty":
        return
    n_plugins = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
    plugins = rng.sample(_vocab.MOB_PLUGINS[:4], n_plugins)
    if rand() < 0.08:
        plugins.append(rng.choice(_vocab.UNDOCUMENTED_PLUGINS))
    draw = rng.randrange  # randint(a, b) is randrange(a, b + 1): the same draws
    sizes = {p: draw(2**28, 2**41 + 1) for p in plugins}
    items = {p: draw(10, 2_000_001) for p in plugins}
    storage = draw(100, 10_000)
    if count is None:
        n_batches, step, total = days, 86400, days * len(plugins)
    else:
        n_batches, step, total = -(-count // len(plugins)), 3600, count
    cutoff = n_batches - draw(14, 46) if profile == "stale" else n_batches
    first = int(now.timestamp()) - step * n_batches + draw(3600, 5 * 3600 + 1)
    base_id = device_id * 10_000_000
    emitted = 0
    # Locals and flags hoisted out of the loops; the sequence of rand() calls is unchanged.
    never, stale, flaky = profile == "never", profile == "stale", profile == "flaky"
    failures, healthy, cumulative = _vocab.FAILURE_STATUSES, _HEALTHY_STATUSES, _HEALTHY_CUMULATIVE
    success, draw_status = _SUCCESS, bisect.bisect
    for batch in range(n_batches):
        clock = first + step * batch + int(rand() * 900)
        failing = never or (stale and batch >= cutoff)
        for plugin in plugins:
            if emitted == total:
                return
            if failing or (flaky and rand() < 0.5):
                status = failures[int(rand() * 4)]
            else:
                status = healthy[draw_status(cumulative, rand())]
            size = sizes[plugin]
            change = int(rand() * size / 200)
            size = sizes[plugin] = size + change if rand() < 0.7 else size - change
            duration = 20 + int(rand() * 4 * 3600)
            done = status in success
            processed = size if done else int(rand() * size)
            n_items = items[plugin]
            yield (
                base_id + emitted,
                "RESTORE" if rand() < 0.01 else "BACKUP",
                storage,
                plugin,
                clock,
                clock + duration,
                size,
                n_items,
                change,
                int(rand() * 500),
                int(rand() * 20) if rand() < 0.2 else 0,
                0 if status == "NOT_STARTED" else processed,
                n_items if done else int(rand() * n_items),
                int(rand() * processed / 50),
                1 + int(rand() * 40) if status == "COMPLETED_WITH_ERRORS" else 0,
                status,
            )
            emitted += 1
            clock += duration


def iter_sessions(
    *, seed: str, device_id: int, now: datetime, days: int, count: int | None = None
) -> Iterator[SimSession]:
    """Yield a device's sessions oldest first, as `SimSession` records (ground truth)."""
    rows = iter_session_rows(seed=seed, device_id=device_id, now=now, days=days, count=count)
    for row in rows:
        yield SimSession.from_row(row)


def generate_patches(*, seed: str, device_id: int, now: datetime) -> list[SimPatch]:
    """Return a patch-enabled device's patches; every status code appears at least once."""
    rng = random.Random(f"{seed}:patch:{device_id}")
    n = rng.randint(6, 30)
    codes = [1, 2, 4, 8, 16, 64]
    rng.shuffle(codes)
    codes += rng.choices((8, 1, 16, 2, 4, 64), weights=(60, 15, 8, 6, 5, 6), k=n - 6)
    patch_ids = sorted(rng.sample(range(1, 5000), n))
    patches = []
    for patchid, status in zip(patch_ids, codes, strict=True):
        product, template = _vocab.PATCH_PRODUCTS[patchid % len(_vocab.PATCH_PRODUCTS)]
        released = now - timedelta(days=rng.randint(1, 900))
        installed = released + timedelta(days=rng.randint(0, 30), seconds=rng.randint(0, 86399))
        title = template.format(month=released.strftime("%Y-%m"), kb=5_000_000 + patchid)
        patches.append(
            SimPatch(
                patchid=patchid,
                policy=rng.choice((1, 2, 4, 65, 66, 68)),
                status=status,
                title=title,
                product=product,
                severity=rng.randint(0, 4),
                installdate=installed.strftime("%Y-%m-%d %H:%M:%S")
                if status in (8, 64)
                else SENTINEL_DATETIME,
                release_date=released.strftime("%Y-%m-%d"),
                selectpatch=rng.randint(0, 1),
            )
        )
    return patches
