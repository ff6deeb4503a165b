"""A faithful, seeded simulator of the N-sight RMM Data Extraction API (like moto for AWS).

Build a fleet, wrap it in a `Simulator`, and serve it in process
(`SimulatorTransport`, for ``httpx.AsyncClient``) or on loopback
(`SimulatorServer`)::

    sim = Simulator(SimulatedFleet(seed=1, clients=5, devices=200))
    async with SimulatorServer(sim) as server:
        ...  # GET f"{server.url}/api/?apikey={SIMULATOR_API_KEY}&service=list_clients"

Decisions where the vendor documentation is silent (all guesses, all documented):

- unknown ``service`` → FAIL, errorcode 2, "Service unknown"; no ``service`` →
  errorcode 5 "Missing parameter: service"; a non-numeric or unknown id and a bad
  ``devicetype`` → errorcode 4; a path other than ``/api/`` or ``/api/default.php`` → 404 HTML.
- ``patch_retry``: a failed (16) patch becomes pending (2) and is listed under
  "Retrying patches"; any other status is listed under "Patches already applied";
  an empty list leaves its label bare (``Retrying patches: Patches already applied: 7``).
  If any id is not on the device the whole call fails (``status="FAIL"``, only a
  ``<msg>``) and nothing changes.
- ``list_devices_at_client``: the ``<client>`` always appears; only sites with at least
  one device of the type are listed; ``mobile_device`` answers ``<items/>``.
- ``list_mob_sessions`` for a ``mob=0`` device and ``patch_list_all`` for a
  ``patch=0`` device answer empty documents, not errors.
- The rate limit counts admitted calls per key in a sliding window; over-limit calls
  are not counted. ``Retry-After`` is the whole seconds until the oldest call leaves it.
"""

from nsight_async.testing._app import SimResponse, Simulator
from nsight_async.testing._config import SIMULATOR_API_KEY, RateLimitMode, SimulatorConfig
from nsight_async.testing._connect import in_process_client
from nsight_async.testing._faults import Fault, FaultContext
from nsight_async.testing._fleet import ClientInfo, DeviceInfo, DeviceKind, SimulatedFleet, SiteInfo
from nsight_async.testing._history import SimPatch, SimSession
from nsight_async.testing._log import RequestLog, RequestLogEntry
from nsight_async.testing._run import run_simulator, serve_forever, serve_in_thread
from nsight_async.testing._server import SimulatorServer
from nsight_async.testing._time import InstantTime, VirtualTime
from nsight_async.testing._transport import SimulatorTransport

__all__ = [
    "SIMULATOR_API_KEY",
    "ClientInfo",
    "DeviceInfo",
    "DeviceKind",
    "Fault",
    "FaultContext",
    "InstantTime",
    "RateLimitMode",
    "RequestLog",
    "RequestLogEntry",
    "SimPatch",
    "SimResponse",
    "SimSession",
    "SimulatedFleet",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorTransport",
    "SiteInfo",
    "VirtualTime",
    "in_process_client",
    "run_simulator",
    "serve_forever",
    "serve_in_thread",
]
