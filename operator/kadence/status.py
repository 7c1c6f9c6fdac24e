"""Status of tasks and schedules: what a Job says, and how each event changes a status.

Every function returns a new value and leaves its input alone. The schedule
transitions may be applied twice (after a write conflict or a crash) without
counting anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kadence.models import (
    FINISHED_PHASES,
    Condition,
    TaskPhase,
    TaskStatus,
)

SUCCEEDED = "Succeeded"
FAILED = "Failed"
READY = "Ready"
HEALTHY = "Healthy"
STALLED = "Stalled"
RECONCILING = "Reconciling"
LAST_RUN_SUCCEEDED = "LastRunSucceeded"
SUSPENDED = "Suspended"

# Reasons, shared by conditions and the Events that report them (docs/status.md).
INVALID_SPEC = "InvalidSpec"
TEMPLATE_REJECTED = "TemplateRejected"
ADMISSION_POLICY_MISSING = "AdmissionPolicyMissing"
STALLED_REASONS = frozenset({INVALID_SPEC, TEMPLATE_REJECTED, ADMISSION_POLICY_MISSING})
"""A Schedule's Ready reasons that will not fix themselves: a person must change something."""
JOB_FAILED = "JobFailed"
JOB_DELETED = "JobDeleted"
JOB_REFUSED = "JobRefused"
START_TIMEOUT = "StartTimeout"
RUNNER_FAILED = "RunnerFailed"
CLAIM_EXPIRED = "ClaimExpired"
CLAIM_RELEASED = "ClaimReleased"
DUPLICATE = "Duplicate"
SCHEDULE_DISABLED = "ScheduleDisabled"
ENDED = "Ended"
RUN_LIMIT_REACHED = "RunLimitReached"
REPLACED = "Replaced"
CONSECUTIVE_FAILURES = "ConsecutiveFailures"

_RANK = {
    TaskPhase.PENDING: 0,
    TaskPhase.QUEUED: 1,
    TaskPhase.DISPATCHED: 2,
    TaskPhase.RUNNING: 3,
    TaskPhase.COMPLETED: 4,
    TaskPhase.FAILED: 4,
    TaskPhase.CANCELLED: 4,
}
_ENTERED_AT = {
    TaskPhase.QUEUED: "queued_at",
    TaskPhase.DISPATCHED: "dispatched_at",
    TaskPhase.RUNNING: "started_at",
    TaskPhase.COMPLETED: "finished_at",
    TaskPhase.FAILED: "finished_at",
    TaskPhase.CANCELLED: "finished_at",
}


def parse_time(value: str | datetime | None) -> datetime | None:
    """An API timestamp (RFC 3339) as an aware datetime; a missing or naive one is read as UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobObservation:
    """What a Job's status means for its task."""

    phase: TaskPhase
    started_at: datetime | None
    finished_at: datetime | None
    message: str


def observe_job(job: Mapping[str, Any]) -> JobObservation:
    """Read a batch/v1 Job's status as a task phase.

    `Running` means a pod of the Job is ready: a pod that is only created (pending, not
    scheduled, pulling its image) leaves the task `Dispatched`, saying so.

    `SuccessCriteriaMet` and `FailureTarget` count as finished: the Job controller sets
    them as soon as the outcome is decided, before the last pods have terminated.
    """
    status = job.get("status") or {}
    started_at = parse_time(status.get("startTime"))
    true_conditions = {
        condition.get("type"): condition
        for condition in status.get("conditions") or []
        if condition.get("status") == "True"
    }
    for kind in ("Failed", "FailureTarget"):
        if kind in true_conditions:
            condition = true_conditions[kind]
            reason = condition.get("reason") or "Failed"
            detail = condition.get("message") or ""
            return JobObservation(
                phase=TaskPhase.FAILED,
                started_at=started_at,
                finished_at=parse_time(condition.get("lastTransitionTime")),
                message=f"Job failed: {reason}: {detail}" if detail else f"Job failed: {reason}",
            )
    for kind in ("Complete", "SuccessCriteriaMet"):
        if kind in true_conditions:
            finished_at = parse_time(status.get("completionTime")) or parse_time(
                true_conditions[kind].get("lastTransitionTime")
            )
            return JobObservation(TaskPhase.COMPLETED, started_at, finished_at, "Job completed")
    if (status.get("ready") or 0) > 0:
        return JobObservation(TaskPhase.RUNNING, started_at, None, "Job running")
    if (status.get("active") or 0) > 0:
        return JobObservation(
            TaskPhase.DISPATCHED, started_at, None, "Job created, its pod is not ready yet"
        )
    return JobObservation(TaskPhase.DISPATCHED, started_at, None, "Job created, no pod running yet")


def set_condition(
    conditions: Sequence[Condition], new: Condition, now: datetime
) -> list[Condition]:
    """The conditions with `new` in place of the one of its type.

    lastTransitionTime moves only when the status changes, so alerts measure how long a
    condition has held, not when it was last written.
    """
    old = next((c for c in conditions if c.type == new.type), None)
    since = old.last_transition_time if old is not None and old.status == new.status else None
    # Whole seconds, as metav1.Time writes them.
    stamped = new.model_copy(update={"last_transition_time": since or now.replace(microsecond=0)})
    if old is None:
        return [*conditions, stamped]
    return [stamped if c.type == new.type else c for c in conditions]


def drop_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    """The conditions without the one of `type_`."""
    return [c for c in conditions if c.type != type_]


def abnormal_condition(
    conditions: Sequence[Condition],
    type_: str,
    reason: str | None,
    message: str,
    now: datetime,
) -> list[Condition]:
    """Stalled and Reconciling follow kstatus' abnormal-true pattern: present, and True,
    only while they hold (`reason` given); absent otherwise."""
    if reason is None:
        return drop_condition(conditions, type_)
    return set_condition(
        conditions, Condition(type=type_, status="True", reason=reason, message=message), now
    )


def observed(conditions: Sequence[Condition], generation: int | None) -> list[Condition]:
    """Every condition marked as set for `generation`: all are evaluated on each write."""
    return [c.model_copy(update={"observed_generation": generation}) for c in conditions]


def task_conditions(
    conditions: Sequence[Condition],
    phase: TaskPhase,
    message: str,
    generation: int | None,
    now: datetime,
    *,
    reason: str | None = None,
) -> list[Condition]:
    """A Task's conditions in `phase`, read alike by kubectl wait, kstatus and Argo CD.

    Ready holds while the run progresses normally and once it completed; Reconciling
    while it is unfinished; Stalled once it failed or was cancelled (it will not run).
    Succeeded and Failed appear when it finishes, so `kubectl wait` ends either way.
    Their reason is `reason` (why it ended: JobFailed, StartTimeout...), else the phase.
    """
    failed = phase in (TaskPhase.FAILED, TaskPhase.CANCELLED)
    reason = reason or phase.value
    ready = Condition(type=READY, status=str(not failed), reason=reason, message=message)
    result = set_condition(conditions, ready, now)
    running = None if phase.finished else reason
    result = abnormal_condition(result, RECONCILING, running, message, now)
    result = abnormal_condition(result, STALLED, reason if failed else None, message, now)
    if phase.finished:
        succeeded = phase is TaskPhase.COMPLETED
        for type_, holds in ((SUCCEEDED, succeeded), (FAILED, not succeeded)):
            outcome = Condition(type=type_, status=str(holds), reason=reason, message=message)
            result = set_condition(result, outcome, now)
    return observed(result, generation)


def advance_task(
    status: TaskStatus,
    phase: TaskPhase,
    now: datetime,
    *,
    generation: int | None,
    reason: str | None = None,
    message: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    job_name: str | None = None,
) -> TaskStatus | None:
    """The task's status after moving to `phase`, or None when nothing would change.

    Phases only move forward, and may skip steps (a Job seen finished before it was seen
    running); a finished phase is never left. Staying in a phase fills in what was
    missing without overwriting a recorded time. Entering a phase clears the old message.
    The conditions and `observedGeneration` follow the phase and `generation`; `reason`
    is the CamelCase word for why the phase was entered (docs/status.md).
    """
    current = status.phase
    if current is not None and (current.finished or _RANK[phase] < _RANK[current]):
        return None
    update: dict[str, Any] = {}
    if phase != current:
        update["phase"] = phase
        update["message"] = message
    elif message is not None:
        update["message"] = message
    if job_name is not None:
        update["job_name"] = job_name
    if started_at is not None and status.started_at is None:
        update["started_at"] = started_at
    entered = _ENTERED_AT.get(phase)
    if entered is not None and getattr(status, entered) is None and entered not in update:
        update[entered] = (finished_at or now) if phase.finished else now
    text = update.get("message", status.message) or phase.value
    update["conditions"] = task_conditions(
        status.conditions, phase, text, generation, now, reason=reason
    )
    update["observed_generation"] = generation
    new = status.model_copy(update=update)
    return None if new == status else new


def finished_now(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[TaskPhase, str, str] | None:
    """(phase, reason, message) when a write moved a Task into a final phase, else None.
    Read from the raw status: it runs after every Task status write."""
    before = (old.get("status") or {}).get("phase")
    after = new.get("status") or {}
    if after.get("phase") not in FINISHED_PHASES or after.get("phase") == before:
        return None
    phase = TaskPhase(after["phase"])
    ready: Mapping[str, Any] = next(
        (c for c in after.get("conditions") or () if c.get("type") == READY), {}
    )
    return phase, ready.get("reason") or phase.value, after.get("message") or phase.value


def observe_generation(status: TaskStatus, generation: int | None) -> TaskStatus | None:
    """A finished Task's status marked as seen for a spec edited after it ended (nothing
    else changes: a finished run stays as it ended), or None when already marked."""
    if status.observed_generation == generation:
        return None
    return status.model_copy(
        update={
            "observed_generation": generation,
            "conditions": observed(status.conditions, generation),
        }
    )


def scheduled_condition() -> Condition:
    """Ready True: the spec is valid and enabled, so tasks are made at each deadline."""
    return Condition(
        type=READY, status="True", reason="Scheduled", message="tasks are made at each deadline"
    )


def disabled_condition(suspend_reason: str | None) -> Condition:
    """Ready False: spec.enabled is false, so no tasks are made; says why, when told."""
    message = "spec.enabled is false: no new tasks"
    if suspend_reason:
        message = f"{message}: {suspend_reason}"
    return Condition(type=READY, status="False", reason="Disabled", message=message)


def suspended_condition(message: str) -> Condition:
    """Ready False: too many runs failed in a row, so deadlines make no tasks until resumed."""
    return Condition(type=READY, status="False", reason=SUSPENDED, message=message)


def ended_condition(reason: str, message: str) -> Condition:
    """Ready False: the schedule has finished (`Ended`, `RunLimitReached`) and makes no more
    tasks. Not an error: like Disabled, nothing is Stalled."""
    return Condition(type=READY, status="False", reason=reason, message=message)


def stalled_condition(reason: str, message: str) -> Condition:
    """Ready False for what will not fix itself; Stalled says the same (kstatus)."""
    return Condition(type=READY, status="False", reason=reason, message=message)


def held_condition(message: str) -> Condition:
    """Ready False: tasks are made, but no Job runs until the admission policies are back."""
    return stalled_condition(ADMISSION_POLICY_MISSING, f"tasks wait in their queues; {message}")


def schedule_conditions(
    conditions: Sequence[Condition],
    ready: Condition,
    *,
    cancelling: int,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A Schedule's Ready, Stalled and Reconciling, all marked with `generation`.

    Stalled mirrors a Ready that only a person can fix; Reconciling holds while tasks
    are being cancelled by the change just observed (a disable, a Replace).
    """
    result = set_condition(conditions, ready, now)
    stalled = ready.reason if ready.reason in STALLED_REASONS else None
    result = abnormal_condition(result, STALLED, stalled, ready.message, now)
    tasks = "task" if cancelling == 1 else "tasks"
    result = abnormal_condition(
        result,
        RECONCILING,
        "Cancelling" if cancelling else None,
        f"cancelling {cancelling} queued {tasks}",
        now,
    )
    return observed(result, generation)


def run_conditions(
    conditions: Sequence[Condition],
    last_run: tuple[str, TaskPhase] | None,
    missed_since_last_run: int,
    now: datetime,
) -> list[Condition]:
    """LastRunSucceeded says how the latest finished run ended; Healthy is False when it
    failed or when deadlines passed without a task since it finished, so that "the
    schedule fires" (Ready) and "its runs go well" are two facts an alert can tell apart."""
    result = list(conditions)
    health: Condition | None = None
    if last_run is not None:
        task, phase = last_run
        succeeded = phase is TaskPhase.COMPLETED
        said = f"task {task} {'completed' if succeeded else 'failed'}"
        outcome = Condition(
            type=LAST_RUN_SUCCEEDED, status=str(succeeded), reason=phase.value, message=said
        )
        result = set_condition(result, outcome, now)
        health = Condition(
            type=HEALTHY,
            status=str(succeeded),
            reason="LastRunSucceeded" if succeeded else "LastRunFailed",
            message=said,
        )
    if missed_since_last_run:
        deadlines = "deadline" if missed_since_last_run == 1 else "deadlines"
        health = Condition(
            type=HEALTHY,
            status="False",
            reason="DeadlineMissed",
            message=(
                f"{missed_since_last_run} {deadlines} passed without a task since a run last "
                "finished (missed, or skipped by the concurrency policy)"
            ),
        )
    return set_condition(result, health, now) if health is not None else result


@dataclass(frozen=True)
class FinishedTask:
    """A finished Task object of one schedule, as a candidate for deletion."""

    name: str
    phase: TaskPhase
    finished_at: datetime


def tasks_to_prune(
    finished: Iterable[FinishedTask], successful_limit: int, failed_limit: int
) -> list[str]:
    """Names of the finished tasks beyond the schedule's limits, oldest first.

    The newest of each kind are kept: Completed against `successful_limit`, Failed and
    Cancelled against `failed_limit`. Tasks in an unfinished phase are never pruned.
    """
    newest_first = sorted(finished, key=lambda task: (task.finished_at, task.name), reverse=True)
    succeeded = [task for task in newest_first if task.phase is TaskPhase.COMPLETED]
    failed = [
        task for task in newest_first if task.phase in (TaskPhase.FAILED, TaskPhase.CANCELLED)
    ]
    excess = succeeded[max(0, successful_limit) :] + failed[max(0, failed_limit) :]
    excess.sort(key=lambda task: (task.finished_at, task.name))
    return [task.name for task in excess]
