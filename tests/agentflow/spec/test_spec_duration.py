from datetime import timedelta

import pytest

from agentflow.spec import format_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("1m", timedelta(minutes=1), id="minute"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-minutes"),
        pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds"),
        pytest.param("1.5s", timedelta(seconds=1.5), id="decimal-seconds"),
        pytest.param("2h", timedelta(hours=2), id="hours"),
        pytest.param("1.5h", timedelta(minutes=90), id="decimal-hours"),
        pytest.param("1h2m3s4ms", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4), id="all-units"),
        pytest.param("90m", timedelta(minutes=90), id="minutes-over-an-hour"),
        pytest.param("0.001ms", timedelta(microseconds=1), id="one-microsecond"),
        pytest.param(" 10s ", timedelta(seconds=10), id="surrounding-spaces"),
    ],
)
def test_parse_duration_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(30, 'must be a duration string such as "30s" (a unit is required)', id="yaml-int"),
        pytest.param(1.5, "(a unit is required)", id="yaml-float"),
        pytest.param("30", '"30" is missing a unit', id="string-without-unit"),
        pytest.param("1h30", '"1h30" is missing a unit after 1h', id="trailing-number"),
        pytest.param("2d", 'days are not supported, use hours (e.g. "48h")', id="days"),
        pytest.param("1us", 'unknown unit "us" (use ms, s, m or h)', id="microseconds"),
        pytest.param("10ns", 'unknown unit "ns"', id="nanoseconds"),
        pytest.param("5 s", 'unknown unit " s"', id="space-before-unit"),
        pytest.param("5sec", 'unknown unit "sec"', id="spelled-unit"),
        pytest.param("-5s", 'must not be negative, got "-5s"', id="negative"),
        pytest.param("0s", 'must be greater than zero, got "0s"', id="zero"),
        pytest.param("0", "is missing a unit", id="bare-zero"),
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("s", '"s" is not a duration', id="unit-only"),
        pytest.param("1.0000001s", "finer than a microsecond", id="sub-microsecond"),
        pytest.param("9" * 70 + "h", "not plausible", id="absurdly-long-text"),
        pytest.param("99999999999h", "too long a duration", id="beyond-timedelta"),
        pytest.param(True, "got a boolean", id="bool"),
        pytest.param(None, "got null", id="null"),
        pytest.param(["30s"], "got a list", id="list"),
    ],
)
def test_parse_duration_invalid(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert reason in str(info.value)


def test_zero_is_accepted_when_allowed() -> None:
    assert parse_duration("0s", allow_zero=True) == timedelta(0)
    assert parse_duration("0ms", allow_zero=True) == timedelta(0)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        pytest.param(timedelta(seconds=90), "1m30s", id="minute-and-a-half"),
        pytest.param(timedelta(milliseconds=500), "500ms", id="milliseconds"),
        pytest.param(timedelta(seconds=1.5), "1.5s", id="decimal-seconds"),
        pytest.param(timedelta(hours=2), "2h", id="hours"),
        pytest.param(timedelta(hours=1, minutes=30), "1h30m", id="hours-minutes"),
        pytest.param(timedelta(hours=1, seconds=5), "1h5s", id="hours-seconds"),
        pytest.param(timedelta(minutes=5), "5m", id="minutes"),
        pytest.param(timedelta(hours=48), "48h", id="days-as-hours"),
        pytest.param(timedelta(microseconds=1500), "1.5ms", id="fractional-milliseconds"),
        pytest.param(timedelta(minutes=1, milliseconds=1), "1m0.001s", id="minute-and-a-millisecond"),
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(seconds=-30), "-30s", id="negative"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@pytest.mark.parametrize(
    "td",
    [
        timedelta(microseconds=1),
        timedelta(microseconds=999_999),
        timedelta(seconds=59, microseconds=1),
        timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
        timedelta(days=3, seconds=7),
        timedelta(minutes=61),
    ],
    ids=str,
)
def test_format_duration_round_trips(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td
