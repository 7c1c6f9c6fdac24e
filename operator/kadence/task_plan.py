"""What the Task controllers do, decided from what exists. Pure.

`plan_queue` is one pass over a queue: which new Tasks join it (or are refused), and
which heads become Jobs within its capacity, or, in a pull queue, whose claim requests
are granted. `plan_task` follows one Task's Job, or its runner's claim. Both take the
objects the controller read and return what to write; ownership is checked here: a Job
is a Task's only when its controlling ownerReference carries the Task's uid.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from kadence.config import PullQueue
from kadence.jobs import rfc3339
from kadence.models import ClaimOutcome, TaskClaim, TaskPhase, TaskStatus
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
    CLAIM_EXPIRED,
    CLAIM_RELEASED,
    DUPLICATE,
    INVALID_SPEC,
    JOB_DELETED,
    JOB_FAILED,
    RUNNER_FAILED,
    START_TIMEOUT,
    JobObservation,
    advance_task,
    observe_generation,
    observe_job,
    parse_time,
    task_conditions,
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
    dispatch: bool = False
    """It joins the queue and leaves it in the same pass (a slot is free): its Job is made
    and one status write takes it from Pending through Queued to Dispatched."""


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


def admission_status(
    admission: Admission, now: datetime
) -> Callable[[TaskStatus, Body], TaskStatus | None]:
    """The status write of an admission: Queued, or refused with its reason."""
    return transition(admission.phase, now, reason=admission.reason, message=admission.message)


def in_turn(
    *mutations: Callable[[TaskStatus, Body], TaskStatus | None],
) -> Callable[[TaskStatus, Body], TaskStatus | None]:
    """Several mutations as one, each applied to what the one before made (one write)."""

    def mutation(status: TaskStatus, task: Body) -> TaskStatus | None:
        changed = None
        for step in mutations:
            new = step(status, task)
            if new is not None:
                status = changed = new
        return changed

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
    pull: bool = False
    """Runners claim its Tasks: a head leaves when its claim request is granted, and no
    Job is made."""


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
    grant: tuple[Key, ...] = ()
    """In a pull queue: Queued Tasks whose claim request is granted, in queue order."""
    withdraw: tuple[Key, ...] = ()
    """In a pull queue: Queued Tasks whose claim request was not granted within its lease
    (its runner is presumed gone) or is no request at all: the claim is removed."""
    wake_at: datetime | None = None
    """In a pull queue: when the first claim request left waiting runs out."""


def plan_queue(
    tasks: Sequence[Body],
    jobs_by_owner: Mapping[str, Body],
    queue_jobs: Sequence[Body],
    known_task_uids: Container[str],
    rules: QueueRules,
    *,
    now: datetime | None = None,
    item_of: Callable[[Body], QueueItem] = queue_item,
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

    In a pull queue (`rules.pull`) only the Queued Tasks with a claim request may leave,
    in the same order and within the same slots; each leaves by a grant, not a Job. A
    request older than its lease at `now` is withdrawn instead (without `now`, a view,
    every request counts). `item_of` reads a Task as the queue orders it (`queue_item`, or
    the store's copy of it).
    """
    waiting: list[Body] = []
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
        item = item_of(task)
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
            waiting.append(task)
            if item.serial:
                serial_queued[key_of(task)] = task

    admit = _admissions(pending, holding, rules, item_of)
    if not rules.pull:
        joining, holding_slots = _joining(pending, admit, jobs_by_owner, item_of)
        queued.extend(joining)
        slots.update(holding_slots)
    active = sum(slots.values())
    requests, withdraw = claim_requests(waiting, now) if rules.pull else ({}, ())
    waits = serial_waits(queued, {work: item.name for work, item in busy.items()})
    eligible = [
        item
        for item in queued
        if (not rules.serial or (item.namespace, item.name) not in waits)
        and (not rules.pull or (item.namespace, item.name) in requests)
    ]
    if rules.held:
        heads: list[QueueItem] = []
    elif rules.shared:
        heads = fair_dispatch(eligible, slots, rules.capacity, rules.namespace_capacity)
    else:
        heads = plan_dispatch(eligible, active, rules.capacity)
    leaving = tuple((item.namespace, item.name) for item in heads)
    dispatch = () if rules.pull else leaving
    grant = leaving if rules.pull else ()
    scheduler_id = scheduler_of(tasks[0]) if tasks else ""
    admit = tuple(_joined(admission, dispatch, waits, scheduler_id) for admission in admit)
    return QueuePlan(
        admit=admit,
        dispatch=dispatch,
        grant=grant,
        withdraw=withdraw,
        wake_at=min((at for key, at in requests.items() if key not in grant), default=None),
        depth=len(queued),
        active=active,
        messages=tuple(
            (key, message)
            for key, task in sorted(serial_queued.items())
            if key not in leaving
            and (message := waiting_message(waits.get(key), scheduler_of(task)))
            != (task.get("status") or {}).get("message")
        ),
        held_for_work=waits,
    )


def _joining(
    pending: Sequence[Body],
    admit: Sequence[Admission],
    jobs_by_owner: Mapping[str, Body],
    item_of: Callable[[Body], QueueItem],
) -> tuple[list[QueueItem], list[str]]:
    """The Tasks admitted in this pass, which may leave in it too (one status write instead
    of two), and the namespaces of those whose Job exists already (a crash came after the
    Job): these hold their slot and move on with their Job (`plan_task`), as a Queued one
    does."""
    admitted = {admission.key for admission in admit if admission.phase is TaskPhase.QUEUED}
    joining: list[QueueItem] = []
    holding: list[str] = []
    for task in pending:
        if key_of(task) not in admitted:
            continue
        item = item_of(task)
        if _uid(task) in jobs_by_owner:
            holding.append(item.namespace)
        else:
            joining.append(item)
    return joining, holding


def _joined(
    admission: Admission, dispatch: Container[Key], waits: Mapping[Key, str], scheduler_id: str
) -> Admission:
    """An admission to the queue as this pass leaves it: dispatched at once, or waiting
    (for a Task of its work, when one holds it back)."""
    if admission.phase is not TaskPhase.QUEUED:
        return admission
    return replace(
        admission,
        dispatch=admission.key in dispatch,
        message=waiting_message(waits.get(admission.key), scheduler_id),
    )


def _admissions(
    pending: Sequence[Body],
    holding: dict[tuple[str, str], QueueItem],
    rules: QueueRules,
    item_of: Callable[[Body], QueueItem],
) -> tuple[Admission, ...]:
    """The Pending Tasks' ways into the queue, oldest first; `holding` has the first Task
    of each (namespace, hash) in the queue, and gains those admitted."""
    admit: list[Admission] = []
    for task in sorted(pending, key=_creation_order):
        key, item = key_of(task), item_of(task)
        problem = task_problem(task, pull=rules.pull) or _priority_problem(item, rules)
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
    return tuple(admit)


def claim_requests(
    queued: Sequence[Body], now: datetime | None
) -> tuple[dict[Key, datetime], tuple[Key, ...]]:
    """Of a pull queue's Queued Tasks: those with a live claim request, each with the
    moment it runs out, and those whose claim is to be withdrawn (`live_request`)."""
    live: dict[Key, datetime] = {}
    stale: list[Key] = []
    for task in queued:
        claim = claim_of(task)
        if claim is None:
            continue
        if live_request(claim, now):
            live[key_of(task)] = request_expiry(claim)
        else:
            stale.append(key_of(task))
    return live, tuple(sorted(stale))


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
    """When to look again: the Job's start timeout, or the end of a claim's lease."""
    lost: tuple[str, str, str] | None = None
    """(Event type, reason, message) when the status written ends a runner's claim before
    its Task finished: a Warning ClaimExpired, or a Normal ClaimReleased (given back)."""


def plan_task(
    task: Body,
    job: Body | None,
    now: datetime,
    start_timeout: timedelta,
    pull: PullQueue | None = None,
) -> TaskPlan:
    """Carry the Job's progress to its Task; `job` is the Job the Task controls, or None.
    In a pull queue (`pull`), follow the runner's claim instead (`plan_claim`).

    A Task follows what it was given to, whatever the configuration says now: one that
    has a Job (or a jobName) its Job, one with a granted claim its claim. So a queue of
    Jobs turned into a pull queue neither requeues a running Job's Task (the work would
    run twice), nor does a pull queue turned into a queue of Jobs fail its claimed Tasks.

    A Queued Task whose Job exists moves on (a crash came between the two writes); a
    Dispatched or Running Task whose Job is gone fails, so its queue never stalls; a Job
    with no ready pod `start_timeout` after its dispatch (a pod that cannot be scheduled,
    an image that cannot be pulled) fails its Task and is deleted, so its slot is freed;
    a finished Task's unfinished Job is deleted.
    """
    phase = phase_of(task)
    status = TaskStatus.model_validate(task.get("status") or {})
    granted = status.claim is not None and status.claim.claimed_at is not None
    if job is None and status.job_name is None and (pull is not None or granted):
        return plan_claim(task, now, (pull or PullQueue()).max_attempts)
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


def claim_of(task: Body) -> TaskClaim | None:
    """A Task's claim, or a runner's request for one (`status.claim`); only it is read, as
    a queue pass reads every Queued Task."""
    raw = (task.get("status") or {}).get("claim")
    return TaskClaim.model_validate(raw) if raw is not None else None


def live_request(claim: TaskClaim, now: datetime | None) -> bool:
    """Whether a Queued Task's claim is a request the queue may grant at `now` (None: a
    view, any age will do): never granted, not older than its lease, and carrying none of
    what a runner writes only once granted (a renewal, a start, an outcome). A Queued Task
    holds no grant, and a report written before the grant must not finish the Task the
    moment it is granted: such a claim is no request, and is withdrawn."""
    reported = (
        claim.renewed_at,
        claim.started_at,
        claim.outcome,
        claim.message,
        claim.result,
        claim.finished_at,
    )
    return (
        claim.claimed_at is None
        and all(field is None for field in reported)
        and (now is None or now < request_expiry(claim))
    )


def request_expiry(claim: TaskClaim) -> datetime:
    """When a claim request not granted yet is presumed abandoned by its runner."""
    return claim.requested_at + timedelta(seconds=claim.lease_seconds)


def lease_expiry(claim: TaskClaim) -> datetime:
    """When a granted claim runs out unless its runner renews it: `leaseSeconds` after
    its last renewal, never counted from before the grant."""
    granted = claim.claimed_at or claim.requested_at
    renewed = max(claim.renewed_at or granted, granted)
    return renewed + timedelta(seconds=claim.lease_seconds)


def _within(moment: datetime | None, earliest: datetime, now: datetime) -> datetime | None:
    """A time a runner wrote, held between `earliest` and the operator's `now`: a runner
    cannot date its work before its grant nor after the present."""
    return min(max(moment, earliest), now) if moment is not None else None


def grant_claim(now: datetime) -> Callable[[TaskStatus, Body], TaskStatus | None]:
    """The grant as a status writer's mutation: a Queued Task whose claim request is live
    at `now` becomes Dispatched to its requester, one more attempt, its lease starting now.
    Anything else (the request withdrawn, the Task gone on) is left alone."""

    def mutation(status: TaskStatus, task: Body) -> TaskStatus | None:
        claim = status.claim
        if status.phase is not TaskPhase.QUEUED or claim is None or not live_request(claim, now):
            return None
        dispatched = advance_task(
            status,
            TaskPhase.DISPATCHED,
            now,
            generation=generation_of(task),
            message=f"claimed by {claim.holder}",
        )
        if dispatched is None:
            return None
        granted = claim.model_copy(update={"claimed_at": now, "renewed_at": now})
        return dispatched.model_copy(
            update={"attempts": (status.attempts or 0) + 1, "claim": granted}
        )

    return mutation


def withdraw_request(now: datetime) -> Callable[[TaskStatus, Body], TaskStatus | None]:
    """The removal of a Queued Task's claim that is no live request at `now` (its runner
    is presumed gone), as a status writer's mutation; a live one is left alone."""

    def mutation(status: TaskStatus, task: Body) -> TaskStatus | None:
        claim = status.claim
        if status.phase is not TaskPhase.QUEUED or claim is None or live_request(claim, now):
            return None
        return status.model_copy(update={"claim": None})

    return mutation


def plan_claim(task: Body, now: datetime, max_attempts: int) -> TaskPlan:
    """Carry a runner's claim to its Task, in a pull queue.

    A Dispatched or Running Task follows its claim: Running once the runner says it
    started, Completed or Failed (with the runner's result) once it says how the work
    ended. A claim whose lease ran out unrenewed is lost: the Task goes back to its
    queue, or fails once `max_attempts` claims were granted. A claim its runner removed
    was given back (the runner stopped on purpose): the Task goes back to its queue and
    the attempt does not count. Otherwise the plan wakes when the lease runs out. Queued
    Tasks are the queue's.

    The runner's times are not trusted beyond the operator's clock: a renewal dated after
    `now` is written back as `now` (else a runner could hold its slot for as long as it
    dates its renewal ahead), and its start and end are held between the grant and `now`
    (they order a Schedule's history, time its interval and pick the Tasks pruned).
    """
    phase = phase_of(task)
    status = TaskStatus.model_validate(task.get("status") or {})
    generation = generation_of(task)
    if phase.finished:
        return TaskPlan(observe_generation(status, generation))
    if not phase.active:
        return TaskPlan(None)
    claim = status.claim
    if claim is None or claim.claimed_at is None:
        attempts = max((status.attempts or 0) - 1, 0)
        message = "its runner gave its claim back before it finished"
        requeued = _requeue(
            status, generation, now, attempts=attempts, reason=CLAIM_RELEASED, message=message
        )
        return TaskPlan(requeued, lost=("Normal", CLAIM_RELEASED, message))
    started_at = _within(claim.started_at, claim.claimed_at, now)
    if claim.outcome is not None:
        return TaskPlan(_claim_finished(status, claim, generation, now, started_at=started_at))
    expiry = lease_expiry(claim)
    if now >= expiry:
        said = f"claim of {claim.holder} expired at {rfc3339(expiry)}"
        return _expire(status, generation, now, max_attempts, said)
    bounded = status
    if claim.renewed_at is not None and claim.renewed_at > now:
        bounded = status.model_copy(update={"claim": claim.model_copy(update={"renewed_at": now})})
        expiry = now + timedelta(seconds=claim.lease_seconds)
    running = None
    if started_at is not None:
        running = advance_task(
            bounded,
            TaskPhase.RUNNING,
            now,
            generation=generation,
            message=f"running, claimed by {claim.holder}",
            started_at=started_at,
        )
    written = running or (bounded if bounded is not status else None)
    return TaskPlan(written, wake_at=expiry)


def _claim_finished(
    status: TaskStatus,
    claim: TaskClaim,
    generation: int | None,
    now: datetime,
    *,
    started_at: datetime | None,
) -> TaskStatus | None:
    """The Task finished as its runner says, with its result; `started_at` is the runner's
    start already held between the grant and `now`, and so is its end."""
    finished_at = _within(claim.finished_at, started_at or claim.claimed_at or now, now)
    completed = claim.outcome is ClaimOutcome.COMPLETED
    said = f"{'completed' if completed else 'failed'}, claimed by {claim.holder}"
    said = f"{said}: {claim.message}" if claim.message else said
    result = claim.result if claim.result is None or _is_json(claim.result) else None
    if result != claim.result:
        said = f"{said} (its result was not JSON and is left out)"
    finished = advance_task(
        status,
        TaskPhase.COMPLETED if completed else TaskPhase.FAILED,
        now,
        generation=generation,
        reason=None if completed else RUNNER_FAILED,
        message=said,
        started_at=started_at,
        finished_at=finished_at,
    )
    return finished.model_copy(update={"result": result}) if finished is not None else None


def _is_json(text: str) -> bool:
    """Whether a runner's result parses as JSON: only then is it copied to the Task and its
    Schedule's history, whose readers parse it (the CRD bounds its length, not its form)."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return False
    return True


def _expire(
    status: TaskStatus, generation: int | None, now: datetime, max_attempts: int, said: str
) -> TaskPlan:
    """A lease that ran out: back to the queue while attempts are left, else Failed."""
    attempts = status.attempts or 0
    message = f"{said} (attempt {attempts} of {max_attempts})"
    if attempts < max_attempts:
        requeued = _requeue(
            status, generation, now, attempts=attempts, reason=CLAIM_EXPIRED, message=message
        )
        return TaskPlan(requeued, lost=("Warning", CLAIM_EXPIRED, message))
    message = f"{message}: no attempts left"
    failed = advance_task(
        status, TaskPhase.FAILED, now, generation=generation, reason=CLAIM_EXPIRED, message=message
    )
    if failed is None:
        return TaskPlan(None)
    return TaskPlan(
        failed.model_copy(update={"claim": None}), lost=("Warning", CLAIM_EXPIRED, message)
    )


def _requeue(
    status: TaskStatus,
    generation: int | None,
    now: datetime,
    *,
    attempts: int,
    reason: str,
    message: str,
) -> TaskStatus:
    """The Task back in its queue without a claim, as if never dispatched; `attempts` are
    the claims that count toward maxAttempts."""
    return status.model_copy(
        update={
            "phase": TaskPhase.QUEUED,
            "message": message,
            "claim": None,
            "attempts": attempts,
            "dispatched_at": None,
            "started_at": None,
            "conditions": task_conditions(
                status.conditions, TaskPhase.QUEUED, message, generation, now, reason=reason
            ),
            "observed_generation": generation,
        }
    )


def _progress(
    status: TaskStatus, seen: JobObservation, job: Body, generation: int | None, now: datetime
) -> TaskStatus | None:
    """The Task as its Job shows it. A Dispatched Task keeps its message until its Job
    runs: a pod created but not ready yet was one more write for every run."""
    waiting = seen.phase is TaskPhase.DISPATCHED and status.phase is TaskPhase.DISPATCHED
    return advance_task(
        status,
        seen.phase,
        now,
        generation=generation,
        reason=JOB_FAILED if seen.phase is TaskPhase.FAILED else None,
        message=None if waiting else seen.message or None,
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
