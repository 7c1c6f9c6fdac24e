"""A Schedule's status is a view of what exists: rebuilt on every reconcile, from the Tasks
the Schedule controls (by uid), whatever happened while the operator was away.

Long runs use kwok's `run-for` annotation, so a Task stays Running for the test's length.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kadence.naming import task_name_for_deadline
from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import (
    MINUTE,
    away_from_a_minute_boundary,
    deadline_of,
    events_of,
    job_template,
    parse_time,
    phase,
    queue_of,
    schedule_body,
    schedule_status,
    tasks_of,
    utcnow,
)
from tests.support.kube import GROUP, VERSION, Kube, wait_for

LONG_RUN = job_template(annotations={"kwok.kadence.dev/run-for": "600s"})


def running_task(kube: Kube, namespace: str, schedule: str, timeout: float) -> dict[str, Any]:
    """The schedule's one Task, once its Job's pod runs."""

    def found() -> dict[str, Any] | None:
        tasks = [t for t in tasks_of(kube, namespace, schedule) if phase(t) == "Running"]
        return tasks[0] if tasks else None

    return wait_for(found, timeout, f"a running task of {schedule}")


def gone(kube: Kube, namespace: str, plural: str, name: str) -> bool:
    return kube.get(plural, namespace, name) is None


def test_tasks_deleted_while_the_operator_is_down_are_forgotten_and_runs_resume(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Stop the operator; delete the running Task and Job of an interval Schedule and of a
    Forbid cron Schedule; start it again. Both run again at their next deadline (the Forbid
    one is not held back by a Task that no longer exists), neither `status.active` names a
    deleted Task, and each deleted run is counted once, as cancelled."""
    queue = queue_of(namespace)
    away_from_a_minute_boundary(40)
    kube.create(
        "schedules",
        namespace,
        schedule_body("every", queue, interval="5s", data={"n": 1}, jobTemplate=LONG_RUN),
    )
    kube.create("schedules", namespace,
                schedule_body("minutely", queue, schedule="* * * * *", data={"n": 2},
                              jobTemplate=LONG_RUN))  # fmt: skip
    interval_run = running_task(kube, namespace, "every", 30)["metadata"]["name"]
    cron_run = running_task(kube, namespace, "minutely", 90)["metadata"]["name"]
    wait_for(
        lambda: (
            schedule_status(kube, namespace, "minutely").get("active") == [cron_run]
            and schedule_status(kube, namespace, "every").get("active") == [interval_run]
        ),
        30,
        "both runs recorded as active",
    )

    operator.stop()
    try:
        for name in (interval_run, cron_run):
            kube.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
            kube.delete("tasks", namespace, name)
        for name in (interval_run, cron_run):
            wait_for(lambda name=name: gone(kube, namespace, "tasks", name), 60, f"{name} gone")
    finally:
        operator.start()
    restarted = utcnow()

    def new_run(schedule: str, old: str) -> str | None:
        names = [t["metadata"]["name"] for t in tasks_of(kube, namespace, schedule)]
        fresh = [name for name in names if name != old]
        return fresh[0] if fresh else None

    new_interval_run = wait_for(
        lambda: new_run("every", interval_run), 30, "the interval's next run"
    )
    new_cron_run = wait_for(lambda: new_run("minutely", cron_run), 90, "the cron's next run")
    created = kube.get("tasks", namespace, new_cron_run)
    assert created is not None
    made_for = parse_time(created["spec"]["deadlineAt"])
    assert made_for > restarted - MINUTE
    assert made_for.second == 0
    assert new_cron_run == task_name_for_deadline("minutely", made_for)

    for schedule, old, new in (
        ("every", interval_run, new_interval_run),
        ("minutely", cron_run, new_cron_run),
    ):
        st = wait_for(
            lambda schedule=schedule, new=new: (
                (s := schedule_status(kube, namespace, schedule)).get("active") == [new] and s
            ),
            30,
            f"{schedule}: only the new run active",
        )
        assert old not in st["active"]
        assert st["counts"]["created"] == 2, (schedule, st["counts"])
        assert st["counts"]["cancelled"] == 1, (schedule, st["counts"])
        assert [(h["task"], h["phase"]) for h in st["history"]] == [(old, "Cancelled")]


@pytest.mark.every_version
def test_a_hand_edited_status_is_restored_by_the_next_reconcile(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Clear `status.active` and set a wrong `lastScheduledAt` through the status
    subresource: the operator puts back what the Tasks say, and counts nothing twice."""
    body = schedule_body("edited", queue_of(namespace), interval="1h", jobTemplate=LONG_RUN)
    kube.create("schedules", namespace, body)
    run = running_task(kube, namespace, "edited", 30)
    name = run["metadata"]["name"]
    truth = wait_for(
        lambda: (s := schedule_status(kube, namespace, "edited")).get("active") == [name] and s,
        30,
        "the run recorded",
    )
    edited = kube.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "schedules", "edited",
        {"status": {"active": [], "lastScheduledAt": "2001-01-01T00:00:00Z"}},
    )  # fmt: skip
    assert edited["status"]["active"] == []

    restored = wait_for(
        lambda: (
            (s := schedule_status(kube, namespace, "edited")).get("active") == [name]
            and s.get("lastScheduledAt") != "2001-01-01T00:00:00Z"
            and s
        ),
        30,
        "the status rebuilt from the Tasks",
    )
    assert parse_time(restored["lastScheduledAt"]) == parse_time(
        run["metadata"]["creationTimestamp"]
    )
    assert restored["counts"] == truth["counts"]
    assert restored.get("deadlineAt") is None, "an interval schedule waits for its active run"


def test_a_task_under_the_next_run_name_that_the_schedule_does_not_control_is_not_its_run(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A Task made ahead of time under a Schedule's next deterministic run name, by someone
    else, is not adopted: at the deadline the run is recorded as missed with a TaskNameTaken
    Warning, and the stranger's Task never appears in the Schedule's status."""
    away_from_a_minute_boundary(45)
    next_minute = utcnow().replace(second=0, microsecond=0) + MINUTE
    taken = task_name_for_deadline("guarded", next_minute)
    kube.create(
        "tasks",
        namespace,
        {
            "apiVersion": "kadence.dev/v1alpha1",
            "kind": "Task",
            "metadata": {"name": taken},
            "spec": {"schedulerId": queue_of(namespace), "data": {"squatter": True},
                     "jobTemplate": job_template()},
        },
    )  # fmt: skip
    kube.create("schedules", namespace,
                schedule_body("guarded", queue_of(namespace), schedule="* * * * *"))  # fmt: skip
    assert deadline_of(kube, namespace, "guarded") in (None, next_minute)
    wait_for(
        lambda: (deadline_of(kube, namespace, "guarded") or next_minute) > next_minute,
        90,
        "the schedule to act on its first deadline",
    )
    st = schedule_status(kube, namespace, "guarded")
    assert st["counts"].get("missed") == 1
    assert st["counts"].get("created", 0) == 0
    assert taken not in st.get("active", [])
    assert taken not in [h["task"] for h in st.get("history", [])]
    warning = wait_for(
        lambda: events_of(kube, namespace, "guarded", "TaskNameTaken"), 15, "TaskNameTaken"
    )
    assert warning[0].type == "Warning"
    squatter = kube.get("tasks", namespace, taken)
    assert squatter is not None
    assert squatter["metadata"].get("ownerReferences") in (None, [])
    assert deadline_of(kube, namespace, "guarded") == next_minute + timedelta(minutes=1)
