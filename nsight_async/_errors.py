"""Exceptions raised by nsight-async, all rooted at :class:`NsightError`.

The tree::

    NsightError
    ├── ConfigurationError      bad server/region, plain http to a remote host, bad limits
    ├── InvalidArgumentError    a call's arguments are wrong; nothing was sent
    ├── TransportError          the network failed (after any retries)
    │   ├── RateLimitedError    the server kept answering 429 / firewall pages
    │   └── ResumeError         a broken stream could not be resumed: the list changed
    ├── HttpStatusError         an unexpected HTTP status with no usable body
    ├── ResponseError           the body is not a usable N-sight document
    │   ├── ParseError          malformed or truncated XML
    │   │   └── ForbiddenXmlError   DOCTYPE / entity declarations (refused)
    │   └── HtmlPageError       an HTML page (firewall, proxy) instead of XML
    ├── ApiError                a ``status="FAIL"`` envelope (never retried)
    │   ├── AuthenticationError     code 3: bad key or wrong region
    │   ├── InvalidParameterError   code 4
    │   ├── MissingParameterError   code 5
    │   ├── UnknownServiceError     "Service unknown"
    │   └── ActionFailedError       FAIL with only a ``<msg>``
    └── WriteOutcomeUnknownError  a write may or may not have reached the server

Every exception carries structured context (``service``, ``status``, ``code``,
``retry_after``, ``records_yielded``) and a message that says what to do. None
ever contains the API key: the client scrubs messages through :meth:`NsightError.redact`
before they leave the library.
"""

from __future__ import annotations

import builtins
from typing import Any


class NsightError(Exception):
    """Root of every error this library raises."""

    #: Whether retrying the same call may succeed (transient fault).
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        records_yielded: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status = status
        self.retry_after = retry_after
        self.records_yielded = records_yielded

    def __str__(self) -> str:
        return self.message

    def redact(self, secret: str) -> None:
        """Remove every occurrence of ``secret`` from this error's message and args."""
        if secret and secret in self.message:
            self.message = self.message.replace(secret, "***")
            self.args = (self.message,)


class ConfigurationError(NsightError, ValueError):
    """The client was configured wrongly (server, key, limits)."""


class InvalidArgumentError(NsightError, ValueError):
    """A call's arguments are invalid; no request was sent."""


class TransportError(NsightError):
    """The network failed: connection refused or reset, timeout, protocol error."""

    retryable = True

    def __init__(self, message: str, *, certainly_not_sent: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        #: True only when the request certainly never reached the server
        #: (connection refused, connect timeout): the one case a write may be retried.
        self.certainly_not_sent = certainly_not_sent


class RateLimitedError(TransportError):
    """The server kept refusing calls as over its rate limit (429 or firewall page)."""


class ResumeError(TransportError):
    """A stream broke after yielding records, and the list changed before it could resume.

    Not retried: fetching the list again cannot resume it without yielding a
    record twice or skipping one. Start the listing over if that is acceptable.
    """

    retryable = False


class HttpStatusError(NsightError):
    """The server answered an HTTP status this library cannot use."""

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retryable = self.status in {429, 500, 502, 503, 504}


class ResponseError(NsightError):
    """The response body is not a usable N-sight document."""


class ParseError(ResponseError):
    """The body is malformed or truncated XML."""

    retryable = True


class ForbiddenXmlError(ParseError):
    """The document declares a DOCTYPE or entities, which are refused."""

    retryable = False


class HtmlPageError(ResponseError):
    """The server (or a firewall or proxy in front of it) answered an HTML page."""

    retryable = True


class ApiError(NsightError):
    """The API answered ``status="FAIL"``; permanent, never retried."""

    def __init__(self, message: str, *, code: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code


class AuthenticationError(ApiError):
    """Login failed (code 3): the key is wrong, or it belongs to another region."""


class InvalidParameterError(ApiError):
    """A parameter had an invalid value (code 4)."""


class MissingParameterError(ApiError):
    """A required parameter was missing (code 5)."""


class UnknownServiceError(ApiError):
    """The server does not know the service name."""


class ActionFailedError(ApiError):
    """An action (such as ``patch_retry``) answered FAIL with only a ``<msg>``."""


class WriteOutcomeUnknownError(NsightError):
    """A write may have reached the server, but no answer came back.

    Do not resend blindly: check the device's state (``patch_list_all``) first.
    """

    def __init__(self, message: str, *, device_id: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.device_id = device_id


_API_ERRORS: dict[int, builtins.type[ApiError]] = {
    3: AuthenticationError,
    4: InvalidParameterError,
    5: MissingParameterError,
}


def api_error(code: int | None, message: str, *, service: str | None) -> ApiError:
    """Build the most specific :class:`ApiError` for an envelope's code and message."""
    cls = _API_ERRORS.get(code) if code is not None else None
    if cls is None:
        cls = UnknownServiceError if "service unknown" in message.lower() else ApiError
    hint = ""
    if cls is AuthenticationError:
        hint = " (check the API key, and that the server matches the key's region)"
    text = f"{service or 'N-sight'}: API error {code}: {message}{hint}"
    return cls(text, code=code, service=service)
