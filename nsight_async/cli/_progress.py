"""Live progress for long runs: a rich progress bar on a terminal, plain lines otherwise.

The ETA comes from the calls still needed and the rate the client is allowed
(or, with no limit, the rate observed so far): a rate-limited fleet walk is
bounded by calls, not by devices.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._fleet import Progress as FleetProgress

_LINE_EVERY = 5.0  # seconds between plain progress lines


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressDisplay:
    """Shows fleet progress; use as a context manager and pass :meth:`update` as callback."""

    def __init__(
        self, label: str, *, console: Console, max_per_minute: float | None, quiet: bool
    ) -> None:
        self.label = label
        self._console = console
        self._max_per_minute = max_per_minute
        self._quiet = quiet
        self._live = console.is_terminal and not quiet
        self._started = time.monotonic()
        self._last_line = 0.0
        self._last: FleetProgress | None = None
        self._bar: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self._live:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None, status="listing clients…")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._last is not None and not self._quiet:
            self._console.print(self._line(self._last))

    def rate(self, p: FleetProgress) -> float:
        """Calls per minute so far."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return p.calls_spent / elapsed * 60

    def eta(self, p: FleetProgress) -> float | None:
        """Seconds left: calls still needed over the allowed (or observed) rate."""
        per_minute = self._max_per_minute or self.rate(p)
        if per_minute <= 0:
            return None
        return p.calls_needed / per_minute * 60

    def _status(self, p: FleetProgress) -> str:
        return (
            f"{p.calls_spent} calls · {self.rate(p):.0f}/min · {p.devices_failed} errors · "
            f"{p.devices_skipped} skipped · ETA {_eta(self.eta(p))}"
        )

    def _line(self, p: FleetProgress) -> str:
        done = p.devices_done + p.devices_failed + p.devices_skipped
        return (
            f"{self.label}: {done}/{p.devices_known} devices "
            f"({p.clients_listed}/{p.clients_total} clients listed), {self._status(p)}"
        )

    def update(self, p: FleetProgress) -> None:
        """Take a new snapshot (called by the fleet after every change)."""
        self._last = p
        done = p.devices_done + p.devices_failed + p.devices_skipped
        if self._bar is not None:
            total = p.devices_known if p.clients_listed >= p.clients_total else None
            self._bar.update(self._task, completed=done, total=total, status=self._status(p))
            return
        now = time.monotonic()
        if not self._quiet and now - self._last_line >= _LINE_EVERY:
            self._last_line = now
            self._console.print(self._line(p), highlight=False)
