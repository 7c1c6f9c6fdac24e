"""Overlapping runs end to end: BufferOne keeps one run waiting behind a long one, and the
default hash tells apart Schedules whose data is equal but whose Jobs differ.

Each test uses its own namespace and schedulerId (default capacity 10, so a Task that
waits does so for its work, not for a slot). Cron deadlines fall on the minute, so each
test waits for one minute boundary; nothing sleeps in place of a condition.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from kadence.naming import RUN_REQUEST_ANNOTATION, default_hash, task_name_for_deadline
from tests.e2e.conftest import Operator
from tests.support.kube import Kube, status, task_in_phase, task_phase, wait_for
from tests.support.manifests import EVERY_MINUTE, job_template

MINUTE = timedelta(minutes=1)
WAITING = ("Pending", "Queued")
ACTIVE = ("Dispatched", "Running")

Body = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def next_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + MINUTE


def data_less_schedule(name: str, scheduler_id: str, template: Body, **spec: Any) -> Body:
    """An every-minute Schedule without `data`, so its default hash is its template's."""
    return {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {
            "schedulerId": scheduler_id,
            "schedule": EVERY_MINUTE,
            "jobTemplate": template,
            "successfulTasksHistoryLimit": 10,
            **spec,
        },
    }


def tasks_by_phase(kube: Kube, namespace: str, work: str) -> dict[str, list[str]]:
    """The namespace's Tasks of one hash, by phase (a Task not admitted yet is Pending)."""
    found: dict[str, list[str]] = {}
    for task in kube.list("tasks", namespace):
        if task["spec"].get("hash") == work:
            phase = status(task).get("phase") or "Pending"
            found.setdefault(phase, []).append(task["metadata"]["name"])
    return {phase: sorted(names) for phase, names in found.items()}


def skipped(kube: Kube, namespace: str, name: str) -> int:
    counts = status(kube.get("schedules", namespace, name)).get("counts") or {}
    return int(counts.get("skipped", 0))


def test_buffer_one_keeps_one_run_waiting_behind_a_long_one_then_runs_it(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Two every-minute BufferOne Schedules doing the same work (equal data and template).
    A run request starts a long Task A that runs across the next minute. At that minute one
    Schedule makes a Task B, which waits (Queued, saying so) although the queue has room;
    the other Schedule's deadline finds B waiting and is skipped and counted. Once A
    finishes, B is dispatched."""
    queue = f"q-{namespace}"
    if next_minute(utcnow()) - utcnow() < timedelta(seconds=15):  # A must run by the minute
        fresh = next_minute(utcnow()) + timedelta(seconds=1)
        wait_for(lambda: utcnow() >= fresh, 20, "a fresh minute, with time to start A")
    boundary = next_minute(utcnow())
    run_for = math.ceil((boundary - utcnow()).total_seconds()) + 25
    template = job_template(f"{run_for}s")
    work = default_hash({}, template)
    first = data_less_schedule("first", queue, template, concurrencyPolicy="BufferOne")
    first["metadata"]["annotations"] = {RUN_REQUEST_ANNOTATION: "long-run"}
    kube.create("schedules", namespace, first)
    kube.create(
        "schedules",
        namespace,
        data_less_schedule("second", queue, template, concurrencyPolicy="BufferOne"),
    )
    running = wait_for(
        lambda: tasks_by_phase(kube, namespace, work).get("Running"), 30, "the long run A"
    )
    assert len(running) == 1, running
    (long_run,) = running
    assert utcnow() < boundary, "A must be running before the minute, or the test proves nothing"

    waiting = [task_name_for_deadline(name, boundary) for name in ("first", "second")]
    made = wait_for(
        lambda: [name for name in waiting if kube.get("tasks", namespace, name)],
        (boundary - utcnow()).total_seconds() + 20,
        "the minute's Task of one of the two Schedules",
    )
    wait_for(
        lambda: skipped(kube, namespace, "first") + skipped(kube, namespace, "second") == 1,
        20,
        "the other Schedule's deadline skipped and counted",
    )
    (buffered,) = made
    expected_message = f"waiting for task {long_run} (same hash) to finish"
    queued = wait_for(
        lambda: (
            (task := task_in_phase(kube, namespace, buffered, "Queued")())
            and status(task).get("message") == expected_message
            and task
        ),
        20,
        f"{buffered} Queued, saying it waits for {long_run}",
    )
    assert queued["spec"]["concurrencyPolicy"] == "BufferOne"
    # Seen together: A still runs, B waits although the queue has room, nothing else.
    assert task_phase(kube, namespace, long_run) == "Running", "A finished too soon to tell"
    assert tasks_by_phase(kube, namespace, work) == {"Running": [long_run], "Queued": [buffered]}
    assert not [n for n in waiting if n != buffered and kube.get("tasks", namespace, n)]
    assert [job.metadata.name for job in kube.jobs(namespace)] == [long_run], "no Job for B yet"

    finished = wait_for(
        task_in_phase(kube, namespace, long_run, "Completed"),
        run_for + 30,
        f"the long run {long_run} to complete",
    )
    started = wait_for(
        task_in_phase(kube, namespace, buffered, *ACTIVE), 30, f"{buffered} dispatched after A"
    )
    assert parse_time(status(started)["dispatchedAt"]) >= parse_time(
        status(finished)["finishedAt"]
    ).replace(microsecond=0)
    assert status(started)["message"] != expected_message


def test_data_less_schedules_with_different_templates_both_run_under_forbid(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Two Forbid Schedules in one queue with no data and different Job templates do
    different work: each makes its Task for the same minute, and neither skips."""
    queue = f"q-{namespace}"
    templates = {"blue": job_template("1s"), "green": job_template("2s")}
    for name, template in templates.items():
        kube.create("schedules", namespace, data_less_schedule(name, queue, template))
    deadline = wait_for(
        lambda: status(kube.get("schedules", namespace, "blue")).get("deadlineAt"),
        20,
        "the first deadline",
    )
    minute = parse_time(deadline)
    for name, template in templates.items():
        task = wait_for(
            lambda name=name: kube.get("tasks", namespace, task_name_for_deadline(name, minute)),
            (minute - utcnow()).total_seconds() + 20,
            f"{name}: its Task for {minute.isoformat()}",
        )
        assert task["spec"]["hash"] == default_hash({}, template)
        assert task["spec"]["concurrencyPolicy"] == "Forbid"
    for name in templates:
        wait_for(
            lambda name=name: (
                (status(kube.get("schedules", namespace, name)).get("counts") or {}).get(
                    "completed"
                )
                == 1
            ),
            30,
            f"{name}: its run completed",
        )
        assert skipped(kube, namespace, name) == 0, name
