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
        ("59-0 * * * *", "UTC", "2024-01-01T00:00", ["2024-01-01T00:59", "2024-01-01T01:00"]),
        (
            "50-10/5 * * * *",
            "UTC",
            "2024-01-01T00:45",
            ["2024-01-01T00:50", "2024-01-01T00:55", "2024-01-01T01:00", "2024-01-01T01:05"],
        ),
        (
            "50-10/7 * * * *",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-01T00:04", "2024-01-01T00:50", "2024-01-01T00:57", "2024-01-01T01:04"],
        ),
        (
            "0 22-1 * * *",
            "UTC",
            "2024-01-01T12:00",
            ["2024-01-01T22:00", "2024-01-01T23:00", "2024-01-02T00:00", "2024-01-02T01:00"],
        ),
        (
            "0 0 28-2 * *",
            "UTC",
            "2024-02-27T12:00",
            ["2024-02-28T00:00", "2024-02-29T00:00", "2024-03-01T00:00", "2024-03-02T00:00"],
        ),
        (
            "0 0 29-1/2 * *",
            "UTC",
            "2024-01-28T12:00",
            ["2024-01-29T00:00", "2024-01-31T00:00", "2024-02-29T00:00", "2024-03-29T00:00"],
        ),
        (
            "0 0 1 nov-Feb *",
            "UTC",
            "2024-06-01T00:00",
            ["2024-11-01T00:00", "2024-12-01T00:00", "2025-01-01T00:00", "2025-02-01T00:00"],
        ),
        (
            "0 0 * * 5-1",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-05T00:00", "2024-01-06T00:00", "2024-01-07T00:00", "2024-01-08T00:00"],
        ),
        (
            "0 0 * * 4-1/2",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-04T00:00", "2024-01-06T00:00", "2024-01-08T00:00", "2024-01-11T00:00"],
        ),
        ("0 0 * * 7-0", "UTC", "2024-01-01T00:00", ["2024-01-07T00:00", "2024-01-14T00:00"]),
        (
            "0 0 * * 7-2",
            "UTC",
            "2024-01-03T00:00",
            ["2024-01-07T00:00", "2024-01-08T00:00", "2024-01-09T00:00", "2024-01-14T00:00"],
        ),
        (
            "0 0 * * 5-7/2",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-05T00:00", "2024-01-07T00:00", "2024-01-12T00:00"],
        ),
        ("5-5/10 * * * *", "UTC", "2024-01-01T00:00", ["2024-01-01T00:05", "2024-01-01T01:05"]),
        (
            "0 0 * * 5/1",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-05T00:00", "2024-01-06T00:00", "2024-01-12T00:00"],
        ),
        (
            "H(50-10) * * * *",
            "UTC",
            "2024-01-01T00:00",
            ["2024-01-01T00:06", "2024-01-01T01:06"],
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
        "minute-range-wraps",
        "minute-wrap-step-lands-on-min",
        "minute-wrap-step-counts-across-wrap",
        "hour-range-wraps-past-midnight",
        "dom-range-wraps-into-next-month",
        "dom-wrap-step-31-then-1",
        "month-names-wrap",
        "dow-range-wraps-fri-to-mon",
        "dow-wrap-step-counts-sunday-once",
        "dow-7-to-0-is-sunday-only",
        "dow-range-from-7-starts-sunday",
        "dow-range-to-7-with-step",
        "equal-range-with-step-is-one-value",
        "dow-start-with-step-ends-saturday",
        "hash-range-wraps",
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
        ("H(0-99) * * * *", "value 99 is out of range 0-59"),
        ("H(60-10) * * * *", "cron field 'minute' value 60 is out of range 0-59"),
        ("0 0 H(0-5) * *", "cron field 'day-of-month' value 0 is out of range 1-31"),
        ("H(50-10)/0 * * * *", "cron field 'minute' step /0 must be at least 1"),
        ("H(5) * * * *", "H must be the whole field: H, H/n, H(a-b) or H(a-b)/n"),
        ("0 0 * * H(fri-mon)", "with numbers a and b"),
        ("50-10/0 * * * *", "cron field 'minute' step /0 must be at least 1"),
        ("0 0 * * 8-1", "cron field 'day-of-week' value 8 is out of range 0-7"),
        ("0 0 * 13-2 *", "cron field 'month' value 13 is out of range 1-12"),
        ("5- * * * *", "cron field 'minute' has unsupported item '5-'"),
        ("-5 * * * *", "has unsupported item '-5'"),
        ("50-10-20 * * * *", "has unsupported item '50-10-20'"),
        ("0 0 * * fri-", "has unsupported item 'fri-'"),
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
        "hash-range-out-of-range",
        "hash-wrapping-range-out-of-range",
        "hash-range-below-dom",
        "hash-wrapping-range-zero-step",
        "hash-range-without-end",
        "hash-range-of-names",
        "wrapping-range-zero-step",
        "wrapping-range-start-out-of-range",
        "wrapping-month-range-out-of-range",
        "range-without-end",
        "range-without-start",
        "range-of-three",
        "name-range-without-end",
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


@pytest.mark.parametrize("expression", ["H H * * *", "H(50-10) * * * *", "0 0 * * H(5-5)"])
def test_h_needs_a_name(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="needs the schedule's namespace/name"):
        parse_cron(expression, "UTC", "")


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
        ("H(50-10) * * * *", lambda c: len(c.minutes) == 1 and not 10 < c.minutes[0] < 50),
        ("0 H(22-2)/2 * * *", lambda c: set(c.hours) in ({22, 0, 2}, {23, 1})),
        (
            "0 0 * * H(5-1)",
            lambda c: len(c.days_of_week) == 1 and c.days_of_week <= {5, 6, 0, 1},
        ),
    ],
    ids=[
        "hash-range",
        "hash-step",
        "hash-hour-range",
        "hash-day-of-week",
        "lower-case-h",
        "hash-minute-range-wraps",
        "hash-hour-range-wraps-with-step",
        "hash-day-of-week-range-wraps",
    ],
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


def _values(cron: Cron) -> tuple[frozenset[int], ...]:
    return (
        frozenset(cron.minutes),
        frozenset(cron.hours),
        cron.days_of_month,
        cron.months,
        cron.days_of_week,
    )


@pytest.mark.parametrize(
    ("expression", "name", "field", "expected"),
    [
        ("H(0-29) * * * *", "default/nightly", 0, {5}),
        ("H(0-29) * * * *", "team-a/backup", 0, {7}),
        ("0 H(1-5) * * *", "default/nightly", 1, {3}),
        ("H(10-40)/15 * * * *", "default/nightly", 0, {15, 30}),
        ("H(10-40)/15 * * * *", "ns/x", 0, {21, 36}),
        ("0 0 H(1-28) * *", "team-a/backup", 2, {3}),
        ("0 0 1 H(1-6) *", "ns/x", 3, {5}),
        ("0 0 * * H(1-5)", "team-a/backup", 4, {2}),
        ("0 0 * * H(0-7)", "ns/x", 4, {4}),
        ("H(50-10) * * * *", "default/nightly", 0, {1}),
        ("H(50-10) * * * *", "ns/x", 0, {52}),
        ("H(50-10)/5 * * * *", "default/nightly", 0, {50, 55, 0, 5, 10}),
        ("H(50-10)/5 * * * *", "ns/x", 0, {51, 56, 1, 6}),
        ("0 H(22-2) * * *", "team-a/backup", 1, {1}),
        ("0 H(22-2)/2 * * *", "default/nightly", 1, {23, 1}),
        ("0 0 H(25-5) * *", "default/job", 2, {31}),
        ("0 0 H(25-5) * *", "ns/x", 2, {3}),
        ("0 0 1 H(11-2) *", "team-a/backup", 3, {2}),
        ("0 0 1 H(11-2) *", "ns/x", 3, {11}),
        ("0 0 * * H(5-1)", "team-a/backup", 4, {6}),
        ("0 0 * * H(7-2)", "default/job", 4, {1}),
        ("0 0 * * H(6-1)/2", "team-a/backup", 4, {0}),
        ("H(5-5) * * * *", "ns/x", 0, {5}),
        ("H(59-0) * * * *", "ns/x", 0, {59}),
    ],
    ids=[
        "minute-range-a",
        "minute-range-b",
        "hour-range",
        "minute-range-step-a",
        "minute-range-step-b",
        "dom-range",
        "month-range",
        "dow-range",
        "dow-range-to-7",
        "wrapped-minute-a",
        "wrapped-minute-b",
        "wrapped-minute-step-a",
        "wrapped-minute-step-b",
        "wrapped-hour",
        "wrapped-hour-step",
        "wrapped-dom-to-31",
        "wrapped-dom-past-31",
        "wrapped-month-feb",
        "wrapped-month-nov",
        "wrapped-dow",
        "dow-from-7-is-from-sunday",
        "wrapped-dow-step-sunday",
        "one-value",
        "wrapped-two-values",
    ],
)
def test_h_values_are_pinned(expression: str, name: str, field: int, expected: set[int]) -> None:
    """These values are what running Schedules use: a change here moves their runs."""
    assert _values(parse_cron(expression, "UTC", name))[field] == expected


@pytest.mark.parametrize(
    ("template", "low", "wrapped", "span", "step"),
    [
        ("H({}){} * * * *", 0, "50-10", [*range(50, 60), *range(11)], ""),
        ("H({}){} * * * *", 0, "50-10", [*range(50, 60), *range(11)], "/7"),
        ("0 H({}){} * * *", 0, "20-3", [20, 21, 22, 23, 0, 1, 2, 3], ""),
        ("0 H({}){} * * *", 0, "20-3", [20, 21, 22, 23, 0, 1, 2, 3], "/3"),
        ("0 0 H({}){} * *", 1, "25-5", [*range(25, 32), *range(1, 6)], ""),
        ("0 0 1 H({}){} *", 1, "10-3", [10, 11, 12, 1, 2, 3], "/2"),
        ("0 0 * * H({}){}", 0, "5-1", [5, 6, 0, 1], ""),
        ("0 0 * * H({}){}", 0, "4-2", [4, 5, 6, 0, 1, 2], "/4"),
    ],
    ids=["minute", "minute-step", "hour", "hour-step", "dom", "month-step", "dow", "dow-step"],
)
def test_wrapped_h_draws_from_the_same_hash(
    template: str, low: int, wrapped: str, span: list[int], step: str
) -> None:
    """A wrapped ``H(a-b)`` picks what ``H`` picks over as many values from the field's start,
    moved along the wrapped span: the same hash, counted from ``a``."""
    field = template.split().index("H({}){}")
    plain = f"{low}-{low + len(span) - 1}"
    for i in range(30):
        name = f"ns/name-{i}"
        by_plain = _values(parse_cron(template.format(plain, step), "UTC", name))[field]
        by_wrapped = _values(parse_cron(template.format(wrapped, step), "UTC", name))[field]
        assert by_wrapped == {span[value - low] for value in by_plain}


def test_schedules_whose_rules_come_out_equal_share_one_reading() -> None:
    """Readings are kept and shared: a Schedule read again gets the same rule, and
    Schedules whose `H` chose the same values in the same zone share one."""
    first = parse_cron("H H(0-5) * * *", "Europe/Amsterdam", "ns/a")
    assert parse_cron("H H(0-5) * * *", "Europe/Amsterdam", "ns/a") is first
    readings = [parse_cron("H H(0-5) * * *", "Europe/Amsterdam", f"ns/s-{i}") for i in range(500)]
    distinct = {id(reading) for reading in readings}
    assert len(distinct) == len({reading.resolved for reading in readings}) < len(readings)
    assert parse_cron("H H(0-5) * * *", "UTC", "ns/a") != first, "the zone is part of the rule"


def test_a_refused_expression_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(InvalidSchedule):
            parse_cron("0 0 30 2 *")
