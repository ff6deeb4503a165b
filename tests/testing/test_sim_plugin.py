"""Tests of the pytest plugin's fixtures and of the package's public surface."""

# These tests check that every document parses with a plain XML parser, as the
# brief demands; the bodies come from our own simulator, not from a network.
# ruff: noqa: S314

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest

import nsight_async.testing as public
from nsight_async.testing import SIMULATOR_API_KEY, Simulator
from nsight_async.testing._run import RunningServer

# The plugin is registered by the ``pytest11`` entry point once the package is
# installed; until then this module loads it (loading it twice would be an error).
if not any(ep.name == "nsight_async" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["nsight_async.testing.pytest_plugin"]


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted (isort style, as ruff's RUF022 wants) and complete."""

    def isort_key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert public.__all__ == sorted(public.__all__, key=isort_key)
    assert all(hasattr(public, name) for name in public.__all__)
    exported = {n for n in dir(public) if n.isidentifier() and not n.startswith("_")}
    assert exported - {"annotations", "pytest_plugin"} <= set(public.__all__)


def test_simulator_fixture_is_small_and_fresh(nsight_simulator: Simulator) -> None:
    """``nsight_simulator`` is a small seeded fleet with an empty log."""
    assert 0 < nsight_simulator.fleet.n_devices <= 100
    assert len(nsight_simulator.log) == 0


def test_server_fixture_serves_its_simulator(nsight_server: RunningServer) -> None:
    """``nsight_server`` answers on loopback and logs into its simulator."""
    response = httpx.get(
        f"{nsight_server.url}/api/", params={"apikey": SIMULATOR_API_KEY, "service": "list_clients"}
    )
    assert ET.fromstring(response.content).get("status") == "OK"
    assert nsight_server.simulator.log.count("list_clients") == 1


@pytest.mark.skipif(
    importlib.util.find_spec("nsight_async._client") is None,
    reason="nsight_async.NsightClient is not written yet",
)
async def test_client_fixture_connects(nsight_client: Any, nsight_server: RunningServer) -> None:
    """``nsight_client`` is an NsightClient pointed at the loopback simulator."""
    assert nsight_client is not None
    assert type(nsight_client).__name__ == "NsightClient"
