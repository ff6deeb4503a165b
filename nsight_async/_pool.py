"""A bounded worker pool over an async source: results stream out as they complete.

The source is read lazily into a small queue, a fixed number of workers take
from it, and results come back through another small queue, so memory stays
bounded however many items there are (no task per item, no list of results).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

Out = TypeVar("Out")

_DONE: Any = object()


class Passthrough:
    """Wraps a source item that needs no work: it is yielded as it is."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


async def single_error(task: asyncio.Task[None]) -> None:
    """Await a task running a task group; re-raise a lone error without its group."""
    try:
        await task
    except ExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def pool_map(
    source: AsyncIterator[Any],
    work: Callable[[Any], Awaitable[Out]],
    *,
    workers: int,
) -> AsyncGenerator[Any]:
    """Run ``work`` on each item of ``source`` with ``workers`` at once, yielding results.

    Items wrapped in :class:`Passthrough` skip the workers. Results come out in
    completion order. ``work`` should turn expected failures into results;
    anything it raises stops the pool and is re-raised here. Closing the
    iterator early cancels the workers.
    """
    todo: asyncio.Queue[Any] = asyncio.Queue(maxsize=workers * 2)
    results: asyncio.Queue[Any] = asyncio.Queue(maxsize=workers * 4)

    async def produce() -> None:
        async for item in source:
            if isinstance(item, Passthrough):
                await results.put(item.value)
            else:
                await todo.put(item)
        # Only when the source ran out: on an error or a cancellation the task
        # group stops the workers, and waiting here on a full queue would hang.
        for _ in range(workers):
            await todo.put(_DONE)

    async def worker() -> None:
        while (item := await todo.get()) is not _DONE:
            await results.put(await work(item))

    async def run() -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(workers):
                    group.create_task(worker())
        except asyncio.CancelledError:
            raise  # the consumer closed early and is not reading any more
        except BaseException:
            await results.put(_DONE)  # wake the consumer, which re-raises
            raise
        await results.put(_DONE)

    runner = asyncio.create_task(run())
    try:
        while (result := await results.get()) is not _DONE:
            yield result
        await single_error(runner)  # re-raise what stopped the pool (e.g. list_clients failed)
    finally:
        if not runner.done():
            runner.cancel()
            # Closing early: whatever the workers were doing is abandoned on purpose.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
