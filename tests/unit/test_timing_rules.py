"""When deadlines fall: several crons in one Schedule, startAt and endAt, runLimit,
status.nextDeadlines and the resolved observedTiming, as tables of named cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from kadence.cron import InvalidSchedule, parse_cron, parse_crons
from kadence.deadlines import MissedRunPolicy, plan_due, timing_of
from kadence.models import ScheduleSpec, ScheduleStatus
from kadence.naming import task_name_for_run_request
from kadence.schedule_plan import ScheduleWorld, plan_schedule, rebuild_runs
from tests.unit.test_schedule_plan import (
    CREATED,
    HOURLY,
    JUST_AFTER_THE_HOUR,
    NEXT_HOUR,
    ON_THE_HOUR,
    PREVIOUS_HOUR,
    THREE_HOURS_LATER,
    Case,
    rfc,
    run,
    schedule,
    settled,
    task,
    world,
)
from tests.unit.test_schedule_plan import (
    test_a_second_reconcile_of_the_same_world_changes_nothing as check_idempotent,
)
from tests.unit.test_schedule_plan import test_plan_schedule as check_plan
from tests.unit.test_views import NextCase
from tests.unit.test_views import schedule as views_schedule
from tests.unit.test_views import test_next_view as check_next_view


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def spec(**fields: Any) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"schedulerId": "q", "jobTemplate": {"spec": {}}, **fields})


# -- several crons: the union of their deadlines ------------------------------------------

AMSTERDAM_PAIR = ["30 2 * * *", "0 * * * *"]


@pytest.mark.parametrize(
    ("expressions", "zone", "after", "expected"),
    [
        pytest.param(
            AMSTERDAM_PAIR,
            "Europe/Amsterdam",
            utc("2026-03-28T22:30"),
            # 00:00 and 01:00 CET; 02:00 does not exist; 02:30 runs when the gap ends, at
            # 03:00 CEST, the same instant as the hourly 03:00: once; then 04:00 CEST.
            ["2026-03-28T23:00", "2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00"],
            id="March change: the skipped 02:30 and the hourly 03:00 coincide, fire once",
        ),
        pytest.param(
            AMSTERDAM_PAIR,
            "Europe/Amsterdam",
            utc("2026-10-24T21:30"),
            # Hourly follows elapsed time: 02:00 CEST and 02:00 CET both run; 02:30 runs at
            # its first occurrence only (CEST).
            [
                "2026-10-24T22:00",
                "2026-10-24T23:00",
                "2026-10-25T00:00",
                "2026-10-25T00:30",
                "2026-10-25T01:00",
                "2026-10-25T02:00",
            ],
            id="October change: the repeated hour twice, 02:30 once",
        ),
        pytest.param(
            ["0 12 * * *", "0 12 * * 1-5", "@daily"],
            "UTC",
            utc("2026-06-05T11:00"),  # a Friday
            ["2026-06-05T12:00", "2026-06-06T00:00", "2026-06-06T12:00"],
            id="an instant named by two crons fires once",
        ),
        pytest.param(
            ["15 * * * *"],
            "UTC",
            utc("2026-06-05T11:00"),
            ["2026-06-05T11:15", "2026-06-05T12:15", "2026-06-05T13:15"],
            id="a list of one is that cron",
        ),
    ],
)
def test_union_of_crons(
    expressions: list[str], zone: str, after: datetime, expected: list[str]
) -> None:
    rule = parse_crons(expressions, zone, "ns/nightly")
    found = list(islice(rule.after(after), len(expected)))
    assert found == [utc(t) for t in expected]
    assert rule.next_after(after) == found[0]
    backwards = list(islice(rule.at_or_before(found[-1]), len(found)))
    assert backwards == found[::-1]


def test_the_union_plans_missed_deadlines_like_one_cron() -> None:
    """plan_due over the union: down across the March change, RunAll runs each merged
    deadline once."""
    timing = timing_of(spec(schedules=AMSTERDAM_PAIR, timeZone="Europe/Amsterdam"), "ns/n")
    due = plan_due(
        timing,
        utc("2026-03-28T23:00"),
        utc("2026-03-29T02:00:05"),
        missed_run_policy=MissedRunPolicy.RUN_ALL,
    )
    assert due.run == tuple(
        utc(t)
        for t in ("2026-03-28T23:00", "2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00")
    )
    assert (due.missed, due.next_deadline) == (0, utc("2026-03-29T03:00"))


# -- observedTiming: the resolved expression ----------------------------------------------


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        pytest.param({"schedule": "0 3 * * *"}, r"0 3 \* \* \* in UTC", id="no H: as written"),
        pytest.param(
            {"schedule": "H 3 * * *", "timeZone": "Europe/Amsterdam"},
            r"(?P<m>[0-9]+) 3 \* \* \* in Europe/Amsterdam",
            id="H shows the minute it chose",
        ),
        pytest.param(
            {"schedule": "H/15 H(1-4) * * *"},
            r"[0-9]+,[0-9]+,[0-9]+,[0-9]+ [1-4] \* \* \* in UTC",
            id="H with a step and a range",
        ),
        pytest.param(
            {"schedules": ["H 1 * * *", "H 2 * * *"]},
            r"(?P<m>[0-9]+) 1 \* \* \*, (?P=m) 2 \* \* \* in UTC",
            id="schedules: each H hashed from the same name",
        ),
        pytest.param({"interval": "15m"}, r"every 15m", id="interval"),
        pytest.param(
            {"schedule": "@daily", "startAt": "2026-06-01T00:00:00+02:00", "runLimit": 3},
            r"@daily in UTC, from 2026-05-31T22:00:00Z, at most 3 runs",
            id="bounds are part of the signature, in UTC",
        ),
        pytest.param(
            {"interval": "1h", "endAt": "2026-07-01T00:00:00Z"},
            r"every 1h, until 2026-07-01T00:00:00Z",
            id="interval with an end",
        ),
    ],
)
def test_observed_timing_is_resolved(fields: dict[str, Any], pattern: str) -> None:
    timing = timing_of(spec(**fields), "ns/nightly")
    found = re.fullmatch(pattern, timing.signature)
    assert found, timing.signature
    if "m" in found.groupdict():
        chosen = parse_cron("H 3 * * *", "UTC", "ns/nightly").minutes
        assert (int(found["m"]),) == chosen
    assert timing.observed(timing.signature)
    assert timing_of(spec(**fields), "ns/nightly").signature == timing.signature


def test_the_signature_older_versions_wrote_is_not_an_edit() -> None:
    """Before H was resolved, observedTiming held the expression as written: reading it
    after an upgrade must not recompute the deadline from now."""
    timing = timing_of(spec(schedule="H 3 * * *"), "ns/nightly")
    assert timing.observed("H 3 * * * in UTC")
    assert not timing.observed("H 4 * * * in UTC")
    bounded = timing_of(spec(schedule="H 3 * * *", runLimit=2), "ns/nightly")
    assert not bounded.observed("H 3 * * * in UTC")


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"schedule": "0 * * * *", "schedules": ["0 * * * *"]},
            "set exactly one of schedule, schedules and interval",
            id="schedule and schedules",
        ),
        pytest.param(
            {"schedules": ["0 * * * *"], "interval": "5m"},
            "set exactly one of schedule, schedules and interval",
            id="schedules and interval",
        ),
        pytest.param({}, "set exactly one of schedule, schedules and interval", id="none"),
        pytest.param(
            {"schedules": ["0 * * * *", "61 * * * *"]},
            "invalid cron '61 * * * *'",
            id="one bad expression in the list",
        ),
        pytest.param(
            {
                "schedule": "0 * * * *",
                "startAt": "2026-07-01T00:00:00Z",
                "endAt": "2026-06-01T00:00:00Z",
            },
            "startAt 2026-07-01T00:00:00Z is after endAt 2026-06-01T00:00:00Z",
            id="startAt after endAt",
        ),
    ],
)
def test_invalid_timing(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSchedule, match=re.escape(message)):
        timing_of(spec(**fields), "ns/nightly")


def test_an_empty_list_of_crons() -> None:
    """The CRD schema refuses it (minItems); the parser says why too."""
    with pytest.raises(InvalidSchedule, match="at least one cron expression"):
        parse_crons([], "UTC", "ns/nightly")
    with pytest.raises(ValueError, match="at least 1 item"):
        spec(schedules=[])


def test_start_equal_to_end_is_valid() -> None:
    timing = timing_of(
        spec(schedule="0 * * * *", startAt=rfc(ON_THE_HOUR), endAt=rfc(ON_THE_HOUR)), "ns/n"
    )
    assert timing.bounded(ON_THE_HOUR) == ON_THE_HOUR


# -- the reconcile: bounds, run limit, nextDeadlines ---------------------------------------

TWO_HOURS_LATER = ON_THE_HOUR + timedelta(hours=2)
HALF_PAST = ON_THE_HOUR + timedelta(minutes=30)
NOW_REQUEST = "2026-06-01T10:00:00Z"


def hourly(**bounds: Any) -> dict[str, Any]:
    return {**HOURLY, **bounds}


def signed(timing: dict[str, Any], **status: Any) -> dict[str, Any]:
    """The status of a schedule reconciled before with exactly this timing."""
    fields = {k: v for k, v in timing.items() if k != "missedRunPolicy"}
    observed = timing_of(spec(**fields), "ns/nightly").signature
    return {**settled(HOURLY, **status), "observedTiming": observed}


def hours(first: datetime, count: int) -> list[str]:
    return [rfc(first + timedelta(hours=n)) for n in range(count)]


ENDED = {"Ready": ("False", "Ended")}
LIMITED = {"Ready": ("False", "RunLimitReached")}

CASES = [
    Case(
        "nextDeadlines: the next five, from deadlineAt on",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(NEXT_HOUR))),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR), "nextDeadlines": hours(NEXT_HOUR, 5)},
    ),
    Case(
        "nextDeadlines: an interval schedule knows only deadlineAt",
        schedule({"interval": "5m"}, settled({"interval": "5m"}, deadlineAt=rfc(NEXT_HOUR))),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"nextDeadlines": [rfc(NEXT_HOUR)]},
    ),
    Case(
        "nextDeadlines: none while disabled",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(NEXT_HOUR)), enabled=False),
        now=JUST_AFTER_THE_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR), "nextDeadlines": None},
        conditions={"Ready": ("False", "Disabled")},
    ),
    Case(
        "startAt ahead: the first deadline is the first at or after it, exactly at it here",
        schedule(hourly(startAt=rfc(TWO_HOURS_LATER))),
        now=JUST_AFTER_THE_HOUR,
        wake_at=TWO_HOURS_LATER,
        status={"deadlineAt": rfc(TWO_HOURS_LATER), "nextDeadlines": hours(TWO_HOURS_LATER, 5)},
    ),
    Case(
        "startAt off the hour: the first whole hour after it",
        schedule(hourly(startAt=rfc(HALF_PAST))),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR)},
    ),
    Case(
        "a deadline exactly at startAt runs",
        schedule(
            hourly(startAt=rfc(ON_THE_HOUR)),
            signed(hourly(startAt=rfc(ON_THE_HOUR)), deadlineAt=rfc(ON_THE_HOUR)),
        ),
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR)},
    ),
    Case(
        "endAt ahead: nextDeadlines stop at it",
        schedule(hourly(endAt=rfc(TWO_HOURS_LATER))),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"nextDeadlines": hours(NEXT_HOUR, 2)},
        conditions={"Ready": ("True", "Scheduled")},
    ),
    Case(
        "a deadline exactly at endAt runs, and then the schedule has ended",
        schedule(
            hourly(endAt=rfc(ON_THE_HOUR)),
            signed(hourly(endAt=rfc(ON_THE_HOUR)), deadlineAt=rfc(ON_THE_HOUR)),
        ),
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated", "Ended"],
        wake_at=None,
        status={
            "deadlineAt": None,
            "nextDeadlines": None,
            "counts": {"created": 1, "scheduled": 1},
        },
        conditions={"Ready": ("False", "Ended")},
    ),
    Case(
        "endAt passed before the first deadline: no task, Ended",
        schedule(hourly(endAt=rfc(HALF_PAST))),
        now=HALF_PAST + timedelta(seconds=1),
        events=["Ended"],
        status={"deadlineAt": None, "nextDeadlines": None},
        conditions=ENDED,
    ),
    Case(
        "down across endAt, RunAll: the deadlines up to endAt run, none after",
        schedule(
            hourly(endAt=rfc(NEXT_HOUR + timedelta(minutes=30)), missedRunPolicy="RunAll"),
            signed(
                hourly(endAt=rfc(NEXT_HOUR + timedelta(minutes=30))), deadlineAt=rfc(ON_THE_HOUR)
            ),
            concurrencyPolicy="Allow",
        ),
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR), run(NEXT_HOUR)],
        events=["TaskCreated", "TaskCreated", "Ended"],
        status={"deadlineAt": None, "counts": {"created": 2, "scheduled": 2}},
    ),
    Case(
        "an edit of endAt recomputes from now: no run for a deadline already passed",
        schedule(
            hourly(endAt=rfc(THREE_HOURS_LATER)),
            settled(HOURLY, deadlineAt=rfc(PREVIOUS_HOUR)),
        ),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR), "nextDeadlines": hours(NEXT_HOUR, 3)},
    ),
    Case(
        "interval with startAt: the first task waits for it",
        schedule({"interval": "5m", "startAt": rfc(NEXT_HOUR)}),
        now=CREATED + timedelta(seconds=1),
        wake_at=NEXT_HOUR,
        status={"deadlineAt": rfc(NEXT_HOUR), "nextDeadlines": [rfc(NEXT_HOUR)]},
    ),
    Case(
        "interval: the next deadline after a finish falls past endAt: Ended",
        schedule(
            {"interval": "1h", "endAt": rfc(HALF_PAST)},
            signed({"interval": "1h", "endAt": rfc(HALF_PAST)}),
        ),
        tasks=[task(run(CREATED), "Completed", deadline=CREATED, finished=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        events=["Ended"],
        status={"deadlineAt": None, "nextDeadlines": None},
        conditions={
            **ENDED,
            "LastRunSucceeded": ("True", "Completed"),
            "Healthy": ("True", "LastRunSucceeded"),
        },
    ),
    Case(
        "interval: a run active before endAt may still be followed by one",
        schedule(
            {"interval": "1m", "endAt": rfc(NEXT_HOUR)},
            signed({"interval": "1m", "endAt": rfc(NEXT_HOUR)}),
        ),
        tasks=[task(run(ON_THE_HOUR), "Running", deadline=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"deadlineAt": None},
        conditions={"Ready": ("True", "Scheduled")},
    ),
    Case(
        "interval: a run still active at endAt finishes normally; the schedule has ended",
        schedule(
            {"interval": "1m", "endAt": rfc(HALF_PAST)},
            signed({"interval": "1m", "endAt": rfc(HALF_PAST)}),
        ),
        tasks=[task(run(ON_THE_HOUR), "Running", deadline=ON_THE_HOUR)],
        now=NEXT_HOUR,
        events=["Ended"],
        status={"active": [run(ON_THE_HOUR)], "deadlineAt": None},
        conditions=ENDED,
    ),
    Case(
        "runLimit: nextDeadlines list only the runs left",
        schedule(
            hourly(runLimit=3),
            signed(hourly(runLimit=3), deadlineAt=rfc(NEXT_HOUR), counts={"scheduled": 1}),
        ),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"nextDeadlines": hours(NEXT_HOUR, 2)},
    ),
    Case(
        "runLimit: the last run allowed, with a run-now in between that does not count",
        schedule(
            hourly(runLimit=2),
            signed(
                hourly(runLimit=2),
                deadlineAt=rfc(ON_THE_HOUR),
                counts={"created": 2, "scheduled": 1, "completed": 2},
                recorded=[
                    {"task": run(PREVIOUS_HOUR), "phase": "Completed"},
                    {
                        "task": task_name_for_run_request("nightly", NOW_REQUEST),
                        "phase": "Completed",
                    },
                ],
                lastHandledRunRequest=NOW_REQUEST,
            ),
            annotations={"kadence.dev/run-requested-at": NOW_REQUEST},
        ),
        tasks=[
            task(run(PREVIOUS_HOUR), "Completed", deadline=PREVIOUS_HOUR, finished=PREVIOUS_HOUR),
            task(
                task_name_for_run_request("nightly", NOW_REQUEST),
                "Completed",
                created=PREVIOUS_HOUR,
                finished=PREVIOUS_HOUR,
            ),
        ],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated", "RunLimitReached"],
        wake_at=None,
        status={
            "deadlineAt": None,
            "nextDeadlines": None,
            "counts": {"created": 3, "scheduled": 2, "completed": 2},
        },
        conditions={
            **LIMITED,
            "LastRunSucceeded": ("True", "Completed"),
            "Healthy": ("True", "LastRunSucceeded"),
        },
    ),
    Case(
        "runLimit reached: the next deadline passes without a task, nothing missed",
        schedule(
            hourly(runLimit=1),
            signed(hourly(runLimit=1), counts={"created": 1, "scheduled": 1}),
        ),
        now=THREE_HOURS_LATER,
        events=["RunLimitReached"],
        status={"deadlineAt": None, "counts": {"created": 1, "scheduled": 1}},
        conditions=LIMITED,
    ),
    Case(
        "runLimit reached: a run asked for by hand is still made, and not counted",
        schedule(
            hourly(runLimit=1),
            signed(hourly(runLimit=1), counts={"created": 1, "scheduled": 1}),
            annotations={"kadence.dev/run-requested-at": NOW_REQUEST},
        ),
        now=JUST_AFTER_THE_HOUR,
        create=[task_name_for_run_request("nightly", NOW_REQUEST)],
        events=["TaskCreated", "RunRequested", "RunLimitReached"],
        status={"counts": {"created": 2, "scheduled": 1}},
        conditions=LIMITED,
    ),
    Case(
        "runLimit with RunAll: only the runs left are made, oldest first",
        schedule(
            hourly(runLimit=2, missedRunPolicy="RunAll"),
            signed(hourly(runLimit=2), deadlineAt=rfc(ON_THE_HOUR), counts={"scheduled": 1}),
            concurrencyPolicy="Allow",
        ),
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated", "RunLimitReached"],
        status={"deadlineAt": None, "counts": {"created": 1, "scheduled": 2}},
    ),
    Case(
        "crash after a deadline run was made: it counts toward runLimit from its name",
        schedule(hourly(runLimit=1), signed(hourly(runLimit=1), deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[
            task(run(ON_THE_HOUR), "Pending", deadline=ON_THE_HOUR),
            task(task_name_for_run_request("nightly", NOW_REQUEST), "Pending"),
        ],
        now=JUST_AFTER_THE_HOUR,
        events=["RunLimitReached"],
        status={"deadlineAt": None, "counts": {"created": 2, "scheduled": 1}},
        conditions=LIMITED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plan_schedule_with_timing_rules(case: Case) -> None:
    check_plan(case)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_second_reconcile_changes_nothing(case: Case) -> None:
    """Level-triggered, and no extra status write: planned again at the same instant with what
    it wrote, the status (nextDeadlines included) is the same and no Event is raised again."""
    check_idempotent(case)
    first = plan_schedule(world(case), case.now)
    body = {**case.schedule, "status": first.status.to_kube()}
    created = [{**t, "status": {"phase": "Pending"}} for t in first.create]
    for made in created:
        made["metadata"]["creationTimestamp"] = rfc(case.now)
    again = plan_schedule(
        ScheduleWorld(
            schedule=body,
            owned=[*world(case).owned, *created],
            namespace_tasks={t["metadata"]["name"]: t for t in [*case.tasks, *created]},
        ),
        case.now,
    )
    assert again.status.next_deadlines == first.status.next_deadlines
    assert again.status.observed_timing == first.status.observed_timing


def test_next_deadlines_change_only_when_a_deadline_passes() -> None:
    """Between deadlines, reconciles (a Task's progress) leave nextDeadlines as they were."""
    body = schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(NEXT_HOUR)))
    plans = [
        plan_schedule(ScheduleWorld(schedule=body, owned=[], namespace_tasks={}), now)
        for now in (JUST_AFTER_THE_HOUR, HALF_PAST, NEXT_HOUR - timedelta(seconds=1))
    ]
    assert {tuple(plan.status.next_deadlines) for plan in plans} == {
        tuple(utc(t[:-1]) for t in hours(NEXT_HOUR, 5))
    }


def test_an_upgrade_from_unresolved_h_keeps_the_stored_deadline() -> None:
    """A status written before H was resolved fires its passed deadline as usual."""
    timing = timing_of(spec(schedule="H * * * *"), "ns/nightly")
    minute = parse_cron("H * * * *", "UTC", "ns/nightly").minutes[0]
    deadline = ON_THE_HOUR.replace(minute=minute)
    body = schedule(
        {"schedule": "H * * * *"},
        {
            "observedTiming": "H * * * * in UTC",
            "deadlineAt": rfc(deadline),
            "observedGeneration": 1,
        },
    )
    plan = plan_schedule(
        ScheduleWorld(schedule=body, owned=[], namespace_tasks={}), deadline + timedelta(seconds=2)
    )
    assert [t["metadata"]["name"] for t in plan.create] == [run(deadline)]
    assert plan.status.observed_timing == timing.signature == f"{minute} * * * * in UTC"


@dataclass
class Rebuild:
    id: str
    tasks: list[dict[str, Any]]
    recorded: list[str]
    scheduled: int


ASKED = task_name_for_run_request("nightly", "x")
DEADLINE_RUN = task(run(ON_THE_HOUR), deadline=ON_THE_HOUR)
REBUILDS = [
    Rebuild("a deadline run not yet recorded counts", [DEADLINE_RUN], [], 1),
    Rebuild("a recorded one is not counted again", [DEADLINE_RUN], [run(ON_THE_HOUR)], 0),
    Rebuild("a run asked for by hand does not count", [task(ASKED)], [], 0),
    Rebuild("a task not named for its deadline does not count",
            [task("nightly-other", deadline=ON_THE_HOUR)], [], 0),
]  # fmt: skip


@pytest.mark.parametrize("case", REBUILDS, ids=[case.id for case in REBUILDS])
def test_rebuild_runs_derives_scheduled(case: Rebuild) -> None:
    old = ScheduleStatus.model_validate({"recorded": [{"task": name} for name in case.recorded]})
    status, _ = rebuild_runs(old, case.tasks, "nightly", 10, JUST_AFTER_THE_HOUR)
    assert status.counts.scheduled == case.scheduled


# -- kubectl kadence next: the same bounds -------------------------------------------------

VIEW_CASES = [
    NextCase(
        "two crons: merged",
        views_schedule(schedule=None, schedules=["0 12 * * *", "0 12,18 * * *"]),
        deadlines=["2026-06-01T12:00:00Z", "2026-06-01T18:00:00Z", "2026-06-02T12:00:00Z"],
    ),
    NextCase(
        "endAt: none after it",
        views_schedule(schedule="0 * * * *", endAt="2026-06-01T12:00:00Z"),
        count=5,
        deadlines=["2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z"],
    ),
    NextCase(
        "endAt passed: ended",
        views_schedule(schedule="0 * * * *", endAt="2026-06-01T09:30:00Z"),
        note=(
            "schedule ns/nightly has ended: no deadline is left before endAt "
            "2026-06-01T09:30:00Z: no more tasks"
        ),
    ),
    NextCase(
        "runLimit: only the runs left",
        views_schedule(schedule="0 * * * *", runLimit=3, status={"counts": {"scheduled": 1}}),
        count=5,
        deadlines=["2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z"],
    ),
    NextCase(
        "runLimit reached: ended",
        views_schedule(schedule="0 * * * *", runLimit=1, status={"counts": {"scheduled": 1}}),
        note="schedule ns/nightly has ended: runLimit reached: 1 run made, no more tasks",
    ),
    NextCase(
        "suspended after failures: no deadline listed, the reason said",
        views_schedule(
            schedule="0 * * * *",
            suspendAfterFailures=1,
            status={
                "suspendedAt": "2026-06-01T09:00:00Z",
                "conditions": [
                    {
                        "type": "Suspended",
                        "status": "True",
                        "reason": "ConsecutiveFailures",
                        "message": "1 runs failed in a row",
                    },
                ],
            },
        ),
        note="schedule ns/nightly is suspended: 1 runs failed in a row",
    ),
]


@pytest.mark.parametrize("case", VIEW_CASES, ids=[c.id for c in VIEW_CASES])
def test_next_view_with_timing_rules(case: NextCase) -> None:
    check_next_view(case)
