"""Prometheus metrics: what a dashboard or an alert needs to see the operator at work."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

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


TASKS_CREATED = Counter(
    "kadence_tasks_created_total", "Tasks created for schedule deadlines and run requests.",
    ["scheduler_id"],
)  # fmt: skip
TASKS_DISPATCHED = Counter(
    "kadence_tasks_dispatched_total", "Tasks that became Jobs.", ["scheduler_id"]
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
DEADLINE_LAG = Histogram(
    "kadence_deadline_lag_seconds",
    "Time from a deadline to the creation of its task.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
QUEUE_DEPTH = Gauge("kadence_queue_depth", "Tasks Queued, per scheduler.", ["scheduler_id"])
QUEUE_ACTIVE = Gauge(
    "kadence_queue_active", "Tasks Dispatched or Running, per scheduler.", ["scheduler_id"]
)
SCHEDULES = Gauge("kadence_schedules", "Schedules known to the operator, by readiness.", ["ready"])
RECONCILE_ERRORS = Counter(
    "kadence_reconcile_errors_total",
    "Reconciles that failed and were retried with backoff, per kind of object.",
    ["kind"],
)
ADMISSION_POLICIES_MISSING = Gauge(
    "kadence_admission_policies_missing",
    "Admission policies or bindings the operator needs and did not find; no Job is made "
    "while this is above 0.",
)
API_REQUESTS = Counter(
    "kadence_api_requests_total", "Requests made to the Kubernetes API.", ["verb", "resource"]
)
