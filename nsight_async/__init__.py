"""nsight-async: an asyncio client, fleet crawler and CLI for the N-sight RMM API.

The public API is the list in ``__all__``; everything in ``_private`` modules
may change without notice.
"""

from ._audit import AuditSummary, DeviceAudit, Health, SessionDigest
from ._auditjob import AuditResult, AuditSettings, backup_audit
from ._client import NsightClient
from ._config import REGIONS, Limits, RetryPolicy
from ._errors import (
    ActionFailedError,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ForbiddenXmlError,
    HtmlPageError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidParameterError,
    MissingParameterError,
    NsightError,
    ParseError,
    RateLimitedError,
    ResponseError,
    ResumeError,
    TransportError,
    UnknownServiceError,
    WriteOutcomeUnknownError,
)
from ._fleet import ClientFailure, Filters, Fleet, Outcome, Progress
from ._models import (
    CheckCounts,
    Client,
    Device,
    DeviceAtClient,
    MobSession,
    Patch,
    PatchRetryResult,
    ServiceDescription,
    ServiceParameter,
    Site,
)
from ._parser import Envelope, StreamParser
from ._patchjob import PatchOutcome, PatchPlan, PlanItem, PlannedPatch, plan_patch_retry
from ._patchrun import execute_patch_plan
from ._shapes import parser_for
from ._store import OutcomeRow, RunStore
from ._version import __version__
from ._vocab import DeviceKind, PatchStatus, Plugin, SessionStatus, SessionType

__all__ = [
    "REGIONS",
    "ActionFailedError",
    "ApiError",
    "AuditResult",
    "AuditSettings",
    "AuditSummary",
    "AuthenticationError",
    "CheckCounts",
    "Client",
    "ClientFailure",
    "ConfigurationError",
    "Device",
    "DeviceAtClient",
    "DeviceAudit",
    "DeviceKind",
    "Envelope",
    "Filters",
    "Fleet",
    "ForbiddenXmlError",
    "Health",
    "HtmlPageError",
    "HttpStatusError",
    "InvalidArgumentError",
    "InvalidParameterError",
    "Limits",
    "MissingParameterError",
    "MobSession",
    "NsightClient",
    "NsightError",
    "Outcome",
    "OutcomeRow",
    "ParseError",
    "Patch",
    "PatchOutcome",
    "PatchPlan",
    "PatchRetryResult",
    "PatchStatus",
    "PlanItem",
    "PlannedPatch",
    "Plugin",
    "Progress",
    "RateLimitedError",
    "ResponseError",
    "ResumeError",
    "RetryPolicy",
    "RunStore",
    "ServiceDescription",
    "ServiceParameter",
    "SessionDigest",
    "SessionStatus",
    "SessionType",
    "Site",
    "StreamParser",
    "TransportError",
    "UnknownServiceError",
    "WriteOutcomeUnknownError",
    "__version__",
    "backup_audit",
    "execute_patch_plan",
    "parser_for",
    "plan_patch_retry",
]
