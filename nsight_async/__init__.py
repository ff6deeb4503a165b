"""nsight-async: an asyncio client, fleet crawler and CLI for the N-sight RMM API.

The public API is the list in ``__all__``; everything in ``_private`` modules
may change without notice.
"""

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
    TransportError,
    UnknownServiceError,
    WriteOutcomeUnknownError,
)
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
from ._shapes import parser_for
from ._version import __version__
from ._vocab import DeviceKind, PatchStatus, Plugin, SessionStatus, SessionType

__all__ = [
    "REGIONS",
    "ActionFailedError",
    "ApiError",
    "AuthenticationError",
    "CheckCounts",
    "Client",
    "ConfigurationError",
    "Device",
    "DeviceAtClient",
    "DeviceKind",
    "Envelope",
    "ForbiddenXmlError",
    "HtmlPageError",
    "HttpStatusError",
    "InvalidArgumentError",
    "InvalidParameterError",
    "Limits",
    "MissingParameterError",
    "MobSession",
    "NsightClient",
    "NsightError",
    "ParseError",
    "Patch",
    "PatchRetryResult",
    "PatchStatus",
    "Plugin",
    "RateLimitedError",
    "ResponseError",
    "RetryPolicy",
    "ServiceDescription",
    "ServiceParameter",
    "SessionStatus",
    "SessionType",
    "Site",
    "StreamParser",
    "TransportError",
    "UnknownServiceError",
    "WriteOutcomeUnknownError",
    "__version__",
    "parser_for",
]
