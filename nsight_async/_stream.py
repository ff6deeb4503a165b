"""What a call's stream hands on: the last records before an error, and on a retry
only the records past those the consumer already has."""

from __future__ import annotations

from typing import Any

from ._errors import NsightError, ResumeError
from ._parser import StreamParser


def last_records(parser: StreamParser[Any]) -> list[Any]:
    """``parser.close()``, but an error it finds waits (``parser.failed``) until the
    records completed before it (``parser.before_error``) are handed on."""
    try:
        return parser.close()
    except NsightError:
        if not parser.failed:
            raise
        return parser.before_error


def past_skipped(
    service: str, records: list[Any], seen: int, skip: int, last: object
) -> tuple[list[Any], int]:
    """Return the records past the first ``skip`` of the stream, and the new count seen.

    The record at position ``skip`` must equal ``last`` (the last one the consumer
    got before the stream broke), or the list changed and cannot be resumed.
    """
    if seen + len(records) <= skip:
        if seen + len(records) == skip and records:
            check_resume(service, records[-1], last, skip)
        return [], seen + len(records)
    if seen < skip:
        check_resume(service, records[skip - seen - 1], last, skip)
        records = records[skip - seen :]
        seen = skip
    return records, seen + len(records)


def check_resume(service: str, record: object, last: object, yielded: int) -> None:
    if record != last:
        raise ResumeError(
            f"{service}: the list changed between attempts (record {yielded} differs), so "
            "the stream cannot be resumed without duplicating or skipping records",
            service=service,
            records_yielded=yielded,
        )
