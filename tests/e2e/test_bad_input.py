"""Bad input never loops, never holds a slot for ever, never says the wrong thing.

What a user can write that kadence cannot run fails once, in one place, with the reason:
a Task goes Failed, a Schedule goes Ready False (InvalidSpec), and the operator carries
on with everything else.
"""

from __future__ import annotations

from typing import Any

import pytest

from kadence.naming import task_name_for_deadline
from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import (
    MINUTE,
    away_from_a_minute_boundary,
    deadline_of,
    job_template,
    phase,
    schedule_body,
    task_body,
    utcnow,
)
from tests.support.kube import Kube, condition, status, wait_for

pytestmark = pytest.mark.every_version


def no_containers() -> dict[str, Any]:
    template = job_template()
    template["spec"]["template"]["spec"].pop("containers")
    return template


def suspended() -> dict[str, Any]:
    template = job_template()
    template["spec"]["suspend"] = True
    return template


def own_kadence_variable() -> dict[str, Any]:
    return job_template(
        container={"name": "main", "image": "busybox",
                   "env": [{"name": "KADENCE_TASK_DATA", "value": "mine"}]}
    )  # fmt: skip


BAD_TEMPLATES = [
    (no_containers, "containers is empty"),
    (suspended, "suspend is true"),
    (own_kadence_variable, "sets KADENCE_TASK_DATA"),
]
IDS = ["no-containers", "suspended", "own-variable-named-like-kadences"]


@pytest.mark.parametrize(("template", "reason"), BAD_TEMPLATES, ids=IDS)
def test_a_task_that_cannot_run_fails_once_with_the_reason(
    kube: Kube, namespace: str, operator: Operator, template: Any, reason: str
) -> None:
    kube.create("tasks", namespace, task_body("bad", f"q-{namespace}", jobTemplate=template()))
    failed = wait_for(
        lambda: (t := kube.get("tasks", namespace, "bad")) and phase(t) == "Failed" and t,
        30,
        "the task to fail at admission",
    )
    assert reason in status(failed)["message"]
    assert kube.jobs(namespace) == []
    # The operator moves on: a good task in the same queue runs; the bad one cost a few
    # log lines, not a loop.
    kube.create("tasks", namespace, task_body("good", f"q-{namespace}", jobTemplate=job_template()))
    wait_for(lambda: phase(kube.get("tasks", namespace, "good")) == "Completed", 60, "good task")
    mentions = [
        line for line in operator.log.read_text(errors="replace").splitlines()
        if f"{namespace}/bad" in line and " kadence." in line
    ]  # fmt: skip
    assert len(mentions) <= 5, mentions


@pytest.mark.parametrize(("template", "reason"), BAD_TEMPLATES, ids=IDS)
def test_a_schedule_that_cannot_run_is_not_ready_and_makes_no_task(
    kube: Kube, namespace: str, operator: Operator, template: Any, reason: str
) -> None:
    kube.create(
        "schedules", namespace,
        schedule_body("bad", f"q-{namespace}", interval="1m", jobTemplate=template()),
    )  # fmt: skip
    ready = wait_for(
        lambda: (
            (c := condition(kube.get("schedules", namespace, "bad"), "Ready"))
            and c.get("reason") == "InvalidSpec"
            and c
        ),
        30,
        "Ready False InvalidSpec",
    )
    assert reason in ready["message"]
    assert kube.list("tasks", namespace) == []


def test_a_job_whose_pod_never_starts_fails_its_task_and_frees_the_slot(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A pod that can never be scheduled: the task stays Dispatched (never Running), saying
    its Job has no pod running yet, then fails after its queue's start timeout (5s in the
    suite's configuration), its Job is deleted, and the next task of the capacity-1 queue
    runs."""
    stuck = job_template()
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"nope": "nope"}
    kube.create("tasks", namespace, task_body("stuck", "impatient", jobTemplate=stuck))
    kube.create("tasks", namespace, task_body("next", "impatient", jobTemplate=job_template()))
    waiting = wait_for(
        lambda: (
            (t := kube.get("tasks", namespace, "stuck"))
            and status(t).get("jobName") == "stuck"
            and t
        ),
        30,
        "the stuck task to be dispatched",
    )
    assert phase(waiting) == "Dispatched"
    assert "no pod running yet" in status(waiting)["message"]
    failed = wait_for(
        lambda: (t := kube.get("tasks", namespace, "stuck")) and phase(t) == "Failed" and t,
        60,
        "the start timeout to fail the task",
    )
    assert "had no ready pod" in status(failed)["message"]
    wait_for(lambda: phase(kube.get("tasks", namespace, "next")) == "Completed", 60, "next task")
    wait_for(
        lambda: "stuck" not in [j.metadata.name for j in kube.jobs(namespace)],
        60,
        "the stuck Job to be deleted",
    )


def test_forbid_holds_across_schedules_whose_deadlines_coincide(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Three every-minute Schedules of one queue and namespace with the same hash: at each
    minute exactly one of them makes a task; the others skip."""
    away_from_a_minute_boundary(50)
    queue = f"q-{namespace}"
    long_run = job_template(annotations={"kwok.kadence.dev/run-for": "300s"})
    for name in ("one", "two", "three"):
        kube.create("schedules", namespace,
                    schedule_body(name, queue, schedule="* * * * *", hash="same-work",
                                  jobTemplate=long_run))  # fmt: skip
    minute = utcnow().replace(second=0, microsecond=0) + MINUTE
    for name in ("one", "two", "three"):
        wait_for(
            lambda name=name: (deadline_of(kube, namespace, name) or minute) > minute,
            90,
            f"{name} to act on the minute",
        )
    made = [
        t["metadata"]["name"]
        for t in kube.list("tasks", namespace)
        if t["metadata"]["name"]
        in {task_name_for_deadline(n, minute) for n in ("one", "two", "three")}
    ]
    assert len(made) == 1, made
    skipped = sum(
        status(kube.get("schedules", namespace, name))["counts"].get("skipped", 0)
        for name in ("one", "two", "three")
    )
    assert skipped == 2


def test_a_wrapping_hashed_range_is_accepted_and_fires_inside_it(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """One rule for ranges: `H(50-10)` wraps past the hour like `50-10` does, so it is
    accepted, and its minute lies in 50..59 or 0..10."""
    kube.create("schedules", namespace,
                schedule_body("wraps", f"q-{namespace}", schedule="H(50-10) * * * *"))  # fmt: skip
    ready = wait_for(
        lambda: (
            (c := condition(kube.get("schedules", namespace, "wraps"), "Ready"))
            and c.get("reason")
            and c
        ),
        30,
        "the schedule to be read",
    )
    assert (ready["status"], ready["reason"]) == ("True", "Scheduled"), ready
    deadline = deadline_of(kube, namespace, "wraps")
    assert deadline is not None
    assert deadline.minute >= 50 or deadline.minute <= 10, deadline
