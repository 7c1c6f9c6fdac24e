"""The Argo CD health checks (deploy/argocd) on live Schedules and Tasks.

Each test brings real objects into a state through the operator, waits for the status
fields that define that state (a phase, a condition), and runs the health check on the
object as the API server returned it, the way Argo CD would. The health asserted is the
table in docs/argocd.md.

With KADENCE_CAPTURE_ARGOCD_FIXTURES=DIR each object checked is also written to
DIR/<state>.json, without managedFields: the fixtures of tests/unit/test_argocd_health.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import watch

from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import job_template, schedule_body, task_body
from tests.support.argocd import Health, health
from tests.support.kube import GROUP, VERSION, Kube, condition, status, wait_for

pytestmark = pytest.mark.every_version

Body = dict[str, Any]
CAPTURE = os.environ.get("KADENCE_CAPTURE_ARGOCD_FIXTURES")
FAIL = {"kwok.kadence.dev/fail": "true"}
ONE = "one-at-a-time"  # capacity 1 in the operator's test configuration
IMPATIENT = "impatient"  # capacity 1, start timeout 5s


def checked(obj: Body, state: str, status_: str, message: Callable[[str], bool] | str) -> Health:
    """The health of `obj`, asserted; the object is captured as the fixture `state`."""
    if CAPTURE:
        trimmed = json.loads(json.dumps(obj))
        trimmed["metadata"].pop("managedFields", None)
        path = Path(CAPTURE) / f"{state}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(trimmed, indent=2) + "\n")
    found = health(obj)
    assert found.status == status_, (state, found, status(obj))
    if isinstance(message, str):
        assert found.message == message, (state, found, status(obj))
    else:
        assert message(found.message), (state, found, status(obj))
    return found


def waiting_for(generation: int) -> str:
    return f"waiting for the operator to observe generation {generation}"


def when(
    kube: Kube,
    plural: str,
    namespace: str,
    name: str,
    test: Callable[[Body], bool],
    *,
    what: str,
    timeout: float = 60,
) -> Body:
    """The object once `test` holds for it, on a status the operator wrote for its spec."""

    def reached() -> Body | None:
        obj = kube.get(plural, namespace, name)
        if obj is None or not test(obj):
            return None
        observed = status(obj).get("observedGeneration")
        return obj if observed == obj["metadata"]["generation"] else None

    found: Body | None = wait_for(reached, timeout, f"{plural}/{name}: {what}")
    assert found is not None
    return found


def version_where(
    kube: Kube,
    plural: str,
    namespace: str,
    name: str,
    test: Callable[[Body], bool],
    *,
    since: str,
    what: str,
    timeout: int,
) -> Body:
    """The first version of the object after resourceVersion `since` for which `test` holds,
    from a watch: for states that last only until the next reconcile."""
    stream = watch.Watch()
    for event in stream.stream(
        kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
        field_selector=f"metadata.name={name}", resource_version=since, timeout_seconds=timeout,
    ):  # fmt: skip
        obj: Body = event["object"]
        if event["type"] in ("ADDED", "MODIFIED") and test(obj):
            stream.stop()
            return obj
    raise AssertionError(f"{plural}/{name}: no version with {what} within {timeout}s")


def has(type_: str, value: str, reason: str | None = None) -> Callable[[Body], bool]:
    def test(obj: Body) -> bool:
        found = condition(obj, type_)
        return found.get("status") == value and reason in (None, found.get("reason"))

    return test


def in_phase(phase: str) -> Callable[[Body], bool]:
    return lambda obj: status(obj).get("phase") == phase


def test_schedule_health(kube: Kube, namespace: str, operator: Operator) -> None:
    """New, scheduled, last run completed, last run failed, disabled, invalid, template
    refused, edited: each Schedule's health, live."""
    queue = f"q-{namespace}"
    specs: dict[str, Body] = {
        "waits": {"schedule": "0 0 1 1 *", "timeZone": "Europe/Amsterdam"},
        "completes": {"interval": "1h"},
        "fails": {"interval": "1h", "jobTemplate": job_template(labels=FAIL)},
        "disabled": {
            "interval": "1h",
            "enabled": False,
            "suspendReason": "paused while the warehouse moves",
        },
        "invalid": {"schedule": "30 2 * * *", "timeZone": "Mars/Olympus_Mons"},
        "rejected": {"interval": "1h", "jobTemplate": job_template(container={"name": "main"})},
    }
    created = {}
    for name, spec in specs.items():
        body = schedule_body(name, queue, data={"schedule": name}, **spec)
        created[name] = kube.create("schedules", namespace, body)
    # As created, before the operator has written anything.
    checked(created["completes"], "schedule-new", "Progressing", waiting_for(1))

    waits = when(kube, "schedules", namespace, "waits", has("Ready", "True"), what="Ready")
    deadline = status(waits)["deadlineAt"]
    checked(waits, "schedule-scheduled", "Healthy", f"next deadline {deadline}")

    completes = when(
        kube, "schedules", namespace, "completes",
        has("Healthy", "True", "LastRunSucceeded"), what="its run completed",
    )  # fmt: skip
    run = status(completes)["history"][0]["task"]
    checked(
        completes, "schedule-last-run-succeeded", "Healthy",
        f"next deadline {status(completes)['deadlineAt']}; task {run} completed",
    )  # fmt: skip

    fails = when(
        kube, "schedules", namespace, "fails",
        has("Healthy", "False", "LastRunFailed"), what="its run failed",
    )  # fmt: skip
    run = status(fails)["history"][0]["task"]
    checked(fails, "schedule-last-run-failed", "Degraded", lambda m: run in m and "fail" in m)

    disabled = when(
        kube, "schedules", namespace, "disabled", has("Ready", "False", "Disabled"), what="Disabled"
    )
    checked(
        disabled, "schedule-disabled", "Suspended",
        lambda m: "paused while the warehouse moves" in m,
    )  # fmt: skip

    invalid = when(
        kube,
        "schedules",
        namespace,
        "invalid",
        has("Stalled", "True", "InvalidSpec"),
        what="Stalled",
    )
    checked(invalid, "schedule-invalid-spec", "Degraded", lambda m: "Mars/Olympus_Mons" in m)

    rejected = when(
        kube, "schedules", namespace, "rejected",
        has("Stalled", "True", "TemplateRejected"), what="Stalled",
    )  # fmt: skip
    checked(rejected, "schedule-template-rejected", "Degraded", lambda m: "image" in m)

    # An edit: the answer to the patch holds the new generation and the old status.
    edited = kube.patch("schedules", namespace, "waits", {"spec": {"priority": 5}})
    assert edited["metadata"]["generation"] == 2
    checked(edited, "schedule-edited", "Progressing", waiting_for(2))
    caught_up = when(
        kube, "schedules", namespace, "waits", has("Ready", "True"), what="generation 2"
    )
    checked(caught_up, "schedule-edited-observed", "Healthy", f"next deadline {deadline}")

    # A fix is Healthy once the operator has seen it, not before.
    fixed = kube.patch("schedules", namespace, "invalid", {"spec": {"timeZone": "UTC"}})
    checked(fixed, "schedule-invalid-spec-fixed", "Progressing", waiting_for(2))
    when(kube, "schedules", namespace, "invalid", has("Ready", "True"), what="Ready after the fix")
    assert health(kube.get("schedules", namespace, "invalid") or {}).status == "Healthy"


def test_schedule_health_at_a_deadline(kube: Kube, namespace: str, operator: Operator) -> None:
    """At the next minute: a deadline skipped by Forbid (the same work still runs) makes the
    Schedule Degraded while Ready stays True; one whose Replace cancels the running work is
    Progressing while it cancels. Meanwhile a disabled Schedule cancelling its queued run is
    Suspended."""
    long_run = job_template(annotations={"kwok.kadence.dev/run-for": "10m"})
    forbid, replace = f"forbid-{namespace}", f"replace-{namespace}"
    every_minute = {"schedule": "* * * * *", "jobTemplate": job_template()}
    for queue, name, policy in ((forbid, "skips", "Forbid"), (replace, "replaces", "Replace")):
        by_hand = task_body(f"{name}-by-hand", queue, hash=name, jobTemplate=long_run)
        kube.create("tasks", namespace, by_hand)
        when(kube, "tasks", namespace, f"{name}-by-hand", in_phase("Running"), what="Running")
        body = schedule_body(name, queue, hash=name, concurrencyPolicy=policy, **every_minute)
        since = kube.create("schedules", namespace, body)["metadata"]["resourceVersion"]

    # A disabled Schedule cancels its queued run: Suspended, not Progressing.
    kube.create("tasks", namespace, task_body("holds-the-slot", ONE, jobTemplate=long_run))
    when(kube, "tasks", namespace, "holds-the-slot", in_phase("Running"), what="Running")
    kube.create("schedules", namespace, schedule_body("paused", ONE, interval="1h"))
    wait_for(
        lambda: [t for t in kube.list("tasks", namespace) if in_phase("Queued")(t)],
        60,
        "the paused schedule's run queued",
    )
    patch = {"spec": {"enabled": False, "suspendReason": "the warehouse moves"}}
    paused = kube.patch("schedules", namespace, "paused", patch)
    cancelling = version_where(
        kube, "schedules", namespace, "paused", has("Reconciling", "True", "Cancelling"),
        since=paused["metadata"]["resourceVersion"], what="Reconciling", timeout=30,
    )  # fmt: skip
    assert condition(cancelling, "Ready")["reason"] == "Disabled"
    checked(
        cancelling, "schedule-disabled-cancelling", "Suspended",
        lambda m: "the warehouse moves" in m,
    )  # fmt: skip

    # At the minute: Replace cancels the running work by hand and says so.
    replacing = version_where(
        kube, "schedules", namespace, "replaces", has("Reconciling", "True", "Cancelling"),
        since=since, what="Reconciling", timeout=90,
    )  # fmt: skip
    assert condition(replacing, "Ready")["status"] == "True"
    checked(replacing, "schedule-cancelling", "Progressing", lambda m: m.startswith("cancelling"))
    # Forbid skipped the same minute.
    skipped = when(
        kube, "schedules", namespace, "skips", has("Healthy", "False"),
        what="a deadline skipped", timeout=30,
    )  # fmt: skip
    assert condition(skipped, "Ready")["status"] == "True"
    checked(skipped, "schedule-deadline-missed", "Degraded", lambda m: "without a task" in m)


def test_task_health(kube: Kube, namespace: str, operator: Operator) -> None:
    """New, queued, dispatched, running, completed, failed (by its Job, by its start
    timeout), cancelled as a duplicate: each Task's health, live."""
    own = f"q-{namespace}"
    long_run = job_template(annotations={"kwok.kadence.dev/run-for": "10m"})
    never_starts = job_template()
    never_starts["spec"]["template"]["spec"]["nodeSelector"] = {"nope": "nope"}

    new = kube.create("tasks", namespace, task_body("done", own))
    checked(new, "task-new", "Progressing", waiting_for(1))
    kube.create("tasks", namespace, task_body("broken", own, jobTemplate=job_template(labels=FAIL)))
    kube.create("tasks", namespace, task_body("long", ONE, hash="work", jobTemplate=long_run))

    # Dispatched lasts the queue's start timeout (5s) for a pod that can never start.
    kube.create("tasks", namespace, task_body("stuck", IMPATIENT, jobTemplate=never_starts))
    dispatched = when(kube, "tasks", namespace, "stuck", in_phase("Dispatched"), what="Dispatched")
    checked(dispatched, "task-dispatched", "Progressing", lambda m: m.startswith("Dispatched"))
    timed_out = when(
        kube, "tasks", namespace, "stuck", in_phase("Failed"), what="its start timeout"
    )
    checked(
        timed_out, "task-start-timeout", "Degraded",
        lambda m: m.startswith("Failed: ") and "no ready pod" in m,
    )  # fmt: skip

    running = when(kube, "tasks", namespace, "long", in_phase("Running"), what="Running")
    checked(running, "task-running", "Progressing", lambda m: m.startswith("Running"))
    kube.create("tasks", namespace, task_body("next", ONE))
    queued = when(kube, "tasks", namespace, "next", in_phase("Queued"), what="Queued")
    checked(queued, "task-queued", "Progressing", lambda m: m.startswith("Queued"))
    kube.create("tasks", namespace, task_body("again", ONE, hash="work"))
    cancelled = when(kube, "tasks", namespace, "again", in_phase("Cancelled"), what="Cancelled")
    checked(
        cancelled, "task-cancelled", "Degraded",
        lambda m: m.startswith("Cancelled: ") and "long" in m,
    )  # fmt: skip

    done = when(kube, "tasks", namespace, "done", in_phase("Completed"), what="Completed")
    checked(done, "task-completed", "Healthy", lambda m: m.startswith("Completed"))
    broken = when(kube, "tasks", namespace, "broken", in_phase("Failed"), what="Failed")
    checked(broken, "task-failed", "Degraded", lambda m: m.startswith("Failed: Job failed"))
