"""Retry decisions: pure functions of an error, the attempt number and the policy.

No I/O and no clock here: the client asks :func:`decide` what to do after a
failure and sleeps the returned wait itself (with its injected ``sleep``).

What is retried (reads): transport errors (reset, timeout, protocol error),
429/502/503/504, HTML firewall pages and bodies that broke off or came back
malformed. What is never retried: FAIL envelopes (codes 3/4/5 are
permanent), refused DOCTYPEs, other HTTP statuses. Writes (``patch_retry``)
are retried only when the request certainly never reached the server, or the
server (or its firewall) refused it unprocessed with a 429 or 403.
"""

from __future__ import annotations

import random

import attrs

from ._config import RetryPolicy
from ._errors import HtmlPageError, HttpStatusError, NsightError, ResponseError, TransportError

#: Statuses that say "not processed, try later" even for a write.
_REFUSED_UNPROCESSED = frozenset({429, 403})


@attrs.frozen(kw_only=True)
class Decision:
    """Retry after ``wait`` seconds, or give up (``retry`` false)."""

    retry: bool
    wait: float = 0.0
    #: For a write: the failure left the outcome unknown (it may have been applied).
    outcome_unknown: bool = False


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Return the full-jitter wait after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(policy.wait_max, policy.wait_initial * policy.wait_exp_base ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def decide(
    error: NsightError,
    *,
    attempt: int,
    elapsed: float,
    policy: RetryPolicy,
    write: bool,
    rng: random.Random,
) -> Decision:
    """Decide whether to retry after ``error`` ended attempt number ``attempt``."""
    if write:
        if _certainly_unprocessed(error):
            pass
        elif error.retryable or isinstance(error, ResponseError):
            # A body came back (or may have), so the request reached the server.
            return Decision(retry=False, outcome_unknown=True)
        else:
            return Decision(retry=False)
    elif not error.retryable:
        return Decision(retry=False)
    if attempt >= policy.attempts:
        return Decision(retry=False, outcome_unknown=write and not _certainly_unprocessed(error))
    if error.retry_after is not None:
        wait = min(max(error.retry_after, 0.0), policy.max_retry_after)
    else:
        wait = backoff(policy, attempt, rng)
    if policy.timeout is not None and elapsed + wait > policy.timeout:
        return Decision(retry=False)
    return Decision(retry=True, wait=wait)


def _certainly_unprocessed(error: NsightError) -> bool:
    if isinstance(error, TransportError):
        return error.certainly_not_sent or error.status in _REFUSED_UNPROCESSED
    if isinstance(error, HttpStatusError | HtmlPageError):
        return error.status in _REFUSED_UNPROCESSED
    return False


def slows_everyone(error: NsightError) -> bool:
    """Whether the error says the server is over its limit (429 or a firewall page)."""
    return error.status == 429 or (isinstance(error, HtmlPageError) and error.status in {403, 503})
