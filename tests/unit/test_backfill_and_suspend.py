"""plan_schedule for runs asked for by a person or stopped by failures: backfill requests,
the trigger label on each kind of task, and the pause after consecutive failed runs.

Same form as test_schedule_plan.py: each case states the world and `now`, and asserts the
exact plan (Tasks created and cancelled, Events, the next wake-up, the status fields that
matter to it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.backfill import backfill_range, parse_backfill
from kadence.deadlines import ScheduleTiming, timing_of
from kadence.models import Counts, ScheduleSpec
from kadence.naming import task_name_for_run_request
from kadence.schedule_plan import plan_schedule
from tests.unit.test_schedule_plan import (
    EVERY_5M,
    HOURLY,
    JUST_AFTER_THE_HOUR,
    NEXT_HOUR,
    ON_THE_HOUR,
    PREVIOUS_HOUR,
    TEMPLATE,
    Case,
    rfc,
    run,
    schedule,
    settled,
    task,
    world,
)

BACKFILL = "kadence.dev/backfill"
ALLOW = {"kadence.dev/backfill-policy": "Allow"}
RESUME = "kadence.dev/resume-requested-at"

# Backfill cases: noon has just been acted on, the next deadline is one o'clock.
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AFTER_NOON = NOON + timedelta(seconds=30)
SETTLED_AT_NOON = settled(HOURLY, deadlineAt=rfc(NOON + timedelta(hours=1)))


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, second, tzinfo=UTC)


def span(start: datetime, end: datetime) -> str:
    return f"{rfc(start)}/{rfc(end)}"


def asked(value: str, **more: str) -> dict[str, str]:
    return {BACKFILL: value, **more}


def labelled(body: dict[str, Any], trigger: str) -> dict[str, Any]:
    body["metadata"]["labels"] = {"kadence.dev/trigger": trigger}
    return body


THREE_HOURS = span(at(9), at(12))

BACKFILL_CASES = [
    Case(
        "three hours with END exclusive: 9, 10 and 11, not noon",
        schedule(HOURLY, SETTLED_AT_NOON, asked(THREE_HOURS, **ALLOW)),
        now=AFTER_NOON,
        create=[run(at(9)), run(at(10)), run(at(11))],
        events=["TaskCreated", "TaskCreated", "TaskCreated", "Backfilled"],
        wake_at=at(13),
        status={"lastHandledBackfill": THREE_HOURS, "counts": {"created": 3}},
    ),
    Case(
        "START just after a deadline leaves that deadline out",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(9, 0, 1), at(12)), **ALLOW)),
        now=AFTER_NOON,
        create=[run(at(10)), run(at(11))],
        events=["TaskCreated", "TaskCreated", "Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "a range with no deadline in it: handled, nothing made",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(9, 10), at(9, 50)))),
        now=AFTER_NOON,
        events=["Backfilled"],
        wake_at=at(13),
        status={"lastHandledBackfill": span(at(9, 10), at(9, 50)), "counts": {}},
    ),
    Case(
        "over backfillLimit: the first deadlines are made, the rest refused with a Warning",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(6), at(12)), **ALLOW), backfillLimit=2),
        now=AFTER_NOON,
        create=[run(at(6)), run(at(7))],
        events=["BackfillLimited", "TaskCreated", "TaskCreated", "Backfilled"],
        wake_at=at(13),
        status={"counts": {"created": 2}},
    ),
    Case(
        "deadlines still to come are left to the schedule",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(11), at(15)), **ALLOW)),
        tasks=[task(run(NOON), "Running", deadline=NOON)],
        now=AFTER_NOON,
        create=[run(at(11))],
        events=["TaskCreated", "Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "Forbid (the schedule's policy) applies: the first backfilled task holds the work",
        schedule(HOURLY, SETTLED_AT_NOON, asked(THREE_HOURS)),
        now=AFTER_NOON,
        create=[run(at(9))],
        events=["TaskCreated", "Backfilled"],
        wake_at=at(13),
        status={"counts": {"created": 1}},
    ),
    Case(
        "Forbid with the work already running: nothing made",
        schedule(HOURLY, SETTLED_AT_NOON, asked(THREE_HOURS)),
        tasks=[task(run(NOON), "Running", deadline=NOON)],
        now=AFTER_NOON,
        events=["Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "backfill-policy Allow overrides Forbid while the work is running",
        schedule(HOURLY, SETTLED_AT_NOON, asked(THREE_HOURS, **ALLOW)),
        tasks=[task(run(NOON), "Running", deadline=NOON)],
        now=AFTER_NOON,
        create=[run(at(9)), run(at(10)), run(at(11))],
        events=["TaskCreated", "TaskCreated", "TaskCreated", "Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "Replace (the schedule's policy): each backfilled task replaces the one before",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(10), at(12))), concurrencyPolicy="Replace"),
        now=AFTER_NOON,
        create=[run(at(10)), run(at(11))],
        cancel=[(run(at(10)), f"replaced by {run(at(11))}")],
        events=["TaskCreated", "TaskCreated", "Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "the same value seen again does nothing",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(at(13)), lastHandledBackfill=THREE_HOURS),
            asked(THREE_HOURS, **ALLOW),
        ),
        now=AFTER_NOON,
        wake_at=at(13),
    ),
    Case(
        "deadlines that already ran are not run again (a Task, or a pruned run in history)",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(at(13)),
                history=[{"task": run(at(9)), "phase": "Completed", "finishedAt": rfc(at(9, 5))}],
                counts={"created": 1, "completed": 1},
            ),
            asked(THREE_HOURS, **ALLOW),
        ),
        tasks=[task(run(at(10)), "Failed", deadline=at(10), finished=at(10, 5))],
        now=AFTER_NOON,
        create=[run(at(11))],
        events=["TaskCreated", "Backfilled"],
        wake_at=at(13),
        status={"counts": {"created": 3, "completed": 1, "failed": 1, "scheduled": 1}},
    ),
    Case(
        "a deadline's name taken by a Task the schedule does not control: not made",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(10), at(12)), **ALLOW)),
        tasks=[task(run(at(10)), "Completed", owner=None)],
        now=AFTER_NOON,
        create=[run(at(11))],
        events=["TaskNameTaken", "TaskCreated", "Backfilled"],
        wake_at=at(13),
    ),
    Case(
        "not START/END: a Warning, and handled",
        schedule(HOURLY, SETTLED_AT_NOON, asked("yesterday")),
        now=AFTER_NOON,
        events=["BackfillRejected"],
        wake_at=at(13),
        status={"lastHandledBackfill": "yesterday"},
    ),
    Case(
        "START not before END: a Warning, and handled",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(11), at(9)))),
        now=AFTER_NOON,
        events=["BackfillRejected"],
        wake_at=at(13),
        status={"lastHandledBackfill": span(at(11), at(9))},
    ),
    Case(
        "a time without an offset: a Warning",
        schedule(HOURLY, SETTLED_AT_NOON, asked("2026-06-01T09:00:00/2026-06-01T12:00:00Z")),
        now=AFTER_NOON,
        events=["BackfillRejected"],
        wake_at=at(13),
    ),
    Case(
        "an unknown backfill-policy: a Warning",
        schedule(
            HOURLY,
            SETTLED_AT_NOON,
            asked(THREE_HOURS, **{"kadence.dev/backfill-policy": "Always"}),
        ),
        now=AFTER_NOON,
        events=["BackfillRejected"],
        wake_at=at(13),
    ),
    Case(
        "an interval schedule has no deadlines to backfill: a Warning",
        schedule(
            EVERY_5M,
            settled(EVERY_5M, deadlineAt=rfc(at(12, 5))),
            asked(THREE_HOURS, **ALLOW),
        ),
        now=AFTER_NOON,
        events=["BackfillRejected"],
        wake_at=at(12, 5),
        status={"lastHandledBackfill": THREE_HOURS},
    ),
    Case(
        "disabled: a backfill still runs, and its queued tasks are not cancelled",
        schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(11), at(12)), **ALLOW), enabled=False),
        tasks=[
            labelled(task(run(at(8)), "Queued", deadline=at(8)), "backfill"),
            labelled(task(run(at(7)), "Queued", deadline=at(7)), "schedule"),
        ],
        now=AFTER_NOON,
        create=[run(at(11))],
        cancel=[(run(at(7)), "its schedule was disabled")],
        events=["TaskCreated", "Backfilled"],
    ),
]

# Pause on failure: an hourly schedule whose deadline has just come.
DUE = settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))
TWO_HOURS_AGO = PREVIOUS_HOUR - timedelta(hours=1)
THREE_HOURS_AGO = PREVIOUS_HOUR - timedelta(hours=2)


def failed(deadline: datetime) -> dict[str, Any]:
    body = task(
        run(deadline), "Failed", deadline=deadline, finished=deadline + timedelta(minutes=5)
    )
    body["status"]["message"] = "exit code 3"
    return body


def ended(deadline: datetime, phase: str) -> dict[str, Any]:
    return task(run(deadline), phase, deadline=deadline, finished=deadline + timedelta(minutes=5))


SUSPENDED_SINCE_PREVIOUS_HOUR = {
    "suspendedAt": rfc(PREVIOUS_HOUR + timedelta(minutes=6)),
    "suspendedGeneration": 1,
    "conditions": [
        {
            "type": "Suspended",
            "status": "True",
            "reason": "ConsecutiveFailures",
            "message": "2 runs failed in a row",
        }
    ],
}
TWO_FAILED = [failed(TWO_HOURS_AGO), failed(PREVIOUS_HOUR)]
TWO_FAILED_COUNTS = {"created": 2, "failed": 2}

SUSPEND_CASES = [
    Case(
        "K failed runs in a row: suspended, the deadline makes no task and is skipped",
        schedule(HOURLY, DUE, suspendAfterFailures=2),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        events=["ConsecutiveFailures"],
        wake_at=NEXT_HOUR,
        status={
            "deadlineAt": rfc(NEXT_HOUR),
            "counts": {**TWO_FAILED_COUNTS, "skipped": 1, "scheduled": 2},
            "suspendedAt": rfc(JUST_AFTER_THE_HOUR),
            "suspendedGeneration": 1,
        },
        conditions={
            "Ready": ("False", "Suspended"),
            "Suspended": ("True", "ConsecutiveFailures"),
            "LastRunSucceeded": ("False", "Failed"),
            "Healthy": ("False", "LastRunFailed"),
        },
    ),
    Case(
        "fewer than K failed runs: the deadline runs",
        schedule(HOURLY, DUE, suspendAfterFailures=3),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
        status={"suspendedAt": None},
    ),
    Case(
        "a completed run in between resets the count",
        schedule(HOURLY, DUE, suspendAfterFailures=2),
        tasks=[
            failed(THREE_HOURS_AGO),
            ended(TWO_HOURS_AGO, "Completed"),
            failed(PREVIOUS_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "a cancelled run in between is passed over",
        schedule(HOURLY, DUE, suspendAfterFailures=2),
        tasks=[
            failed(THREE_HOURS_AGO),
            ended(TWO_HOURS_AGO, "Cancelled"),
            failed(PREVIOUS_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        events=["ConsecutiveFailures"],
        wake_at=NEXT_HOUR,
        status={"suspendedAt": rfc(JUST_AFTER_THE_HOUR)},
    ),
    Case(
        "suspendAfterFailures unset: never suspended",
        schedule(HOURLY, DUE),
        tasks=[failed(THREE_HOURS_AGO), *TWO_FAILED],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "suspended: a deadline that passes is skipped and the next one moves on, quietly",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR), **SUSPENDED_SINCE_PREVIOUS_HOUR),
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR + timedelta(hours=2),
        wake_at=NEXT_HOUR + timedelta(hours=2),
        status={
            "deadlineAt": rfc(NEXT_HOUR + timedelta(hours=2)),
            "counts": {**TWO_FAILED_COUNTS, "skipped": 3, "scheduled": 2},
            "suspendedAt": rfc(PREVIOUS_HOUR + timedelta(minutes=6)),
        },
        conditions={
            "Ready": ("False", "Suspended"),
            "Suspended": ("True", "ConsecutiveFailures"),
            "LastRunSucceeded": ("False", "Failed"),
            "Healthy": ("False", "LastRunFailed"),
        },
    ),
    Case(
        "resumed by a new resume-requested-at value: the deadline runs",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR), **SUSPENDED_SINCE_PREVIOUS_HOUR),
            {RESUME: "fixed"},
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["Resumed", "TaskCreated"],
        wake_at=NEXT_HOUR,
        status={
            "lastHandledResumeRequest": "fixed",
            "failuresCountedSince": rfc(JUST_AFTER_THE_HOUR),
            "suspendedAt": None,
            "suspendedGeneration": None,
        },
        conditions={
            "Ready": ("True", "Scheduled"),
            "LastRunSucceeded": ("False", "Failed"),
            "Healthy": ("False", "LastRunFailed"),
        },
    ),
    Case(
        "a resume value already handled does not resume again",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                lastHandledResumeRequest="fixed",
                **SUSPENDED_SINCE_PREVIOUS_HOUR,
            ),
            {RESUME: "fixed"},
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"suspendedAt": rfc(PREVIOUS_HOUR + timedelta(minutes=6))},
    ),
    Case(
        "resumed by a spec change (a new generation)",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                **{**SUSPENDED_SINCE_PREVIOUS_HOUR, "suspendedGeneration": 0},
            ),
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["Resumed", "TaskCreated"],
        wake_at=NEXT_HOUR,
        status={"failuresCountedSince": rfc(JUST_AFTER_THE_HOUR), "suspendedAt": None},
    ),
    Case(
        "after a resume, only failures since count",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                failuresCountedSince=rfc(PREVIOUS_HOUR),
            ),
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "run-now while suspended still runs; deadlines do not",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR), **SUSPENDED_SINCE_PREVIOUS_HOUR),
            {"kadence.dev/run-requested-at": "now"},
            suspendAfterFailures=2,
        ),
        tasks=TWO_FAILED,
        now=JUST_AFTER_THE_HOUR,
        create=[task_name_for_run_request("nightly", "now")],
        events=["TaskCreated", "RunRequested"],
        wake_at=NEXT_HOUR,
        status={"suspendedAt": rfc(PREVIOUS_HOUR + timedelta(minutes=6))},
    ),
]

CASES = BACKFILL_CASES + SUSPEND_CASES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plan_schedule(case: Case) -> None:
    plan = plan_schedule(world(case), case.now)
    assert [t["metadata"]["name"] for t in plan.create] == case.create
    assert [(name, message) for name, _, message in plan.cancel] == case.cancel
    assert [event.reason for event in plan.events] == case.events
    assert plan.wake_at == case.wake_at
    written = plan.status.to_kube()
    for name, value in case.status.items():
        expected = Counts.model_validate(value).to_kube() if name == "counts" else value
        assert (written.get(name) or None) == (expected or None), name
    if case.conditions is not None:
        assert {c.type: (c.status, c.reason) for c in plan.status.conditions} == case.conditions


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_second_reconcile_of_the_same_world_changes_nothing(case: Case) -> None:
    """Once the plan is written, planning again at the same instant makes nothing, counts
    nothing again and raises no Event: a request is acted on once, a suspension warns once."""
    first = plan_schedule(world(case), case.now)
    body = {**case.schedule, "status": first.status.to_kube()}
    created = [{**t, "status": {"phase": "Pending"}} for t in first.create]
    for made in created:
        made["metadata"]["creationTimestamp"] = rfc(case.now)
    again = plan_schedule(world(Case(case.id, body, case.now, [*case.tasks, *created])), case.now)
    assert again.create == ()
    assert again.status.counts == first.status.counts
    assert again.status.suspended_at == first.status.suspended_at
    assert [e.reason for e in again.events] == []


RUN_NOW = {"kadence.dev/run-requested-at": "now"}
TRIGGER_CASES = [
    ("a deadline", schedule(HOURLY, DUE), "schedule"),
    ("run-now", schedule(HOURLY, SETTLED_AT_NOON, RUN_NOW), "manual"),
    ("backfill", schedule(HOURLY, SETTLED_AT_NOON, asked(span(at(9), at(10)))), "backfill"),
]


@pytest.mark.parametrize(
    ("body", "trigger"),
    [(body, trigger) for _, body, trigger in TRIGGER_CASES],
    ids=[name for name, _, _ in TRIGGER_CASES],
)
def test_every_task_made_says_what_triggered_it(body: dict[str, Any], trigger: str) -> None:
    plan = plan_schedule(world(Case("trigger", body, JUST_AFTER_THE_HOUR)), JUST_AFTER_THE_HOUR)
    assert [t["metadata"]["labels"]["kadence.dev/trigger"] for t in plan.create] == [trigger]


DAILY_IN_AMSTERDAM = timing_of(
    ScheduleSpec.model_validate(
        {"schedulerId": "q", "jobTemplate": TEMPLATE, "schedule": "30 2 * * *",
         "timeZone": "Europe/Amsterdam"}
    ),
    "ns/nightly",
)  # fmt: skip


@pytest.mark.parametrize(
    ("value", "limit", "deadlines", "limited"),
    [
        ("2026-03-28T00:00:00Z/2026-03-31T00:00:00Z", 100,
         ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"], False),
        ("2026-03-28T01:30:00Z/2026-03-29T01:00:00Z", 100, ["2026-03-28T01:30:00Z"], False),
        ("2026-03-28T02:31:00+01:00/2026-03-30T00:00:00+02:00", 100,
         ["2026-03-29T01:00:00Z"], False),
        ("2026-03-28T00:00:00Z/2026-03-31T00:00:00Z", 2,
         ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"], True),
        ("2026-06-01T00:00:00Z/2027-01-01T00:00:00Z", 100, ["2026-06-01T00:30:00Z"], False),
    ],
    ids=[
        "in-its-time-zone-across-a-dst-change",
        "END-on-a-deadline-is-excluded",
        "offsets-other-than-Z",
        "over-the-limit",
        "END-after-now-stops-at-now",
    ],
)  # fmt: skip
def test_backfill_range(value: str, limit: int, deadlines: list[str], limited: bool) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    found = backfill_range(DAILY_IN_AMSTERDAM, value, None, limit, now)
    assert [rfc(d) for d in found.deadlines] == deadlines
    assert found.limited is limited


def _timing(**spec: Any) -> ScheduleTiming:
    body = {"schedulerId": "q", "jobTemplate": TEMPLATE, **spec}
    return timing_of(ScheduleSpec.model_validate(body), "ns/s")


@pytest.mark.parametrize(
    ("timing", "deadlines"),
    [
        (
            _timing(schedules=["0 9 * * *", "30 9 * * *", "0 9 * * *"]),
            ["2026-05-01T09:00:00Z", "2026-05-01T09:30:00Z", "2026-05-02T09:00:00Z",
             "2026-05-02T09:30:00Z"],
        ),
        (
            _timing(schedule="0 9 * * *", startAt="2026-05-02T00:00:00Z"),
            ["2026-05-02T09:00:00Z"],
        ),
        (
            _timing(schedule="0 9 * * *", endAt="2026-05-01T09:00:00Z"),
            ["2026-05-01T09:00:00Z"],
        ),
    ],
    ids=["several-crons-merged-once-each", "not-before-startAt", "not-after-endAt"],
)  # fmt: skip
def test_backfill_range_is_the_schedules_own_deadlines(
    timing: ScheduleTiming, deadlines: list[str]
) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    found = backfill_range(timing, "2026-05-01T00:00:00Z/2026-05-03T00:00:00Z", None, 100, now)
    assert [rfc(d) for d in found.deadlines] == deadlines


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2026-03-28T00:00:00Z", "START/END"),
        ("a/b/c", "START/END"),
        ("2026-03-28T00:00:00Z/tomorrow", "not an RFC 3339 time"),
        ("2026-03-28/2026-03-29T00:00:00Z", "no time zone offset"),
        ("2026-03-29T00:00:00Z/2026-03-29T00:00:00Z", "START must be before END"),
    ],
    ids=["one-time", "three-parts", "not-a-time", "date-without-offset", "empty-interval"],
)
def test_parse_backfill_refuses(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_backfill(value)
