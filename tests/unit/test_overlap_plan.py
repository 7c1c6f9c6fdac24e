"""plan_schedule with the overlap policies and the default hash, as scenarios with named
times (the same cases and checks as test_schedule_plan.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kadence.naming import default_hash
from kadence.schedule_plan import plan_schedule
from tests.unit.test_schedule_plan import (
    AN_HOUR_LATER,
    HOURLY,
    JUST_AFTER_THE_HOUR,
    NEXT_HOUR,
    ON_THE_HOUR,
    PREVIOUS_HOUR,
    TEMPLATE,
    THREE_HOURS_LATER,
    Case,
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

OTHER_TEMPLATE = {
    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "alpine"}]}}}
}


def due(**status: Any) -> dict[str, Any]:
    """A settled hourly status whose deadline is on the hour, with the runs it recorded
    (and counted as created)."""
    status.setdefault("counts", {"created": len(status.get("recorded", []))})
    return settled(HOURLY, deadlineAt=ON_THE_HOUR.strftime("%Y-%m-%dT%H:%M:%SZ"), **status)


def recorded(*names: str) -> list[dict[str, str]]:
    return [{"task": name} for name in names]


def with_template(body: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["jobTemplate"] = template
    return body


def with_hash(body: dict[str, Any], work: str) -> dict[str, Any]:
    body["spec"]["hash"] = work
    return body


RUNNING = task(run(PREVIOUS_HOUR), "Running", deadline=PREVIOUS_HOUR)
EARLIER = PREVIOUS_HOUR - timedelta(hours=1)

CASES = [
    Case(
        "BufferOne, one running: the deadline's task is made and waits",
        schedule(HOURLY, due(recorded=recorded(run(PREVIOUS_HOUR))), concurrencyPolicy="BufferOne"),
        tasks=[RUNNING],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
        status={
            "active": [run(PREVIOUS_HOUR), run(ON_THE_HOUR)],
            "counts": {"created": 2, "scheduled": 1},
        },
    ),
    Case(
        "BufferOne, one running and one waiting: the deadline is skipped and counted",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=NEXT_HOUR.strftime("%Y-%m-%dT%H:%M:%SZ"),
                recorded=recorded(run(PREVIOUS_HOUR), run(ON_THE_HOUR)),
                counts={"created": 2},
            ),
            concurrencyPolicy="BufferOne",
        ),
        tasks=[RUNNING, task(run(ON_THE_HOUR), "Queued", deadline=ON_THE_HOUR)],
        now=AN_HOUR_LATER,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR + timedelta(hours=1),
        status={"counts": {"created": 2, "skipped": 1}, "missedSinceLastRun": 1},
    ),
    Case(
        "BufferOne, nothing running but one waiting (the queue is full): skipped",
        schedule(HOURLY, due(recorded=recorded(run(PREVIOUS_HOUR))), concurrencyPolicy="BufferOne"),
        tasks=[task(run(PREVIOUS_HOUR), "Queued", deadline=PREVIOUS_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
        status={"counts": {"created": 1, "skipped": 1}},
    ),
    Case(
        "BufferOne, the running one finished: the next deadline runs",
        schedule(HOURLY, due(recorded=recorded(run(PREVIOUS_HOUR))), concurrencyPolicy="BufferOne"),
        tasks=[task(run(PREVIOUS_HOUR), "Completed", deadline=PREVIOUS_HOUR, finished=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "BufferAll, below bufferLimit: made, to wait its turn",
        schedule(
            HOURLY,
            due(recorded=recorded(run(EARLIER), run(PREVIOUS_HOUR))),
            concurrencyPolicy="BufferAll",
            bufferLimit=2,
        ),
        tasks=[
            task(run(EARLIER), "Running", deadline=EARLIER),
            task(run(PREVIOUS_HOUR), "Queued", deadline=PREVIOUS_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "BufferAll, bufferLimit reached: the overflow is skipped and counted",
        schedule(
            HOURLY,
            due(recorded=recorded(run(EARLIER), run(PREVIOUS_HOUR))),
            concurrencyPolicy="BufferAll",
            bufferLimit=1,
        ),
        tasks=[
            task(run(EARLIER), "Running", deadline=EARLIER),
            task(run(PREVIOUS_HOUR), "Queued", deadline=PREVIOUS_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
        status={"counts": {"created": 2, "skipped": 1}},
    ),
    Case(
        "BufferAll with RunAll after three hours down: buffered up to the limit, the rest skipped",
        schedule(
            HOURLY,
            due(recorded=recorded(run(PREVIOUS_HOUR))),
            concurrencyPolicy="BufferAll",
            bufferLimit=2,
            missedRunPolicy="RunAll",
        ),
        tasks=[RUNNING],
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR), run(NEXT_HOUR)],
        events=["TaskCreated", "TaskCreated", "DeadlineSkipped", "DeadlineSkipped"],
        wake_at=ON_THE_HOUR + timedelta(hours=4),
        status={"counts": {"created": 3, "skipped": 2, "scheduled": 2}},
    ),
    Case(
        "Forbid, the same data but another jobTemplate running: other work, the run is made",
        schedule(HOURLY, due()),
        tasks=[
            with_template(task("other-schedule-1", "Running", owner="uid-other"), OTHER_TEMPLATE)
        ],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "Forbid, the same data and jobTemplate by another schedule: the same work, skipped",
        schedule(HOURLY, due()),
        tasks=[task("other-schedule-1", "Running", owner="uid-other")],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "Forbid, an explicit hash wins over different templates: the same work, skipped",
        schedule(HOURLY, due(), hash="report"),
        tasks=[
            with_hash(
                with_template(
                    task("other-schedule-1", "Running", owner="uid-other"), OTHER_TEMPLATE
                ),
                "report",
            )
        ],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plan_schedule_overlap(case: Case) -> None:
    check_plan(case)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_second_reconcile_changes_nothing(case: Case) -> None:
    check_idempotent(case)


@pytest.mark.parametrize(
    ("spec", "concurrency_policy", "work"),
    [
        ({"concurrencyPolicy": "BufferOne"}, "BufferOne", default_hash({}, TEMPLATE)),
        ({"concurrencyPolicy": "BufferAll", "hash": "mine"}, "BufferAll", "mine"),
        ({}, "Forbid", default_hash({}, TEMPLATE)),
        ({"data": {"a": 1}}, "Forbid", default_hash({"a": 1}, TEMPLATE)),
    ],
    ids=["buffer-one", "buffer-all-explicit-hash-wins", "forbid-default", "data-and-template"],
)
def test_a_task_carries_its_schedules_policy_and_hash(
    spec: dict[str, Any], concurrency_policy: str, work: str
) -> None:
    plan = plan_schedule(world(Case("", schedule(HOURLY, due(), **spec), JUST_AFTER_THE_HOUR)),
                         JUST_AFTER_THE_HOUR)  # fmt: skip
    (made,) = plan.create
    assert made["spec"]["concurrencyPolicy"] == concurrency_policy
    assert made["spec"]["hash"] == work
