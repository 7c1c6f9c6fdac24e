"""plan_schedule: every decision of a Schedule's reconcile, as scenarios with named times.

Each case states the world (the Schedule with its status, the Tasks it controls, the
other Tasks around it) and `now`, and asserts the exact plan: Tasks created, cancelled
and deleted, the Events, the next wake-up, and the status fields that matter to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.models import Counts, ScheduleStatus
from kadence.naming import task_name_for_deadline, task_name_for_run_request
from kadence.schedule_plan import (
    ScheduleWorld,
    plan_schedule,
    rebuild_runs,
    template_accepted,
)

# Named times: an hourly schedule's deadlines fall on the hour.
CREATED = datetime(2026, 6, 1, 9, 0, 30, tzinfo=UTC)
ON_THE_HOUR = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
JUST_BEFORE_THE_HOUR = ON_THE_HOUR - timedelta(seconds=1)
JUST_AFTER_THE_HOUR = ON_THE_HOUR + timedelta(seconds=2)
NEXT_HOUR = ON_THE_HOUR + timedelta(hours=1)
AN_HOUR_LATER = NEXT_HOUR + timedelta(seconds=5)
THREE_HOURS_LATER = ON_THE_HOUR + timedelta(hours=3, seconds=5)
A_WEEK_AFTER = ON_THE_HOUR + timedelta(days=7, seconds=5)
PREVIOUS_HOUR = ON_THE_HOUR - timedelta(hours=1)

UID = "uid-nightly"
HOURLY = {"schedule": "0 * * * *"}
EVERY_5M = {"interval": "5m"}
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(deadline: datetime) -> str:
    return task_name_for_deadline("nightly", deadline)


def schedule(
    timing: dict[str, Any],
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {
            "namespace": "ns",
            "name": "nightly",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": rfc(CREATED),
            "annotations": annotations or {},
        },
        "spec": {"schedulerId": "q", "jobTemplate": TEMPLATE, **timing, **spec},
        "status": status or {},
    }


def settled(timing: dict[str, Any], **status: Any) -> dict[str, Any]:
    """The status of a schedule that has been reconciled before, with this timing."""
    signature = (
        f"{timing['schedule']} in UTC" if "schedule" in timing else f"every {timing['interval']}"
    )
    return {"observedTiming": signature, "observedGeneration": 1, **status}


def task(
    name: str,
    phase: str | None = None,
    *,
    deadline: datetime | None = None,
    created: datetime | None = None,
    finished: datetime | None = None,
    owner: str | None = UID,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    made = created or deadline or ON_THE_HOUR
    body: dict[str, Any] = {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": rfc(made),
            "ownerReferences": (
                [{"kind": "Schedule", "name": "nightly", "uid": owner, "controller": True}]
                if owner
                else []
            ),
        },
        "spec": {"schedulerId": "q", "data": data or {}, "jobTemplate": TEMPLATE},
        "status": {},
    }
    if deadline is not None:
        body["spec"]["deadlineAt"] = rfc(deadline)
    if phase is not None:
        body["status"]["phase"] = phase
    if finished is not None:
        body["status"]["finishedAt"] = rfc(finished)
    return body


@dataclass
class Case:
    id: str
    schedule: dict[str, Any]
    now: datetime
    tasks: list[dict[str, Any]] = field(default_factory=list)
    """Every Task of the namespace; the Schedule's are those it controls."""
    template_problem: str | None = None
    create: list[str] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    wake_at: datetime | None = None
    status: dict[str, Any] = field(default_factory=dict)
    """Expected status fields (camelCase, as written)."""
    conditions: dict[str, tuple[str, str]] | None = None
    """Expected conditions, type: (status, reason), when the case is about them."""


def world(case: Case) -> ScheduleWorld:
    owned = [t for t in case.tasks if t["metadata"]["ownerReferences"][:1] and
             t["metadata"]["ownerReferences"][0]["uid"] == UID]  # fmt: skip
    unfinished = [
        t
        for t in case.tasks
        if t["status"].get("phase") not in ("Completed", "Failed", "Cancelled")
    ]
    return ScheduleWorld(
        schedule=case.schedule,
        owned=owned,
        namespace_tasks={t["metadata"]["name"]: t for t in case.tasks},
        queue_unfinished=unfinished,
        template_problem=case.template_problem,
    )


CASES = [
    Case(
        "new cron schedule, before its first deadline",
        schedule(HOURLY),
        now=JUST_BEFORE_THE_HOUR,
        wake_at=ON_THE_HOUR,
        status={"deadlineAt": rfc(ON_THE_HOUR), "active": None, "counts": {}},
    ),
    Case(
        "cron, is time",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
        status={
            "deadlineAt": rfc(NEXT_HOUR),
            "active": [run(ON_THE_HOUR)],
            "counts": {"scheduled": 1, "created": 1},
            "lastScheduledAt": rfc(JUST_AFTER_THE_HOUR),
        },
    ),
    Case(
        "cron, woken a moment early",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        now=JUST_BEFORE_THE_HOUR,
        wake_at=ON_THE_HOUR,
        status={"deadlineAt": rfc(ON_THE_HOUR)},
    ),
    Case(
        "active task deleted while down, Forbid, is time",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                active=[run(PREVIOUS_HOUR)],
                recorded=[{"task": run(PREVIOUS_HOUR)}],
                counts={"created": 1},
            ),
        ),
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
        status={
            "active": [run(ON_THE_HOUR)],
            "counts": {"scheduled": 1, "created": 2, "cancelled": 1},
            "history": [
                {
                    "task": run(PREVIOUS_HOUR),
                    "phase": "Cancelled",
                    "deadlineAt": rfc(PREVIOUS_HOUR),
                    "finishedAt": rfc(JUST_AFTER_THE_HOUR),
                }
            ],
        },
    ),
    Case(
        "active task still running, Forbid, is time",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                active=[run(PREVIOUS_HOUR)],
                recorded=[{"task": run(PREVIOUS_HOUR)}],
                counts={"created": 1},
            ),
        ),
        tasks=[task(run(PREVIOUS_HOUR), "Running", deadline=PREVIOUS_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
        status={
            "active": [run(PREVIOUS_HOUR)],
            "counts": {"created": 1, "skipped": 1},
            "deadlineAt": rfc(NEXT_HOUR),
        },
    ),
    Case(
        "active task still running, Replace, is time",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR), recorded=[{"task": run(PREVIOUS_HOUR)}]),
            concurrencyPolicy="Replace",
        ),
        tasks=[task(run(PREVIOUS_HOUR), "Running", deadline=PREVIOUS_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        create=[run(ON_THE_HOUR)],
        cancel=[(run(PREVIOUS_HOUR), "Replaced", f"replaced by {run(ON_THE_HOUR)}")],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR,
    ),
    Case(
        "crash after task create, before status write",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[task(run(ON_THE_HOUR), "Queued", deadline=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={
            "deadlineAt": rfc(NEXT_HOUR),
            "active": [run(ON_THE_HOUR)],
            "counts": {"scheduled": 1, "created": 1},
            "recorded": [{"task": run(ON_THE_HOUR)}],
        },
    ),
    Case(
        "crash after task create, restarted after the next deadline",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[
            task(run(ON_THE_HOUR), "Completed", deadline=ON_THE_HOUR, finished=JUST_AFTER_THE_HOUR)
        ],
        now=AN_HOUR_LATER,
        create=[run(NEXT_HOUR)],
        events=["TaskCreated"],
        wake_at=NEXT_HOUR + timedelta(hours=1),
        status={
            "counts": {"scheduled": 2, "created": 2, "completed": 1},
            "active": [run(NEXT_HOUR)],
        },
    ),
    Case(
        "down for three hours, RunLatest",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR + timedelta(hours=3))],
        events=["TaskCreated", "DeadlineMissed"],
        wake_at=ON_THE_HOUR + timedelta(hours=4),
        status={"counts": {"scheduled": 1, "created": 1, "missed": 3}},
    ),
    Case(
        "down for three hours, RunAll with Allow",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR)),
            missedRunPolicy="RunAll",
            concurrencyPolicy="Allow",
        ),
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR + timedelta(hours=n)) for n in range(4)],
        events=["TaskCreated"] * 4,
        wake_at=ON_THE_HOUR + timedelta(hours=4),
        status={"counts": {"scheduled": 4, "created": 4}},
    ),
    Case(
        "down for three hours, RunAll with Forbid: one at a time",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR)), missedRunPolicy="RunAll"),
        now=THREE_HOURS_LATER,
        create=[run(ON_THE_HOUR)],
        events=["TaskCreated", *["DeadlineSkipped"] * 3],
        wake_at=ON_THE_HOUR + timedelta(hours=4),
        status={"counts": {"scheduled": 1, "created": 1, "skipped": 3}},
    ),
    Case(
        "down for a week, Skip",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR)), missedRunPolicy="Skip"),
        now=A_WEEK_AFTER + timedelta(minutes=10),
        events=["DeadlineMissed"],
        wake_at=A_WEEK_AFTER.replace(minute=0, second=0) + timedelta(hours=1),
        status={"counts": {"missed": 7 * 24 + 1}, "active": None},
    ),
    Case(
        "run name taken by a task it does not own",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[task(run(ON_THE_HOUR), "Queued", deadline=ON_THE_HOUR, owner="uid-stranger")],
        now=JUST_AFTER_THE_HOUR,
        events=["TaskNameTaken", "DeadlineMissed"],
        wake_at=NEXT_HOUR,
        status={"active": None, "counts": {"missed": 1}, "deadlineAt": rfc(NEXT_HOUR)},
    ),
    Case(
        "run name taken by a task with no owner at all",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[task(run(ON_THE_HOUR), deadline=ON_THE_HOUR, owner=None)],
        now=JUST_AFTER_THE_HOUR,
        events=["TaskNameTaken", "DeadlineMissed"],
        wake_at=NEXT_HOUR,
        status={"active": None, "counts": {"missed": 1}},
    ),
    Case(
        "new interval schedule runs at once",
        schedule(EVERY_5M),
        now=CREATED + timedelta(seconds=1),
        create=[run(CREATED)],
        events=["TaskCreated"],
        wake_at=None,
        status={"deadlineAt": None, "active": [run(CREATED)]},
    ),
    Case(
        "interval, run active: no deadline",
        schedule(EVERY_5M, settled(EVERY_5M, recorded=[{"task": run(CREATED)}])),
        tasks=[task(run(CREATED), "Running", deadline=CREATED)],
        now=ON_THE_HOUR,
        status={"deadlineAt": None, "active": [run(CREATED)]},
    ),
    Case(
        "interval, last run failed",
        schedule(EVERY_5M, settled(EVERY_5M, recorded=[{"task": run(CREATED)}])),
        tasks=[task(run(CREATED), "Failed", deadline=CREATED, finished=JUST_BEFORE_THE_HOUR)],
        now=ON_THE_HOUR,
        wake_at=JUST_BEFORE_THE_HOUR + timedelta(minutes=5),
        status={
            "deadlineAt": rfc(JUST_BEFORE_THE_HOUR + timedelta(minutes=5)),
            "counts": {"failed": 1},
            "lastFailedAt": rfc(JUST_BEFORE_THE_HOUR),
            "active": None,
        },
    ),
    Case(
        "interval, active task deleted while down",
        schedule(
            EVERY_5M,
            settled(EVERY_5M, active=[run(CREATED)], recorded=[{"task": run(CREATED)}]),
        ),
        now=ON_THE_HOUR,
        wake_at=ON_THE_HOUR + timedelta(minutes=5),
        status={
            "deadlineAt": rfc(ON_THE_HOUR + timedelta(minutes=5)),
            "counts": {"cancelled": 1},
            "active": None,
        },
    ),
    Case(
        "interval, due, the same hash held by a manual task: skipped to the next interval",
        schedule(EVERY_5M, settled(EVERY_5M, deadlineAt=rfc(ON_THE_HOUR))),
        tasks=[task("by-hand", "Running", owner=None)],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=ON_THE_HOUR + timedelta(minutes=5),
        status={"deadlineAt": rfc(ON_THE_HOUR + timedelta(minutes=5)), "counts": {"skipped": 1}},
    ),
    Case(
        "run requested while disabled",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR)),
            annotations={"kadence.dev/run-requested-at": "now please"},
            enabled=False,
        ),
        now=JUST_AFTER_THE_HOUR,
        create=[task_name_for_run_request("nightly", "now please")],
        events=["TaskCreated", "RunRequested"],
        wake_at=None,
        status={
            "lastHandledRunRequest": "now please",
            "active": [task_name_for_run_request("nightly", "now please")],
            "deadlineAt": rfc(ON_THE_HOUR),
        },
    ),
    Case(
        "run request already handled",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(NEXT_HOUR), lastHandledRunRequest="x"),
            annotations={"kadence.dev/run-requested-at": "x"},
        ),
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
    ),
    Case(
        "disabled: queued deadline runs cancelled, a requested run stays",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(NEXT_HOUR)), enabled=False),
        tasks=[
            task(run(ON_THE_HOUR), "Queued", deadline=ON_THE_HOUR),
            task(run(PREVIOUS_HOUR), "Running", deadline=PREVIOUS_HOUR),
            task(task_name_for_run_request("nightly", "x"), "Queued", deadline=ON_THE_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        cancel=[(run(ON_THE_HOUR), "ScheduleDisabled", "its schedule was disabled")],
        wake_at=None,
        conditions={"Ready": ("False", "Disabled"), "Reconciling": ("True", "Cancelling")},
    ),
    Case(
        "disabled with a reason, nothing left to cancel",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(NEXT_HOUR)),
            enabled=False,
            suspendReason="database migration",
        ),
        tasks=[task(run(ON_THE_HOUR), "Cancelled", deadline=ON_THE_HOUR, finished=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        wake_at=None,
        conditions={"Ready": ("False", "Disabled")},
    ),
    Case(
        "Forbid skips a deadline: Healthy says so, with the count",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(ON_THE_HOUR),
                recorded=[
                    {"task": run(PREVIOUS_HOUR)},
                    {"task": "nightly-ok", "phase": "Completed"},
                ],
            ),
        ),
        tasks=[
            task(run(PREVIOUS_HOUR), "Running", deadline=PREVIOUS_HOUR),
            task("nightly-ok", "Completed", finished=PREVIOUS_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        events=["DeadlineSkipped"],
        wake_at=NEXT_HOUR,
        status={"missedSinceLastRun": 1, "lastMissedAt": rfc(JUST_AFTER_THE_HOUR)},
        conditions={
            "Ready": ("True", "Scheduled"),
            "LastRunSucceeded": ("True", "Completed"),
            "Healthy": ("False", "DeadlineMissed"),
        },
    ),
    Case(
        "a run finishes after the skipped deadline: healthy again",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(NEXT_HOUR),
                missedSinceLastRun=1,
                lastMissedAt=rfc(JUST_AFTER_THE_HOUR),
                recorded=[{"task": run(PREVIOUS_HOUR)}],
            ),
        ),
        tasks=[
            task(
                run(PREVIOUS_HOUR),
                "Completed",
                deadline=PREVIOUS_HOUR,
                finished=JUST_AFTER_THE_HOUR + timedelta(minutes=1),
            )
        ],
        now=JUST_AFTER_THE_HOUR + timedelta(minutes=2),
        wake_at=NEXT_HOUR,
        status={"missedSinceLastRun": None},
        conditions={
            "Ready": ("True", "Scheduled"),
            "LastRunSucceeded": ("True", "Completed"),
            "Healthy": ("True", "LastRunSucceeded"),
        },
    ),
    Case(
        "hand-edited status is corrected",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(NEXT_HOUR),
                active=[],
                lastScheduledAt="2001-01-01T00:00:00Z",
                recorded=[{"task": run(ON_THE_HOUR)}],
                counts={"created": 1},
            ),
        ),
        tasks=[task(run(ON_THE_HOUR), "Running", deadline=ON_THE_HOUR)],
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={
            "active": [run(ON_THE_HOUR)],
            "lastScheduledAt": rfc(ON_THE_HOUR),
            "counts": {"created": 1},
        },
    ),
    Case(
        "finished run seen again counts once",
        schedule(
            HOURLY,
            settled(
                HOURLY,
                deadlineAt=rfc(NEXT_HOUR),
                recorded=[{"task": run(ON_THE_HOUR), "phase": "Completed"}],
                counts={"created": 1, "completed": 1},
            ),
        ),
        tasks=[
            task(run(ON_THE_HOUR), "Completed", deadline=ON_THE_HOUR, finished=JUST_AFTER_THE_HOUR)
        ],
        now=JUST_AFTER_THE_HOUR,
        wake_at=NEXT_HOUR,
        status={"counts": {"created": 1, "completed": 1}},
    ),
    Case(
        "history limits prune the oldest finished tasks",
        schedule(
            HOURLY,
            settled(HOURLY, deadlineAt=rfc(NEXT_HOUR)),
            successfulTasksHistoryLimit=1,
            failedTasksHistoryLimit=0,
        ),
        tasks=[
            task(run(PREVIOUS_HOUR), "Completed", deadline=PREVIOUS_HOUR, finished=PREVIOUS_HOUR),
            task(run(ON_THE_HOUR), "Completed", deadline=ON_THE_HOUR, finished=ON_THE_HOUR),
            task("nightly-r1", "Failed", deadline=ON_THE_HOUR, finished=ON_THE_HOUR),
        ],
        now=JUST_AFTER_THE_HOUR,
        delete=[run(PREVIOUS_HOUR), "nightly-r1"],
        wake_at=NEXT_HOUR,
        status={"counts": {"scheduled": 2, "created": 3, "completed": 2, "failed": 1}},
    ),
    Case(
        "timing edited: the next deadline is computed from now",
        schedule(
            {"schedule": "30 * * * *"},
            settled(HOURLY, deadlineAt=rfc(PREVIOUS_HOUR)),
        ),
        now=JUST_AFTER_THE_HOUR,
        wake_at=ON_THE_HOUR + timedelta(minutes=30),
        status={"deadlineAt": rfc(ON_THE_HOUR + timedelta(minutes=30)), "counts": {}},
    ),
    Case(
        "invalid cron: not ready, one warning, no deadline kept armed",
        schedule({"schedule": "61 * * * *"}, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        now=JUST_AFTER_THE_HOUR,
        events=["InvalidSpec"],
        wake_at=None,
    ),
    Case(
        "template refused by the API server",
        schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR))),
        template_problem="jobTemplate is rejected by the API server: no containers",
        now=JUST_AFTER_THE_HOUR,
        events=["TemplateRejected"],
        wake_at=None,
        conditions={
            "Ready": ("False", "TemplateRejected"),
            "Stalled": ("True", "TemplateRejected"),
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plan_schedule(case: Case) -> None:
    plan = plan_schedule(world(case), case.now)
    assert [t["metadata"]["name"] for t in plan.create] == case.create
    assert list(plan.cancel) == case.cancel
    assert list(plan.delete) == case.delete
    assert [event.reason for event in plan.events] == case.events
    assert plan.wake_at == case.wake_at
    written = plan.status.to_kube()
    for name, value in case.status.items():
        expected = Counts.model_validate(value).to_kube() if name == "counts" else value
        assert (written.get(name) or None) == (expected or None), name
    if case.conditions is not None:
        assert {c.type: (c.status, c.reason) for c in plan.status.conditions} == case.conditions
    assert {c.observed_generation for c in plan.status.conditions} == {1}
    assert plan.status.observed_generation == 1


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_second_reconcile_of_the_same_world_changes_nothing(case: Case) -> None:
    """Level-triggered: once the plan's Tasks and status are written, planning again at the same
    instant asks for no Task, counts nothing again and raises no Event (idempotence, keyed by
    task name). Cancellations are left in flight: they are writes to the Tasks."""
    first = plan_schedule(world(case), case.now)
    body = {**case.schedule, "status": first.status.to_kube()}
    created = [{**t, "status": {"phase": "Pending"}} for t in first.create]
    for made in created:
        made["metadata"]["creationTimestamp"] = rfc(case.now)
    tasks = [t for t in case.tasks if t["metadata"]["name"] not in first.delete]
    again = plan_schedule(world(Case(case.id, body, case.now, [*tasks, *created],
                                     case.template_problem)), case.now)  # fmt: skip
    assert again.create == ()
    assert again.status.counts == first.status.counts
    assert again.status.active == first.status.active
    assert again.status.deadline_at == first.status.deadline_at
    assert [e.reason for e in again.events] == []


def test_counts_are_kept_for_runs_whose_tasks_were_pruned() -> None:
    old = ScheduleStatus.model_validate(
        {
            "counts": {"created": 5, "completed": 5},
            "history": [
                {"task": "nightly-1", "phase": "Completed", "finishedAt": rfc(PREVIOUS_HOUR)}
            ],
        }
    )
    status, facts = rebuild_runs(old, [], "nightly", 10, ON_THE_HOUR)
    assert status.counts == Counts(created=5, completed=5)
    assert [entry.task for entry in status.history] == ["nightly-1"]
    assert facts.last_finished_at == PREVIOUS_HOUR
    assert status.last_successful_at == PREVIOUS_HOUR


def test_history_is_newest_first_rebuilt_from_the_tasks_and_limited() -> None:
    old = ScheduleStatus.model_validate(
        {
            "history": [
                {"task": "pruned", "phase": "Completed", "finishedAt": rfc(PREVIOUS_HOUR)},
                {"task": "b", "phase": "Failed", "finishedAt": "2001-01-01T00:00:00Z"},
            ],
            "recorded": [{"task": "b", "phase": "Failed"}],
        }
    )
    tasks = [
        task("a", "Completed", finished=ON_THE_HOUR),
        task("b", "Completed", finished=JUST_AFTER_THE_HOUR),
    ]
    status, _ = rebuild_runs(old, tasks, "nightly", 2, NEXT_HOUR)
    assert [(e.task, e.phase.value) for e in status.history] == [
        ("b", "Completed"),
        ("a", "Completed"),
    ]


@pytest.mark.parametrize(
    ("runs", "healthy"),
    [
        ([("a", "Completed", ON_THE_HOUR)], ("True", "LastRunSucceeded")),
        (
            [("a", "Completed", PREVIOUS_HOUR), ("b", "Failed", ON_THE_HOUR)],
            ("False", "LastRunFailed"),
        ),
        (
            [("a", "Failed", PREVIOUS_HOUR), ("b", "Completed", ON_THE_HOUR)],
            ("True", "LastRunSucceeded"),
        ),
        (
            [("a", "Failed", PREVIOUS_HOUR), ("b", "Cancelled", ON_THE_HOUR)],
            ("False", "LastRunFailed"),
        ),
        ([], None),
    ],
    ids=[
        "success",
        "failure-after-success",
        "success-after-failure",
        "cancel-says-nothing",
        "no-run",
    ],
)
def test_healthy_follows_the_latest_finished_run(
    runs: list[tuple[str, str, datetime]], healthy: tuple[str, str] | None
) -> None:
    tasks = [task(name, phase, finished=at) for name, phase, at in runs]
    status, _ = rebuild_runs(ScheduleStatus(), tasks, "nightly", 10, NEXT_HOUR)
    found = next(((c.status, c.reason) for c in status.conditions if c.type == "Healthy"), None)
    assert found == healthy


def test_a_missed_deadline_stays_unhealthy_until_a_later_run_finishes() -> None:
    missed = plan_schedule(
        world(Case("", schedule(HOURLY, settled(HOURLY, deadlineAt=rfc(ON_THE_HOUR)),
                                missedRunPolicy="Skip"),
                   THREE_HOURS_LATER,
                   [task("nightly-old", "Completed", finished=PREVIOUS_HOUR)])),
        THREE_HOURS_LATER,
    )  # fmt: skip
    healthy = next(c for c in missed.status.conditions if c.type == "Healthy")
    assert (healthy.status, healthy.reason) == ("False", "DeadlineMissed")
    assert missed.status.missed_since_last_run == missed.status.counts.missed == 3
    assert healthy.message.startswith("3 deadlines passed without a task")

    status, _ = rebuild_runs(
        missed.status, [task("nightly-old", "Completed", finished=PREVIOUS_HOUR)], "nightly", 10,
        THREE_HOURS_LATER + timedelta(minutes=1),
    )  # fmt: skip
    assert next(c.reason for c in status.conditions if c.type == "Healthy") == "DeadlineMissed"

    later = task("nightly-new", "Completed", finished=THREE_HOURS_LATER + timedelta(minutes=2))
    status, _ = rebuild_runs(
        missed.status, [later], "nightly", 10, THREE_HOURS_LATER + timedelta(minutes=3)
    )
    assert next(c.reason for c in status.conditions if c.type == "Healthy") == "LastRunSucceeded"


def test_an_invalid_spec_warns_once_per_distinct_problem() -> None:
    body = schedule({"schedule": "61 * * * *"})
    first = plan_schedule(world(Case("", body, ON_THE_HOUR)), ON_THE_HOUR)
    again_body = {**body, "status": first.status.to_kube()}
    again = plan_schedule(world(Case("", again_body, NEXT_HOUR)), NEXT_HOUR)
    assert [e.reason for e in first.events] == ["InvalidSpec"]
    assert again.events == ()
    fixed = {**again_body, "spec": {**again_body["spec"], "schedule": "0 * * * *"}}
    assert (
        plan_schedule(world(Case("", fixed, NEXT_HOUR)), NEXT_HOUR).status.conditions[0].reason
        == "Scheduled"
    )


@pytest.mark.parametrize(
    ("status", "accepted"),
    [
        ({}, False),
        (
            {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled"}],
            },
            True,
        ),
        (
            {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec"}],
            },
            False,
        ),
        (
            {
                "observedGeneration": 0,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled"}],
            },
            False,
        ),
    ],
    ids=[
        "never-reconciled",
        "this-generation-ready",
        "this-generation-invalid",
        "older-generation",
    ],
)
def test_template_accepted(status: dict[str, Any], accepted: bool) -> None:
    assert template_accepted(schedule(HOURLY, status)) is accepted
