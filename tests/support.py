"""Helpers shared by several test modules (imported as ``support``; not a conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nsight_async import NsightError, StreamParser
from nsight_async.testing import Fault, FaultContext, SimulatedFleet, Simulator, SimulatorConfig

T = TypeVar("T")

#: Seconds a closing run may take before the test calls it hung.
PROMPT = 3.0

NSIGHT_VARIABLES = (
    "NSIGHT_SERVER",
    "NSIGHT_API_KEY",
    "NSIGHT_CONFIG",
    "NSIGHT_MAX_PER_MINUTE",
    "NSIGHT_MAX_AT_ONCE",
    "NSIGHT_TIMEOUT",
)


async def closes_promptly(gen: AsyncGenerator[Any, Any]) -> bool:
    """Close an async generator; if it hangs, unblock the pool's tasks and say so."""
    closing = asyncio.ensure_future(gen.aclose())
    done, _ = await asyncio.wait([closing], timeout=PROMPT)
    if done:
        closing.result()
        return True
    # Bounded clean-up so the test fails instead of hanging: cancel the pool's stuck tasks.
    for _ in range(10):
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and task is not closing:
                task.cancel()
        done, _ = await asyncio.wait([closing], timeout=0.2)
        if done:
            break
    with contextlib.suppress(BaseException):
        closing.result()
    return False


async def stop_after(gen: AsyncGenerator[T, Any], n: int) -> list[T]:
    """Take n items, then close the generator (like Ctrl-C); fail rather than hang."""
    taken: list[T] = []
    async for item in gen:
        taken.append(item)
        if len(taken) == n:
            break
    if not await closes_promptly(gen):
        raise AssertionError("closing the run midway did not return (the pool hung)")
    return taken


@contextlib.contextmanager
def isolated_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run in an empty directory with no NSIGHT_* variables or user config; restore logging."""
    for name in NSIGHT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "aiohttp")}
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def failing_device(fleet: SimulatedFleet) -> tuple[Simulator, int]:
    """A simulator over ``fleet`` whose first device is refused (FAIL code 4) on every
    call about it; return the simulator and that device's id."""
    victim = next(iter(fleet.device_ids()))

    def script(ctx: FaultContext) -> Fault | None:
        return Fault.FAIL4 if ctx.device_id == str(victim) else None

    return Simulator(fleet, config=SimulatorConfig(fault_script=script)), victim


def feed_all(parser: StreamParser[Any], pieces: Iterable[bytes]) -> tuple[list[Any], Any]:
    """Feed ``pieces`` then close; return every record handed out and the error (or None)."""
    records: list[Any] = []
    try:
        for piece in pieces:
            records += parser.feed(piece)
        records += parser.close()
    except NsightError as exc:
        return records + parser.before_error, exc  # what close completed before the error
    return records, None
