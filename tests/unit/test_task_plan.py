"""plan_queue and plan_task: admission, dispatch within capacity, and following a Job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.models import TaskPhase, TaskStatus
from kadence.status import advance_task
from kadence.task_plan import Admission, QueueRules, plan_queue, plan_task

ON_THE_HOUR = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
A_MINUTE_LATER = ON_THE_HOUR + timedelta(minutes=1)
START = timedelta(minutes=15)
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
P = TaskPhase


def task(
    name: str,
    phase: str | None = None,
    *,
    priority: int = 0,
    namespace: str = "ns",
    data: dict[str, Any] | None = None,
    by_schedule: bool = False,
    labelled: bool = True,
    created: str = "2026-06-01T10:00:00Z",
    status_message: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "labels": (
            {"kadence.dev/scheduler-id": "q", "kadence.dev/trigger": "manual"} if labelled else {}
        ),
        "ownerReferences": (
            [{"kind": "Schedule", "name": "s", "uid": "uid-s", "controller": True}]
            if by_schedule
            else []
        ),
    }
    body: dict[str, Any] = {
        "metadata": meta,
        "spec": {
            "schedulerId": "q",
            "priority": priority,
            "data": data if data is not None else {"n": name},
            "jobTemplate": TEMPLATE,
            **spec,
        },
        "status": {"phase": phase} if phase else {},
    }
    if phase == "Queued":
        body["status"]["message"] = status_message or "waiting in queue q"
    return body


def job(
    owner: str, *, finished: bool = False, active: int = 0, ready: int | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"active": active, "ready": active if ready is None else ready}
    if finished:
        status["conditions"] = [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-06-01T10:01:00Z"}
        ]
        status["completionTime"] = "2026-06-01T10:01:00Z"
    return {
        "metadata": {
            "namespace": "ns",
            "name": owner,
            "creationTimestamp": "2026-06-01T10:00:00Z",
            "labels": {"kadence.dev/task": owner, "kadence.dev/scheduler-id": "q"},
            "ownerReferences": [
                {"kind": "Task", "name": owner, "uid": f"uid-{owner}", "controller": True}
            ],
        },
        "status": status,
    }


@dataclass
class QueueCase:
    id: str
    tasks: list[dict[str, Any]]
    capacity: int = 1
    shared: bool = False
    namespace_capacity: int | None = None
    priorities: tuple[int, int] | None = None
    held: bool = False
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """Jobs of the queue; their Tasks are known when among `tasks` or `finished`."""
    finished: list[str] = field(default_factory=list)
    """Names of finished Tasks that still exist (their uids are known)."""
    admit: list[tuple[str, TaskPhase]] = field(default_factory=list)
    dispatch: list[str] = field(default_factory=list)
    active: int = 0
    serial: bool = True
    messages: list[tuple[str, str]] = field(default_factory=list)
    """Queued Tasks whose message is written: (name, message)."""


def buffered(name: str, phase: str | None = "Queued", **kwargs: Any) -> dict[str, Any]:
    """A Task of a BufferOne Schedule, doing the work `w` (unless told otherwise)."""
    kwargs.setdefault("hash", "w")
    return task(name, phase, by_schedule=True, concurrencyPolicy="BufferOne", **kwargs)


def waiting_for(blocker: str) -> str:
    return f"waiting for task {blocker} (same hash) to finish"


QUEUE_CASES = [
    QueueCase(
        "capacity 1, two queued, one finishes",
        [task("b", "Queued", priority=5), task("a", "Queued", priority=1)],
        dispatch=["a"],
        finished=["done"],
    ),
    QueueCase(
        "capacity 1, one running: nothing leaves the queue",
        [task("a", "Queued"), task("r", "Running")],
        jobs=[job("r", active=1)],
        active=1,
    ),
    QueueCase(
        "capacity 3, one dispatched: the two heads leave in priority order",
        [
            task("x", "Queued", priority=9),
            task("y", "Queued", priority=-1),
            task("z", "Queued", priority=0),
            task("d", "Dispatched"),
        ],
        capacity=3,
        dispatch=["y", "z"],
        active=1,
    ),
    QueueCase(
        "a Queued task whose Job exists holds a slot (crash between Job and status)",
        [task("a", "Queued"), task("b", "Queued")],
        jobs=[job("a")],
        active=1,
    ),
    QueueCase(
        "the Job of a deleted task holds a slot until it finishes",
        [task("a", "Queued")],
        jobs=[job("gone", active=1)],
        active=1,
    ),
    QueueCase(
        "the finished Job of a deleted task frees its slot",
        [task("a", "Queued")],
        jobs=[job("gone", finished=True)],
        dispatch=["a"],
    ),
    QueueCase(
        "the running Job of a cancelled task does not hold a slot",
        [task("a", "Queued")],
        jobs=[job("cancelled", active=1)],
        finished=["cancelled"],
        dispatch=["a"],
    ),
    QueueCase(
        "capacity lowered below what runs: nothing dispatched",
        [task("a", "Running"), task("b", "Running"), task("c", "Queued")],
        active=2,
    ),
    QueueCase(
        "manual duplicates created together: the first is queued, the others cancelled",
        [
            task("m2", data={"same": 1}, created="2026-06-01T10:00:02Z"),
            task("m1", data={"same": 1}, created="2026-06-01T10:00:01Z"),
            task("m3", data={"same": 1}, created="2026-06-01T10:00:03Z"),
        ],
        admit=[("m1", P.QUEUED), ("m2", P.CANCELLED), ("m3", P.CANCELLED)],
        dispatch=["m1"],
    ),
    QueueCase(
        "a manual task whose work is already running is cancelled",
        [task("m", data={"same": 1}), task("r", "Running", data={"same": 1})],
        admit=[("m", P.CANCELLED)],
        active=1,
    ),
    QueueCase(
        "the same work in another namespace is not a duplicate",
        [task("m", data={"same": 1}), task("r", "Running", data={"same": 1}, namespace="other")],
        admit=[("m", P.QUEUED)],
        active=1,
    ),
    QueueCase(
        "a schedule's task is queued even when its work is running: its policy decided",
        [task("s-1", data={"same": 1}, by_schedule=True), task("r", "Running", data={"same": 1})],
        admit=[("s-1", P.QUEUED)],
        active=1,
    ),
    QueueCase(
        "a task that can never make a Job fails at admission",
        [task("bad", data={"blob": "x" * 200_000})],
        admit=[("bad", P.FAILED)],
    ),
    QueueCase(
        "admission policies missing: tasks are queued, none leaves",
        [task("new"), task("a", "Queued")],
        capacity=5,
        held=True,
        admit=[("new", P.QUEUED)],
    ),
    QueueCase(
        "shared, equal priority: the namespace holding fewer slots goes next",
        [
            task("a1", "Queued", namespace="team-a", created="2026-06-01T10:00:00Z"),
            task("a2", "Queued", namespace="team-a", created="2026-06-01T10:00:01Z"),
            task("b1", "Queued", namespace="team-b", created="2026-06-01T10:00:05Z"),
            task("ar", "Running", namespace="team-a"),
        ],
        capacity=2,
        shared=True,
        dispatch=["b1"],
        active=1,
    ),
    QueueCase(
        "shared, a burst from one namespace alternates with another's",
        [
            *(task(f"a{n}", "Queued", namespace="team-a") for n in range(4)),
            *(task(f"b{n}", "Queued", namespace="team-b") for n in range(4)),
        ],
        capacity=4,
        shared=True,
        dispatch=["a0", "b0", "a1", "b1"],
    ),
    QueueCase(
        "shared, lower priority still goes first",
        [
            task("a", "Queued", namespace="team-a", priority=5),
            task("b", "Queued", namespace="team-b", priority=1),
            task("b2", "Queued", namespace="team-b", priority=1),
        ],
        capacity=2,
        shared=True,
        dispatch=["b", "b2"],
    ),
    QueueCase(
        "shared, a namespace at its cap waits while the queue has room",
        [task("a1", "Queued", namespace="team-a"), task("ar", "Running", namespace="team-a")],
        capacity=5,
        shared=True,
        namespace_capacity=1,
        active=1,
    ),
    QueueCase(
        "shared, a priority outside the allowed range is refused",
        [task("jump", namespace="team-a", priority=-2147483648), task("ok", namespace="team-b")],
        shared=True,
        priorities=(0, 100),
        admit=[("jump", P.FAILED), ("ok", P.QUEUED)],
        dispatch=["ok"],
    ),
    QueueCase(
        "buffered: never a second one of its work while one runs; other work passes it",
        [
            buffered("b1", "Running", created="2026-06-01T09:00:00Z"),
            buffered("b2", created="2026-06-01T09:30:00Z"),
            task("other", "Queued", priority=5),
        ],
        capacity=3,
        dispatch=["other"],
        active=1,
        messages=[("b2", waiting_for("b1"))],
    ),
    QueueCase(
        "buffered: held by a task of its work not buffered itself (Allow, by hand)",
        [buffered("b", created="2026-06-01T09:30:00Z"), task("r", "Running", hash="w")],
        capacity=3,
        active=1,
        messages=[("b", waiting_for("r"))],
    ),
    QueueCase(
        "buffered: two of one work and room for both: the first leaves, the second waits",
        [
            buffered("b2", deadlineAt="2026-06-01T10:02:00Z"),
            buffered("b1", deadlineAt="2026-06-01T10:01:00Z"),
        ],
        capacity=5,
        dispatch=["b1"],
        messages=[("b2", waiting_for("b1"))],
    ),
    QueueCase(
        "buffered: a Queued task whose Job exists keeps its work busy",
        [buffered("b1"), buffered("b2", deadlineAt="2026-06-01T10:05:00Z")],
        capacity=5,
        jobs=[job("b1")],
        active=1,
        messages=[("b2", waiting_for("b1"))],
    ),
    QueueCase(
        "buffered: the same hash in another namespace of a shared queue does not hold it",
        [
            buffered("b", namespace="team-a"),
            buffered("r", "Running", namespace="team-b"),
            buffered("a2", namespace="team-a", deadlineAt="2026-06-01T10:05:00Z"),
        ],
        capacity=3,
        shared=True,
        dispatch=["b"],
        active=1,
        messages=[("a2", waiting_for("b"))],
    ),
    QueueCase(
        "buffered: its work finished, but no slot: it says it waits in the queue again",
        [
            buffered("b", status_message=waiting_for("gone")),
            task("full", "Running"),
        ],
        active=1,
        messages=[("b", "waiting in queue q")],
    ),
    QueueCase(
        "buffered: a message already written is not written again",
        [buffered("b1", "Running"), buffered("b2", status_message=waiting_for("b1"))],
        capacity=2,
        active=1,
    ),
    QueueCase(
        "buffered, in the view of the whole order: it keeps its place",
        [buffered("b1", "Running"), buffered("b2"), task("other", "Queued", priority=5)],
        capacity=9,
        serial=False,
        dispatch=["b2", "other"],
        active=1,
    ),
    QueueCase(
        "a new task with a free slot joins and leaves the queue in the same pass",
        [task("new", by_schedule=True), task("r", "Running")],
        jobs=[job("r", active=1)],
        capacity=2,
        admit=[("new", P.QUEUED)],
        dispatch=["new"],
        active=1,
    ),
    QueueCase(
        "a new task with no free slot joins the queue and waits",
        [task("new", by_schedule=True), task("r", "Running")],
        jobs=[job("r", active=1)],
        admit=[("new", P.QUEUED)],
        active=1,
    ),
    QueueCase(
        "new tasks take their place in the order: a new one of lower priority passes a queued one",
        [task("old", "Queued", priority=5), task("new", by_schedule=True, priority=1)],
        admit=[("new", P.QUEUED)],
        dispatch=["new"],
    ),
    QueueCase(
        "a new task whose Job exists (a crash after the Job) holds its slot and is not made again",
        [
            task("crashed", by_schedule=True),
            task("next", by_schedule=True, created="2026-06-01T10:00:05Z"),
        ],
        jobs=[job("crashed", active=1)],
        admit=[("crashed", P.QUEUED), ("next", P.QUEUED)],
        active=1,
    ),
    QueueCase(
        "a new buffered task behind a running one of its work says so as it joins",
        [buffered("b1", "Running"), buffered("b2", None, created="2026-06-01T10:00:05Z")],
        jobs=[job("b1", active=1)],
        capacity=5,
        admit=[("b2", P.QUEUED)],
        active=1,
    ),
]


@pytest.mark.parametrize("case", QUEUE_CASES, ids=[case.id for case in QUEUE_CASES])
def test_plan_queue(case: QueueCase) -> None:
    jobs_by_owner = {j["metadata"]["ownerReferences"][0]["uid"]: j for j in case.jobs}
    known = {t["metadata"]["uid"] for t in case.tasks} | {f"uid-{n}" for n in case.finished}
    rules = QueueRules(
        case.capacity,
        case.shared,
        case.namespace_capacity,
        case.priorities,
        case.held,
        serial=case.serial,
    )
    plan = plan_queue(case.tasks, jobs_by_owner, case.jobs, known, rules)
    assert [(a.key[1], a.phase) for a in plan.admit] == case.admit
    assert [a.key[1] for a in plan.admit if a.dispatch] == [
        a.key[1] for a in plan.admit if a.key in plan.dispatch
    ], "an admission leaves at once exactly when the pass dispatches it"
    assert [name for _, name in plan.dispatch] == case.dispatch
    assert plan.active == case.active
    assert [(name, message) for (_, name), message in plan.messages] == case.messages


def test_a_new_task_held_back_by_its_work_says_what_it_waits_for_as_it_joins() -> None:
    plan = plan_queue(
        [buffered("b1", "Running"), buffered("b2", None, created="2026-06-01T10:00:05Z")],
        {"uid-b1": job("b1", active=1)}, [job("b1", active=1)], {"uid-b1", "uid-b2"},
        QueueRules(5),
    )  # fmt: skip
    assert [(a.key[1], a.message, a.dispatch) for a in plan.admit] == [
        ("b2", waiting_for("b1"), False)
    ]
    assert plan.messages == (), "no second write to say it"


def test_admission_says_why_and_labels_a_task_made_by_hand() -> None:
    plan = plan_queue(
        [task("m1", labelled=False, data={"x": 1}), task("r", "Running", data={"x": 1})],
        {}, [], set(), QueueRules(1),
    )  # fmt: skip
    assert plan.admit == (
        Admission(
            ("ns", "m1"), P.CANCELLED, "Duplicate", "duplicate of task r, already in queue", True
        ),
    )
    queued = plan_queue([task("m2")], {}, [], set(), QueueRules(1)).admit
    assert queued == (
        Admission(("ns", "m2"), P.QUEUED, None, "waiting in queue q", False, dispatch=True),
    )
    for trigger in (None, "backfill"):  # no trigger label, or a wrong one: labelled manual
        made = task("m3")
        made["metadata"]["labels"] = {"kadence.dev/scheduler-id": "q"}
        if trigger is not None:
            made["metadata"]["labels"]["kadence.dev/trigger"] = trigger
        admitted = plan_queue([made], {}, [], set(), QueueRules(1)).admit
        assert [admission.label for admission in admitted] == [True], trigger


@dataclass
class TaskCase:
    id: str
    phase: str | None
    job: dict[str, Any] | None
    phase_after: TaskPhase | None
    """The phase written; None: nothing written."""
    delete_job: bool = False
    wake_at: datetime | None = None
    now: datetime = A_MINUTE_LATER


TASK_CASES = [
    TaskCase("pending: the queue admits it, nothing here", None, None, None),
    TaskCase("queued, no Job yet", "Queued", None, None),
    TaskCase("queued, its Job exists (crash before status)", "Queued", job("t"), P.DISPATCHED,
             wake_at=ON_THE_HOUR + START),
    TaskCase("dispatched, its pod runs", "Dispatched", job("t", active=1), P.RUNNING),
    TaskCase("running, its Job completed", "Running", job("t", finished=True), P.COMPLETED),
    TaskCase("queued, its Job already completed", "Queued", job("t", finished=True), P.COMPLETED),
    TaskCase("dispatched, its Job deleted by hand", "Dispatched", None, P.FAILED),
    TaskCase("running, its Job deleted by hand", "Running", None, P.FAILED),
    TaskCase("running, no change", "Running", job("t", active=1), None),
    TaskCase("cancelled, its Job still running", "Cancelled", job("t", active=1), None, True),
    TaskCase("cancelled, its Job finished", "Cancelled", job("t", finished=True), None),
    TaskCase("failed, its Job still running", "Failed", job("t", active=1), None, True),
    TaskCase("completed: never moves again", "Completed", None, None),
    TaskCase("dispatched, pod pending, within the start timeout: no write, looks again then",
             "Dispatched", job("t", active=1, ready=0), None, False, ON_THE_HOUR + START),
    TaskCase("dispatched, pod pending past the start timeout", "Dispatched",
             job("t", active=1, ready=0), P.FAILED, True, now=ON_THE_HOUR + START),
    TaskCase("dispatched, no pod at all past the start timeout", "Dispatched",
             job("t"), P.FAILED, True, now=ON_THE_HOUR + START + timedelta(hours=1)),
    TaskCase("running, the start timeout is over and does not matter", "Running",
             job("t", active=1), None, now=ON_THE_HOUR + START + timedelta(hours=1)),
]  # fmt: skip


def settled(status: dict[str, Any], phase: TaskPhase) -> dict[str, Any]:
    """The status as the operator wrote it when the Task entered `phase`: with conditions."""
    written = advance_task(TaskStatus.model_validate(status), phase, ON_THE_HOUR, generation=None)
    assert written is not None
    return written.to_kube()


@pytest.mark.parametrize("case", TASK_CASES, ids=[case.id for case in TASK_CASES])
def test_plan_task(case: TaskCase) -> None:
    body = task("t", case.phase)
    if case.phase == "Running":
        body["status"].update(startedAt="2026-06-01T10:00:10Z", message="Job running", jobName="t")
    if case.phase == "Dispatched":
        body["status"].update(message="Job created, no pod running yet", jobName="t")
    if case.phase in ("Dispatched", "Running"):
        body["status"]["dispatchedAt"] = "2026-06-01T10:00:00Z"
        body["status"] = settled(body["status"], TaskPhase(case.phase))
    plan = plan_task(body, case.job, case.now, START)
    assert (plan.status.phase if plan.status else None) == case.phase_after
    assert plan.delete_job is case.delete_job
    assert plan.wake_at == case.wake_at


def test_a_deleted_job_fails_its_task_with_the_reason() -> None:
    body = task("t", "Running")
    body["status"]["jobName"] = "t"
    plan = plan_task(body, None, A_MINUTE_LATER, START)
    assert plan.status == TaskStatus.model_validate(
        {
            "phase": "Failed",
            "jobName": "t",
            "finishedAt": A_MINUTE_LATER,
            "message": "its Job t was deleted before it finished",
            "conditions": plan.status.conditions if plan.status else [],
        }
    )
    assert [(c.type, c.status) for c in plan.status.conditions] == [
        ("Ready", "False"),
        ("Stalled", "True"),
        ("Succeeded", "False"),
        ("Failed", "True"),
    ]


def test_a_job_that_never_starts_fails_its_task_with_the_reason() -> None:
    body = task("t", "Dispatched")
    body["status"].update(dispatchedAt="2026-06-01T10:00:00Z", jobName="t")
    plan = plan_task(body, job("t", active=1, ready=0), ON_THE_HOUR + START, START)
    assert plan.status is not None
    assert plan.status.message == (
        "Job t had no ready pod 0:15:00 after it was made (Job created, its pod is not ready "
        "yet); it is deleted and its slot freed"
    )


def test_a_finished_task_edited_afterwards_marks_the_new_generation_only() -> None:
    body = task("t", "Running")
    body["metadata"]["generation"] = 1
    body["status"] = settled(body["status"], TaskPhase.RUNNING)
    done = advance_task(
        TaskStatus.model_validate(body["status"]), P.COMPLETED, A_MINUTE_LATER, generation=1
    )
    assert done is not None
    body["status"] = done.to_kube()
    assert plan_task(body, None, A_MINUTE_LATER, START).status is None
    body["metadata"]["generation"] = 2
    plan = plan_task(body, None, A_MINUTE_LATER, START)
    assert plan.status is not None
    assert plan.status.observed_generation == 2
    assert {c.observed_generation for c in plan.status.conditions} == {2}
    assert (
        plan.status.model_copy(update={"observed_generation": 1, "conditions": done.conditions})
        == done
    ), "nothing but the generation changes"
