"""The state series: each Schedule and each queue as a scrape shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kadence.metrics import QueueState, StateCollector, consecutive_failures

ON_THE_HOUR = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def schedule(name: str, status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team-a", "name": name},
        "spec": {"schedulerId": "reports", **spec},
        "status": status,
    }


def scrape(
    schedules: list[dict[str, Any]], queues: list[QueueState] | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(StateCollector(lambda: schedules, lambda: queues or [], lambda: True))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


LABELS = (("namespace", "team-a"), ("schedule", "nightly"), ("scheduler_id", "reports"))


def test_a_schedule_that_ran_shows_its_times_counts_and_state() -> None:
    series = scrape(
        [
            schedule(
                "nightly",
                {
                    "deadlineAt": "2026-06-01T11:00:00Z",
                    "lastScheduledAt": "2026-06-01T10:00:01Z",
                    "lastFailedAt": "2026-06-01T10:05:00Z",
                    "active": ["nightly-1"],
                    "counts": {"created": 4, "completed": 2, "failed": 2, "missed": 1},
                    "history": [
                        {"task": "d", "phase": "Failed"},
                        {"task": "c", "phase": "Failed"},
                        {"task": "b", "phase": "Completed"},
                    ],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled"}],
                },
            )
        ]
    )
    assert series[("kadence_schedule_next_deadline_timestamp_seconds", LABELS)] == 1780311600.0
    assert series[("kadence_schedule_last_scheduled_timestamp_seconds", LABELS)] == 1780308001.0
    assert ("kadence_schedule_last_successful_timestamp_seconds", LABELS) not in series
    assert series[("kadence_schedule_last_failed_timestamp_seconds", LABELS)] == 1780308300.0
    assert series[("kadence_schedule_active_tasks", LABELS)] == 1
    assert series[("kadence_schedule_consecutive_failures", LABELS)] == 2
    assert series[("kadence_schedule_deadlines_missed_total", LABELS)] == 1
    assert series[("kadence_schedule_deadlines_skipped_total", LABELS)] == 0
    assert (
        series[("kadence_schedule_runs_total", tuple(sorted((*LABELS, ("outcome", "failed")))))]
        == 2
    )
    assert (
        series[("kadence_schedule_runs_total", tuple(sorted((*LABELS, ("outcome", "completed")))))]
        == 2
    )
    assert series[("kadence_schedule_enabled", LABELS)] == 1
    assert series[("kadence_schedule_ready", LABELS)] == 1
    assert series[("kadence_schedules", (("ready", "true"),))] == 1
    assert series[("kadence_schedules", (("ready", "false"),))] == 0


def test_a_new_disabled_schedule_has_no_times_and_is_not_ready() -> None:
    series = scrape([schedule("nightly", {}, enabled=False)])
    assert not any(name.endswith("_timestamp_seconds") for name, _ in series)
    assert series[("kadence_schedule_enabled", LABELS)] == 0
    assert series[("kadence_schedule_ready", LABELS)] == 0
    assert series[("kadence_schedules", (("ready", "false"),))] == 1


def test_queues_show_depth_capacity_and_the_oldest_wait() -> None:
    series = scrape(
        [],
        [
            QueueState("team-a", "reports", 3, 2, 2, ON_THE_HOUR),
            QueueState("", "shared", 0, 0, 8, None),
        ],
    )
    mine = (("namespace", "team-a"), ("scheduler_id", "reports"))
    shared = (("namespace", ""), ("scheduler_id", "shared"))
    assert series[("kadence_queue_pending_tasks", mine)] == 3
    assert series[("kadence_queue_active_tasks", mine)] == 2
    assert series[("kadence_queue_capacity", mine)] == 2
    assert series[("kadence_queue_oldest_pending_timestamp_seconds", mine)] == 1780308000.0
    assert series[("kadence_queue_capacity", shared)] == 8
    assert ("kadence_queue_oldest_pending_timestamp_seconds", shared) not in series


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([], 0),
        (["Completed", "Failed"], 0),
        (["Failed", "Failed", "Completed", "Failed"], 2),
        (["Failed", "Cancelled", "Failed"], 2),
        (["Cancelled"], 0),
    ],
    ids=["no-runs", "last-succeeded", "two-in-a-row", "cancelled-passed-over", "only-cancelled"],
)
def test_consecutive_failures_count_from_the_newest(phases: list[str], expected: int) -> None:
    assert consecutive_failures([{"task": str(n), "phase": p} for n, p in enumerate(phases)]) == (
        expected
    )
