import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from kadence.cron import Cron, InvalidSchedule
from kadence.deadlines import (
    INTERVAL_PATTERN,
    MISSED_COUNT_CAP,
    DuePlan,
    MissedRunPolicy,
    ScheduleTiming,
    parse_interval,
    plan_due,
    timing_of,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Spec:
    schedule: str | None = None
    time_zone: str = "UTC"
    interval: str | None = None
    schedules: list[str] | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    run_limit: int | None = None


def cron(expression: str, zone: str = "UTC") -> ScheduleTiming:
    return timing_of(Spec(schedule=expression, time_zone=zone), "default/job")


def every(interval: str) -> ScheduleTiming:
    return timing_of(Spec(interval=interval), "default/job")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90, id="seconds"),
        pytest.param("15m", 900, id="minutes"),
        pytest.param("24h", 86400, id="hours"),
        pytest.param("1h30m", 5400, id="hours-minutes"),
        pytest.param("1h30m15s", 5415, id="all-units"),
        pytest.param("1h15s", 3615, id="hours-seconds"),
        pytest.param("0h1s", 1, id="zero-hours-one-second"),
        pytest.param("87600h", 87600 * 3600, id="longest"),
    ],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)
    assert re.fullmatch(INTERVAL_PATTERN, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0s",
        "0h0m",
        "1d",
        "1.5h",
        "-5m",
        "30m1h",
        "h",
        "1h 30m",
        "1H",
        "1ms",
        "87600h1s",
        "\u0661s",
        "5",
    ],
    ids=[
        "empty",
        "zero",
        "zero-units",
        "days",
        "fraction",
        "negative",
        "wrong-order",
        "no-number",
        "space",
        "upper-case",
        "milliseconds",
        "too-long",
        "non-ascii-digit",
        "no-unit",
    ],
)
def test_invalid_interval(text: str) -> None:
    with pytest.raises(InvalidSchedule, match="invalid interval"):
        parse_interval(text)


@pytest.mark.parametrize(
    "spec",
    [Spec(), Spec(schedule="0 0 * * *", interval="1h"), Spec(schedule="0 0 * * *", time_zone="X")],
    ids=["neither", "both", "bad-zone"],
)
def test_invalid_timing(spec: Spec) -> None:
    with pytest.raises(InvalidSchedule):
        timing_of(spec, "default/job")


def test_signature_changes_with_the_timing_fields() -> None:
    signatures = {
        cron("0 0 * * *").signature,
        cron("0 0 * * *", "Europe/Amsterdam").signature,
        cron("0 1 * * *").signature,
        every("1h").signature,
        every("60m").signature,
    }
    assert len(signatures) == 5
    assert cron("0 0 * * *").signature == cron("0 0 * * *").signature


NOW = utc("2024-05-01T12:34:56")


@pytest.mark.parametrize(
    ("timing", "history", "expected"),
    [
        (cron("0 * * * *"), {}, utc("2024-05-01T13:00")),
        (cron("@daily", "Europe/Amsterdam"), {}, utc("2024-05-01T22:00")),
        (every("1h"), {"has_run": False}, utc("2024-05-01T10:00")),
        (every("1h"), {"active": True}, None),
        (every("1h"), {"last_finished_at": utc("2024-05-01T12:00")}, utc("2024-05-01T13:00")),
        (every("1h"), {"last_finished_at": utc("2024-05-01T09:00")}, NOW),
    ],
    ids=[
        "cron-next-after-now",
        "cron-in-zone",
        "interval-new-runs-at-creation",
        "interval-active-waits-for-finish",
        "interval-counts-from-last-finish",
        "interval-never-in-the-past",
    ],
)
def test_first_deadline(timing: ScheduleTiming, history: dict, expected: datetime | None) -> None:
    arguments = {
        "now": NOW,
        "created_at": utc("2024-05-01T10:00"),
        "last_finished_at": None,
        "has_run": True,
        "active": False,
    }
    assert timing.first_deadline(**(arguments | history)) == expected


def test_after_run() -> None:
    assert every("1h30m").after_run(NOW) == NOW + timedelta(minutes=90)
    assert cron("0 * * * *").after_run(NOW) == utc("2024-05-01T13:00")


@pytest.mark.parametrize(
    ("timing", "created", "expected"),
    [
        (cron("0 * * * *"), True, NOW),
        (cron("0 * * * *"), False, NOW),
        (every("1h"), True, None),
        (every("1h"), False, NOW),
    ],
    ids=["cron-created", "cron-skipped", "interval-created-waits", "interval-skipped"],
)
def test_next_after_fire(timing: ScheduleTiming, created: bool, expected: datetime | None) -> None:
    plan = DuePlan(run=(), missed=0, next_deadline=NOW)
    assert timing.next_after_fire(plan, created=created) == expected


HOURLY = cron("0 * * * *")


@pytest.mark.parametrize(
    ("deadline_at", "now", "options", "expected"),
    [
        ("10:00", "09:59:59", {}, ([], 0, "10:00")),
        ("10:00", "10:00:00", {}, (["10:00"], 0, "11:00")),
        ("10:00", "10:00:01", {"missed_run_policy": "Skip"}, (["10:00"], 0, "11:00")),
        ("10:00", "10:00:01", {"missed_run_policy": "RunAll"}, (["10:00"], 0, "11:00")),
        ("10:00", "13:20", {}, (["13:00"], 3, "14:00")),
        ("10:00", "13:20", {"missed_run_policy": "Skip"}, ([], 4, "14:00")),
        ("10:00", "13:00:10", {"missed_run_policy": "Skip"}, (["13:00"], 3, "14:00")),
        ("10:00", "10:05", {"missed_run_policy": "Skip"}, ([], 1, "11:00")),
        (
            "10:00",
            "13:20",
            {"missed_run_policy": "RunAll"},
            (["10:00", "11:00", "12:00", "13:00"], 0, "14:00"),
        ),
        (
            "10:00",
            "13:20",
            {"missed_run_policy": "RunAll", "missed_run_limit": 2},
            (["12:00", "13:00"], 2, "14:00"),
        ),
        ("10:00", "13:20", {"starting_deadline_seconds": 600}, ([], 4, "14:00")),
        ("10:00", "13:05", {"starting_deadline_seconds": 600}, (["13:00"], 3, "14:00")),
        ("10:00", "10:15", {"starting_deadline_seconds": 60}, ([], 1, "11:00")),
        (
            "10:00",
            "13:20",
            {"missed_run_policy": "RunAll", "starting_deadline_seconds": 3600},
            (["13:00"], 3, "14:00"),
        ),
        (
            "10:00",
            "13:00:20",
            {"missed_run_policy": "Skip", "starting_deadline_seconds": 10},
            ([], 4, "14:00"),
        ),
        ("10:30", "11:20", {}, (["11:00"], 1, "12:00")),
    ],
    ids=[
        "not-due-yet",
        "on-time",
        "skip-on-time-runs",
        "run-all-on-time",
        "run-latest-after-downtime",
        "skip-after-downtime-runs-none",
        "skip-runs-latest-within-grace",
        "skip-single-late-deadline",
        "run-all-after-downtime",
        "run-all-limit-keeps-most-recent",
        "starting-deadline-makes-latest-missed",
        "starting-deadline-latest-in-time",
        "starting-deadline-single-deadline-missed",
        "run-all-starting-deadline-drops-old",
        "skip-grace-bounded-by-starting-deadline",
        "stored-deadline-off-schedule-counts",
    ],
)
def test_plan_due(
    deadline_at: str,
    now: str,
    options: dict,
    expected: tuple[list[str], int, str],
) -> None:
    def at(clock: str) -> datetime:
        return utc(f"2024-05-01T{clock}")

    run, missed, next_deadline = expected
    plan = plan_due(HOURLY, at(deadline_at), at(now), **options)
    assert plan == DuePlan(tuple(at(t) for t in run), missed, at(next_deadline))


@pytest.mark.parametrize(
    ("policy", "run", "missed", "next_deadline"),
    [
        ("RunLatest", ["10:00"], 0, "12:00"),
        ("RunAll", ["10:00"], 0, "12:00"),
        ("Skip", [], 1, "12:00"),
    ],
    ids=["run-latest", "run-all", "skip"],
)
def test_plan_due_interval(
    policy: MissedRunPolicy, run: list[str], missed: int, next_deadline: str
) -> None:
    def at(clock: str) -> datetime:
        return utc(f"2024-05-01T{clock}")

    plan = plan_due(every("30m"), at("10:00"), at("11:45"), missed_run_policy=policy)
    assert plan == DuePlan(tuple(at(t) for t in run), missed, at(next_deadline))


def test_plan_due_interval_late_per_starting_deadline() -> None:
    plan = plan_due(
        every("1h"), utc("2024-05-01T10:00"), utc("2024-05-01T10:02"), starting_deadline_seconds=60
    )
    assert plan == DuePlan((), 1, utc("2024-05-01T11:00"))


@pytest.mark.parametrize(
    ("policy", "runs"), [("RunLatest", 1), ("Skip", 1), ("RunAll", 10)], ids=str
)
def test_year_of_minutely_downtime_is_bounded(
    monkeypatch: pytest.MonkeyPatch, policy: MissedRunPolicy, runs: int
) -> None:
    days: list[date] = []
    instants_on = Cron.instants_on

    def counted(self: Cron, day: date) -> list[datetime]:
        days.append(day)
        return instants_on(self, day)

    monkeypatch.setattr(Cron, "instants_on", counted)
    now = utc("2024-01-01T00:00:05")
    plan = plan_due(
        cron("* * * * *", "Europe/Amsterdam"),
        utc("2023-01-01T00:00"),
        now,
        missed_run_policy=policy,
    )
    assert len(plan.run) == runs
    assert plan.run[-1] == utc("2024-01-01T00:00")
    assert plan.missed == MISSED_COUNT_CAP
    assert plan.next_deadline == utc("2024-01-01T00:01")
    assert len(days) <= 12


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"missed_run_policy": "Sometimes"}, "unknown missedRunPolicy"),
        ({"missed_run_limit": 0}, "at least 1"),
    ],
    ids=["unknown-policy", "zero-limit"],
)
def test_plan_due_rejects_bad_options(options: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        plan_due(HOURLY, NOW, NOW, **options)
