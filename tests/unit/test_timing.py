import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, pairwise, takewhile
from zoneinfo import ZoneInfo

import pytest

from kadence.cron import MACROS, Cron, InvalidSchedule, next_deadlines, parse_cron


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(instants: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%dT%H:%M") for t in instants]


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        (
            "30 2 * * *",
            "Europe/Amsterdam",
            "2024-03-30T12:00",
            ["2024-03-31T01:00", "2024-04-01T00:30"],
        ),
        (
            "30 2 * * *",
            "Europe/Amsterdam",
            "2024-10-26T12:00",
            ["2024-10-27T00:30", "2024-10-28T01:30"],
        ),
        (
            "30 2 * * *",
            "America/New_York",
            "2024-03-09T12:00",
            ["2024-03-10T07:00", "2024-03-11T06:30"],
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2024-11-02T12:00",
            ["2024-11-03T05:30", "2024-11-04T06:30"],
        ),
        (
            "0,30 2 * * *",
            "Europe/Amsterdam",
            "2024-03-30T12:00",
            ["2024-03-31T01:00", "2024-04-01T00:00", "2024-04-01T00:30"],
        ),
        (
            "0,30 2 * * *",
            "Europe/Amsterdam",
            "2024-10-26T12:00",
            ["2024-10-27T00:00", "2024-10-27T00:30", "2024-10-28T01:00"],
        ),
        (
            "*/30 2 * * *",
            "Europe/Amsterdam",
            "2024-10-26T12:00",
            ["2024-10-27T00:00", "2024-10-27T00:30", "2024-10-27T01:00", "2024-10-27T01:30"],
        ),
        (
            "*/30 2 * * *",
            "Europe/Amsterdam",
            "2024-03-30T12:00",
            ["2024-04-01T00:00", "2024-04-01T00:30"],
        ),
        (
            "*/30 * * * *",
            "Europe/Amsterdam",
            "2024-03-31T00:15",
            ["2024-03-31T00:30", "2024-03-31T01:00", "2024-03-31T01:30"],
        ),
        (
            "0 0 * * *",
            "America/Santiago",
            "2024-09-07T12:00",
            ["2024-09-08T04:00", "2024-09-09T03:00"],
        ),
        ("0 0 29 2 *", "UTC", "2024-03-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
        ("0 0 29 2 *", "UTC", "2096-03-01T00:00", ["2104-02-29T00:00"]),
        (
            "0 0 31 * *",
            "UTC",
            "2024-01-31T00:00",
            ["2024-03-31T00:00", "2024-05-31T00:00", "2024-07-31T00:00", "2024-08-31T00:00"],
        ),
        ("@yearly", "UTC", "2024-01-01T00:00", ["2025-01-01T00:00", "2026-01-01T00:00"]),
        (
            "@yearly",
            "Asia/Tokyo",
            "2024-06-01T00:00",
            ["2024-12-31T15:00", "2025-12-31T15:00"],
        ),
        (
            "0 0 13 * 5",
            "UTC",
            "2024-10-01T00:00",
            ["2024-10-04T00:00", "2024-10-11T00:00", "2024-10-13T00:00", "2024-10-18T00:00"],
        ),
        (
            "0 0 */2 * *",
            "UTC",
            "2024-01-29T12:00",
            ["2024-01-31T00:00", "2024-02-01T00:00", "2024-02-03T00:00"],
        ),
        (
            "0 0 */2 * 1",
            "UTC",
            "2024-01-01T12:00",
            ["2024-01-03T00:00", "2024-01-05T00:00", "2024-01-07T00:00", "2024-01-08T00:00"],
        ),
        (
            "0 0 ? * 1",
            "UTC",
            "2024-01-01T12:00",
            ["2024-01-08T00:00", "2024-01-15T00:00"],
        ),
        ("0 0 * * 7", "UTC", "2024-01-01T00:00", ["2024-01-07T00:00", "2024-01-14T00:00"]),
        (
            "0 12 * * fri-SUN",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-05T12:00", "2024-01-06T12:00", "2024-01-07T12:00", "2024-01-12T12:00"],
        ),
        ("5-5 * * * *", "UTC", "2024-01-01T00:00", ["2024-01-01T00:05", "2024-01-01T01:05"]),
        (
            "10/20 * * Feb *",
            "UTC",
            "2024-01-31T23:59",
            ["2024-02-01T00:10", "2024-02-01T00:30", "2024-02-01T00:50"],
        ),
        (
            "0 9-17/4 * * mon-fri",
            "UTC",
            "2024-01-05T12:00",
            ["2024-01-05T13:00", "2024-01-05T17:00", "2024-01-08T09:00"],
        ),
    ],
    ids=[
        "amsterdam-spring-gap-fires-after-gap",
        "amsterdam-fall-overlap-fires-first",
        "new-york-spring-gap-fires-after-gap",
        "new-york-fall-overlap-fires-first",
        "gap-times-collapse-to-one-run",
        "overlap-times-run-once-each",
        "elapsed-minutes-run-both-overlap-instants",
        "elapsed-minutes-skip-gap",
        "every-30-minutes-across-gap",
        "santiago-midnight-in-gap",
        "feb-29",
        "feb-29-skips-2100",
        "day-31-skips-short-months",
        "yearly",
        "yearly-in-zone",
        "dom-or-dow-both-restricted",
        "dom-step-alone-is-and",
        "dom-step-with-dow-is-or",
        "question-mark-unrestricted",
        "dow-7-is-sunday",
        "dow-names-wrap-case-insensitive",
        "equal-range-is-one-value",
        "start-with-step-and-month-name",
        "hour-range-step-weekdays",
    ],
)
def test_next_deadlines(expression: str, zone: str, after: str, expected: list[str]) -> None:
    found = next_deadlines(expression, zone, utc(after), len(expected), "default/job")
    assert iso(found) == expected


@pytest.mark.parametrize(
    ("expression", "zone", "day", "runs"),
    [
        ("0 * * * *", "Europe/Amsterdam", date(2024, 10, 27), 25),
        ("0 * * * *", "Europe/Amsterdam", date(2024, 3, 31), 23),
        ("0 * * * *", "America/New_York", date(2024, 11, 3), 25),
        ("0 * * * *", "America/New_York", date(2024, 3, 10), 23),
        ("@hourly", "Europe/Amsterdam", date(2024, 10, 27), 25),
        ("30 2 * * *", "Europe/Amsterdam", date(2024, 10, 27), 1),
        ("30 2 * * *", "Europe/Amsterdam", date(2024, 3, 31), 1),
        ("30 1 * * *", "America/New_York", date(2024, 11, 3), 1),
        ("30 2 * * *", "America/New_York", date(2024, 3, 10), 1),
        ("*/30 * * * *", "Europe/Amsterdam", date(2024, 3, 31), 46),
        ("0 * * * *", "Australia/Lord_Howe", date(2024, 4, 7), 24),
    ],
    ids=[
        "amsterdam-hourly-fall-25",
        "amsterdam-hourly-spring-23",
        "new-york-hourly-fall-25",
        "new-york-hourly-spring-23",
        "hourly-macro-follows-elapsed-time",
        "amsterdam-daily-fall-once",
        "amsterdam-daily-spring-once",
        "new-york-daily-fall-once",
        "new-york-daily-spring-once",
        "half-hourly-spring-46",
        "half-hour-fall-back-repeats-no-whole-hour",
    ],
)
def test_runs_per_local_day(expression: str, zone: str, day: date, runs: int) -> None:
    cron = parse_cron(expression, zone)
    midnight = datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)
    deadlines = cron.after(midnight - timedelta(seconds=1))
    on_day = takewhile(lambda t: t.astimezone(cron.zone).date() == day, deadlines)
    assert len(list(on_day)) == runs


def test_walk_backwards_mirrors_forwards() -> None:
    cron = parse_cron("0 * * * *", "Europe/Amsterdam")
    forwards = list(islice(cron.after(utc("2024-10-26T20:30")), 10))
    backwards = list(islice(cron.at_or_before(forwards[-1]), 10))
    assert backwards == forwards[::-1]
    assert list(islice(cron.at_or_before(utc("2024-10-27T01:00")), 2)) == [
        utc("2024-10-27T01:00"),
        utc("2024-10-27T00:00"),
    ]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week)"),
        ("0 * * * * *", "seconds and years are not supported"),
        ("@reboot", "unknown macro"),
        ("@every 5m", "spec.interval"),
        ("0 25 * * *", "cron field 'hour' value 25 is out of range 0-23"),
        ("60 * * * *", "cron field 'minute' value 60 is out of range 0-59"),
        ("0 0 0 * *", "cron field 'day-of-month' value 0 is out of range 1-31"),
        ("0 0 * 13 *", "cron field 'month' value 13 is out of range 1-12"),
        ("0 0 * * 8", "cron field 'day-of-week' value 8 is out of range 0-7"),
        ("5-61 * * * *", "cron field 'minute' value 61 is out of range 0-59"),
        ("0 0 L * *", "cron field 'day-of-month' value 'L' is not a number"),
        ("0 0 15W * *", "value '15W' is not a number"),
        ("0 0 * * 5#2", "cron field 'day-of-week' has unsupported item '5#2'"),
        ("0 0 * * 5L", "value '5L' is not a number or day name"),
        ("0 0 * foo *", "cron field 'month' value 'foo' is not a number or month name"),
        ("jan * * * *", "cron field 'minute' value 'jan' is not a number"),
        ("*/0 * * * *", "cron field 'minute' step /0 must be at least 1"),
        ("? * * * *", "cron field 'minute' may not be '?'"),
        ("0 0 ?,1 * *", "has unsupported item '?'"),
        ("R * * * *", "value 'R' is not a number"),
        ("H,5 * * * *", "H must be the whole field"),
        ("H(30-10) * * * *", "range H(30-10) must start below its end"),
        ("H(0-99) * * * *", "value 99 is out of range 0-59"),
        ("0 0 30 2 *", "never fires: day-of-month 30 does not occur in Feb"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "day-of-month 31 does not occur in Apr,Jun,Sep,Nov"),
        ("0 0 1-3 * * extra", "expected 5 fields"),
        ("0 0 \u0663 * *", "unsupported item"),
    ],
    ids=[
        "empty",
        "four-fields",
        "seconds-field",
        "unknown-macro",
        "every-macro",
        "hour-out-of-range",
        "minute-out-of-range",
        "dom-zero",
        "month-13",
        "dow-8",
        "range-end-out-of-range",
        "last-day",
        "nearest-weekday",
        "nth-weekday",
        "last-weekday",
        "unknown-month-name",
        "name-in-minute",
        "zero-step",
        "question-mark-in-minute",
        "question-mark-in-list",
        "random-r",
        "hash-in-list",
        "hash-range-backwards",
        "hash-range-out-of-range",
        "feb-30",
        "feb-31",
        "31st-of-short-months",
        "six-fields",
        "non-ascii-digit",
    ],
)
def test_invalid_cron(expression: str, problem: str) -> None:
    with pytest.raises(InvalidSchedule, match="invalid cron") as raised:
        parse_cron(expression, "UTC", "default/job")
    assert problem in str(raised.value)
    assert repr(expression) in str(raised.value)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "localtime", "", "../etc/passwd", "America", "utc"]
)
def test_unknown_zone(zone: str) -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        parse_cron("0 0 * * *", zone)


def test_h_needs_a_name() -> None:
    with pytest.raises(InvalidSchedule, match="needs the schedule's namespace/name"):
        parse_cron("H H * * *", "UTC", "")


@pytest.mark.parametrize(
    ("macro", "fields"),
    [(macro, fields) for macro, fields in MACROS.items()] + [("@DAILY", "0 0 * * *")],
    ids=[*MACROS, "upper-case"],
)
def test_macros_equal_their_fields(macro: str, fields: str) -> None:
    by_macro, by_fields = parse_cron(macro, "UTC", "a/b"), parse_cron(fields, "UTC", "a/b")
    after = utc("2024-02-28T13:00")
    assert list(islice(by_macro.after(after), 5)) == list(islice(by_fields.after(after), 5))
    assert by_macro.wall_clock == by_fields.wall_clock


def test_day_fields_restricted_only_unless_star_or_question_mark() -> None:
    assert parse_cron("0 0 13 * 5").either_day
    assert parse_cron("0 0 */2 * mon").either_day
    assert not parse_cron("0 0 13 * *").either_day
    assert not parse_cron("0 0 ? * 5").either_day


def test_wall_clock_when_minute_and_hour_are_fixed() -> None:
    assert parse_cron("30 2 * * *").wall_clock
    assert parse_cron("H H * * *", "UTC", "a/b").wall_clock
    assert parse_cron("0-59 0-23 * * *").wall_clock
    assert not parse_cron("*/5 2 * * *").wall_clock
    assert not parse_cron("0 * * * *").wall_clock


def _hashed_minute_hour(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    cron = parse_cron("H H * * *", "UTC", name)
    return cron.minutes, cron.hours


def test_h_is_stable_across_processes() -> None:
    names = ["default/nightly", "team-a/backup", "x/y"]
    here = [_hashed_minute_hour(name) for name in names]
    script = (
        "from kadence.cron import parse_cron\n"
        f"for name in {names!r}:\n"
        "    cron = parse_cron('H H * * *', 'UTC', name)\n"
        "    print(cron.minutes, cron.hours)\n"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert out.splitlines() == [f"{minutes} {hours}" for minutes, hours in here]


def test_h_spreads_names() -> None:
    minutes = {_hashed_minute_hour(f"default/schedule-{i}")[0] for i in range(100)}
    assert len(minutes) >= 40


@pytest.mark.parametrize(
    ("expression", "check"),
    [
        ("H(0-29) * * * *", lambda c: len(c.minutes) == 1 and c.minutes[0] < 30),
        (
            "H/15 * * * *",
            lambda c: len(c.minutes) == 4 and all(b - a == 15 for a, b in pairwise(c.minutes)),
        ),
        ("0 H(1-5) * * *", lambda c: len(c.hours) == 1 and 1 <= c.hours[0] <= 5),
        ("0 0 * * H", lambda c: len(c.days_of_week) == 1),
        ("h h * * *", lambda c: len(c.minutes) == len(c.hours) == 1),
    ],
    ids=["hash-range", "hash-step", "hash-hour-range", "hash-day-of-week", "lower-case-h"],
)
def test_h_forms(expression: str, check: Callable[[Cron], bool]) -> None:
    for i in range(20):
        assert check(parse_cron(expression, "UTC", f"ns/name-{i}"))


def test_no_deadline_after_the_calendar_ends() -> None:
    with pytest.raises(InvalidSchedule, match="has no deadline"):
        parse_cron("0 0 1 1 *").next_after(utc("9999-06-01T00:00"))
    assert next_deadlines("0 0 1 1 *", "UTC", utc("9998-06-01T00:00"), 3, "") == [
        utc("9999-01-01T00:00")
    ]
