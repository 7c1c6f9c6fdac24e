"""What the Task controllers do, decided from what exists. Pure.

`plan_queue` is one pass over a queue: which new Tasks join it (or are refused), and
which heads become Jobs within its capacity. `plan_task` follows one Task's Job. Both
take the objects the controller read and return what to write; ownership is checked
here: a Job is a Task's only when its controlling ownerReference carries the Task's uid.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kadence.models import TaskPhase, TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TRIGGER_LABEL, TRIGGER_MANUAL
from kadence.queue import QueueItem, plan_dispatch, queue_order, serial_waits
from kadence.resources import (
    Body,
    Key,
    controller_kind,
    controller_uid,
    generation_of,
    key_of,
    phase_of,
    queue_item,
    scheduler_of,
    task_problem,
)
from kadence.status import (
    DUPLICATE,
    INVALID_SPEC,
    JOB_DELETED,
    JOB_FAILED,
    START_TIMEOUT,
    JobObservation,
    advance_task,
    observe_generation,
    observe_job,
    parse_time,
)


@dataclass(frozen=True)
class Admission:
    """A new (Pending) Task's way into its queue: Queued, or refused with a reason."""

    key: Key
    phase: TaskPhase
    reason: str | None
    """Why, in one CamelCase word, when it did not join the queue: InvalidSpec, Duplicate."""
    message: str
    label: bool = False
    """Give a Task made by hand the labels every Task carries: `kadence.dev/scheduler-id`,
    and `kadence.dev/trigger: manual`."""


def transition(
    phase: TaskPhase,
    now: datetime,
    *,
    reason: str | None = None,
    message: str | None = None,
    job_name: str | None = None,
) -> Callable[[TaskStatus, Body], TaskStatus | None]:
    """`advance_task` as a status writer's mutation, for the Task as the writer read it
    (its generation is the one the new status answers to)."""

    def mutation(status: TaskStatus, task: Body) -> TaskStatus | None:
        return advance_task(
            status,
            phase,
            now,
            generation=generation_of(task),
            reason=reason,
            message=message,
            job_name=job_name,
        )

    return mutation


@dataclass(frozen=True)
class QueueRules:
    """What the configuration says of one queue."""

    capacity: int
    shared: bool = False
    """Several namespaces share it: at equal priority they take turns."""
    namespace_capacity: int | None = None
    """In a shared queue, the most slots one namespace may hold."""
    priorities: tuple[int, int] | None = None
    """In a shared queue, the priorities allowed (inclusive)."""
    held: bool = False
    """No Job may be made now (the admission policies are missing): nothing leaves."""
    serial: bool = True
    """Hold back a BufferOne or BufferAll Task while work of its hash is dispatched or
    running (False: every Queued Task may leave, for a view of the whole order; the plan
    still says which would wait)."""


@dataclass(frozen=True)
class QueuePlan:
    """One pass over a queue."""

    admit: tuple[Admission, ...]
    dispatch: tuple[Key, ...]
    """Queued Tasks to turn into Jobs, in the order they leave the queue."""
    depth: int
    active: int
    messages: tuple[tuple[Key, str], ...] = ()
    """Queued Tasks whose message changes: a BufferOne or BufferAll Task says what it
    waits for, and says it waits in the queue again once that is over."""
    held_for_work: Mapping[Key, str] = field(default_factory=dict)
    """Queued BufferOne or BufferAll Tasks that wait for a Task of their hash (not for a
    slot), each with the name of the Task it waits for."""


def plan_queue(
    tasks: Sequence[Body],
    jobs_by_owner: Mapping[str, Body],
    queue_jobs: Sequence[Body],
    known_task_uids: Container[str],
    rules: QueueRules,
) -> QueuePlan:
    """Admit the queue's Pending Tasks, then dispatch its heads into the free slots.

    `tasks` are the queue's unfinished Tasks; `jobs_by_owner` the Jobs by the uid of the
    Task that controls them; `queue_jobs` the Jobs labelled with this queue. A slot is
    taken by a Task Dispatched or Running, by a Queued Task whose Job exists already (a
    crash between creating the Job and writing the Task), and by an unfinished Job whose
    Task is gone (deleted; the garbage collector has not removed the Job yet).

    A Task made by a Schedule is always queued (its Schedule's concurrency policy has
    decided); one made by hand is refused while a Task of the same hash is in the queue
    or running in the same namespace, the first made winning among new ones. In a shared
    queue, a Task whose priority is outside the allowed range is refused.

    A Task made by a BufferOne or BufferAll Schedule is not dispatched while a Task of
    its hash holds a slot in its namespace, nor before an earlier one of its hash
    (`serial_waits`); other Tasks pass it, and it keeps its place and says what it waits
    for in its message.
    """
    admit: list[Admission] = []
    queued: list[QueueItem] = []
    holding: dict[tuple[str, str], QueueItem] = {}
    busy: dict[tuple[str, str], QueueItem] = {}
    serial_queued: dict[Key, Body] = {}
    pending: list[Body] = []
    slots: Counter[str] = Counter(
        job["metadata"]["namespace"]
        for job in queue_jobs
        if controller_kind(job) == "Task"
        and controller_uid(job) not in known_task_uids
        and not observe_job(job).phase.finished
    )
    for task in tasks:
        phase = phase_of(task)
        if phase is TaskPhase.PENDING:
            pending.append(task)
            continue
        item = queue_item(task)
        held = holding.get((item.namespace, item.hash))
        if held is None or item.sort_key < held.sort_key:
            holding[(item.namespace, item.hash)] = item
        if phase.active or _uid(task) in jobs_by_owner:
            slots[item.namespace] += 1
            running = busy.get((item.namespace, item.hash))
            if running is None or item.sort_key < running.sort_key:
                busy[(item.namespace, item.hash)] = item
        elif phase is TaskPhase.QUEUED:
            queued.append(item)
            if item.serial:
                serial_queued[key_of(task)] = task

    for task in sorted(pending, key=_creation_order):
        key, item = key_of(task), queue_item(task)
        problem = task_problem(task) or _priority_problem(item, rules)
        manual = controller_kind(task) != "Schedule"
        label = manual and (
            _labels(task).get(SCHEDULER_ID_LABEL) != scheduler_of(task)
            or _labels(task).get(TRIGGER_LABEL) != TRIGGER_MANUAL
        )
        if problem is not None:
            admit.append(Admission(key, TaskPhase.FAILED, INVALID_SPEC, problem, label))
        elif manual and (held := holding.get((item.namespace, item.hash))) is not None:
            message = f"duplicate of task {held.name}, already in queue"
            admit.append(Admission(key, TaskPhase.CANCELLED, DUPLICATE, message, label))
        else:
            message = waiting_message(None, scheduler_of(task))
            admit.append(Admission(key, TaskPhase.QUEUED, None, message, label))
            holding.setdefault((item.namespace, item.hash), item)
    active = sum(slots.values())
    waits = serial_waits(queued, {work: item.name for work, item in busy.items()})
    eligible = [
        item for item in queued if not rules.serial or (item.namespace, item.name) not in waits
    ]
    if rules.held:
        heads: list[QueueItem] = []
    elif rules.shared:
        heads = fair_dispatch(eligible, slots, rules.capacity, rules.namespace_capacity)
    else:
        heads = plan_dispatch(eligible, active, rules.capacity)
    dispatch = tuple((item.namespace, item.name) for item in heads)
    return QueuePlan(
        admit=tuple(admit),
        dispatch=dispatch,
        depth=len(queued),
        active=active,
        messages=tuple(
            (key, message)
            for key, task in sorted(serial_queued.items())
            if key not in dispatch
            and (message := waiting_message(waits.get(key), scheduler_of(task)))
            != (task.get("status") or {}).get("message")
        ),
        held_for_work=waits,
    )


def waiting_message(blocker: str | None, scheduler_id: str) -> str:
    """What a Queued Task says: the queue it waits in, or the task of its work it waits for."""
    if blocker is not None:
        return f"waiting for task {blocker} (same hash) to finish"
    return f"waiting in queue {scheduler_id}"


def fair_dispatch(
    queued: Sequence[QueueItem],
    slots: Mapping[str, int],
    capacity: int,
    namespace_capacity: int | None,
) -> list[QueueItem]:
    """The heads of a shared queue that fit its free slots, namespaces taking turns.

    Lower priority still goes first; at equal priority the namespace holding fewer slots
    goes next (counting those dispatched in this pass), so one namespace's burst takes
    no more than its share while another has work waiting. A namespace at its
    `namespace_capacity` waits.
    """
    held = Counter(slots)
    free = capacity - sum(held.values())
    lines: dict[str, deque[QueueItem]] = {}
    for item in queue_order(queued):
        lines.setdefault(item.namespace, deque()).append(item)
    chosen: list[QueueItem] = []
    while free > 0:
        candidates = [
            (line[0].priority, held[namespace], line[0].sort_key, namespace)
            for namespace, line in lines.items()
            if line and (namespace_capacity is None or held[namespace] < namespace_capacity)
        ]
        if not candidates:
            break
        namespace = min(candidates)[3]
        chosen.append(lines[namespace].popleft())
        held[namespace] += 1
        free -= 1
    return chosen


def _priority_problem(item: QueueItem, rules: QueueRules) -> str | None:
    if not rules.shared or rules.priorities is None:
        return None
    low, high = rules.priorities
    if low <= item.priority <= high:
        return None
    return f"priority {item.priority} is outside {low}..{high}, the range this shared queue allows"


@dataclass(frozen=True)
class TaskPlan:
    """What following one Task's Job changes."""

    status: TaskStatus | None
    """The Task's new status; None: nothing to write."""
    delete_job: bool = False
    """The Task is over but its Job is not (cancelled, or it never started): stop it."""
    wake_at: datetime | None = None
    """When to look again: the Job's start timeout."""


def plan_task(task: Body, job: Body | None, now: datetime, start_timeout: timedelta) -> TaskPlan:
    """Carry the Job's progress to its Task; `job` is the Job the Task controls, or None.

    A Queued Task whose Job exists moves on (a crash came between the two writes); a
    Dispatched or Running Task whose Job is gone fails, so its queue never stalls; a Job
    with no ready pod `start_timeout` after its dispatch (a pod that cannot be scheduled,
    an image that cannot be pulled) fails its Task and is deleted, so its slot is freed;
    a finished Task's unfinished Job is deleted.
    """
    phase = phase_of(task)
    status = TaskStatus.model_validate(task.get("status") or {})
    generation = generation_of(task)
    if phase is TaskPhase.PENDING:
        return TaskPlan(None)
    if phase.finished:
        running = job is not None and not observe_job(job).phase.finished
        return TaskPlan(observe_generation(status, generation), delete_job=running)
    if job is None:
        if phase is TaskPhase.QUEUED:
            return TaskPlan(None)
        name = status.job_name or task["metadata"]["name"]
        message = f"its Job {name} was deleted before it finished"
        return TaskPlan(
            advance_task(
                status,
                TaskPhase.FAILED,
                now,
                generation=generation,
                reason=JOB_DELETED,
                message=message,
            )
        )
    seen = observe_job(job)
    dispatched_at = status.dispatched_at or parse_time(job["metadata"].get("creationTimestamp"))
    if seen.phase is TaskPhase.DISPATCHED and dispatched_at is not None:
        deadline = dispatched_at + start_timeout
        if now < deadline:
            return TaskPlan(_progress(status, seen, job, generation, now), wake_at=deadline)
        message = (
            f"Job {job['metadata']['name']} had no ready pod {start_timeout} after it was "
            f"made ({seen.message}); it is deleted and its slot freed"
        )
        failed = advance_task(
            status,
            TaskPhase.FAILED,
            now,
            generation=generation,
            reason=START_TIMEOUT,
            message=message,
        )
        return TaskPlan(failed, delete_job=True)
    return TaskPlan(_progress(status, seen, job, generation, now))


def _progress(
    status: TaskStatus, seen: JobObservation, job: Body, generation: int | None, now: datetime
) -> TaskStatus | None:
    return advance_task(
        status,
        seen.phase,
        now,
        generation=generation,
        reason=JOB_FAILED if seen.phase is TaskPhase.FAILED else None,
        message=seen.message or None,
        started_at=None if seen.phase is TaskPhase.DISPATCHED else seen.started_at,
        finished_at=seen.finished_at,
        job_name=job["metadata"]["name"],
    )


def _uid(task: Body) -> str:
    return str(task["metadata"].get("uid", ""))


def _labels(task: Body) -> dict[str, str]:
    return task["metadata"].get("labels") or {}


def _creation_order(task: Body) -> tuple[str, str]:
    """Oldest first: API timestamps are RFC 3339 in UTC, so their text sorts as time does."""
    return task["metadata"].get("creationTimestamp", ""), task["metadata"]["name"]
