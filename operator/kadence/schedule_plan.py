"""What a Schedule's reconcile does, decided from what exists. Pure: `now` is an input.

`plan_schedule` is handed the Schedule, the Tasks it controls, the other tasks of its
namespace and queue, and the verdict on its Job template; it returns a `SchedulePlan`:
the Tasks to create, cancel and delete, the whole status to write, the Events to raise
and when to look again. The controller carries the plan out and nothing else.

The status is rebuilt every time (`rebuild_runs`): `active`, the `last*At` times and the
`LastRunSucceeded` and `Healthy` conditions come from the Tasks; only what pruning would
lose is accumulated (`counts`, `history`, `recorded`, the deadlines missed since a run
last finished), keyed by task name so that a run seen twice counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kadence.backfill import backfill_range
from kadence.deadlines import ScheduleTiming, plan_due
from kadence.models import (
    NEXT_DEADLINES,
    ConcurrencyPolicy,
    Condition,
    Counts,
    HistoryEntry,
    RecordedRun,
    ScheduleSpec,
    ScheduleStatus,
    TaskPhase,
)
from kadence.naming import (
    BACKFILL_ANNOTATION,
    BACKFILL_POLICY_ANNOTATION,
    RESUME_REQUEST_ANNOTATION,
    RUN_REQUEST_ANNOTATION,
    TRIGGER_BACKFILL,
    TRIGGER_MANUAL,
    task_name_for_deadline,
    task_name_for_run_request,
)
from kadence.queue import ConcurrencyDecision, decide_concurrency
from kadence.resources import (
    Body,
    controller_uid,
    deadline_of_run,
    history_entry,
    phase_of,
    read_schedule,
    schedule_hash,
    task_for_run,
    task_hash,
    trigger_of,
)
from kadence.status import (
    CONSECUTIVE_FAILURES,
    ENDED,
    INVALID_SPEC,
    READY,
    REPLACED,
    RUN_LIMIT_REACHED,
    SCHEDULE_DISABLED,
    SUSPENDED,
    TEMPLATE_REJECTED,
    FinishedTask,
    abnormal_condition,
    disabled_condition,
    ended_condition,
    held_condition,
    parse_time,
    run_conditions,
    schedule_conditions,
    scheduled_condition,
    stalled_condition,
    suspended_condition,
    tasks_to_prune,
)

DISABLED_MESSAGE = "its schedule was disabled"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the Schedule."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class ScheduleWorld:
    """What the controller read for one Schedule."""

    schedule: Body
    owned: Sequence[Body]
    """Tasks whose controlling ownerReference carries the Schedule's uid."""
    namespace_tasks: Mapping[str, Body]
    """Every Task of the Schedule's namespace by name: is a run's name already taken?"""
    queue_unfinished: Sequence[Body] = ()
    """Unfinished Tasks of the Schedule's queue in its namespace (the concurrency policy)."""
    template_problem: str | None = None
    """Why the API server refused the Job template in a dry run, if it did."""
    held: str | None = None
    """Why no Job is made now (the admission policies are missing), if so."""
    pull: bool = False
    """Its queue is a pull queue: runners claim its Tasks, which need no jobTemplate."""


@dataclass(frozen=True)
class SchedulePlan:
    """Everything one reconcile does, in the order the controller does it."""

    create: tuple[Body, ...]
    cancel: tuple[tuple[str, str, str], ...]
    """(task name, reason, message): unfinished Tasks to move to Cancelled."""
    delete: tuple[str, ...]
    """Finished Tasks beyond the history limits."""
    status: ScheduleStatus
    events: tuple[Event, ...]
    wake_at: datetime | None
    """When the next deadline falls (or endAt, while an interval run is active: the schedule
    ends then); None: nothing is due until something changes."""
    missed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class RunFacts:
    """What the Tasks and the history say about a schedule's runs, for its next deadline."""

    latest_deadline_run: datetime | None
    last_finished_at: datetime | None
    has_run: bool
    any_active: bool


@dataclass
class _SameWork:
    """The unfinished Tasks doing the schedule's work in its queue and namespace, kept
    current as the plan makes and cancels Tasks, so that each deadline's concurrency
    decision (a normal one or a backfilled one) sees the runs planned before it."""

    holders: set[str]
    """Every unfinished Task of the same hash."""
    waiting: set[str]
    """Those of them not yet dispatched (Pending or Queued): BufferOne and BufferAll
    bound them."""

    @classmethod
    def of(cls, world: ScheduleWorld, spec: ScheduleSpec) -> _SameWork:
        work = spec.hash or schedule_hash(spec)
        same = [task for task in world.queue_unfinished if task_hash(task) == work]
        return cls(
            holders={task["metadata"]["name"] for task in same},
            waiting={task["metadata"]["name"] for task in same if not phase_of(task).active},
        )

    def decide(self, policy: ConcurrencyPolicy, run: str, buffer_limit: int) -> ConcurrencyDecision:
        """The policy's decision for the run named `run`; the Tasks it cancels leave."""
        decision = decide_concurrency(
            policy, sorted(self.holders - {run}), waiting=self.waiting - {run},
            buffer_limit=buffer_limit,
        )  # fmt: skip
        self.holders.difference_update(decision.cancel)
        self.waiting.difference_update(decision.cancel)
        return decision

    def add(self, run: str) -> None:
        self.holders.add(run)
        self.waiting.add(run)


@dataclass
class _Draft:
    """The plan while it is being made."""

    status: ScheduleStatus
    same_work: _SameWork
    create: list[Body] = field(default_factory=list)
    cancel: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    missed: int = 0
    skipped: int = 0

    def created(self, task: Body, now: datetime) -> None:
        name = task["metadata"]["name"]
        self.create.append(task)
        self.same_work.add(name)
        self.status.active.append(name)
        self.status.recorded.append(RecordedRun(task=name))
        self.status.counts.created += 1
        # To the second, as the Task's creationTimestamp that the next reconcile reads it
        # from: written with its fraction, it was written again, a write per run.
        self.status.last_scheduled_at = now.replace(microsecond=0)
        self.events.append(Event("Normal", "TaskCreated", f"created task {name}"))


def plan_schedule(world: ScheduleWorld, now: datetime) -> SchedulePlan:
    """The reconcile of one Schedule at `now`."""
    body = world.schedule
    meta = body["metadata"]
    generation = meta.get("generation")
    old = ScheduleStatus.model_validate(body.get("status") or {})
    reading = read_schedule(body, pull=world.pull)
    spec, timing = reading.spec, reading.timing
    history_limit = spec.history_limit if spec is not None else len(old.history)
    status, facts = rebuild_runs(old, world.owned, meta["name"], history_limit, now)
    status.observed_generation = generation

    if reading.problem is not None or spec is None or timing is None:
        return _invalid(status, INVALID_SPEC, reading.problem or "invalid spec", generation, now)
    if world.template_problem is not None:
        return _invalid(status, TEMPLATE_REJECTED, world.template_problem, generation, now)

    draft = _Draft(status, _SameWork.of(world, spec))
    deadline = next_deadline(timing, old, facts, parse_time(meta["creationTimestamp"]), now)
    status.observed_timing = timing.signature
    suspended = _suspension(draft, world, spec, generation, now)
    if runs_left(spec, status) == 0:
        deadline = None
    if spec.enabled and deadline is not None and deadline <= now:
        if suspended is not None:
            deadline = _pass_while_suspended(draft, timing, deadline, now)
        else:
            deadline = _fire(draft, world, spec=spec, timing=timing, deadline=deadline, now=now)
    left = runs_left(spec, status)
    if left == 0:
        deadline = None
    status.deadline_at = deadline
    ended = ended_reason(spec, timing, deadline, active=bool(status.active), left=left, now=now)
    status.next_deadlines = (
        timing.upcoming(deadline, min(NEXT_DEADLINES, left or NEXT_DEADLINES))
        if spec.enabled and ended is None and suspended is None
        else []
    )
    wake_at = deadline
    if wake_at is None and ended is None and timing.end_at is not None and now < timing.end_at:
        wake_at = timing.end_at  # an interval run still active: at endAt the schedule ends
    if not spec.enabled:
        draft.cancel.extend(
            (task["metadata"]["name"], SCHEDULE_DISABLED, DISABLED_MESSAGE)
            for task in world.owned
            if phase_of(task) in (TaskPhase.PENDING, TaskPhase.QUEUED)
            and made_for_deadline(meta["name"], task)
        )
    _run_request(draft, world, spec, now)
    _backfill(draft, world, spec, timing, now)
    _account_unrun(draft, spec, now)
    ready = _ready(draft, world, spec, old, ended=ended, suspended=suspended)
    status.conditions = schedule_conditions(
        status.conditions, ready, cancelling=len(draft.cancel), generation=generation, now=now
    )
    return SchedulePlan(
        create=tuple(draft.create),
        cancel=tuple(draft.cancel),
        delete=tuple(_prune(world.owned, spec)),
        status=status,
        events=tuple(draft.events),
        wake_at=wake_at if spec.enabled else None,
        missed=draft.missed,
        skipped=draft.skipped,
    )


def _account_unrun(draft: _Draft, spec: ScheduleSpec, now: datetime) -> None:
    """Deadlines that passed without a task: Healthy turns False, and missed ones warn."""
    status = draft.status
    if draft.missed or draft.skipped:
        status.missed_since_last_run += draft.missed + draft.skipped
        status.last_missed_at = now
        status.conditions = run_conditions(
            status.conditions, None, status.missed_since_last_run, now
        )
    if draft.missed:
        deadlines = "deadline" if draft.missed == 1 else "deadlines"
        draft.events.append(
            Event(
                "Warning",
                "DeadlineMissed",
                f"{draft.missed} {deadlines} missed ({spec.missed_run_policy} policy)",
            )
        )


def _ready(
    draft: _Draft,
    world: ScheduleWorld,
    spec: ScheduleSpec,
    old: ScheduleStatus,
    *,
    ended: tuple[str, str] | None,
    suspended: str | None,
) -> Condition:
    """The Ready condition: ended before disabled, before held, before suspended; an end
    is announced once."""
    if ended is not None:
        if _ready_reason(old) != ended[0]:
            draft.events.append(Event("Normal", *ended))
        return ended_condition(*ended)
    if not spec.enabled:
        return disabled_condition(spec.suspend_reason)
    if world.held is not None:
        return held_condition(world.held)
    if suspended is not None:
        return suspended_condition(suspended)
    return scheduled_condition()


def runs_left(spec: ScheduleSpec, status: ScheduleStatus) -> int | None:
    """How many more deadline runs `spec.runLimit` allows; None without a limit."""
    if spec.run_limit is None:
        return None
    return max(0, spec.run_limit - status.counts.scheduled)


def ended_reason(
    spec: ScheduleSpec,
    timing: ScheduleTiming,
    deadline: datetime | None,
    *,
    active: bool,
    left: int | None,
    now: datetime,
) -> tuple[str, str] | None:
    """(reason, message) of a schedule that makes no more tasks for deadlines: its run limit
    was reached (`left` runs to go, `runs_left`), or no deadline is left before its end
    (`deadline` is the next one, None when there is none)."""
    if left == 0:
        runs = "run" if spec.run_limit == 1 else "runs"
        return RUN_LIMIT_REACHED, f"runLimit reached: {spec.run_limit} {runs} made, no more tasks"
    if timing.end_at is not None and timing.ended(deadline, active=active, now=now):
        end = timing.end_at.isoformat().replace("+00:00", "Z")
        return ENDED, f"no deadline is left before endAt {end}: no more tasks"
    return None


def _ready_reason(status: ScheduleStatus) -> str | None:
    ready = next((c for c in status.conditions if c.type == READY), None)
    return ready.reason if ready is not None else None


def template_accepted(body: Body) -> bool:
    """Whether the Schedule's current generation was found valid already (before a restart):
    its Job template needs no new dry run."""
    status = ScheduleStatus.model_validate(body.get("status") or {})
    ready = next((c for c in status.conditions if c.type == READY), None)
    return (
        status.observed_generation == body["metadata"].get("generation")
        and ready is not None
        and ready.reason not in (INVALID_SPEC, TEMPLATE_REJECTED)
    )


def _invalid(
    status: ScheduleStatus, reason: str, problem: str, generation: int | None, now: datetime
) -> SchedulePlan:
    """A spec the operator cannot act on: Ready False and Stalled, one Warning per distinct
    problem."""
    ready = next((c for c in status.conditions if c.type == READY), None)
    repeated = ready is not None and ready.reason == reason and ready.message == problem
    status.conditions = schedule_conditions(
        status.conditions,
        stalled_condition(reason, problem),
        cancelling=0,
        generation=generation,
        now=now,
    )
    events = () if repeated else (Event("Warning", reason, problem),)
    status.next_deadlines = []
    return SchedulePlan(create=(), cancel=(), delete=(), status=status, events=events, wake_at=None)


def _fire(
    draft: _Draft,
    world: ScheduleWorld,
    *,
    spec: ScheduleSpec,
    timing: ScheduleTiming,
    deadline: datetime,
    now: datetime,
) -> datetime | None:
    """Act on the deadlines due at `now`; returns the deadline after them."""
    body = world.schedule
    name, uid = body["metadata"]["name"], body["metadata"]["uid"]
    due = plan_due(
        timing,
        deadline_at=deadline,
        now=now,
        missed_run_policy=spec.missed_run_policy,
        missed_run_limit=spec.missed_run_limit,
        starting_deadline_seconds=spec.starting_deadline_seconds,
    )
    draft.missed += due.missed
    policy = ConcurrencyPolicy(spec.concurrency_policy)
    created = False
    for run_at in due.run:
        if runs_left(spec, draft.status) == 0:
            break  # the rest are neither run nor missed: the schedule has ended
        run = task_name_for_deadline(name, run_at)
        if _taken(draft, world, run, uid):
            draft.missed += 1
            continue
        decision = draft.same_work.decide(policy, run, spec.buffer_limit)
        if not decision.create:
            draft.skipped += 1
            draft.status.counts.skipped += 1
            draft.events.append(Event("Normal", "DeadlineSkipped", decision.reason))
            continue
        draft.cancel.extend((holder, REPLACED, f"replaced by {run}") for holder in decision.cancel)
        draft.created(task_for_run(body, spec, run, run_at), now)
        draft.status.counts.scheduled += 1
        created = True
    draft.status.counts.missed += draft.missed
    return timing.next_after_fire(due, created=created)


def _taken(draft: _Draft, world: ScheduleWorld, run: str, uid: str) -> bool:
    """Whether a run's name belongs to a Task this Schedule does not control (then it is not
    this run, and is never adopted). One the Schedule controls was made by an earlier try."""
    existing = world.namespace_tasks.get(run)
    if existing is None or controller_uid(existing) == uid:
        return False
    draft.events.append(
        Event(
            "Warning",
            "TaskNameTaken",
            f"task {run} exists and is not controlled by this schedule; run not made",
        )
    )
    return True


def _run_request(draft: _Draft, world: ScheduleWorld, spec: ScheduleSpec, now: datetime) -> None:
    """One extra run for each new value of the run-now annotation."""
    body = world.schedule
    request = (body["metadata"].get("annotations") or {}).get(RUN_REQUEST_ANNOTATION)
    if not request or request == draft.status.last_handled_run_request:
        return
    draft.status.last_handled_run_request = request
    run = task_name_for_run_request(body["metadata"]["name"], request)
    if run in world.namespace_tasks:  # made by an earlier try (counted from the Tasks) or taken
        _taken(draft, world, run, body["metadata"]["uid"])
        return
    draft.created(task_for_run(body, spec, run, now, trigger=TRIGGER_MANUAL), now)
    draft.events.append(Event("Normal", "RunRequested", f"created task {run}"))


def _backfill(
    draft: _Draft, world: ScheduleWorld, spec: ScheduleSpec, timing: ScheduleTiming, now: datetime
) -> None:
    """One task for each past deadline of a new `kadence.dev/backfill` value, oldest first.

    A backfilled deadline's task has the deadline's own name, so a deadline that already has
    a run (its Task, or its entry in the status) is never run twice, whoever made it. The
    schedule's concurrency policy applies unless `kadence.dev/backfill-policy` says Allow. A
    value that can never be acted on is recorded as handled too, with a Warning, so that it
    is not tried again on every reconcile.
    """
    body = world.schedule
    annotations = body["metadata"].get("annotations") or {}
    request = annotations.get(BACKFILL_ANNOTATION)
    if not request or request == draft.status.last_handled_backfill:
        return
    draft.status.last_handled_backfill = request
    allow = annotations.get(BACKFILL_POLICY_ANNOTATION)
    try:
        found = backfill_range(timing, request, allow, spec.backfill_limit, now)
    except ValueError as error:
        draft.events.append(
            Event("Warning", "BackfillRejected", f"backfill {request!r} not acted on: {error}")
        )
        return
    if found.limited:
        draft.events.append(
            Event(
                "Warning",
                "BackfillLimited",
                f"backfill {request!r} covers more than spec.backfillLimit "
                f"({spec.backfill_limit}) deadlines: the later ones are refused",
            )
        )
    policy = ConcurrencyPolicy(allow or spec.concurrency_policy)
    name, uid = body["metadata"]["name"], body["metadata"]["uid"]
    ran = {entry.task for entry in draft.status.history}
    ran.update(recorded.task for recorded in draft.status.recorded)
    ran.update(task["metadata"]["name"] for task in draft.create)
    made = already = skipped = 0
    for deadline in found.deadlines:
        run = task_name_for_deadline(name, deadline)
        if run in ran or run in world.namespace_tasks:
            _taken(draft, world, run, uid)
            already += 1
            continue
        decision = draft.same_work.decide(policy, run, spec.buffer_limit)
        if not decision.create:
            skipped += 1
            continue
        draft.cancel.extend((holder, REPLACED, f"replaced by {run}") for holder in decision.cancel)
        draft.created(task_for_run(body, spec, run, deadline, trigger=TRIGGER_BACKFILL), now)
        made += 1
    draft.events.append(
        Event(
            "Normal",
            "Backfilled",
            f"backfill {request!r}: {made} tasks created, {already} deadlines already had a "
            f"run, {skipped} skipped by the {policy} concurrency policy",
        )
    )


def _suspension(
    draft: _Draft, world: ScheduleWorld, spec: ScheduleSpec, generation: int | None, now: datetime
) -> str | None:
    """Why deadlines make no tasks (spec.suspendAfterFailures runs failed in a row), or None.

    A new `kadence.dev/resume-requested-at` value or a new generation resumes, and from then
    on only runs that finish later count. The failures are read from status.history, newest
    first: a completed run ends the streak, a cancelled one is passed over.
    """
    status = draft.status
    annotations = world.schedule["metadata"].get("annotations") or {}
    request = annotations.get(RESUME_REQUEST_ANNOTATION)
    resume = None
    if request and request != status.last_handled_resume_request:
        status.last_handled_resume_request = request
        resume = f"resume requested ({request})"
    if status.suspended_at is not None and status.suspended_generation != generation:
        resume = resume or f"the spec changed (generation {generation})"
    if status.suspended_at is not None and resume is not None:
        status.suspended_at = status.suspended_generation = None
        status.failures_counted_since = now
        draft.events.append(Event("Normal", "Resumed", f"deadlines make tasks again: {resume}"))
    current = next((c for c in status.conditions if c.type == SUSPENDED), None)
    if status.suspended_at is not None:
        return current.message if current is not None else "suspended"
    limit = spec.suspend_after_failures
    failures = _failure_streak(status.history, status.failures_counted_since)
    if limit is None or len(failures) < limit:
        status.conditions = abnormal_condition(status.conditions, SUSPENDED, None, "", now)
        return None
    last = failures[0]
    said = next(
        (
            (task.get("status") or {}).get("message")
            for task in world.owned
            if task["metadata"]["name"] == last
        ),
        None,
    )
    message = (
        f"{len(failures)} runs failed in a row, the last {last}: {said or 'failed'}; set "
        f"{RESUME_REQUEST_ANNOTATION} or change the spec to resume"
    )
    status.suspended_at, status.suspended_generation = now, generation
    status.conditions = abnormal_condition(
        status.conditions, SUSPENDED, CONSECUTIVE_FAILURES, message, now
    )
    draft.events.append(Event("Warning", CONSECUTIVE_FAILURES, message))
    return message


def _failure_streak(history: Sequence[HistoryEntry], since: datetime | None) -> list[str]:
    """The runs that failed in a row most recently (newest first), of those finished after
    `since`."""
    failures: list[str] = []
    for entry in history:
        if since is not None and (entry.finished_at is None or entry.finished_at <= since):
            break
        if entry.phase is TaskPhase.COMPLETED:
            break
        if entry.phase is TaskPhase.FAILED:
            failures.append(entry.task)
    return failures


def _pass_while_suspended(
    draft: _Draft, timing: ScheduleTiming, deadline: datetime, now: datetime
) -> datetime | None:
    """Deadlines due while suspended make no task and are counted as skipped; the next one
    moves past `now` (within `endAt`), so that a resume does not run the ones that passed."""
    due = plan_due(timing, deadline_at=deadline, now=now)
    draft.status.counts.skipped += len(due.run) + due.missed
    return timing.bounded(due.next_deadline)


def _prune(owned: Iterable[Body], spec: ScheduleSpec) -> list[str]:
    finished = [
        FinishedTask(
            name=task["metadata"]["name"],
            phase=phase,
            finished_at=_finished_at(task),
        )
        for task in owned
        if (phase := phase_of(task)).finished
    ]
    return tasks_to_prune(
        finished, spec.successful_tasks_history_limit, spec.failed_tasks_history_limit
    )


def _finished_at(task: Body) -> datetime:
    finished = parse_time((task.get("status") or {}).get("finishedAt"))
    created = parse_time(task["metadata"]["creationTimestamp"])
    return finished or created  # type: ignore[return-value]


def next_deadline(
    timing: ScheduleTiming,
    old: ScheduleStatus,
    facts: RunFacts,
    created_at: datetime | None,
    now: datetime,
) -> datetime | None:
    """The next deadline, from the runs that exist or were recorded.

    After an edit of the timing (or for a new schedule) it is computed from `now`. Else a
    cron's is the first deadline after the latest deadline run, and never before the one
    already stored (a deadline skipped or missed is not fired again); an interval's is
    nothing while a run is active, else the interval after the latest finished run (again
    never before the stored one), or the creation for a schedule that never ran.
    """
    stored = old.deadline_at
    if not timing.observed(old.observed_timing):
        return timing.bounded(
            timing.first_deadline(
                now=now,
                created_at=created_at or now,
                last_finished_at=facts.last_finished_at,
                has_run=facts.has_run,
                active=facts.any_active,
            )
        )
    if timing.interval is not None:
        if facts.any_active:
            return None
        after_run = timing.after_run(facts.last_finished_at) if facts.last_finished_at else None
        if not facts.has_run and stored is None:
            return timing.bounded(created_at or now)
        return timing.bounded(_latest(stored, after_run) or now)
    after_run = timing.after_run(facts.latest_deadline_run) if facts.latest_deadline_run else None
    return timing.bounded(_latest(stored, after_run) or timing.after_run(now))


def rebuild_runs(
    old: ScheduleStatus,
    owned: Sequence[Body],
    schedule_name: str,
    history_limit: int,
    now: datetime,
) -> tuple[ScheduleStatus, RunFacts]:
    """The status as the Tasks show it, and the facts the next deadline is derived from.

    Accumulated, keyed by task name: `counts` (a Task not yet recorded counts as created,
    a finished one not yet recorded finished counts its outcome, a recorded unfinished one
    that is gone counts as cancelled), `history` (rebuilt from the Tasks that still exist,
    kept for those pruned) and `recorded` (the runs already counted). Rebuilt: `active`,
    `lastScheduledAt`, `lastSuccessfulAt`, `lastFailedAt` and `Healthy`.
    """
    known: dict[str, TaskPhase | None] = dict.fromkeys(old.active)
    known.update({entry.task: entry.phase for entry in old.history})
    known.update({run.task: run.phase for run in old.recorded})
    existing = {task["metadata"]["name"]: task for task in owned}

    status = old.model_copy(deep=True)
    counts = status.counts
    entries: dict[str, HistoryEntry] = {}
    recorded: list[RecordedRun] = []
    active: list[Body] = []
    for name, task in sorted(existing.items()):
        phase = phase_of(task)
        if name not in known:
            counts.created += 1
            if made_for_deadline(schedule_name, task):
                counts.scheduled += 1  # made for a deadline by a try whose status write was lost
        if not phase.finished:
            active.append(task)
            recorded.append(RecordedRun(task=name))
            continue
        if known.get(name) is None:
            _count(counts, phase)
        entries[name] = history_entry(task, phase, now)
        recorded.append(RecordedRun(task=name, phase=phase))
    for name, seen in known.items():
        if name not in existing and seen is None:  # deleted before it finished
            counts.cancelled += 1
            entries[name] = HistoryEntry(
                task=name, phase=TaskPhase.CANCELLED, finished_at=now,
                deadline_at=_deadline_of_name(schedule_name, name),
            )  # fmt: skip

    runs = [
        *entries.values(),
        *(e for e in old.history if e.task not in entries and e.task not in existing),
    ]
    runs.sort(key=lambda entry: (entry.finished_at or now, entry.task), reverse=True)
    status.history = runs[: max(0, history_limit)]
    status.recorded = recorded
    active.sort(key=lambda task: (_made_for(task), task["metadata"]["name"]))
    status.active = [task["metadata"]["name"] for task in active]
    status.last_scheduled_at = (
        _latest(None, *(parse_time(task["metadata"]["creationTimestamp"]) for task in owned))
        or old.last_scheduled_at
    )
    status.last_successful_at = _latest_finish(runs, TaskPhase.COMPLETED) or old.last_successful_at
    status.last_failed_at = _latest_finish(runs, TaskPhase.FAILED) or old.last_failed_at
    last_run = _last_outcome(runs, now)
    if last_run is not None and _finished_after(last_run, status.last_missed_at):
        status.missed_since_last_run = 0
    status.conditions = run_conditions(
        status.conditions,
        (last_run.task, last_run.phase) if last_run is not None else None,
        status.missed_since_last_run,
        now,
    )

    deadline_runs = [
        made_for for task in owned if (made_for := deadline_of_run(schedule_name, task)) is not None
    ] + [
        entry.deadline_at
        for entry in runs
        if entry.deadline_at is not None
        and entry.task == _deadline_run_name(schedule_name, entry.deadline_at)
    ]
    facts = RunFacts(
        latest_deadline_run=_latest(None, *deadline_runs),
        last_finished_at=_latest(None, *(entry.finished_at for entry in runs)),
        has_run=bool(existing) or bool(runs) or counts.created > 0,
        any_active=bool(active),
    )
    return status, facts


def made_for_deadline(schedule_name: str, task: Body) -> bool:
    """Whether the schedule made `task` when one of its deadlines came (not for a run
    request or a backfill): what disabling cancels and `runLimit` counts. Its name says so;
    the trigger label tells a backfilled deadline apart (Tasks made before that label
    existed have none and were never backfills)."""
    return deadline_of_run(schedule_name, task) is not None and trigger_of(task) != TRIGGER_BACKFILL


def _count(counts: Counts, phase: TaskPhase) -> None:
    if phase is TaskPhase.COMPLETED:
        counts.completed += 1
    elif phase is TaskPhase.FAILED:
        counts.failed += 1
    else:
        counts.cancelled += 1


def _last_outcome(runs: Sequence[HistoryEntry], now: datetime) -> HistoryEntry | None:
    """The latest run that completed or failed (a cancelled one says nothing of the work)."""
    outcomes = [e for e in runs if e.phase in (TaskPhase.COMPLETED, TaskPhase.FAILED)]
    return max(outcomes, key=lambda e: (e.finished_at or now, e.task)) if outcomes else None


def _finished_after(run: HistoryEntry, moment: datetime | None) -> bool:
    return moment is None or (run.finished_at is not None and run.finished_at > moment)


def _latest_finish(runs: Iterable[HistoryEntry], phase: TaskPhase) -> datetime | None:
    return _latest(None, *(e.finished_at for e in runs if e.phase is phase))


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _made_for(task: Body) -> datetime:
    spec = task.get("spec") or {}
    made_for = parse_time(spec.get("deadlineAt") or task["metadata"]["creationTimestamp"])
    return made_for  # type: ignore[return-value]


def _deadline_run_name(schedule_name: str, deadline: datetime) -> str | None:
    try:
        return task_name_for_deadline(schedule_name, deadline)
    except ValueError:
        return None


def _deadline_of_name(schedule_name: str, task_name: str) -> datetime | None:
    """The deadline a deadline run's name encodes (`<schedule>-<unix seconds>`), if it is one."""
    suffix = task_name.removeprefix(f"{schedule_name}-")
    if suffix == task_name or not suffix.isdigit():
        return None
    return datetime.fromtimestamp(int(suffix), tz=UTC)
