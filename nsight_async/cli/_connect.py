"""Turn the command line, environment and config file into a connected client.

Precedence: flags, then the environment, then the config file. ``--demo``
starts a simulated fleet on 127.0.0.1 instead and needs no key.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .._client import NsightClient
from .._config import env_settings
from .._errors import ConfigurationError

DEFAULT_CONFIG = Path("~/.config/nsight-async/config.toml")
#: The demo fleet: big enough to be realistic, small enough to watch finish.
DEMO_SEED, DEMO_CLIENTS, DEMO_DEVICES = 2026, 12, 400
DEMO_LATENCY = 0.03
#: Fast enough to finish in seconds, slow enough to watch the progress and ETA.
DEMO_RATE = 1200.0


def load_config(path: str | None) -> dict[str, Any]:
    """Read the TOML config file (a missing default file is fine; a named one must exist)."""
    named = path or os.environ.get("NSIGHT_CONFIG")
    file = Path(named).expanduser() if named else DEFAULT_CONFIG.expanduser()
    if not file.exists():
        if named:
            raise ConfigurationError(f"config file {file} does not exist")
        return {}
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {file}: {exc}") from None
    allowed = {"server", "api_key", "max_per_minute", "max_at_once", "timeout"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigurationError(
            f"unknown settings in {file}: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return data


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Merge flags, environment and config file into ``NsightClient`` keywords."""
    merged: dict[str, Any] = load_config(args.config)
    merged.update(env_settings())
    if args.server:
        merged["server"] = args.server
    if args.api_key_file:
        try:
            merged["api_key"] = Path(args.api_key_file).read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the API key file: {exc.strerror}") from None
    for name in ("max_per_minute", "max_at_once", "timeout"):
        value = getattr(args, name)
        if value is not None:
            merged[name] = value
    if merged.get("max_per_minute") == 0:
        merged["max_per_minute"] = None
    if not merged.get("server"):
        raise ConfigurationError(
            "no server: use --server (a region such as uk or us, or an https URL), "
            "NSIGHT_SERVER, or the config file — or try --demo"
        )
    if not merged.get("api_key"):
        raise ConfigurationError(
            "no API key: set NSIGHT_API_KEY, use --api-key-file, or the config file — or try --demo"
        )
    return merged


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[NsightClient]:
    """Yield a client for the command: the real server, or the demo simulator."""
    if args.demo:
        async with demo_client(args) as client:
            yield client
        return
    async with NsightClient(**settings(args)) as client:
        yield client


@contextlib.asynccontextmanager
async def demo_client(args: argparse.Namespace) -> AsyncIterator[NsightClient]:
    """Serve a simulated fleet on 127.0.0.1 and yield a client connected to it."""
    from ..testing import SIMULATOR_API_KEY, SimulatedFleet, Simulator, SimulatorServer
    from ..testing import SimulatorConfig as Config

    fleet = SimulatedFleet(seed=DEMO_SEED, clients=DEMO_CLIENTS, devices=DEMO_DEVICES)
    simulator = Simulator(fleet, config=Config(latency=DEMO_LATENCY))
    async with SimulatorServer(simulator) as server:
        rate = args.max_per_minute
        limits: dict[str, Any] = {
            "max_at_once": 20 if args.max_at_once is None else args.max_at_once,
            "max_per_minute": DEMO_RATE if rate is None else (rate or None),  # 0: no limit
        }
        async with NsightClient(server.url, SIMULATOR_API_KEY, **limits) as client:
            yield client
