"""The Schedule and Task resources as pydantic models: the single source of truth.

The CRDs in `crds/` are generated from these models (`kadence.crdgen`), and a test
fails when the two drift apart. Field descriptions become `kubectl explain` text.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from kadence.deadlines import INTERVAL_PATTERN, MissedRunPolicy

INT32_MAX = 2**31 - 1
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_SCHEDULES = 16
NEXT_DEADLINES = 5
"""How many deadlines status.nextDeadlines lists."""
MAX_RESULT_LENGTH = 4096
"""The longest result (JSON text) a runner may report."""

CronExpression = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class KubeModel(BaseModel):
    """Base for resource parts: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )

    def to_kube(self) -> dict[str, Any]:
        """The JSON-ready form, with camelCase keys and unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    ALLOW = "Allow"
    REPLACE = "Replace"
    BUFFER_ONE = "BufferOne"
    BUFFER_ALL = "BufferAll"

    @property
    def serial(self) -> bool:
        """Its tasks run one at a time: never two of the same hash in a queue at once."""
        return self in (ConcurrencyPolicy.BUFFER_ONE, ConcurrencyPolicy.BUFFER_ALL)


class TaskPhase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    DISPATCHED = "Dispatched"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_PHASES

    @property
    def active(self) -> bool:
        """Holds a slot of its scheduler's capacity."""
        return self in (TaskPhase.DISPATCHED, TaskPhase.RUNNING)


FINISHED_PHASES = frozenset({TaskPhase.COMPLETED, TaskPhase.FAILED, TaskPhase.CANCELLED})


class ClaimOutcome(StrEnum):
    """How a runner says its claimed Task ended."""

    COMPLETED = "Completed"
    FAILED = "Failed"


class JobTemplate(KubeModel):
    """A batch/v1 Job template, as in a CronJob's `jobTemplate`."""

    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Labels and annotations copied onto each Job.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    spec: dict[str, Any] = Field(
        description=(
            "The Job's spec (batch/v1 JobSpec). Checked by the API server with a dry run "
            "when the Schedule changes; a rejected template makes the Schedule not Ready."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class ScheduleRef(KubeModel):
    name: str = Field(description="Name of the Schedule, in the Task's namespace.")


class ScheduleSpec(KubeModel):
    """What to run, when, and how deadlines that could not be kept are handled."""

    scheduler_id: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="The queue that this schedule's tasks join; capacities are set per queue.",
    )
    schedule: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description=(
            "Cron expression: 5 fields, @hourly @daily @midnight @weekly @monthly @yearly "
            "@annually, and Jenkins-style H (a value hashed from namespace/name). "
            "Exactly one of schedule, schedules and interval is set."
        ),
    )
    schedules: list[CronExpression] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCHEDULES,
        description=(
            "Instead of schedule: several cron expressions, all read in timeZone; the "
            "deadlines are those of any of them, and an instant named by more than one "
            "fires once."
        ),
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone that schedule is read in, such as Europe/Amsterdam.",
    )
    start_at: datetime | None = Field(
        default=None,
        description=(
            "No deadline falls before this instant (RFC 3339); an interval schedule's first "
            "task is made at it."
        ),
    )
    end_at: datetime | None = Field(
        default=None,
        description=(
            "No deadline falls after this instant (RFC 3339); once none is left, the "
            "schedule has ended (Ready False, reason Ended). A run still active finishes."
        ),
    )
    run_limit: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description=(
            "The schedule ends (Ready False, reason RunLimitReached) once this many tasks "
            "were made for its deadlines; runs asked for by hand do not count."
        ),
    )
    interval: str | None = Field(
        default=None,
        max_length=32,
        pattern=INTERVAL_PATTERN,
        description=(
            "Instead of schedule: a duration such as 90s, 15m, 24h or 1h30m. The first task "
            "is made at creation, each next one this long after the previous task finished."
        ),
    )
    enabled: bool = Field(
        default=True,
        description=(
            "False: no new tasks are made, and queued tasks of this schedule are cancelled."
        ),
    )
    suspend_reason: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "Why enabled is false, for the people who read the Schedule: shown in the Ready "
            "condition's message."
        ),
    )
    priority: int = Field(
        default=0,
        ge=-INT32_MAX - 1,
        le=INT32_MAX,
        description="Copied to each task; lower runs first within a queue.",
    )
    hash: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description=(
            "Identity of the work, for de-duplication within a queue. Default: the md5 hex "
            'digest of the canonical JSON (keys sorted, no spaces, UTF-8) of {"data": data, '
            '"jobTemplate": {"metadata": jobTemplate.metadata or {}, "spec": jobTemplate.spec}} '
            '(or "jobTemplate": null without one), so only schedules that do the same work '
            "share it."
        ),
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form payload, given to the Job as JSON in KADENCE_TASK_DATA.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    job_template: JobTemplate | None = Field(
        default=None,
        description=(
            "How each task runs as a Job. Required unless schedulerId names a pull queue "
            "(queues.pull in the operator's configuration), whose tasks runners claim; there "
            "it is ignored."
        ),
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID,
        description=(
            "What a deadline does while a task with the same hash is queued or running in "
            "the same queue: Forbid skips it, Allow adds another, Replace cancels the old one, "
            "BufferOne keeps at most one waiting (skips the rest), BufferAll keeps up to "
            "bufferLimit waiting. With BufferOne and BufferAll the tasks run one at a time: "
            "a task waits while another of the same hash in its queue is dispatched or running."
        ),
    )
    buffer_limit: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "With BufferAll, the most tasks of the same hash waiting (Pending or Queued) in the "
            "queue; a deadline beyond it is skipped."
        ),
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description=(
            "A deadline that could not be acted on within this many seconds (operator down) "
            "is recorded as missed instead of run."
        ),
    )
    missed_run_policy: MissedRunPolicy = Field(
        default=MissedRunPolicy.RUN_LATEST,
        description=(
            "Deadlines that passed while nothing could act on them (operator down, schedule "
            "re-enabled): RunLatest runs the latest once, Skip runs none, RunAll runs each "
            "(at most missedRunLimit)."
        ),
    )
    missed_run_limit: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="With RunAll, the most missed deadlines run at once.",
    )
    history_limit: int = Field(
        default=10, ge=0, le=100, description="How many finished runs status.history keeps."
    )
    successful_tasks_history_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description=(
            "How many completed Task objects are kept; older ones are deleted with their Jobs."
        ),
    )
    failed_tasks_history_limit: int = Field(
        default=1,
        ge=0,
        le=100,
        description="How many failed or cancelled Task objects are kept; older ones are deleted.",
    )
    backfill_limit: int = Field(
        default=100,
        ge=1,
        le=10000,
        description=(
            "The most tasks one kadence.dev/backfill request makes: its first deadlines; the "
            "later ones are refused with a Warning event."
        ),
    )
    suspend_after_failures: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "Stop making tasks at deadlines after this many runs in a row failed (a completed "
            "run resets the count, a cancelled one is passed over); the Suspended condition "
            "says so. A new kadence.dev/resume-requested-at value or any spec change resumes. "
            "At most historyLimit: the runs are counted in status.history. Unset: never."
        ),
    )


class Condition(KubeModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(description="Kind of condition, such as Ready.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word for machines.")
    message: str = Field(default="", description="What happened, for a person.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was set for."
    )


class Counts(KubeModel):
    created: int = Field(default=0, description="Tasks made for this schedule.")
    completed: int = Field(default=0, description="Tasks that completed.")
    failed: int = Field(default=0, description="Tasks that failed.")
    cancelled: int = Field(default=0, description="Tasks cancelled before they finished.")
    skipped: int = Field(
        default=0,
        description="Deadlines skipped by the concurrency policy or while suspended.",
    )
    missed: int = Field(default=0, description="Deadlines missed (operator down, too late).")
    scheduled: int = Field(
        default=0,
        description="Tasks made for deadlines (not runs asked for by hand); runLimit counts these.",
    )


class HistoryEntry(KubeModel):
    task: str = Field(description="Name of the Task.")
    deadline_at: datetime | None = Field(default=None, description="The deadline it ran for.")
    phase: TaskPhase = Field(description="How it ended.")
    started_at: datetime | None = Field(
        default=None, description="When its Job, or its runner, started."
    )
    finished_at: datetime | None = Field(default=None, description="When it finished.")
    result: str | None = Field(
        default=None,
        max_length=MAX_RESULT_LENGTH,
        description="The result its runner reported (JSON text), for a Task of a pull queue.",
    )


class RecordedRun(KubeModel):
    """A run already counted in `counts`, so that seeing it again never counts it twice."""

    task: str = Field(description="Name of the Task.")
    phase: TaskPhase | None = Field(
        default=None, description="Its outcome, once counted; absent while it runs."
    )


class ScheduleStatus(KubeModel):
    """What the operator observed and did; written only through the status subresource."""

    deadline_at: datetime | None = Field(default=None, description="The next deadline (UTC).")
    next_deadlines: list[datetime] = Field(
        default_factory=list,
        description=(
            f"The next {NEXT_DEADLINES} deadlines (UTC) from deadlineAt on, within startAt, "
            "endAt and runLimit; fewer when fewer remain, none while disabled or ended. An "
            "interval schedule lists deadlineAt only: the later ones depend on its runs."
        ),
    )
    observed_timing: str | None = Field(
        default=None,
        description=(
            "The schedule (with the values H chose), timeZone, interval, startAt, endAt and "
            "runLimit that deadlineAt was computed from."
        ),
    )
    last_scheduled_at: datetime | None = Field(
        default=None, description="When the last task was created."
    )
    last_successful_at: datetime | None = Field(
        default=None, description="When a task last completed."
    )
    last_failed_at: datetime | None = Field(default=None, description="When a task last failed.")
    last_missed_at: datetime | None = Field(
        default=None,
        description="When a deadline last passed without a task (missed, or skipped by policy).",
    )
    missed_since_last_run: int = Field(
        default=0,
        ge=0,
        description=(
            "Deadlines that passed without a task (missed, or skipped by the concurrency "
            "policy) since a run last finished; above 0, the Healthy condition is False."
        ),
    )
    active: list[str] = Field(default_factory=list, description="Tasks not yet finished.")
    counts: Counts = Field(default_factory=Counts, description="How many times it ran, and how.")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="The last historyLimit finished runs, newest first."
    )
    recorded: list[RecordedRun] = Field(
        default_factory=list,
        description=(
            "The runs whose Task still exists and that are already counted: keeps counting "
            "idempotent when a run is seen again."
        ),
    )
    last_handled_run_request: str | None = Field(
        default=None,
        description="The last kadence.dev/run-requested-at annotation value acted on.",
    )
    last_handled_backfill: str | None = Field(
        default=None,
        description="The last kadence.dev/backfill annotation value acted on (or refused).",
    )
    last_handled_resume_request: str | None = Field(
        default=None,
        description="The last kadence.dev/resume-requested-at annotation value acted on.",
    )
    suspended_at: datetime | None = Field(
        default=None,
        description=(
            "When spec.suspendAfterFailures runs in a row had failed and deadlines stopped "
            "making tasks; absent while not suspended."
        ),
    )
    suspended_generation: int | None = Field(
        default=None,
        description="The metadata.generation when it was suspended: a new one resumes it.",
    )
    failures_counted_since: datetime | None = Field(
        default=None,
        description=(
            "The last resume: only runs that finished after it count toward "
            "spec.suspendAfterFailures."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Ready (True: tasks are made at each deadline), Stalled, Reconciling and Suspended "
            "(present only when True, the kstatus conventions), LastRunSucceeded, and Healthy "
            "(False after a failed run or a deadline without a task). See docs/status.md."
        ),
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last acted on."
    )


class TaskSpec(KubeModel):
    """One run, copied from its schedule at creation so later edits do not change it."""

    scheduler_id: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="The queue this task joins.",
    )
    priority: int = Field(
        default=0,
        ge=-INT32_MAX - 1,
        le=INT32_MAX,
        description="Lower runs first within the queue.",
    )
    hash: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description=(
            "Identity of the work. Default: the md5 hex digest of the canonical JSON (keys "
            'sorted, no spaces, UTF-8) of {"data": data, "jobTemplate": {"metadata": '
            'jobTemplate.metadata or {}, "spec": jobTemplate.spec}} (or "jobTemplate": null '
            "without one)."
        ),
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form payload, given to the Job as JSON in KADENCE_TASK_DATA.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    job_template: JobTemplate | None = Field(
        default=None,
        description=(
            "How the task runs as a Job. Required unless schedulerId names a pull queue, "
            "whose tasks runners claim; there it is ignored."
        ),
    )
    concurrency_policy: ConcurrencyPolicy | None = Field(
        default=None,
        description=(
            "The concurrencyPolicy of the Schedule that made it, copied at creation. "
            "BufferOne or BufferAll: it is not dispatched while another task with the same "
            "hash in its queue and namespace is dispatched or running (it waits, keeping its "
            "place). Other values, or none, change nothing on a task."
        ),
    )
    schedule_ref: ScheduleRef | None = Field(
        default=None, description="The Schedule that made this task; absent for a manual task."
    )
    deadline_at: datetime | None = Field(
        default=None,
        description="The deadline this task was made for; for a manual task, its creation time.",
    )


class TaskClaim(KubeModel):
    """A runner's claim on a Task of a pull queue: asked for and reported by the runner,
    granted and expired by the operator (docs/queue.md, "Pull queues")."""

    holder: str = Field(
        min_length=1, max_length=253, description="Which runner process asked (free text)."
    )
    user: str = Field(
        min_length=1,
        max_length=253,
        description="The runner's Kubernetes username; only it may change or remove the claim.",
    )
    lease_seconds: int = Field(
        ge=5,
        le=3600,
        description=(
            "How long the claim lives without a renewal; a request not granted this long "
            "after requestedAt is withdrawn by the operator."
        ),
    )
    requested_at: datetime = Field(description="When the runner asked for the Task.")
    claimed_at: datetime | None = Field(
        default=None,
        description="When the operator granted it (the Task became Dispatched); absent before.",
    )
    renewed_at: datetime | None = Field(
        default=None, description="The runner's last renewal (set to claimedAt by the grant)."
    )
    started_at: datetime | None = Field(
        default=None, description="When the runner began the work (the Task becomes Running)."
    )
    outcome: ClaimOutcome | None = Field(
        default=None, description="Completed or Failed: how the runner says the work ended."
    )
    message: str | None = Field(
        default=None, max_length=1024, description="Why it ended so, in the runner's words."
    )
    result: str | None = Field(
        default=None,
        max_length=MAX_RESULT_LENGTH,
        description="The runner's result, JSON text; copied to status.result when the Task ends.",
    )
    finished_at: datetime | None = Field(default=None, description="When the work ended.")


class TaskStatus(KubeModel):
    """Where the task is in its life; written only through the status subresource."""

    phase: TaskPhase | None = Field(
        default=None,
        description="Pending, Queued, Dispatched, Running, Completed, Failed or Cancelled.",
    )
    queued_at: datetime | None = Field(default=None, description="When it joined the queue.")
    dispatched_at: datetime | None = Field(
        default=None, description="When its Job was created, or its claim granted."
    )
    started_at: datetime | None = Field(
        default=None, description="When its Job started running, or its runner began."
    )
    finished_at: datetime | None = Field(default=None, description="When it finished.")
    job_name: str | None = Field(default=None, description="The Job that runs it.")
    message: str | None = Field(default=None, description="Why it is in its phase.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Ready, Reconciling (while unfinished) and Stalled (failed or cancelled), the kstatus "
            "conventions; Succeeded and Failed once finished, for kubectl wait."
        ),
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was written for."
    )
    attempts: int | None = Field(
        default=None,
        ge=0,
        description=(
            "In a pull queue: how many claims on it were granted so far, less those their "
            "runner gave back."
        ),
    )
    result: str | None = Field(
        default=None,
        max_length=MAX_RESULT_LENGTH,
        description="In a pull queue: the result its runner reported (JSON text), once finished.",
    )
    claim: TaskClaim | None = Field(
        default=None,
        description=(
            "In a pull queue: the current claim, or a runner's request for one. The operator "
            "removes it when its lease runs out."
        ),
    )
