"""Run a simulator outside a test's event loop: blocking, in a thread, or from a CLI.

- `serve_forever` blocks until SIGINT/SIGTERM (main thread) and calls
  ``ready_callback(url)`` once listening; it runs on uvloop when uvloop is
  installed (less CPU per request), else on the standard event loop;
- `serve_in_thread` is a context manager running the server on its own event loop
  in a daemon thread (what the pytest plugin uses);
- `run_simulator` parses CLI options (``nsight-async simulate`` and
  ``python -m nsight_async.testing``), prints the URL on stdout when ready and
  returns an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

import attrs

from nsight_async.testing._app import Simulator
from nsight_async.testing._config import SIMULATOR_API_KEY, RateLimitMode, SimulatorConfig
from nsight_async.testing._faults import DEFAULT_FAULT_KINDS, Fault
from nsight_async.testing._fleet import SimulatedFleet
from nsight_async.testing._server import SimulatorServer, check_loopback


async def _serve(
    simulator: Simulator,
    host: str,
    port: int,
    ready: Callable[[str], None] | None,
    stop: asyncio.Event,
) -> None:
    async with SimulatorServer(simulator, host=host, port=port) as server:
        if ready is not None:
            ready(server.url)
        await stop.wait()


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's loop factory if uvloop is installed (it is optional), else None."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def serve_forever(
    simulator: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready_callback: Callable[[str], None] | None = None,
    use_uvloop: bool = True,
) -> None:
    """Serve until SIGINT or SIGTERM, then close cleanly (call from the main thread).

    With ``use_uvloop`` (the default) the server runs on uvloop if it is importable.
    """
    check_loopback(host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await _serve(simulator, host, port, ready_callback, stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=_uvloop_factory() if use_uvloop else None) as runner:
        runner.run(main())


@attrs.frozen(kw_only=True)
class RunningServer:
    """A server running in a background thread: its URL and simulator."""

    url: str
    simulator: Simulator


@contextlib.contextmanager
def serve_in_thread(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> Iterator[RunningServer]:
    """Run a loopback server on its own event loop in a thread; stop it on exit."""
    check_loopback(host)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    urls: list[str] = []
    errors: list[BaseException] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    def run() -> None:
        try:
            loop.run_until_complete(_serve(simulator, host, port, on_ready, stop))
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="nsight-simulator", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout) or errors:
            cause = errors[0] if errors else None
            raise RuntimeError("the simulator server did not start") from cause
        yield RunningServer(url=urls[0], simulator=simulator)
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsight-async simulate", description="Serve a simulated N-sight API on loopback."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8080, help="TCP port, 0 for any free port (default 8080)")
    add("--seed", default="0", help="fleet seed (default 0)")
    add("--clients", type=int, default=20, help="number of clients (default 20)")
    add("--devices", type=int, default=500, help="approximate number of devices (default 500)")
    add("--history-days", type=int, default=60, help="days of backup history (default 60)")
    add("--big-device-sessions", type=int, default=0, help="sessions on one huge device")
    add("--api-key", action="append", help=f"valid key, repeatable (default {SIMULATOR_API_KEY})")
    add("--latency", type=float, default=0.0, help="seconds of latency per response")
    add("--rate-limit-per-minute", type=int, default=None, help="calls per key per window")
    add("--rate-window", type=float, default=60.0, help="rate window in seconds (default 60)")
    modes = [m.value for m in RateLimitMode]
    add("--rate-limit-mode", choices=modes, default="429", help="over-limit answer")
    add("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    kinds = ",".join(f.value for f in DEFAULT_FAULT_KINDS)
    add("--fault-kinds", default=kinds, help="comma-separated fault kinds")
    add("--stall-seconds", type=float, default=30.0, help="duration of the stall fault")
    return parser


def run_simulator(argv: Sequence[str] | None = None) -> int:
    """Parse options, serve until SIGINT/SIGTERM, return 0 (2 on bad options)."""
    args = _parser().parse_args(argv)
    try:
        check_loopback(args.host)
        config = SimulatorConfig(
            latency=args.latency,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_window=args.rate_window,
            rate_limit_mode=RateLimitMode(args.rate_limit_mode),
            fault_rate=args.fault_rate,
            fault_kinds=tuple(Fault(k.strip()) for k in args.fault_kinds.split(",") if k.strip()),
            stall_seconds=args.stall_seconds,
        )
        fleet = SimulatedFleet(
            seed=args.seed,
            clients=args.clients,
            devices=args.devices,
            history_days=args.history_days,
            big_device_sessions=args.big_device_sessions,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    simulator = Simulator(fleet, config=config, api_keys=args.api_key or [SIMULATOR_API_KEY])

    def ready(url: str) -> None:
        print(url, flush=True)

    serve_forever(simulator, host=args.host, port=args.port, ready_callback=ready)
    return 0
