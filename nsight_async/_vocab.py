"""Open vocabularies: named constants that also accept values the vendor adds later.

N-sight documents lists of plugins and statuses, but treats them as open sets
(a ``HYPER_V`` plugin has been seen that the docs never listed). An unknown
value becomes a pseudo-member instead of an error, so ``Plugin("HYPER_V")``
works and ``session.plugin == Plugin.FILE_SYSTEM`` still reads well.
"""

from __future__ import annotations

import enum
from typing import Any, Self


class OpenStrEnum(enum.StrEnum):
    """A ``StrEnum`` that turns unknown values into pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        # Cache, so the same unknown value is one object (bounded by distinct values seen).
        return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]  # the map holds members of cls

    @property
    def is_known(self) -> bool:
        """Whether this value is one the vendor documents."""
        return self._name_ in type(self).__members__


class OpenIntEnum(enum.IntEnum):
    """An ``IntEnum`` that turns unknown values into pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]  # the map holds members of cls

    @property
    def is_known(self) -> bool:
        """Whether this value is one the vendor documents."""
        return self._name_ in type(self).__members__


class DeviceKind(enum.StrEnum):
    """The ``devicetype`` parameter values (case sensitive on the server)."""

    SERVER = "server"
    WORKSTATION = "workstation"
    MOBILE_DEVICE = "mobile_device"


class SessionType(OpenStrEnum):
    """Backup & Recovery session type."""

    BACKUP = "BACKUP"
    RESTORE = "RESTORE"


class Plugin(OpenStrEnum):
    """Backup & Recovery plugin (an open set)."""

    FILE_SYSTEM = "FILE_SYSTEM"
    SYSTEM_STATE = "SYSTEM_STATE"
    EXCHANGE = "EXCHANGE"
    NETWORK_SHARES = "NETWORK_SHARES"
    VMWARE = "VMWARE"
    MSSQL = "MSSQL"
    SHAREPOINT = "SHAREPOINT"
    ORACLE = "ORACLE"


class SessionStatus(OpenStrEnum):
    """Backup & Recovery session status (an open set)."""

    COMPLETED = "COMPLETED"
    INTERRUPTED = "INTERRUPTED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    NOT_STARTED = "NOT_STARTED"
    CANCELED = "CANCELED"

    @property
    def succeeded(self) -> bool:
        """Whether the session counts as a successful backup (errors allowed)."""
        return self in _SUCCESS


_SUCCESS: frozenset[Any] = frozenset({SessionStatus.COMPLETED, SessionStatus.COMPLETED_WITH_ERRORS})


class PatchStatus(OpenIntEnum):
    """Patch status codes observed on N-sight (an open set)."""

    MISSING = 1
    PENDING = 2
    QUEUED = 4
    INSTALLED = 8
    FAILED = 16
    REBOOT_REQUIRED = 64
