"""The controllers against an in-memory API server: exact calls, in order, and requeue times.

Each scenario puts a world into a FakeKube and the store (as the watch would), runs one
reconcile at a fake `now`, and asserts the API calls it made and when it asks to run
again. The decisions themselves are table-tested in test_schedule_plan and
test_task_plan; these show that the controllers carry a plan out, in the right order.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.config import OperatorConfig, QueueKey
from kadence.kube import ApiError
from kadence.models import TaskStatus
from kadence.naming import task_name_for_deadline
from kadence.queues import QueueController
from kadence.schedules import ScheduleController
from kadence.status_writer import StatusWriter
from kadence.store import Store
from kadence.tasks import TaskController, report_finished
from tests.support.fake_kube import FakeClock, FakeKube

ON_THE_HOUR = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
JUST_AFTER_THE_HOUR = ON_THE_HOUR + timedelta(seconds=2)
NEXT_HOUR = ON_THE_HOUR + timedelta(hours=1)
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
RUN = task_name_for_deadline("nightly", ON_THE_HOUR)
QUEUE = QueueKey("ns", "q")


class World:
    """A FakeKube, the store the watch would fill from it, and the three controllers."""

    def __init__(
        self, now: datetime, config: OperatorConfig | None = None, held: str | None = None
    ) -> None:
        self.clock = FakeClock(now)
        self.kube = FakeKube(self.clock)
        self.store = Store()
        status = StatusWriter(self.kube, "tasks", TaskStatus, self.store.tasks.get,
                              self.store.put_task, written=report_finished(self.kube))  # fmt: skip
        self.schedules = ScheduleController(
            self.kube, self.store, status, self.clock, held=lambda: held
        )
        self.tasks = TaskController(
            self.kube, self.store, status, config or OperatorConfig(), self.clock
        )
        self.queues = QueueController(
            self.kube, self.store, status, config or OperatorConfig(), self.clock,
            held=lambda: held,
        )  # fmt: skip

    def schedule(self, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        body = self.kube.put(
            "schedules",
            {
                "apiVersion": "kadence.dev/v1alpha1",
                "kind": "Schedule",
                "metadata": {"namespace": "ns", "name": "nightly", "uid": "uid-s",
                             "generation": 1, "creationTimestamp": "2026-06-01T09:00:30Z"},
                "spec": {"schedulerId": "q", "schedule": "0 * * * *", "jobTemplate": TEMPLATE,
                         **spec},
                "status": status or {},
            },
        )  # fmt: skip
        self.store.put_schedule(body)
        return body

    def task(self, name: str, phase: str | None = None, **extra: Any) -> dict[str, Any]:
        body = self.kube.put(
            "tasks",
            {
                "apiVersion": "kadence.dev/v1alpha1",
                "kind": "Task",
                "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}",
                             "labels": {"kadence.dev/scheduler-id": "q"},
                             "ownerReferences": [{"kind": "Schedule", "name": "nightly",
                                                  "uid": "uid-s", "controller": True}]},
                "spec": {"schedulerId": "q", "data": {"n": name}, "jobTemplate": TEMPLATE,
                         "deadlineAt": "2026-06-01T10:00:00Z", **extra},
                "status": {"phase": phase} if phase else {},
            },
        )  # fmt: skip
        self.store.put_task(body)
        return body

    def job(self, task: str, **status: Any) -> dict[str, Any]:
        body = self.kube.put(
            "jobs",
            {
                "metadata": {"namespace": "ns", "name": task,
                             "labels": {"kadence.dev/task": task, "kadence.dev/scheduler-id": "q"},
                             "ownerReferences": [{"kind": "Task", "name": task,
                                                  "uid": f"uid-{task}", "controller": True}]},
                "status": status,
            },
        )  # fmt: skip
        self.store.put_job(body)
        return body


SETTLED = {
    "observedTiming": "0 * * * * in UTC",
    "observedGeneration": 1,
    "deadlineAt": "2026-06-01T10:00:00Z",
    "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled",
                    "observedGeneration": 1}],
}  # fmt: skip


def test_schedule_is_time_creates_the_task_then_counts_it() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule(SETTLED)
    requeue = asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [
        ("create", "tasks", RUN),
        ("patch_status", "schedules", "nightly"),
    ]
    assert requeue == (NEXT_HOUR - JUST_AFTER_THE_HOUR).total_seconds()
    assert [reason for _, _, reason in world.kube.events] == ["TaskCreated"]
    status = world.kube.objects[("schedules", "ns", "nightly")]["status"]
    assert (status["active"], status["deadlineAt"]) == ([RUN], "2026-06-01T11:00:00Z")
    assert ("ns", RUN) in world.store.tasks, "the new Task is in the store before its event"


def test_schedule_crash_after_task_create_before_status_write() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule(SETTLED)
    world.task(RUN, "Queued")
    requeue = asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [("patch_status", "schedules", "nightly")]
    assert requeue == (NEXT_HOUR - JUST_AFTER_THE_HOUR).total_seconds()
    status = world.kube.objects[("schedules", "ns", "nightly")]["status"]
    assert (status["active"], status["counts"]["created"]) == ([RUN], 1)


def test_schedule_a_second_reconcile_writes_nothing() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule(SETTLED)
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    world.kube.actions.clear()
    requeue = asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == []
    assert requeue == (NEXT_HOUR - JUST_AFTER_THE_HOUR).total_seconds()


def test_schedule_the_reconcile_after_a_run_is_made_writes_nothing() -> None:
    """The Task's own event brings the Schedule back: its status already says everything,
    to the second of the Task's creationTimestamp (one write per run, not two)."""
    world = World(JUST_AFTER_THE_HOUR + timedelta(microseconds=654321))
    world.schedule(SETTLED)
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert ("create", "tasks", RUN) in world.kube.actions
    world.kube.actions.clear()
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == []
    status = world.kube.objects[("schedules", "ns", "nightly")]["status"]
    assert status["lastScheduledAt"] == "2026-06-01T10:00:02Z"


def test_schedule_status_changed_under_it_plans_again_at_once() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule(SETTLED)
    world.kube.put("schedules", world.kube.objects[("schedules", "ns", "nightly")])  # newer rv
    requeue = asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [
        ("create", "tasks", RUN),
        ("patch_status", "schedules", "nightly"),
    ]
    assert requeue == 0.0
    world.kube.actions.clear()
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [("patch_status", "schedules", "nightly")], "no second Task"


def test_schedule_new_generation_is_dry_run_once() -> None:
    world = World(ON_THE_HOUR - timedelta(minutes=5))
    world.schedule()
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [
        ("dry_run", "jobs", "dry-run-probe"),
        ("patch_status", "schedules", "nightly"),
    ]
    world.kube.actions.clear()
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == []


def test_schedule_template_refused_is_reported_not_retried() -> None:
    world = World(ON_THE_HOUR - timedelta(minutes=5))
    world.schedule()
    world.kube.refuse[("dry_run", "jobs")] = ApiError(422, "Invalid", "containers: Required")
    requeue = asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert requeue is None
    ready = world.kube.objects[("schedules", "ns", "nightly")]["status"]["conditions"][0]
    assert (ready["reason"], "containers: Required" in ready["message"]) == (
        "TemplateRejected",
        True,
    )
    assert [reason for _, _, reason in world.kube.events] == ["TemplateRejected"]


def test_schedule_prunes_after_the_status_that_counts_the_runs() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule({**SETTLED, "deadlineAt": "2026-06-01T11:00:00Z"},
                   successfulTasksHistoryLimit=0)  # fmt: skip
    world.task(RUN, "Completed", deadlineAt="2026-06-01T10:00:00Z")
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [
        ("patch_status", "schedules", "nightly"),
        ("delete", "tasks", RUN),
    ]
    assert world.kube.objects[("schedules", "ns", "nightly")]["status"]["counts"]["completed"] == 1


def test_schedule_api_down_raises_for_the_work_queue_to_retry() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.schedule(SETTLED)
    world.kube.refuse[("create", "tasks")] = ApiError(0, "Unreachable", "connection refused")
    with pytest.raises(ApiError, match="Unreachable"):
        asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [("create", "tasks", RUN)], "no status counts a Task not made"


def test_queue_capacity_one_two_queued_one_finishes() -> None:
    world = World(
        JUST_AFTER_THE_HOUR, OperatorConfig.model_validate({"queues": {"capacity": {"q": 1}}})
    )
    world.task("done", "Completed")
    world.task("b", "Queued", priority=5)
    world.task("a", "Queued", priority=1)
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("create", "jobs", "a"), ("patch_status", "tasks", "a")]
    assert world.store.tasks[("ns", "a")]["status"]["phase"] == "Dispatched"
    world.kube.actions.clear()
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [], "the slot is taken"


def test_queue_admits_a_manual_task_labelling_it_first() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    body = world.task("by-hand")
    body["metadata"]["labels"] = {}
    body["metadata"]["ownerReferences"] = []
    world.kube.put("tasks", body)
    world.store.put_task(world.kube.objects[("tasks", "ns", "by-hand")])
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [
        ("patch", "tasks", "by-hand"),
        ("create", "jobs", "by-hand"),
        ("patch_status", "tasks", "by-hand"),
    ]
    stored = world.kube.objects[("tasks", "ns", "by-hand")]
    assert stored["metadata"]["labels"] == {
        "kadence.dev/scheduler-id": "q",
        "kadence.dev/trigger": "manual",
    }
    assert stored["status"]["phase"] == "Dispatched"


def test_queue_a_new_task_with_a_free_slot_is_dispatched_in_one_status_write() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("new")
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("create", "jobs", "new"), ("patch_status", "tasks", "new")]
    status = world.store.tasks[("ns", "new")]["status"]
    assert status["phase"] == "Dispatched"
    assert status["jobName"] == "new"
    assert status["queuedAt"] == status["dispatchedAt"] == "2026-06-01T10:00:02Z"


def test_queue_a_new_task_with_no_free_slot_is_queued() -> None:
    world = World(
        JUST_AFTER_THE_HOUR, OperatorConfig.model_validate({"queues": {"capacity": {"q": 1}}})
    )
    world.task("running", "Running")
    world.job("running", active=1)
    world.task("new")
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("patch_status", "tasks", "new")]
    assert world.store.tasks[("ns", "new")]["status"]["phase"] == "Queued"


def test_queue_missing_service_account_fails_the_task() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    pod = {"serviceAccountName": "nobody", "containers": [{"name": "c", "image": "busybox"}]}
    world.task("a", "Queued", jobTemplate={"spec": {"template": {"spec": pod}}})
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("patch_status", "tasks", "a")]
    assert world.store.tasks[("ns", "a")]["status"]["phase"] == "Failed"
    assert world.kube.events == [("a", "Warning", "JobRefused")]


def test_queue_refused_job_fails_the_task() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("a", "Queued")
    world.kube.refuse[("create", "jobs")] = ApiError(422, "Invalid", "bad template")
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("create", "jobs", "a"), ("patch_status", "tasks", "a")]
    assert "bad template" in world.store.tasks[("ns", "a")]["status"]["message"]


def test_queue_a_job_of_the_same_name_it_does_not_control_is_not_adopted() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("a", "Queued")
    world.kube.put("jobs", {"metadata": {"namespace": "ns", "name": "a"}})
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.store.tasks[("ns", "a")]["status"]["phase"] == "Failed"
    assert "not this task's" in world.store.tasks[("ns", "a")]["status"]["message"]


def test_task_running_job_completed() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("t", "Running")
    world.job("t", conditions=[{"type": "Complete", "status": "True"}],
              completionTime="2026-06-01T10:00:01Z")  # fmt: skip
    asyncio.run(world.tasks.reconcile(("ns", "t")))
    assert world.kube.actions == [("patch_status", "tasks", "t")]
    assert world.store.tasks[("ns", "t")]["status"]["phase"] == "Completed"


@pytest.mark.parametrize(
    ("job", "now", "event"),
    [
        (
            {"conditions": [{"type": "Complete", "status": "True"}]},
            JUST_AFTER_THE_HOUR,
            None,
        ),
        (
            {
                "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                ]
            },
            JUST_AFTER_THE_HOUR,
            ("Warning", "JobFailed"),
        ),
        ({"active": 1}, JUST_AFTER_THE_HOUR + timedelta(hours=1), ("Warning", "StartTimeout")),
        (None, JUST_AFTER_THE_HOUR, ("Warning", "JobDeleted")),
    ],
    ids=["completed-no-event", "job-failed", "start-timeout", "job-deleted"],
)
def test_task_ends_with_one_event_whose_reason_its_conditions_carry(
    job: dict[str, Any] | None, now: datetime, event: tuple[str, str] | None
) -> None:
    world = World(now)
    body = world.task("t", "Dispatched")
    body["status"].update(dispatchedAt="2026-06-01T10:00:00Z", jobName="t")
    world.kube.put("tasks", body)
    world.store.put_task(world.kube.objects[("tasks", "ns", "t")])
    if job is not None:
        world.job("t", **job)
    asyncio.run(world.tasks.reconcile(("ns", "t")))
    asyncio.run(world.tasks.reconcile(("ns", "t")))
    ended = world.store.tasks[("ns", "t")]["status"]
    ready = next(c for c in ended["conditions"] if c["type"] == "Ready")
    assert world.kube.events == ([("t", *event)] if event else [])
    assert ready["reason"] == (event[1] if event else "Completed")


def test_task_cancelled_with_running_job_deletes_the_job() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("t", "Cancelled")
    world.job("t", active=1)
    asyncio.run(world.tasks.reconcile(("ns", "t")))
    assert world.kube.actions == [("delete", "jobs", "t")]


def test_task_a_job_it_does_not_control_never_moves_it() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("t", "Queued")
    forged = copy.deepcopy(world.job("t", active=1))
    forged["metadata"]["ownerReferences"][0]["uid"] = "uid-someone-else"
    world.store.drop_job(("ns", "t"))
    world.store.put_job(forged)
    asyncio.run(world.tasks.reconcile(("ns", "t")))
    assert world.kube.actions == []
    assert world.store.tasks[("ns", "t")]["status"]["phase"] == "Queued"


def test_admission_policies_missing_tasks_are_made_but_no_job() -> None:
    world = World(JUST_AFTER_THE_HOUR, held="no Job is made until ...")
    world.schedule(SETTLED)
    asyncio.run(world.schedules.reconcile(("ns", "nightly")))
    assert world.kube.actions == [
        ("create", "tasks", RUN),
        ("patch_status", "schedules", "nightly"),
    ]
    ready = world.kube.objects[("schedules", "ns", "nightly")]["status"]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "AdmissionPolicyMissing")
    world.kube.actions.clear()
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("patch_status", "tasks", RUN)], "queued, never dispatched"
    assert world.store.tasks[("ns", RUN)]["status"]["phase"] == "Queued"


def test_two_namespaces_with_one_scheduler_id_have_a_queue_each() -> None:
    config = OperatorConfig.model_validate({"queues": {"capacity": {"q": 1}}})
    world = World(JUST_AFTER_THE_HOUR, config)
    world.task("mine", "Running")
    other = world.task("theirs", "Queued")
    other["metadata"]["namespace"] = "other"
    world.kube.put("tasks", other)
    world.store.put_task(world.kube.objects[("tasks", "other", "theirs")])
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [], "ns's queue is full"
    asyncio.run(world.queues.reconcile(QueueKey("other", "q")))
    assert world.kube.actions == [("create", "jobs", "theirs"), ("patch_status", "tasks", "theirs")]


def test_forbid_holds_across_schedules_whose_deadlines_coincide() -> None:
    """Three Schedules of one queue and namespace with the same work fire at the same
    instant: the first makes its Task, the others see it and skip."""
    world = World(JUST_AFTER_THE_HOUR)
    for name in ("a", "b", "c"):
        body = world.kube.put(
            "schedules",
            {
                "apiVersion": "kadence.dev/v1alpha1",
                "kind": "Schedule",
                "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}",
                             "generation": 1, "creationTimestamp": "2026-06-01T09:00:30Z"},
                "spec": {"schedulerId": "q", "schedule": "0 * * * *", "hash": "same-work",
                         "jobTemplate": TEMPLATE},
                "status": SETTLED,
            },
        )  # fmt: skip
        world.store.put_schedule(body)

    async def fire_together() -> None:
        await asyncio.gather(*(world.schedules.reconcile(("ns", name)) for name in ("a", "b", "c")))

    asyncio.run(fire_together())
    created = [name for verb, plural, name in world.kube.actions if verb == "create"]
    assert len(created) == 1, created
    skipped = [reason for _, _, reason in world.kube.events if reason == "DeadlineSkipped"]
    assert len(skipped) == 2
