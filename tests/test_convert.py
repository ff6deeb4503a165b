"""Tests for nsight_async._convert: text to typed values, sentinels to None."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from nsight_async._convert import (
    SENTINELS,
    Unreadable,
    day,
    epoch,
    flag,
    integer,
    lenient_timestamp,
    local_datetime,
    name,
    text,
    utc_datetime,
)


def test_sentinels_are_the_documented_ones() -> None:
    """The sentinel set holds exactly N-sight's documented "no value" strings."""
    assert frozenset({"none", "Not Available", "0000-00-00 00:00:00", "0000-00-00"}) == SENTINELS


@pytest.mark.parametrize("sentinel", sorted(SENTINELS))
def test_text_maps_sentinels_to_none(sentinel: str) -> None:
    """Every sentinel reads as None through ``text``."""
    assert text(sentinel) is None


def test_text_keeps_ordinary_values() -> None:
    """Ordinary text, including look-alikes of sentinels, is returned as sent."""
    assert text("SERVER\\peter") == "SERVER\\peter"
    assert text("None") == "None"
    assert text("nonexistent") == "nonexistent"


def test_name_never_treats_a_name_as_a_sentinel() -> None:
    """A client literally named "none" keeps its name."""
    assert name("none") == "none"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0", 0), ("42", 42), ("-2048", -2048), ("6442450944000", 6442450944000), (str(2**63), 2**63)],
)
def test_integer_reads_any_size(raw: str, value: int) -> None:
    """Integers of any size, negative ones included, read exactly."""
    assert integer(raw) == value


@pytest.mark.parametrize("sentinel", ["none", "Not Available", "0000-00-00 00:00:00"])
def test_integer_sentinel_is_none(sentinel: str) -> None:
    """A sentinel where a number belongs reads as None."""
    assert integer(sentinel) is None


@pytest.mark.parametrize("raw", ["", "   ", "\n  "])
def test_integer_reads_empty_text_as_none(raw: str) -> None:
    """Empty or whitespace-only text (as sent, unstripped) is no value, not an error."""
    assert integer(raw) is None


@pytest.mark.parametrize("raw", ["lots", "1.5", "0x10"])
def test_integer_rejects_garbage_as_unreadable(raw: str) -> None:
    """Non-integers raise Unreadable (a ValueError), so the caller can keep the raw text."""
    with pytest.raises(Unreadable):
        integer(raw)
    assert issubclass(Unreadable, ValueError)


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "y", "on"])
def test_flag_true_spellings(raw: str) -> None:
    """1/true/yes/y/on, any case, read as True."""
    assert flag(raw) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "n", "off"])
def test_flag_false_spellings(raw: str) -> None:
    """0/false/no/n/off, any case, read as False."""
    assert flag(raw) is False


def test_flag_sentinel_and_garbage() -> None:
    """A sentinel flag is None; anything else is Unreadable."""
    assert flag("Not Available") is None
    with pytest.raises(Unreadable):
        flag("2")


def test_day_reads_dates_and_date_parts() -> None:
    """``YYYY-MM-DD`` reads as a date, and a longer timestamp keeps its date part."""
    assert day("2016-04-12") == date(2016, 4, 12)
    assert day("2024-01-09 10:11:12") == date(2024, 1, 9)


@pytest.mark.parametrize("raw", ["0000-00-00", "0000-00-00 00:00:00", "0000-03-05:00T01:00:00"])
def test_day_zero_dates_are_none(raw: str) -> None:
    """Zero dates (and DST rules that start with 0000) read as None, not an error."""
    assert day(raw) is None


def test_day_garbage_is_unreadable() -> None:
    """A value that is no date raises Unreadable."""
    with pytest.raises(Unreadable):
        day("soon")


def test_utc_datetime_is_aware_utc() -> None:
    """A MOB ``start`` in the documented form reads as an aware UTC datetime."""
    value = utc_datetime("2024-03-17 01:00:02")
    assert value == datetime(2024, 3, 17, 1, 0, 2, tzinfo=UTC)
    assert value is not None
    assert value.utcoffset() == timedelta(0)


def test_utc_datetime_converts_an_explicit_offset_to_utc() -> None:
    """A timestamp with an offset is converted to UTC."""
    value = utc_datetime("2024-03-17T01:00:02-06:00")
    assert value == datetime(2024, 3, 17, 7, 0, 2, tzinfo=UTC)
    assert value is not None
    assert value.tzinfo is UTC


def test_utc_datetime_with_fraction_is_utc() -> None:
    """A naive timestamp in another ISO form is taken as UTC."""
    assert utc_datetime("2024-03-17T01:00:02.5") == datetime(2024, 3, 17, 1, 0, 2, 500000, UTC)


def test_utc_datetime_zero_and_garbage() -> None:
    """A zero timestamp is None; garbage raises Unreadable."""
    assert utc_datetime("0000-00-00 00:00:00") is None
    with pytest.raises(Unreadable):
        utc_datetime("2024-13-45 99:00:00")


def test_local_datetime_stays_naive() -> None:
    """A server-local ``last_scan_time`` stays naive: its zone is unknown."""
    value = local_datetime("2024-03-17 23:04:11")
    assert value == datetime(2024, 3, 17, 23, 4, 11)
    assert value is not None
    assert value.tzinfo is None
    assert local_datetime("0000-00-00 00:00:00") is None
    with pytest.raises(Unreadable):
        local_datetime("yesterday")


def test_epoch_reads_seconds_as_aware_utc() -> None:
    """``last_boot_time`` epoch seconds read as an aware UTC datetime."""
    assert epoch("1710508800") == datetime(2024, 3, 15, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["Not Available", "0", "-5"])
def test_epoch_unknown_is_none(raw: str) -> None:
    """``Not Available`` and non-positive epochs read as None."""
    assert epoch(raw) is None


def test_epoch_garbage_is_unreadable() -> None:
    """A non-numeric epoch raises Unreadable."""
    with pytest.raises(Unreadable):
        epoch("1710508800.5")


def test_lenient_timestamp_keeps_the_offset() -> None:
    """The envelope's ``created`` keeps its server-local offset."""
    value = lenient_timestamp("2024-03-18T09:12:44-06:00")
    assert value == datetime(2024, 3, 18, 9, 12, 44, tzinfo=timezone(timedelta(hours=-6)))


def test_lenient_timestamp_without_offset_is_naive() -> None:
    """A ``created`` without an offset reads as a naive datetime."""
    assert lenient_timestamp("2024-03-18T09:12:44") == datetime(2024, 3, 18, 9, 12, 44)


@pytest.mark.parametrize(
    "raw", [None, "", "2015-07-20T08T08:47:41+01:00", "yesterday", "2024-99-99T00:00:00"]
)
def test_lenient_timestamp_never_fails(raw: str | None) -> None:
    """Missing or malformed ``created`` values read as None instead of raising."""
    assert lenient_timestamp(raw) is None


def test_lenient_timestamp_recovers_the_leading_timestamp() -> None:
    """A ``created`` with junk after the seconds still yields its leading timestamp."""
    assert lenient_timestamp("2024-03-18T09:12:44 CET") == datetime(2024, 3, 18, 9, 12, 44)
