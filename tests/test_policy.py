"""Tests for nsight_async._policy: pure retry decisions, no I/O and no clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsight_async import (
    ActionFailedError,
    AuthenticationError,
    ForbiddenXmlError,
    HtmlPageError,
    HttpStatusError,
    InvalidParameterError,
    NsightError,
    ParseError,
    RateLimitedError,
    RetryPolicy,
    TransportError,
)
from nsight_async._policy import Decision, backoff, decide, slows_everyone

POLICY = RetryPolicy(attempts=5, timeout=None, wait_initial=0.5, wait_max=30.0)


def _decide(
    error: NsightError,
    *,
    attempt: int = 1,
    write: bool = False,
    elapsed: float = 0.0,
    policy: RetryPolicy = POLICY,
) -> Decision:
    return decide(
        error,
        attempt=attempt,
        elapsed=elapsed,
        policy=policy,
        write=write,
        rng=random.Random(0),
    )


@given(
    attempt=st.integers(min_value=1, max_value=40),
    initial=st.floats(min_value=0.01, max_value=5.0),
    base=st.floats(min_value=1.0, max_value=4.0),
    cap=st.floats(min_value=0.1, max_value=60.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_stays_within_full_jitter_ceiling(
    attempt: int, initial: float, base: float, cap: float, seed: int
) -> None:
    """Every wait lies in [0, min(wait_max, wait_initial * base ** (attempt - 1))]."""
    policy = RetryPolicy(wait_initial=initial, wait_exp_base=base, wait_max=cap)
    wait = backoff(policy, attempt, random.Random(seed))
    assert 0.0 <= wait <= min(cap, initial * base ** (attempt - 1)) + 1e-9


def test_backoff_is_full_jitter_not_equal_jitter() -> None:
    """Waits spread over the whole [0, ceiling] range, including its lower half."""
    rng = random.Random(1)
    waits = [backoff(POLICY, 4, rng) for _ in range(2000)]
    ceiling = 0.5 * 2**3
    assert min(waits) < 0.1 * ceiling
    assert max(waits) > 0.9 * ceiling
    assert sum(waits) / len(waits) == pytest.approx(ceiling / 2, rel=0.1)


def test_backoff_ceiling_grows_exponentially_then_caps() -> None:
    """The ceiling doubles per attempt until it reaches wait_max."""
    policy = RetryPolicy(wait_initial=1.0, wait_max=10.0)
    ceilings = [
        max(backoff(policy, n, random.Random(s)) for s in range(300)) for n in (1, 2, 3, 4, 5)
    ]
    assert ceilings[0] == pytest.approx(1.0, rel=0.05)
    assert ceilings[1] == pytest.approx(2.0, rel=0.05)
    assert ceilings[2] == pytest.approx(4.0, rel=0.05)
    assert ceilings[3] == pytest.approx(8.0, rel=0.05)
    assert ceilings[4] == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize(
    "error",
    [
        TransportError("reset"),
        RateLimitedError("429", status=429),
        HttpStatusError("502", status=502),
        HttpStatusError("503", status=503),
        HttpStatusError("504", status=504),
        HtmlPageError("firewall", status=403),
        ParseError("truncated"),
    ],
    ids=["transport", "429", "502", "503", "504", "html403", "parse"],
)
def test_reads_retry_transient_failures(error: NsightError) -> None:
    """Reads retry transport errors, 429/502/503/504, HTML pages and broken bodies."""
    assert _decide(error).retry


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("login failed", code=3),
        InvalidParameterError("bad", code=4),
        ActionFailedError("no"),
        ForbiddenXmlError("doctype"),
        HttpStatusError("404", status=404),
    ],
    ids=["fail3", "fail4", "action", "doctype", "404"],
)
def test_permanent_failures_are_never_retried(error: NsightError) -> None:
    """FAIL envelopes, refused DOCTYPEs and unusable statuses are not retried."""
    decision = _decide(error)
    assert not decision.retry
    assert not decision.outcome_unknown


def test_retry_after_is_honoured_and_capped() -> None:
    """Retry-After replaces the backoff, up to max_retry_after."""
    assert _decide(RateLimitedError("429", status=429, retry_after=7.0)).wait == 7.0
    capped = RetryPolicy(max_retry_after=5.0)
    big = RateLimitedError("429", status=429, retry_after=9999.0)
    assert _decide(big, policy=capped).wait == 5.0


def test_gives_up_after_attempts_and_timeout() -> None:
    """No retry once attempts are used up, or when the wait would pass the total timeout."""
    assert not _decide(TransportError("x"), attempt=5).retry
    policy = RetryPolicy(timeout=10.0)
    late = RateLimitedError("429", status=429, retry_after=6.0)
    assert not _decide(late, elapsed=5.0, policy=policy).retry


@pytest.mark.parametrize(
    "error",
    [
        TransportError("reset after send"),
        TransportError("read timeout", certainly_not_sent=False),
        ParseError("truncated"),
        HtmlPageError("bad gateway", status=502),
        HttpStatusError("503", status=503),
    ],
    ids=["reset", "timeout", "truncate", "502", "503"],
)
def test_ambiguous_write_failure_is_outcome_unknown(error: NsightError) -> None:
    """A write whose request may have arrived is not retried and is flagged outcome-unknown."""
    decision = _decide(error, write=True)
    assert not decision.retry
    assert decision.outcome_unknown


@pytest.mark.parametrize(
    "error",
    [
        TransportError("refused", certainly_not_sent=True),
        RateLimitedError("429", status=429),
        HtmlPageError("firewall", status=403),
    ],
    ids=["refused", "429", "html403"],
)
def test_write_retried_when_certainly_unprocessed(error: NsightError) -> None:
    """A write is retried when it never reached the server or was refused unprocessed."""
    assert _decide(error, write=True).retry


def test_write_fail_envelope_is_not_unknown() -> None:
    """A FAIL answer to a write is a definite outcome, not an unknown one."""
    decision = _decide(ActionFailedError("nope"), write=True)
    assert not decision.retry
    assert not decision.outcome_unknown


def test_slows_everyone_only_for_rate_signals() -> None:
    """429 and firewall pages slow the shared limiter; plain transport errors do not."""
    assert slows_everyone(RateLimitedError("429", status=429))
    assert slows_everyone(HtmlPageError("waf", status=403))
    assert not slows_everyone(TransportError("reset"))
    assert not slows_everyone(HtmlPageError("bad gateway", status=502))
