"""What `kubectl kadence` shows, computed from the objects it read. Pure.

No API calls and no clock: the plugin (`kubectl_plugin`) lists the objects and passes
`now`. The answers are the operator's own: a queue's order and the slots in use come
from `task_plan.plan_queue` over the same indexes the queue controller reads (`Store`),
a Schedule's next deadline from `schedule_plan.next_deadline` over the status rebuilt
from its Tasks, and queues are grouped by `QueuesConfig.queue_of`. Nothing here is
written anywhere: every view is computed on demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kadence.config import OperatorConfig, QueueKey, QueuesConfig
from kadence.models import ScheduleStatus, TaskPhase
from kadence.naming import SCHEDULE_LABEL
from kadence.resources import (
    Body,
    controller_uid,
    key_of,
    phase_of,
    queue_item,
    read_schedule,
    scheduler_of,
    waiting_since,
)
from kadence.schedule_plan import ended_reason, next_deadline, rebuild_runs, runs_left
from kadence.status import INVALID_SPEC, READY, SUSPENDED, TEMPLATE_REJECTED, parse_time
from kadence.store import Store
from kadence.task_plan import QueueRules, plan_queue

CONFIG_KEY = "config.yaml"
"""The key of the operator's configuration file in its ConfigMap (chart and deploy/base)."""
CONFIG_SELECTOR = "app.kubernetes.io/part-of=kadence,app.kubernetes.io/component=operator"
"""The labels the chart and deploy/base put on the operator's ConfigMap."""


# -- text ---------------------------------------------------------------------------------


def rfc3339(moment: datetime | None) -> str:
    """An instant as the API writes it, in UTC to the second; `-` for none."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """A duration the way kubectl writes ages: `45s`, `5m10s`, `25m`, `3h5m`, `30h`, `3d4h`."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years, rest = divmod(days, 365)
    return f"{years}y{rest}d" if rest and years < 8 else f"{years}y"


def short_seconds(seconds: float) -> str:
    """A lag or a run's length, to the precision that matters: `0.21s`, `38.2s`, `5m10s`; whole
    seconds (the API's timestamps mostly are) without decimals."""
    if seconds == int(seconds):
        return human_duration(seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return human_duration(seconds)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns as kubectl aligns them: each as wide as its widest cell plus three spaces."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "".join(
            cell if i == len(line) - 1 else cell.ljust(max(widths[i] + 3, 6))
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


# -- the operator's configuration ---------------------------------------------------------


def choose_config(configmaps: Sequence[Body]) -> Body | None:
    """The operator's ConfigMap among those labelled as its own: the newest that holds a
    configuration file (kustomize's generator leaves the older, hash-named ones behind)."""
    candidates = [cm for cm in configmaps if CONFIG_KEY in (cm.get("data") or {})]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda cm: (cm["metadata"].get("creationTimestamp") or "", cm["metadata"]["name"]),
    )


# -- queues -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitingTask:
    """One Queued Task, at its place in the order its queue will run them."""

    position: int
    namespace: str
    name: str
    priority: int
    deadline_at: datetime
    """The deadline it was made for; a manual Task's creation (as the queue orders it)."""
    queued_at: datetime | None
    schedule: str | None
    waits_for: str | None = None
    """A BufferOne or BufferAll Task held back for the Task of its hash named here."""
    requested_by: str | None = None
    """In a pull queue: the runner (holder) that asked for it and waits for the grant."""

    def waiting(self, now: datetime) -> timedelta | None:
        return now - self.queued_at if self.queued_at is not None else None


@dataclass(frozen=True)
class QueueView:
    """A queue: its Queued Tasks in order, and the slots in use."""

    queue: QueueKey
    members: tuple[str, ...]
    """The namespaces whose Tasks it holds: one, or those sharing it."""
    capacity: int | None
    """None: the configuration could not be read."""
    in_use: int
    """Slots held, counted as the operator counts them (Dispatched and Running Tasks, a
    Queued Task whose Job exists, the unfinished Job of a deleted Task)."""
    holders: tuple[str, ...]
    """The Tasks Dispatched or Running; in a pull queue each with the runner holding it,
    as `task (runner)`."""
    pending: int
    """Tasks not admitted yet (phase Pending)."""
    waiting: tuple[WaitingTask, ...]
    pulled: bool = False
    """Runners claim its Tasks (`queues.pull`); they are not run as Jobs."""

    @property
    def shared(self) -> bool:
        return self.queue.namespace is None


def _queues(config: OperatorConfig | None) -> QueuesConfig:
    return (config or OperatorConfig()).queues


def queue_views(
    tasks: Iterable[Body],
    jobs: Iterable[Body],
    config: OperatorConfig | None,
    *,
    capacity: int | None = None,
    scheduler_id: str | None = None,
    namespaces: Sequence[str] | None = None,
) -> list[QueueView]:
    """The queues of `tasks`, each in the order its Tasks will leave it.

    `jobs` are the Jobs labelled `kadence.dev/task` of the same namespaces. Without a
    `config` (it could not be read) each namespace's schedulerId is a queue of its own and
    the capacity is unknown, unless `capacity` gives it. `namespaces` keeps the queues that
    hold Tasks of those namespaces (None: all); with `scheduler_id`, that queue of each of
    them is shown even when it is empty.
    """
    store = Store()
    for task in tasks:
        store.put_task(task)
    for job in jobs:
        store.put_job(job)
    queues = _queues(config)
    keys = {queues.queue_of(namespace, sid) for namespace, sid in store.queues()}
    if scheduler_id is not None and namespaces is not None:
        keys.update(queues.queue_of(namespace, scheduler_id) for namespace in namespaces)
    chosen = [
        key
        for key in keys
        if (scheduler_id is None or key.scheduler_id == scheduler_id)
        and (namespaces is None or set(_members(queues, key)) & set(namespaces))
    ]
    return [
        _queue_view(store, key, queues, capacity, known=config is not None)
        for key in sorted(chosen, key=str)
    ]


def _members(queues: QueuesConfig, key: QueueKey) -> tuple[str, ...]:
    sharing = queues.sharing(key)
    return tuple(sharing.namespaces) if sharing is not None else (key.namespace or "",)


def _queue_view(
    store: Store, key: QueueKey, queues: QueuesConfig, capacity: int | None, *, known: bool
) -> QueueView:
    """One queue as the queue controller reads it (`queues.QueueController.reconcile`), with
    room for every Queued Task: `plan_queue` then dispatches them all, in its own order (a
    Task waiting for work of its hash to finish keeps its place)."""
    sharing = queues.sharing(key)
    members = _members(queues, key)
    tasks = [
        task for namespace in members for task in store.unfinished(namespace, key.scheduler_id)
    ]
    jobs = [
        job for namespace in members for job in store.unfinished_jobs(namespace, key.scheduler_id)
    ]
    everyone = QueueRules(
        capacity=len(tasks) + len(jobs) + 1, shared=sharing is not None, serial=False
    )
    plan = plan_queue(tasks, store.jobs_by_owner, jobs, store.task_uids, everyone)
    by_key = {key_of(task): task for task in tasks}
    not_admitted = {admission.key for admission in plan.admit}
    waiting = []
    queued = [task_key for task_key in plan.dispatch if task_key not in not_admitted]
    for position, task_key in enumerate(queued, start=1):
        task = by_key[task_key]
        item = queue_item(task)
        waiting.append(
            WaitingTask(
                position=position,
                namespace=item.namespace,
                name=item.name,
                priority=item.priority,
                deadline_at=item.deadline_at,
                queued_at=parse_time((task.get("status") or {}).get("queuedAt")),
                schedule=(task["metadata"].get("labels") or {}).get(SCHEDULE_LABEL),
                waits_for=plan.held_for_work.get(task_key),
                requested_by=_holder(task),
            )
        )
    if capacity is None and known:
        capacity = queues.capacity_of(key)
    return QueueView(
        queue=key,
        members=members,
        capacity=capacity,
        in_use=plan.active,
        holders=tuple(sorted(_holding(t) for t in tasks if phase_of(t).active)),
        pending=len(plan.admit),
        waiting=tuple(waiting),
        pulled=queues.pull_of(key.scheduler_id) is not None,
    )


def _holder(task: Body) -> str | None:
    """The runner named in a Task's claim (a request or a grant), if any."""
    claim = (task.get("status") or {}).get("claim") or {}
    holder = claim.get("holder")
    return holder if isinstance(holder, str) else None


def _holding(task: Body) -> str:
    """A Task holding a slot, with the runner that holds it when a runner does."""
    holder = _holder(task)
    name: str = task["metadata"]["name"]
    return f"{name} ({holder})" if holder else name


def queue_title(view: QueueView) -> str:
    name = str(view.queue)
    if view.shared:
        name = f"{view.queue.scheduler_id} (shared by {', '.join(view.members)})"
    capacity = "unknown" if view.capacity is None else str(view.capacity)
    pulled = " (pulled by runners)" if view.pulled else ""
    title = f"Queue {name}{pulled}: {view.in_use}/{capacity} in use, {len(view.waiting)} waiting"
    if view.pending:
        title += f", {view.pending} not admitted yet"
    return title


def render_queues(views: Sequence[QueueView], now: datetime, *, wide: bool = False) -> str:
    blocks = []
    for view in views:
        headers = ["POSITION", "TASK", "PRIORITY", "DEADLINE", "WAITING"]
        if view.shared:
            headers.insert(1, "NAMESPACE")
        if wide:
            headers += ["QUEUED", "SCHEDULE", "WAITS FOR"]
            if view.pulled:
                headers.append("REQUESTED BY")
        rows = []
        for item in view.waiting:
            waited = item.waiting(now)
            row = [
                str(item.position),
                item.name,
                str(item.priority),
                rfc3339(item.deadline_at),
                human_duration(waited.total_seconds()) if waited is not None else "-",
            ]
            if view.shared:
                row.insert(1, item.namespace)
            if wide:
                row += [rfc3339(item.queued_at), item.schedule or "-", item.waits_for or "-"]
                if view.pulled:
                    row.append(item.requested_by or "-")
            rows.append(row)
        lines = [queue_title(view)]
        if wide and view.holders:
            lines.append(f"Holding slots: {', '.join(view.holders)}")
        if rows:
            lines.append(table(headers, rows))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def queues_document(views: Sequence[QueueView], now: datetime) -> dict[str, Any]:
    return {
        "queues": [
            {
                "queue": str(view.queue),
                "namespace": view.queue.namespace,
                "schedulerId": view.queue.scheduler_id,
                "shared": view.shared,
                "pulled": view.pulled,
                "namespaces": list(view.members),
                "capacity": view.capacity,
                "inUse": view.in_use,
                "holders": list(view.holders),
                "notAdmitted": view.pending,
                "waiting": [
                    {
                        "position": item.position,
                        "namespace": item.namespace,
                        "task": item.name,
                        "priority": item.priority,
                        "deadlineAt": rfc3339(item.deadline_at),
                        "queuedAt": rfc3339(item.queued_at) if item.queued_at else None,
                        "waitingSeconds": (
                            round(waited.total_seconds(), 3)
                            if (waited := item.waiting(now)) is not None
                            else None
                        ),
                        "schedule": item.schedule,
                        "waitsFor": item.waits_for,
                        "requestedBy": item.requested_by,
                    }
                    for item in view.waiting
                ],
            }
            for view in views
        ]
    }


# -- next deadlines -----------------------------------------------------------------------


@dataclass(frozen=True)
class NextView:
    """A live Schedule's next deadlines, as the operator computes them."""

    namespace: str
    name: str
    enabled: bool
    suspend_reason: str | None
    timing: str | None
    """The spec fields its deadlines come from: `30 2 * * * in Europe/Amsterdam`, `every 15m`."""
    time_zone: str
    interval: timedelta | None
    deadlines: tuple[datetime, ...]
    """Empty while disabled, or for an interval Schedule with a run still active."""
    active: tuple[str, ...]
    problem: str | None
    """Why it cannot fire (its spec, or a Job template the API server refused)."""
    ended: str | None = None
    """Why it makes no more tasks for deadlines: its endAt passed, or its runLimit was reached."""
    suspended: str | None = None
    """Why its deadlines make no tasks until resumed: runs failed in a row."""


def next_view(schedule: Body, tasks: Iterable[Body], now: datetime, count: int) -> NextView:
    """The next `count` deadlines of `schedule` after `now`.

    The first is `schedule_plan.next_deadline` over the status rebuilt from the Tasks the
    Schedule controls (of `tasks`, by uid, as the operator reads them): the deadline it
    stored, or the one it would compute now. A cron's later ones follow from the first;
    an interval's depend on when each run finishes, so only the first is known.
    """
    meta = schedule["metadata"]
    reading = read_schedule(schedule)
    spec, timing = reading.spec, reading.timing
    problem = reading.problem or recorded_problem(schedule)
    enabled = (
        spec.enabled
        if spec is not None
        else (schedule.get("spec") or {}).get("enabled") is not False
    )
    view = NextView(
        namespace=meta["namespace"],
        name=meta["name"],
        enabled=enabled,
        suspend_reason=spec.suspend_reason if spec is not None else None,
        timing=None,
        time_zone=spec.time_zone if spec is not None else "UTC",
        interval=None,
        deadlines=(),
        active=(),
        problem=problem,
    )
    if problem is not None or spec is None or timing is None:
        return view
    owned = [task for task in tasks if controller_uid(task) == meta.get("uid")]
    old = ScheduleStatus.model_validate(schedule.get("status") or {})
    status, facts = rebuild_runs(old, owned, meta["name"], spec.history_limit, now)
    first = next_deadline(timing, old, facts, parse_time(meta.get("creationTimestamp")), now)
    deadlines: tuple[datetime, ...] = ()
    left = runs_left(spec, status)
    if left == 0:
        first = None
    ended = ended_reason(spec, timing, first, active=bool(status.active), left=left, now=now)
    suspended = next(
        (c.message for c in status.conditions if c.type == SUSPENDED and c.status == "True"), None
    )
    if spec.enabled and first is not None and ended is None and suspended is None:
        deadlines = tuple(timing.upcoming(first, count if left is None else min(count, left)))
    return replace(
        view,
        ended=ended[1] if ended is not None else None,
        suspended=suspended,
        timing=timing.signature,
        interval=timing.interval,
        deadlines=deadlines,
        active=tuple(status.active),
    )


def recorded_problem(schedule: Body) -> str | None:
    """Why the operator found the current generation's spec unusable, if it did: a spec it
    cannot read, or a Job template the API server refused in a dry run (which
    read_schedule cannot know)."""
    status = ScheduleStatus.model_validate(schedule.get("status") or {})
    ready = next((c for c in status.conditions if c.type == READY), None)
    generation = schedule["metadata"].get("generation")
    if ready is None or ready.reason not in (INVALID_SPEC, TEMPLATE_REJECTED):
        return None
    if ready.observed_generation is not None and ready.observed_generation != generation:
        return None
    return ready.message or ready.reason


def next_note(view: NextView) -> str | None:
    """What a person should know beyond the deadlines listed."""
    who = f"schedule {view.namespace}/{view.name}"
    if view.problem is not None:
        return f"{who} cannot fire: {view.problem}"
    if view.ended is not None:
        return f"{who} has ended: {view.ended}"
    if not view.enabled:
        reason = f" ({view.suspend_reason})" if view.suspend_reason else ""
        return f"{who} is disabled{reason}: no deadline fires until it is resumed"
    if view.suspended is not None:
        return f"{who} is suspended: {view.suspended}"
    if view.interval is not None:
        every = human_duration(view.interval.total_seconds())
        if not view.deadlines:
            running = ", ".join(view.active) or "a run"
            return f"{running} still running: the next deadline is {every} after it finishes"
        return f"then {every} after each run finishes"
    return None


def render_next(view: NextView, now: datetime) -> str:
    lines = []
    if view.deadlines:
        zone = ZoneInfo(view.time_zone)
        rows = [
            [
                rfc3339(deadline),
                deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                "due" if deadline <= now else human_duration((deadline - now).total_seconds()),
            ]
            for deadline in view.deadlines
        ]
        lines.append(table(["DEADLINE", f"LOCAL ({view.time_zone})", "IN"], rows))
    note = next_note(view)
    if note is not None:
        lines.append(note)
    return "\n".join(lines)


def next_document(view: NextView) -> dict[str, Any]:
    return {
        "namespace": view.namespace,
        "name": view.name,
        "enabled": view.enabled,
        "suspendReason": view.suspend_reason,
        "timing": view.timing,
        "timeZone": view.time_zone,
        "deadlines": [rfc3339(deadline) for deadline in view.deadlines],
        "active": list(view.active),
        "problem": view.problem,
        "ended": view.ended,
        "suspended": view.suspended,
        "note": next_note(view),
    }


# -- runs on request -----------------------------------------------------------------------


def run_request_value(now: datetime, used: Iterable[str | None]) -> str:
    """A new value for the run-now annotation: the time to the second, as `date -u +%FT%TZ`
    writes it, or to the microsecond when that value was used already (the annotation or the
    last request handled): a value the operator has seen makes no run."""
    value = rfc3339(now)
    if value in set(used):
        value = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


# -- history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    """One finished run of a Schedule, from its status.history."""

    task: str
    outcome: str
    deadline_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def history_rows(schedule: Body) -> list[HistoryRow]:
    """status.history as the operator keeps it: newest finish first."""
    status = ScheduleStatus.model_validate(schedule.get("status") or {})
    return [
        HistoryRow(
            task=entry.task,
            outcome=str(entry.phase),
            deadline_at=entry.deadline_at,
            started_at=entry.started_at,
            finished_at=entry.finished_at,
        )
        for entry in status.history
    ]


def render_history(rows: Sequence[HistoryRow], *, wide: bool = False) -> str:
    headers = ["TASK", "OUTCOME", "DEADLINE", "STARTED", "FINISHED", "DURATION"]
    if wide:
        headers.append("START LAG")
    lines = []
    for row in rows:
        duration = row.duration
        line = [
            row.task,
            row.outcome,
            rfc3339(row.deadline_at),
            rfc3339(row.started_at),
            rfc3339(row.finished_at),
            short_seconds(duration.total_seconds()) if duration is not None else "-",
        ]
        if wide:
            lag = (
                row.started_at - row.deadline_at
                if row.started_at is not None and row.deadline_at is not None
                else None
            )
            line.append(short_seconds(lag.total_seconds()) if lag is not None else "-")
        lines.append(line)
    return table(headers, lines)


def history_document(schedule: Body, rows: Sequence[HistoryRow]) -> dict[str, Any]:
    meta = schedule["metadata"]
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "history": [
            {
                "task": row.task,
                "outcome": row.outcome,
                "deadlineAt": rfc3339(row.deadline_at) if row.deadline_at else None,
                "startedAt": rfc3339(row.started_at) if row.started_at else None,
                "finishedAt": rfc3339(row.finished_at) if row.finished_at else None,
                "durationSeconds": (
                    row.duration.total_seconds() if row.duration is not None else None
                ),
            }
            for row in rows
        ],
    }


# -- statistics ---------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `fraction` of the
    values at or below it. `values` must not be empty."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Spread:
    """Percentiles of a set of durations, in seconds."""

    count: int
    p50: float
    p95: float
    p99: float


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    return Spread(
        count=len(values),
        p50=nearest_rank(values, 0.50),
        p95=nearest_rank(values, 0.95),
        p99=nearest_rank(values, 0.99),
    )


MEASURES = (
    ("deadline_to_dispatch", "deadline to dispatch", "deadlineToDispatch"),
    ("queued_to_dispatch", "queued to dispatch", "queuedToDispatch"),
    ("run_duration", "run duration", "runDuration"),
)
"""(field of QueueStats, what a table calls it, what JSON calls it)."""


@dataclass(frozen=True)
class QueueStats:
    """The Tasks of a queue: how many are in each phase, and how long they took."""

    queue: QueueKey
    phases: Mapping[TaskPhase, int]
    deadline_to_dispatch: Spread | None
    """From the deadline (a manual or backfilled Task: its creation) to its Job's creation,
    time in the queue included (the operator's `kadence_job_creation_lag_seconds`)."""
    queued_to_dispatch: Spread | None
    """From Queued to Dispatched (`kadence_task_wait_seconds`)."""
    run_duration: Spread | None
    """From the Job's start to the Task's finish, of the runs that completed or failed."""


def task_stats(
    tasks: Iterable[Body],
    config: OperatorConfig | None,
    *,
    scheduler_id: str | None = None,
    namespaces: Sequence[str] | None = None,
) -> list[QueueStats]:
    """Per queue, over the Tasks that exist (a Schedule prunes its finished Tasks beyond
    its history limits, so these are the recent runs and everything unfinished)."""
    queues = _queues(config)
    grouped: dict[QueueKey, list[Body]] = {}
    for task in tasks:
        namespace, sid = task["metadata"]["namespace"], scheduler_of(task)
        if scheduler_id is not None and sid != scheduler_id:
            continue
        grouped.setdefault(queues.queue_of(namespace, sid), []).append(task)
    chosen = [
        key for key in grouped if namespaces is None or set(_members(queues, key)) & set(namespaces)
    ]
    return [_stats(key, grouped[key]) for key in sorted(chosen, key=str)]


def _stats(key: QueueKey, tasks: Sequence[Body]) -> QueueStats:
    phases = dict.fromkeys(TaskPhase, 0)
    to_dispatch: list[float] = []
    waits: list[float] = []
    runs: list[float] = []
    for task in tasks:
        phase = phase_of(task)
        phases[phase] += 1
        status = task.get("status") or {}
        dispatched = parse_time(status.get("dispatchedAt"))
        queued = parse_time(status.get("queuedAt"))
        started = parse_time(status.get("startedAt"))
        finished = parse_time(status.get("finishedAt"))
        if dispatched is not None:
            since = waiting_since(task) or queue_item(task).deadline_at
            to_dispatch.append(_seconds(dispatched - since))
            if queued is not None:
                waits.append(_seconds(dispatched - queued))
        if phase in (TaskPhase.COMPLETED, TaskPhase.FAILED) and started and finished:
            runs.append(_seconds(finished - started))
    return QueueStats(
        queue=key,
        phases=phases,
        deadline_to_dispatch=spread(to_dispatch),
        queued_to_dispatch=spread(waits),
        run_duration=spread(runs),
    )


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def render_stats(stats: Sequence[QueueStats]) -> str:
    counts = table(
        ["QUEUE", *(str(phase).upper() for phase in TaskPhase)],
        [[str(s.queue), *(str(s.phases[phase]) for phase in TaskPhase)] for s in stats],
    )
    rows = []
    for s in stats:
        for attribute, label, _ in MEASURES:
            found: Spread | None = getattr(s, attribute)
            if found is None:
                rows.append([str(s.queue), label, "0", "-", "-", "-"])
            else:
                rows.append(
                    [
                        str(s.queue),
                        label,
                        str(found.count),
                        short_seconds(found.p50),
                        short_seconds(found.p95),
                        short_seconds(found.p99),
                    ]
                )
    lags = table(["QUEUE", "MEASURE", "TASKS", "P50", "P95", "P99"], rows)
    return f"{counts}\n\n{lags}"


def stats_document(stats: Sequence[QueueStats]) -> dict[str, Any]:
    def numbers(found: Spread | None) -> dict[str, Any] | None:
        if found is None:
            return None
        return {"count": found.count, "p50": found.p50, "p95": found.p95, "p99": found.p99}

    return {
        "queues": [
            {
                "queue": str(s.queue),
                "namespace": s.queue.namespace,
                "schedulerId": s.queue.scheduler_id,
                "phases": {str(phase): s.phases[phase] for phase in TaskPhase},
                **{name: numbers(getattr(s, attribute)) for attribute, _, name in MEASURES},
            }
            for s in stats
        ]
    }
