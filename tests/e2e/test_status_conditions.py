"""Status that tools understand: the kstatus conditions, read by `kubectl wait`.

Every condition names the generation it was set for; Ready says whether a Schedule
fires, Stalled what only a person can fix, Reconciling what is still taking effect,
and LastRunSucceeded and Healthy how its runs went, as separate facts.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.e2e.test_queue import job_template as kwok_job
from tests.e2e.test_schedules import (
    events_of,
    job_template,
    phase,
    queue_of,
    ready_is,
    schedule_body,
    task_body,
)
from tests.support.kube import Kube, condition, status, wait_for

pytestmark = pytest.mark.every_version


def summary(obj: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status(obj).get("conditions", [])}


def observed_throughout(obj: dict[str, Any] | None) -> bool:
    """status.observedGeneration and every condition's are the object's generation."""
    assert obj is not None
    generation = obj["metadata"]["generation"]
    conditions = status(obj).get("conditions", [])
    return status(obj).get("observedGeneration") == generation and all(
        c.get("observedGeneration") == generation for c in conditions
    )


def kubectl_wait(cluster: Cluster, namespace: str, target: str, condition_: str) -> tuple[int, str]:
    done = cluster.kubectl(
        "wait", f"--for=condition={condition_}", target, "-n", namespace, "--timeout=60s",
        check=False, timeout=90,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_kubectl_wait_sees_a_schedule_ready_and_its_task_succeed(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    kube.create("schedules", namespace, schedule_body("hourly", queue_of(namespace), interval="1h"))
    code, output = kubectl_wait(cluster, namespace, "schedule/hourly", "Ready")
    assert code == 0, output
    sched = kube.get("schedules", namespace, "hourly")
    assert observed_throughout(sched)
    assert summary(sched)["Ready"] == ("True", "Scheduled")
    assert "Stalled" not in summary(sched)

    tasks = wait_for(lambda: kube.list("tasks", namespace), 30, "the schedule's first task")
    name = tasks[0]["metadata"]["name"]
    code, output = kubectl_wait(cluster, namespace, f"task/{name}", "Succeeded")
    assert code == 0, output
    done = kube.get("tasks", namespace, name)
    assert observed_throughout(done)
    assert summary(done) == {
        "Ready": ("True", "Completed"),
        "Succeeded": ("True", "Completed"),
        "Failed": ("False", "Completed"),
    }
    healthy = wait_for(
        lambda: (s := summary(kube.get("schedules", namespace, "hourly"))).get("Healthy") and s,
        30,
        "the schedule's run conditions",
    )
    assert healthy["LastRunSucceeded"] == ("True", "Completed")
    assert healthy["Healthy"] == ("True", "LastRunSucceeded")
    table = cluster.kubectl("get", "schedule", "hourly", "-n", namespace).stdout.splitlines()
    header, row = table
    ready, healthy_at = header.index("READY"), header.index("HEALTHY")
    assert (row[ready:].split()[0], row[healthy_at:].split()[0]) == ("True", "True"), table


def test_a_failed_run_is_a_fact_apart_from_a_schedule_that_fires(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    kube.create(
        "schedules", namespace,
        schedule_body("flaky", queue_of(namespace), interval="1h", jobTemplate=kwok_job(fail=True)),
    )  # fmt: skip
    failing = wait_for(
        lambda: (
            (s := kube.get("schedules", namespace, "flaky"))
            and summary(s).get("Healthy") == ("False", "LastRunFailed")
            and s
        ),
        60,
        "Healthy False after the failed run",
    )
    conditions = summary(failing)
    assert conditions["Ready"] == ("True", "Scheduled")
    assert conditions["LastRunSucceeded"] == ("False", "Failed")
    assert observed_throughout(failing)
    task = status(failing)["history"][0]["task"]
    code, output = kubectl_wait(cluster, namespace, f"task/{task}", "Failed")
    assert code == 0, output
    failed = kube.get("tasks", namespace, task)
    assert summary(failed)["Stalled"] == ("True", "JobFailed")
    assert summary(failed)["Failed"] == ("True", "JobFailed")
    assert "Reconciling" not in summary(failed)
    events = wait_for(lambda: events_of(kube, namespace, task, "JobFailed"), 15, "the event")
    assert events[0].type == "Warning"
    assert events[0].message == status(failed)["message"]


def test_a_template_the_api_server_refuses_stalls_until_fixed(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """The dry run is what refuses it (the schema and the operator's own checks let an
    invalid container name through): Ready False and Stalled True, TemplateRejected, one
    Warning event; the fix clears Stalled for the new generation."""
    bad = job_template(container={"name": "Not_A_DNS_Label", "image": "busybox"})
    kube.create(
        "schedules", namespace,
        schedule_body("refused", queue_of(namespace), interval="1h", jobTemplate=bad),
    )  # fmt: skip
    refused = wait_for(
        ready_is(kube, namespace, "refused", "False", "TemplateRejected"), 30, "TemplateRejected"
    )
    assert "Not_A_DNS_Label" in refused["message"]
    sched = kube.get("schedules", namespace, "refused")
    assert summary(sched)["Stalled"] == ("True", "TemplateRejected")
    assert observed_throughout(sched)
    assert kube.list("tasks", namespace) == []
    wait_for(lambda: events_of(kube, namespace, "refused", "TemplateRejected"), 15, "the event")

    kube.patch("schedules", namespace, "refused", {"spec": {"jobTemplate": job_template()}})
    code, output = kubectl_wait(cluster, namespace, "schedule/refused", "Ready")
    assert code == 0, output
    fixed = wait_for(
        lambda: (s := kube.get("schedules", namespace, "refused")) and observed_throughout(s) and s,
        30,
        "the fixed generation observed",
    )
    assert "Stalled" not in summary(fixed)
    assert fixed["metadata"]["generation"] == 2


def test_a_suspended_schedule_says_why_and_cancels_its_queued_task(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """While the capacity-1 queue is busy, the schedule's task waits; suspending it with a
    reason cancels that task and Ready False Disabled carries the reason."""
    kube.create(
        "tasks", namespace, task_body("busy", "one-at-a-time", jobTemplate=kwok_job(run_for="5m"))
    )
    wait_for(lambda: phase(kube.get("tasks", namespace, "busy")) == "Running", 60, "busy running")
    kube.create(
        "schedules", namespace,
        schedule_body("paused", "one-at-a-time", interval="1h", data={"s": "paused"}),
    )  # fmt: skip
    queued = wait_for(
        lambda: [t for t in kube.list("tasks", namespace) if phase(t) == "Queued"],
        30,
        "the schedule's task queued behind the busy one",
    )
    kube.patch(
        "schedules", namespace, "paused",
        {"spec": {"enabled": False, "suspendReason": "database migration until Monday"}},
    )  # fmt: skip
    disabled = wait_for(ready_is(kube, namespace, "paused", "False", "Disabled"), 30, "Disabled")
    assert "database migration until Monday" in disabled["message"]
    wait_for(
        lambda: phase(kube.get("tasks", namespace, queued[0]["metadata"]["name"])) == "Cancelled",
        30,
        "the queued task cancelled",
    )
    settled = wait_for(
        lambda: (
            (s := kube.get("schedules", namespace, "paused"))
            and "Reconciling" not in summary(s)
            and not status(s).get("active")
            and s
        ),
        30,
        "Reconciling gone once the cancel took effect",
    )
    assert observed_throughout(settled)
    assert condition(settled, "Stalled") == {}
