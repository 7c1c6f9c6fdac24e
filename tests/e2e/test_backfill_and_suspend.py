"""Runs asked for by a person and runs stopped by failures, end to end: a backfill of past
deadlines, the trigger label, the pause after consecutive failed runs and its resume, and
who may ask for either.

Where a test shows that something does NOT happen (no third task while suspended), it first
waits for a positive sign that the operator had the occasion to do it: deadlines counted as
skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kadence.naming import task_name_for_deadline
from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import (
    events_of,
    job_template,
    queue_of,
    schedule_body,
    schedule_status,
    utcnow,
)
from tests.e2e.test_tenancy import CREATE_JOBS, KADENCE_ALL, account, as_user, refused
from tests.support.kube import Kube, condition, wait_for

pytestmark = pytest.mark.every_version

BACKFILL = "kadence.dev/backfill"
BACKFILL_POLICY = "kadence.dev/backfill-policy"
RESUME = "kadence.dev/resume-requested-at"
TRIGGER = "kadence.dev/trigger"
FAIL = {"kwok.kadence.dev/fail": "true"}
TEN_MINUTES = timedelta(minutes=10)


def rfc(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def tasks_by_trigger(kube: Kube, namespace: str, schedule: str, trigger: str) -> list[str]:
    selector = f"kadence.dev/schedule={schedule},{TRIGGER}={trigger}"
    return sorted(t["metadata"]["name"] for t in kube.list("tasks", namespace, selector=selector))


def test_a_backfill_of_the_last_hour_makes_one_labelled_task_per_deadline(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """`*/10 * * * *`, backfilled over the last whole hour (END exclusive): six tasks, named
    for their deadlines, labelled `kadence.dev/trigger: backfill`, all in status.history."""
    now = utcnow()
    end = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    start = end - 6 * TEN_MINUTES
    value = f"{rfc(start)}/{rfc(end)}"
    body = schedule_body(
        "tenly", queue_of(namespace), schedule="*/10 * * * *", successfulTasksHistoryLimit=10
    )
    body["metadata"]["annotations"] = {BACKFILL: value, BACKFILL_POLICY: "Allow"}
    kube.create("schedules", namespace, body)

    expected = sorted(task_name_for_deadline("tenly", start + i * TEN_MINUTES) for i in range(6))
    wait_for(
        lambda: tasks_by_trigger(kube, namespace, "tenly", "backfill") == expected,
        30,
        "the six backfilled tasks",
    )
    assert schedule_status(kube, namespace, "tenly")["lastHandledBackfill"] == value
    for name in expected:
        made = kube.get("tasks", namespace, name)
        assert made is not None
        assert made["metadata"]["labels"][TRIGGER] == "backfill"

    def history() -> list[str]:
        entries = schedule_status(kube, namespace, "tenly").get("history") or []
        return sorted(e["task"] for e in entries if e.get("phase") == "Completed")

    wait_for(lambda: set(expected) <= set(history()), 60, "the six runs in status.history")
    backfilled = events_of(kube, namespace, "tenly", "Backfilled")
    assert len(backfilled) == 1, backfilled
    assert "6 tasks created" in backfilled[0].message


def test_suspended_after_two_failed_runs_until_resumed(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """`suspendAfterFailures: 2` on a 2s interval whose Job fails: two failed runs, then
    Suspended/ConsecutiveFailures, one Warning and no third task while deadlines pass; a new
    `kadence.dev/resume-requested-at` value makes the next task."""
    kube.create(
        "schedules",
        namespace,
        schedule_body(
            "flaky",
            queue_of(namespace),
            interval="2s",
            suspendAfterFailures=2,
            failedTasksHistoryLimit=10,
            jobTemplate=job_template(labels=FAIL),
        ),
    )

    def suspended() -> dict[str, Any]:
        found = condition(kube.get("schedules", namespace, "flaky"), "Suspended")
        return found if found.get("status") == "True" else {}

    held = wait_for(suspended, 60, "Suspended True")
    assert held["reason"] == "ConsecutiveFailures"
    first_two = tasks_by_trigger(kube, namespace, "flaky", "schedule")
    assert len(first_two) == 2, first_two
    assert held["message"].startswith("2 runs failed in a row, the last ")
    assert condition(kube.get("schedules", namespace, "flaky"), "Ready")["reason"] == "Suspended"

    # Deadlines pass while suspended: counted as skipped, and no task is made for them.
    wait_for(
        lambda: (
            (schedule_status(kube, namespace, "flaky").get("counts") or {}).get("skipped", 0) >= 2
        ),
        30,
        "two deadlines skipped while suspended",
    )
    assert tasks_by_trigger(kube, namespace, "flaky", "schedule") == first_two
    assert len(events_of(kube, namespace, "flaky", "ConsecutiveFailures")) == 1

    kube.patch(
        "schedules", namespace, "flaky", {"metadata": {"annotations": {RESUME: rfc(utcnow())}}}
    )
    wait_for(
        lambda: len(tasks_by_trigger(kube, namespace, "flaky", "schedule")) > 2,
        30,
        "a new task once resumed",
    )
    assert events_of(kube, namespace, "flaky", "Resumed")


def test_backfill_and_resume_need_the_right_to_create_jobs(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """May patch Schedules, may not create Jobs: the backfill, backfill-policy and resume
    annotations are refused. With the right, the backfill and the resume are taken."""
    kube.create(
        "schedules", namespace, schedule_body("nightly", queue_of(namespace), schedule="0 * * * *")
    )
    patcher = account(cluster, namespace, "backfiller", [KADENCE_ALL])
    end = utcnow().replace(minute=0, second=0, microsecond=0)
    value = f"{rfc(end - timedelta(hours=2))}/{rfc(end)}"

    def annotate(annotation: str) -> Any:
        return as_user(cluster, patcher, namespace, "annotate", "schedule", "nightly",
                       annotation)  # fmt: skip

    for annotation in (f"{BACKFILL}={value}", f"{BACKFILL_POLICY}=Allow", f"{RESUME}=now"):
        result = annotate(annotation)
        assert refused(result, "require-job-create"), (annotation, result.stderr)
        assert "may not create Jobs" in result.stderr
    annotations = kube.get("schedules", namespace, "nightly")["metadata"].get("annotations") or {}  # type: ignore[index]
    assert not {BACKFILL, BACKFILL_POLICY, RESUME} & set(annotations)

    account(cluster, namespace, "backfiller", [KADENCE_ALL, CREATE_JOBS])
    wait_for(
        lambda: annotate(f"{BACKFILL}={value}").returncode == 0,
        30,
        "the backfill annotation to pass once the patcher may create Jobs",
    )
    assert annotate(f"{RESUME}=now").returncode == 0
    wait_for(
        lambda: (
            schedule_status(kube, namespace, "nightly").get("lastHandledBackfill") == value
            and schedule_status(kube, namespace, "nightly").get("lastHandledResumeRequest") == "now"
        ),
        30,
        "the backfill and the resume request to be handled",
    )
    assert len(tasks_by_trigger(kube, namespace, "nightly", "backfill")) == 1


def test_kubectl_kadence_backfill_and_resume(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """`kubectl kadence backfill NAME START END --allow` sets both annotations at once and
    refuses a bad or already handled value without writing; `resume` sets a new resume
    request as well as enabling."""
    kube.create(
        "schedules", namespace, schedule_body("hourly", queue_of(namespace), schedule="0 * * * *")
    )
    plugin = Path(sys.executable).parent / "kubectl-kadence"

    def kadence(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(plugin), *args, "-n", namespace],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        )  # fmt: skip

    end = utcnow().replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=3)
    asked = kadence("backfill", "hourly", rfc(start), rfc(end), "--allow")
    assert asked.returncode == 0, asked.stderr
    value = f"{rfc(start)}/{rfc(end)}"
    assert asked.stdout.strip() == f"schedule.kadence.dev/hourly backfill {value} requested"
    wait_for(
        lambda: len(tasks_by_trigger(kube, namespace, "hourly", "backfill")) == 3,
        30,
        "three backfilled tasks (Allow: all of them)",
    )
    wait_for(
        lambda: schedule_status(kube, namespace, "hourly").get("lastHandledBackfill") == value,
        30,
        "the backfill to be recorded",
    )
    again = kadence("backfill", "hourly", rfc(start), rfc(end))
    assert again.returncode == 1
    assert "acted on already" in again.stderr, again.stderr
    backwards = kadence("backfill", "hourly", rfc(end), rfc(start))
    assert backwards.returncode == 1
    assert "START must be before END" in backwards.stderr, backwards.stderr
    annotations = kube.get("schedules", namespace, "hourly")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations[BACKFILL] == value
    assert annotations[BACKFILL_POLICY] == "Allow"

    resumed = kadence("resume", "hourly")
    assert resumed.returncode == 0, resumed.stderr
    request = kube.get("schedules", namespace, "hourly")["metadata"]["annotations"][RESUME]  # type: ignore[index]
    wait_for(
        lambda: (
            schedule_status(kube, namespace, "hourly").get("lastHandledResumeRequest") == request
        ),
        30,
        "the resume request to be recorded",
    )
