"""Tests for nsight_async._redact: Secret, redact(), exception scrubbing and the log filter."""

from __future__ import annotations

import logging
import traceback

import pytest

from nsight_async._redact import (
    RedactingFilter,
    Secret,
    install_log_filter,
    redact,
    scrub_exception,
)

KEY = "sk-REDACT-9f8e7d6c5b4a"


def test_secret_never_shows_itself() -> None:
    """repr() and str() of a Secret are masked; reveal() returns the value."""
    secret = Secret(KEY)
    assert KEY not in repr(secret)
    assert KEY not in str(secret)
    assert KEY not in f"{secret}"
    assert secret.reveal() == KEY


@pytest.mark.parametrize(
    "text",
    [
        "https://h/api/?apikey=abc123&service=list_clients",
        "GET /api/?service=x&APIKEY=abc123 HTTP/1.1",
        "url='http://h/api/?apikey=abc123'",
    ],
)
def test_redact_masks_apikey_parameter(text: str) -> None:
    """Any apikey= value is masked, whatever its case or what follows it."""
    assert "abc123" not in redact(text)
    assert "apikey=***" in redact(text).lower()


def test_redact_masks_live_keys_anywhere() -> None:
    """A registered key is masked even outside an apikey= parameter."""
    secret = Secret(KEY)
    assert redact(f"the key {KEY} leaked") == "the key *** leaked"
    del secret


def test_scrub_exception_follows_causes_and_contexts() -> None:
    """scrub_exception masks the key in an exception, its cause, its context and its notes."""
    secret = Secret(KEY)
    try:
        try:
            try:
                raise OSError(f"GET http://h/api/?apikey={KEY}")
            except OSError as inner:
                raise ValueError(f"wrapped {KEY}") from inner
        except ValueError:
            error = RuntimeError("outer")
            error.add_note(f"note {KEY}")
            raise error from None
    except RuntimeError as exc:
        scrub_exception(exc)
        text = "".join(traceback.format_exception(exc))
        context_text = "".join(traceback.format_exception(exc.__context__))
    assert KEY not in text
    assert KEY not in context_text
    del secret


def test_filter_masks_formatted_message() -> None:
    """The log filter masks the key in the final message, args included."""
    secret = Secret(KEY)
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: GET %s "%s"',
        (f"http://h/?apikey={KEY}", "200 OK"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert KEY not in record.getMessage()
    assert "apikey=***" in record.getMessage()
    del secret


def test_install_log_filter_is_idempotent() -> None:
    """Installing the filter twice attaches it once to each logger."""
    install_log_filter()
    install_log_filter()
    for name in ("httpx", "httpcore", "nsight_async"):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]
        assert len(filters) == 1
