"""The simulator's controls: latency, rate limit and fault injection.

`SimulatorConfig` is frozen and validated when built; change a running
simulator with ``sim.configure(latency=0.2)`` (which uses ``attrs.evolve``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from nsight_async.testing._faults import DEFAULT_FAULT_KINDS, Fault, FaultScript

SIMULATOR_API_KEY = "sim-key-0123456789abcdef"
DEFAULT_HOST = "simulator.systemmonitor.invalid"
DEFAULT_UTC_OFFSET_MINUTES = -360  # live servers answered with -06:00
DEFAULT_RATE_WINDOW = 60.0
DEFAULT_STALL_SECONDS = 30.0


class RateLimitMode(enum.StrEnum):
    """How an over-limit call is answered (the real server's answer is unknown)."""

    HTTP429 = "429"  # 429 with a Retry-After header (seconds until a slot frees)
    HTTP429_NO_RETRY_AFTER = "429-no-retry-after"
    HTML403 = "html-403"  # the firewall's HTML block page
    HTML503 = "html-503"  # an overloaded proxy's HTML page


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _to_faults(kinds: object) -> tuple[Fault, ...]:
    if not isinstance(kinds, list | tuple | set | frozenset):
        raise TypeError("fault_kinds must be a collection of Fault values")
    return tuple(Fault(k) for k in kinds)


def _to_services(services: object) -> frozenset[str] | None:
    if services is None:
        return None
    if isinstance(services, str) or not isinstance(services, list | tuple | set | frozenset):
        raise TypeError("fault_services must be a collection of service names or None")
    return frozenset(str(s) for s in services)


@attrs.frozen(kw_only=True)
class SimulatorConfig:
    """Controls of a `Simulator`.

    Args:
        host: Value of the root ``host`` attribute.
        utc_offset_minutes: Offset of the root ``created`` timestamp (``-06:00`` by default).
        latency: Seconds from a request's arrival to its answer (slept with the injected
            sleep). A read is rendered first, inside that time; a write, and a call
            given a fault, sleep the whole latency first.
        latency_by_service: Per-service latency overriding ``latency``.
        rate_limit_per_minute: Calls admitted per key per window; None disables the limit.
        rate_window: Length of the sliding window in seconds (60 by default).
        rate_limit_mode: How over-limit calls are answered (see `RateLimitMode`).
        fault_rate: Probability that a request gets a fault drawn from ``fault_kinds``.
        fault_kinds: Kinds drawn by ``fault_rate``.
        fault_services: Restrict probabilistic faults to these services (None: all).
        fault_script: Faults by request number (a sequence) or by a callable given a
            `FaultContext`; it wins over ``fault_rate``.
        stall_seconds: How long the ``stall`` fault sleeps.
    """

    host: str = DEFAULT_HOST
    utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_by_service: Mapping[str, float] = attrs.field(factory=dict)
    rate_limit_per_minute: int | None = None
    rate_window: float = attrs.field(default=DEFAULT_RATE_WINDOW, validator=_non_negative)
    rate_limit_mode: RateLimitMode = attrs.field(
        default=RateLimitMode.HTTP429, converter=RateLimitMode
    )
    fault_rate: float = attrs.field(default=0.0, validator=_non_negative)
    fault_kinds: tuple[Fault, ...] = attrs.field(default=DEFAULT_FAULT_KINDS, converter=_to_faults)
    fault_services: frozenset[str] | None = attrs.field(default=None, converter=_to_services)
    fault_script: FaultScript | None = None
    stall_seconds: float = attrs.field(default=DEFAULT_STALL_SECONDS, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.fault_rate > 1.0:
            raise ValueError(f"fault_rate must lie in [0, 1], got {self.fault_rate!r}")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1 or None (no limit)")
        if self.rate_limit_per_minute is not None and self.rate_window <= 0:
            raise ValueError("rate_window must be > 0 when a rate limit is set")

    def latency_for(self, service: str) -> float:
        """Return the latency to apply to one service."""
        return self.latency_by_service.get(service, self.latency)
