"""Tests for nsight_async._errors: the tree, the context, and redaction of secrets."""

from __future__ import annotations

import inspect
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsight_async import _errors
from nsight_async._errors import (
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
    TransportError,
    UnknownServiceError,
    WriteOutcomeUnknownError,
    api_error,
)


def _docstring_tree() -> dict[str, str | None]:
    """Read the tree in the module docstring as ``{class name: parent name}``."""
    doc = _errors.__doc__ or ""
    block = doc.split("The tree::", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in block.splitlines():
        match = re.match(r"^    ((?:[│ ]   )*)(?:[├└]── )?([A-Z][A-Za-z]+)\b", line)
        if not line.strip():
            if parents:
                break
            continue
        assert match, f"unreadable tree line: {line!r}"
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        name = match.group(2)
        del stack[depth:]
        parents[name] = stack[-1] if stack else None
        stack.append(name)
    return parents


def _defined_errors() -> dict[str, type[NsightError]]:
    return {
        name: obj
        for name, obj in vars(_errors).items()
        if inspect.isclass(obj) and issubclass(obj, NsightError)
    }


def test_docstring_tree_lists_every_error_class() -> None:
    """The tree drawn in the module docstring names exactly the classes the module defines."""
    assert sorted(_docstring_tree()) == sorted(_defined_errors())


def test_docstring_tree_matches_the_class_hierarchy() -> None:
    """Each class in the docstring tree subclasses, directly, the parent drawn above it."""
    classes = _defined_errors()
    for name, parent in _docstring_tree().items():
        cls = classes[name]
        if parent is None:
            assert cls is NsightError
        else:
            family = [base for base in cls.__bases__ if issubclass(base, NsightError)]
            assert family == [classes[parent]], f"{name} should subclass {parent}"


def test_everything_is_rooted_at_nsight_error() -> None:
    """Every error class is an NsightError, hence an Exception."""
    for cls in _defined_errors().values():
        assert issubclass(cls, NsightError)
        assert issubclass(cls, Exception)


def test_argument_errors_are_value_errors() -> None:
    """Configuration and argument errors are also ValueErrors, as Python callers expect."""
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(InvalidArgumentError, ValueError)


def test_context_is_keyword_only_and_kept() -> None:
    """Errors carry service, status, retry_after and records_yielded as keyword-only context."""
    err = RateLimitedError("slow down", service="list_clients", status=429, retry_after=90.0)
    assert (err.service, err.status, err.retry_after, err.records_yielded) == (
        "list_clients",
        429,
        90.0,
        0,
    )
    assert str(err) == "slow down"
    with pytest.raises(TypeError):
        NsightError("x", "list_clients")  # type: ignore[misc]  # the point of the test


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (NsightError, False),
        (TransportError, True),
        (RateLimitedError, True),
        (ParseError, True),
        (ForbiddenXmlError, False),
        (HtmlPageError, True),
        (ApiError, False),
        (AuthenticationError, False),
        (ActionFailedError, False),
        (WriteOutcomeUnknownError, False),
        (ConfigurationError, False),
    ],
)
def test_retryable_says_whether_a_retry_may_help(cls: type[NsightError], retryable: bool) -> None:
    """Transient faults are retryable; API answers, refused XML and unknown writes are not."""
    assert cls("x").retryable is retryable


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (404, False)])
def test_http_status_error_is_retryable_by_status(status: int, retryable: bool) -> None:
    """An HTTP status error is retryable for 429 and 5xx gateway errors only."""
    assert HttpStatusError("x", status=status).retryable is retryable


def test_transport_error_says_whether_the_request_was_surely_not_sent() -> None:
    """``certainly_not_sent`` defaults to False, the safe answer for writes."""
    assert TransportError("reset").certainly_not_sent is False
    assert TransportError("refused", certainly_not_sent=True).certainly_not_sent is True


def test_write_outcome_unknown_carries_the_device() -> None:
    """WriteOutcomeUnknownError carries the device id the write was for."""
    err = WriteOutcomeUnknownError("maybe", device_id=880011, service="patch_retry")
    assert err.device_id == 880011
    assert err.service == "patch_retry"


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        (3, "Login failed", AuthenticationError),
        (4, "Invalid value for parameter: clientid", InvalidParameterError),
        (5, "Missing parameter: siteid", MissingParameterError),
        (1, "Service unknown", UnknownServiceError),
        (None, "service UNKNOWN", UnknownServiceError),
        (99, "Something new", ApiError),
        (None, "", ApiError),
    ],
)
def test_api_error_picks_the_most_specific_class(
    code: int | None, message: str, cls: type[ApiError]
) -> None:
    """``api_error`` maps codes 3/4/5 and "Service unknown" to their classes, else ApiError."""
    err = api_error(code, message, service="list_sites")
    assert type(err) is cls
    assert err.code == code
    assert err.service == "list_sites"
    assert str(err).startswith("list_sites: API error ")
    assert message in str(err)


def test_api_error_without_service_names_n_sight() -> None:
    """Without a service, the message names N-sight."""
    assert str(api_error(4, "bad", service=None)).startswith("N-sight: API error 4")


def test_redact_removes_the_secret_from_message_args_and_repr() -> None:
    """After redact, the key appears in neither str(), args nor repr()."""
    key = "0123456789abcdef0123456789abcdef"
    err = TransportError(f"GET https://h/api/?apikey={key}&service=list_clients failed")
    err.redact(key)
    assert key not in str(err)
    assert key not in repr(err)
    assert all(key not in str(arg) for arg in err.args)
    assert "apikey=***" in str(err)


def test_redact_with_empty_secret_changes_nothing() -> None:
    """Redacting an empty secret leaves the message alone."""
    err = NsightError("nothing to hide")
    err.redact("")
    assert str(err) == "nothing to hide"


@settings(max_examples=100, deadline=None, database=None)
@given(
    secret=st.text("abcdefABCDEF0123456789", min_size=8, max_size=40),
    parts=st.lists(st.text(max_size=20), max_size=6),
    cls=st.sampled_from(sorted(_defined_errors().values(), key=lambda c: c.__name__)),
)
def test_messages_never_contain_the_secret_after_redact(
    secret: str, parts: list[str], cls: type[NsightError]
) -> None:
    """Whatever the message and however often the key appears in it, redact removes it."""
    err = cls(secret.join(parts) + secret)
    err.redact(secret)
    assert secret not in str(err)
    assert secret not in err.message
    assert all(secret not in str(arg) for arg in err.args)
