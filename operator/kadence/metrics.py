"""Prometheus metrics: what a dashboard or an alert needs to see the operator at work.

Two kinds. Events (tasks made, Jobs dispatched, lags, API requests) are counters and
histograms kept in memory; their `scheduler_id` label is bounded (see `queue_label`).
State (each Schedule's deadlines and outcomes, each queue's depth) is read from the
operator's store at scrape time by `StateCollector`, as kube-state-metrics does for
CronJobs: nothing per object is kept between scrapes, and a deleted Schedule's series
disappear with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kadence.models import TaskPhase
from kadence.status import parse_time

OTHER_QUEUES = "other"
"""The `scheduler_id` label of every queue the configuration does not name: anyone may
invent a schedulerId, and one series each would let them grow the operator's memory."""

_NAMED: set[str] = set()


def name_queues(scheduler_ids: Iterable[str]) -> None:
    """The schedulerIds that get a label value of their own (those in the configuration)."""
    _NAMED.clear()
    _NAMED.update(scheduler_ids)


def queue_label(scheduler_id: str) -> str:
    return scheduler_id if scheduler_id in _NAMED else OTHER_QUEUES


LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)

TASKS_CREATED = Counter(
    "kadence_tasks_created_total", "Tasks created for schedule deadlines and run requests.",
    ["scheduler_id"],
)  # fmt: skip
TASKS_DISPATCHED = Counter(
    "kadence_tasks_dispatched_total", "Tasks that became Jobs.", ["scheduler_id"]
)
CLAIMS_GRANTED = Counter(
    "kadence_claims_granted_total", "Claims on Tasks of pull queues granted to runners.",
    ["scheduler_id"],
)  # fmt: skip
CLAIMS_LOST = Counter(
    "kadence_claims_lost_total",
    "Granted claims that ran out unrenewed (ClaimExpired) or that their runner gave back "
    "(ClaimReleased) before the Task finished.",
    ["scheduler_id", "reason"],
)
TASKS_FINISHED = Counter(
    "kadence_tasks_finished_total", "Tasks that reached a final phase.", ["scheduler_id", "phase"]
)
DEADLINES_SKIPPED = Counter(
    "kadence_deadlines_skipped_total", "Deadlines skipped by the concurrency policy."
)
DEADLINES_MISSED = Counter(
    "kadence_deadlines_missed_total", "Deadlines missed (operator down, too late)."
)
TASK_CREATION_LAG = Histogram(
    "kadence_task_creation_lag_seconds",
    "Time from a deadline to the creation of its Task.",
    ["scheduler_id"],
    buckets=LAG_BUCKETS,
)
JOB_CREATION_LAG = Histogram(
    "kadence_job_creation_lag_seconds",
    "Time from a Task's deadline (a manual Task: its creation) to the creation of its Job, "
    "time waiting in the queue included.",
    ["scheduler_id"],
    buckets=LAG_BUCKETS,
)
TASK_WAIT = Histogram(
    "kadence_task_wait_seconds",
    "Time a Task waited in its queue, from Queued to Dispatched.",
    ["scheduler_id"],
    buckets=WAIT_BUCKETS,
)
RECONCILE_ERRORS = Counter(
    "kadence_reconcile_errors_total",
    "Reconciles that failed and were retried with backoff, per kind of object.",
    ["kind"],
)
WORKQUEUE_DEPTH = Gauge(
    "kadence_workqueue_depth", "Keys waiting in a work queue to be reconciled.", ["kind"]
)
WORKQUEUE_RETRIES = Counter(
    "kadence_workqueue_retries_total",
    "Keys put back into a work queue with backoff after a failed reconcile.",
    ["kind"],
)
ADMISSION_POLICIES_MISSING = Gauge(
    "kadence_admission_policies_missing",
    "Admission policies or bindings the operator needs and did not find; no Job is made "
    "while this is above 0.",
)
LEADER = Gauge(
    "kadence_leader",
    "1 on the replica that holds the Lease and acts, 0 on a standby.",
)
LEADER_TRANSITIONS = Counter(
    "kadence_leader_transitions_total",
    "Times this replica became the leader.",
)
API_REQUESTS = Counter(
    "kadence_api_requests_total",
    "Requests made to the Kubernetes API, by verb, resource and response code (2xx for "
    "any success, 0 when the API server could not be reached).",
    ["verb", "resource", "code"],
)


@dataclass(frozen=True)
class QueueState:
    """One queue as its last reconcile saw it."""

    namespace: str
    """Empty for a queue that namespaces share by configuration."""
    scheduler_id: str
    pending: int
    active: int
    capacity: int
    oldest_pending: datetime | None


SCHEDULE_LABELS = ["namespace", "schedule", "scheduler_id"]
QUEUE_LABELS = ["namespace", "scheduler_id"]
_TIMES = (
    ("next_deadline", "deadlineAt", "The next deadline"),
    ("last_scheduled", "lastScheduledAt", "When the last task was created"),
    ("last_successful", "lastSuccessfulAt", "When a task last completed"),
    ("last_failed", "lastFailedAt", "When a task last failed"),
)


class StateCollector(Collector):
    """Per-Schedule and per-queue series, built from the store at each scrape; only the
    leader exports them, so that two replicas never give each series twice."""

    def __init__(
        self,
        schedules: Callable[[], Iterable[Mapping[str, Any]]],
        queues: Callable[[], Iterable[QueueState]],
        leading: Callable[[], bool],
    ) -> None:
        self._schedules = schedules
        self._queues = queues
        self._leading = leading

    def collect(self) -> Iterator[Metric]:
        if not self._leading():
            return
        yield from schedule_metrics(list(self._schedules()))
        yield from queue_metrics(list(self._queues()))


def schedule_metrics(bodies: Iterable[Mapping[str, Any]]) -> list[Metric]:
    """The series of each Schedule, from the status the operator wrote on it.

    Read from the raw status, not through the models: a scrape reads every Schedule.
    """
    times = {
        field: GaugeMetricFamily(
            f"kadence_schedule_{name}_timestamp_seconds",
            f"{text}, in seconds since the epoch (absent until there is one).",
            labels=SCHEDULE_LABELS,
        )
        for name, field, text in _TIMES
    }
    active = _gauge("schedule_active_tasks", "Tasks of the Schedule not yet finished.")
    failures = _gauge(
        "schedule_consecutive_failures", "Runs that failed in a row, counted from the newest."
    )
    enabled = _gauge("schedule_enabled", "1 when spec.enabled is true.")
    ready = _gauge("schedule_ready", "1 when the Ready condition is True.")
    missed = CounterMetricFamily(
        "kadence_schedule_deadlines_missed",
        "Deadlines missed (operator down, too late, task name taken).",
        labels=SCHEDULE_LABELS,
    )
    skipped = CounterMetricFamily(
        "kadence_schedule_deadlines_skipped",
        "Deadlines skipped by the concurrency policy.",
        labels=SCHEDULE_LABELS,
    )
    runs = CounterMetricFamily(
        "kadence_schedule_runs",
        "Finished runs of the Schedule by outcome: completed, failed, cancelled.",
        labels=[*SCHEDULE_LABELS, "outcome"],
    )
    by_readiness = {"true": 0, "false": 0}
    for body in bodies:
        meta, spec = body["metadata"], body.get("spec") or {}
        labels = [meta["namespace"], meta["name"], str(spec.get("schedulerId", ""))]
        status = body.get("status") or {}
        for _, field, _ in _TIMES:
            moment = parse_time(status.get(field))
            if moment is not None:
                times[field].add_metric(labels, moment.timestamp())
        active.add_metric(labels, len(status.get("active") or ()))
        failures.add_metric(labels, consecutive_failures(status.get("history") or ()))
        enabled.add_metric(labels, 0 if spec.get("enabled") is False else 1)
        is_ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        ready.add_metric(labels, int(is_ready))
        by_readiness["true" if is_ready else "false"] += 1
        counts = status.get("counts") or {}
        missed.add_metric(labels, counts.get("missed", 0))
        skipped.add_metric(labels, counts.get("skipped", 0))
        for outcome in ("completed", "failed", "cancelled"):
            runs.add_metric([*labels, outcome], counts.get(outcome, 0))
    schedules = GaugeMetricFamily(
        "kadence_schedules", "Schedules known to the operator, by readiness.", labels=["ready"]
    )
    for value, count in by_readiness.items():
        schedules.add_metric([value], count)
    return [*times.values(), active, failures, enabled, ready, missed, skipped, runs, schedules]


def consecutive_failures(history: Iterable[Mapping[str, Any]]) -> int:
    """Failed runs in a row from the newest in the history (cancelled runs are passed over)."""
    count = 0
    for entry in history:
        if entry.get("phase") == TaskPhase.FAILED:
            count += 1
        elif entry.get("phase") == TaskPhase.COMPLETED:
            break
    return count


def queue_metrics(queues: Iterable[QueueState]) -> list[Metric]:
    """The series of each queue that has tasks or is named in the configuration."""
    pending = _gauge("queue_pending_tasks", "Tasks Queued.", QUEUE_LABELS)
    active = _gauge("queue_active_tasks", "Tasks Dispatched or Running.", QUEUE_LABELS)
    capacity = _gauge(
        "queue_capacity", "The most tasks that may be Dispatched or Running.", QUEUE_LABELS
    )
    oldest = _gauge(
        "queue_oldest_pending_timestamp_seconds",
        "When the longest-waiting Queued task was queued (absent when none waits).",
        QUEUE_LABELS,
    )
    for queue in queues:
        labels = [queue.namespace, queue.scheduler_id]
        pending.add_metric(labels, queue.pending)
        active.add_metric(labels, queue.active)
        capacity.add_metric(labels, queue.capacity)
        if queue.oldest_pending is not None:
            oldest.add_metric(labels, queue.oldest_pending.timestamp())
    return [pending, active, capacity, oldest]


def _gauge(name: str, text: str, labels: list[str] = SCHEDULE_LABELS) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"kadence_{name}", text, labels=labels)
