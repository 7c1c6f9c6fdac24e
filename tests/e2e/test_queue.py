"""The queue end to end: priority order, capacity, Jobs, outcomes written back, restarts.

Each test sets up its queue scenario with manual Tasks or Schedules in a fresh
namespace and waits for conditions (never for time). Tests that claim "never more
than N at once" run a `Sampler` (tests/support/faults.py), which watches the namespace's Tasks and
Jobs while the tasks flow and keeps the worst it saw.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.support.faults import Sampler
from tests.support.kube import Kube, condition, status, wait_for

ONE = "one-at-a-time"  # capacity 1 in the operator's test configuration
THREE = "three-at-a-time"  # capacity 3
ACTIVE = ("Dispatched", "Running")
FINISHED = ("Completed", "Failed", "Cancelled")
TASK_ENV = ("KADENCE_TASK_NAME", "KADENCE_SCHEDULER_ID", "KADENCE_DEADLINE_AT", "KADENCE_TASK_DATA")

Body = dict[str, Any]


# -- building blocks --------------------------------------------------------------------


def job_template(
    run_for: str | None = None, fail: bool = False, restart_policy: str = "Never"
) -> Body:
    """A Job template whose kwok pod succeeds at once, fails, or runs for `run_for`."""
    pod_metadata: Body = {}
    if run_for:
        pod_metadata["annotations"] = {"kwok.kadence.dev/run-for": run_for}
    if fail:
        pod_metadata["labels"] = {"kwok.kadence.dev/fail": "true"}
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": pod_metadata,
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
        }
    }


def make_task(
    kube: Kube,
    namespace: str,
    name: str,
    scheduler_id: str,
    priority: int = 0,
    *,
    hash_: str | None = None,
    template: Body | None = None,
    run_for: str | None = None,
) -> Body:
    """Create a manual Task; its data names it, so its default hash is its own."""
    spec: Body = {
        "schedulerId": scheduler_id,
        "priority": priority,
        "data": {"task": name},
        "jobTemplate": template or job_template(run_for),
    }
    if hash_ is not None:
        spec["hash"] = hash_
    body = {"apiVersion": "kadence.dev/v1alpha1", "kind": "Task", "metadata": {"name": name}}
    return kube.create("tasks", namespace, {**body, "spec": spec})


def make_schedule(kube: Kube, namespace: str, name: str, **spec: Any) -> Body:
    """Create a Schedule with the given spec fields (camelCase)."""
    body = {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": spec,
    }
    return kube.create("schedules", namespace, body)


def phase_of(task: Body | None) -> str | None:
    return status(task).get("phase")


def wait_phase(
    kube: Kube, namespace: str, name: str, phases: Iterable[str], timeout: float = 60
) -> Body:
    """Wait until task `name` is in one of `phases`; returns it."""
    wanted = tuple(phases)

    def reached() -> Body | None:
        task = kube.get("tasks", namespace, name)
        return task if phase_of(task) in wanted else None

    return wait_for(reached, timeout, f"task {name} to be {'/'.join(wanted)}")


def wait_all(
    kube: Kube, namespace: str, names: Iterable[str], phases: Iterable[str], timeout: float = 90
) -> dict[str, Body]:
    """Wait until every named task is in one of `phases`; returns them by name."""
    wanted, names = tuple(phases), set(names)

    def reached() -> dict[str, Body] | None:
        tasks = {t["metadata"]["name"]: t for t in kube.list("tasks", namespace)}
        if all(phase_of(tasks.get(name)) in wanted for name in names):
            return {name: tasks[name] for name in names}
        return None

    return wait_for(reached, timeout, f"{len(names)} tasks to be {'/'.join(wanted)}")


def time_of(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def events(kube: Kube, namespace: str, name: str, reason: str) -> list[Any]:
    return [e for e in kube.events(namespace, name) if e.reason == reason]


def plain(kube: Kube, obj: Any) -> Body:
    """A client model object as the API's JSON."""
    return kube.batch.api_client.sanitize_for_serialization(obj)


def assert_job_is_the_template(kube: Kube, task: Body, template: Body) -> None:
    """The task's Job is its template plus two labels (its task, its queue), an owner
    reference and four variables in every container, and nothing else."""
    namespace, ok = task["metadata"]["namespace"], task["metadata"]["name"]
    data, scheduler_id = task["spec"]["data"], task["spec"]["schedulerId"]
    job = plain(kube, kube.batch.read_namespaced_job(ok, namespace))
    assert job["metadata"]["labels"] == {
        **template["metadata"]["labels"],
        "kadence.dev/task": ok,
        "kadence.dev/scheduler-id": scheduler_id,
    }
    assert job["metadata"].get("annotations") == template["metadata"]["annotations"]
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kadence.dev/v1alpha1",
            "kind": "Task",
            "name": ok,
            "uid": task["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod_spec = job["spec"]["template"]["spec"]
    for container in pod_spec["initContainers"] + pod_spec["containers"]:
        env = {var["name"]: var.get("value") for var in container["env"]}
        assert [var["name"] for var in container["env"]][:4] == list(TASK_ENV), container
        assert env["KADENCE_TASK_NAME"] == ok
        assert env["KADENCE_SCHEDULER_ID"] == scheduler_id
        assert time_of(env["KADENCE_DEADLINE_AT"]) == time_of(task["spec"]["deadlineAt"])
        assert json.loads(env["KADENCE_TASK_DATA"]) == data
        container["env"] = [var for var in container["env"] if var["name"] not in TASK_ENV]
        if not container["env"]:
            del container["env"]
    assert pod_spec["containers"][0]["env"] == [{"name": "USER_VAR", "value": "mine"}]
    # The same template created directly (dry run) gets the same defaults and nothing else.
    direct = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "direct"}}
    expected = plain(
        kube,
        kube.batch.create_namespaced_job(
            namespace, {**direct, "spec": template["spec"]}, dry_run="All"
        ),
    )
    for spec in (job["spec"], expected["spec"]):  # these carry the Job's own uid
        spec.pop("selector", None)
        spec["template"]["metadata"].pop("labels", None)
    assert job["spec"] == expected["spec"]


# -- the queue --------------------------------------------------------------------------


def test_capacity_one_runs_in_priority_order_one_at_a_time(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """Capacity 1: tasks of priorities 5, 1, 3 queued behind a blocker run 1, 3, 5, one at once."""
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        make_task(kube, namespace, "blocker", ONE, priority=0, run_for="8s")
        wait_phase(kube, namespace, "blocker", ["Running"])
        for priority in (5, 1, 3):
            make_task(kube, namespace, f"p{priority}", ONE, priority, run_for="1s")
        wait_all(kube, namespace, ["p5", "p1", "p3"], ["Queued"], timeout=10)
        blocker = kube.get("tasks", namespace, "blocker")
        assert phase_of(blocker) == "Running", "the blocker finished before all three queued"

        done = wait_all(kube, namespace, ["blocker", "p1", "p3", "p5"], ["Completed"], timeout=60)
    sampler.assert_within(ONE, 1)
    assert sampler.max_active_tasks[ONE] == 1, "the sampler never saw a task running"

    order = ["blocker", "p1", "p3", "p5"]
    by_dispatch = sorted(done, key=lambda name: time_of(status(done[name])["dispatchedAt"]))
    assert by_dispatch == order
    assert [n for n in sampler.job_order if n in order] == order
    jobs = {job.metadata.name: job for job in kube.jobs(namespace)}
    created = [jobs[name].metadata.creation_timestamp for name in order]
    assert created == sorted(created), created
    assert len(set(created)) == len(order), created
    for earlier, later in itertools.pairwise(order):
        assert time_of(status(done[later])["dispatchedAt"]) >= time_of(
            status(done[earlier])["finishedAt"]
        ), f"{later} was dispatched before {earlier} finished"


@pytest.mark.every_version
def test_capacity_three_is_never_exceeded_while_tasks_flow(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """Capacity 3: twelve tasks flow through, never more than three at once, all Completed."""
    names = [f"flow-{i:02d}" for i in range(12)]
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        for i, name in enumerate(names):
            make_task(kube, namespace, name, THREE, priority=i % 4, run_for="2s")
        done = wait_all(kube, namespace, names, FINISHED, timeout=120)
    sampler.assert_within(THREE, 3)
    assert sampler.max_active_tasks[THREE] == 3, "the queue never used its full capacity"
    assert {name: phase_of(task) for name, task in done.items()} == dict.fromkeys(
        names, "Completed"
    )
    assert sorted(job.metadata.name for job in kube.jobs(namespace)) == names


# -- Jobs and outcomes ------------------------------------------------------------------


@pytest.mark.every_version
def test_outcomes_flow_back_to_the_task_and_the_schedule(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """A run that succeeds and one that fails: task phases, conditions, the Job as built,
    and the Schedule's history (newest first), counts, last times and Healthy condition."""
    data = {"target": "example.org", "depth": 2, "tags": ["a", "b"]}
    template = {
        "metadata": {"labels": {"app": "kadence-e2e"}, "annotations": {"note": "kept"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "env": [{"name": "USER_VAR", "value": "mine"}],
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                }
            },
        },
    }
    scheduler_id = f"outcomes-{namespace}"
    make_schedule(
        kube, namespace, "report", schedulerId=scheduler_id, interval="1h", data=data,
        jobTemplate=template,
    )  # fmt: skip

    # The first run, at creation, succeeds.
    def tasks_of_report() -> list[str]:
        tasks = kube.list("tasks", namespace, "kadence.dev/schedule=report")
        return [task["metadata"]["name"] for task in tasks]

    def first_task() -> str | None:
        return next(iter(tasks_of_report()), None)

    ok = wait_for(first_task, 30, "the schedule's first task")
    cluster.kubectl("wait", "--for=condition=Succeeded", f"task/{ok}", "-n", namespace,
                    "--timeout=60s")  # fmt: skip
    task = kube.get("tasks", namespace, ok)
    assert task is not None
    got = status(task)
    assert got["phase"] == "Completed"
    assert got["jobName"] == ok
    for field in ("queuedAt", "dispatchedAt", "startedAt", "finishedAt"):
        assert got.get(field), f"status.{field} missing: {got}"
    assert time_of(got["startedAt"]) <= time_of(got["finishedAt"])
    assert condition(task, "Succeeded")["status"] == "True"
    assert condition(task, "Failed")["status"] == "False"
    assert task["metadata"]["labels"]["kadence.dev/scheduler-id"] == scheduler_id
    assert task["metadata"]["labels"]["kadence.dev/schedule"] == "report"

    assert_job_is_the_template(kube, task, template)

    # The second run, requested with a failing template, fails.
    failing = json.loads(json.dumps(template))
    failing["spec"]["template"]["metadata"] = {"labels": {"kwok.kadence.dev/fail": "true"}}
    kube.patch("schedules", namespace, "report", {
        "metadata": {"annotations": {"kadence.dev/run-requested-at": "2000-01-01T00:00:00Z"}},
        "spec": {"jobTemplate": failing},
    })  # fmt: skip

    def second_task() -> str | None:
        return next((name for name in tasks_of_report() if name != ok), None)

    bad = wait_for(second_task, 30, "the requested task")
    cluster.kubectl("wait", "--for=condition=Failed", f"task/{bad}", "-n", namespace,
                    "--timeout=60s")  # fmt: skip
    failed = kube.get("tasks", namespace, bad)
    assert phase_of(failed) == "Failed"
    assert status(failed).get("finishedAt")
    assert status(failed).get("message")
    assert condition(failed, "Succeeded")["status"] == "False"

    # Both on the Schedule, newest first.
    def recorded() -> Body | None:
        schedule = kube.get("schedules", namespace, "report")
        return schedule if len(status(schedule).get("history", [])) == 2 else None

    schedule = wait_for(recorded, 30, "both runs in the schedule's history")
    got = status(schedule)
    assert [(h["task"], h["phase"]) for h in got["history"]] == [
        (bad, "Failed"),
        (ok, "Completed"),
    ]
    assert not got.get("active"), got
    counts = got["counts"]
    assert (counts["created"], counts["completed"], counts["failed"]) == (2, 1, 1), counts
    assert counts.get("cancelled", 0) == 0
    assert counts.get("skipped", 0) == 0
    assert time_of(got["lastSuccessfulAt"]) <= time_of(got["lastFailedAt"])
    healthy = condition(schedule, "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "LastRunFailed"), healthy
    assert got["lastHandledRunRequest"] == "2000-01-01T00:00:00Z"


def test_concurrency_policies_at_a_second_deadline(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Every minute, with runs of 90 s: Forbid skips the second deadline, Replace cancels the
    first run (and deletes its Job) for a new one, Allow runs both at once."""
    policies = {"forbid": "Forbid", "replace": "Replace", "allow": "Allow"}
    for name, policy in policies.items():
        make_schedule(
            kube, namespace, name, schedulerId="concurrency", schedule="* * * * *",
            concurrencyPolicy=policy, data={"policy": name}, jobTemplate=job_template("90s"),
        )  # fmt: skip

    def deadline_of(name: str) -> datetime | None:
        value = status(kube.get("schedules", namespace, name)).get("deadlineAt")
        return time_of(value) if value else None

    def task_name(schedule: str, deadline: float) -> str:
        return f"{schedule}-{int(deadline):010d}"

    first = {
        name: wait_for(lambda n=name: deadline_of(n), 30, f"{name} deadline").timestamp()
        for name in policies
    }
    firsts = {name: task_name(name, first[name]) for name in policies}
    seconds = {name: task_name(name, first[name] + 60) for name in policies}
    wait_all(kube, namespace, firsts.values(), ["Running"], timeout=90)

    # Replace: the first run is cancelled and its Job deleted; the new one runs.
    replaced = wait_phase(kube, namespace, firsts["replace"], ["Cancelled"], timeout=90)
    assert seconds["replace"] in status(replaced).get("message", ""), status(replaced)
    wait_phase(kube, namespace, seconds["replace"], ["Running"], timeout=30)
    wait_for(
        lambda: firsts["replace"] not in {j.metadata.name for j in kube.jobs(namespace)},
        30,
        "the replaced task's Job to be deleted",
    )

    # Allow: both runs at once.
    both = wait_all(kube, namespace, [firsts["allow"], seconds["allow"]], ["Running"], 30)
    assert len(both) == 2

    # Forbid: the second deadline is skipped, recorded, and announced; the first run goes on.
    def skipped() -> Body | None:
        schedule = kube.get("schedules", namespace, "forbid")
        return schedule if status(schedule).get("counts", {}).get("skipped") else None

    forbid = wait_for(skipped, 30, "Forbid to skip the second deadline")
    assert status(forbid)["counts"]["skipped"] == 1
    assert status(forbid)["counts"]["created"] == 1
    assert time_of(status(forbid)["deadlineAt"]).timestamp() > first["forbid"] + 60
    wait_for(lambda: events(kube, namespace, "forbid", "DeadlineSkipped"), 30, "DeadlineSkipped")
    event = events(kube, namespace, "forbid", "DeadlineSkipped")[0]
    assert event.type == "Normal"
    assert firsts["forbid"] in event.message
    assert kube.get("tasks", namespace, seconds["forbid"]) is None
    assert phase_of(kube.get("tasks", namespace, firsts["forbid"])) == "Running"

    # Replace's history has the cancelled run; the schedules' other counts agree.
    def cancelled_recorded() -> Body | None:
        schedule = kube.get("schedules", namespace, "replace")
        return schedule if status(schedule).get("counts", {}).get("cancelled") else None

    replace = wait_for(cancelled_recorded, 30, "Replace to record the cancelled run")
    assert status(replace)["history"][0]["task"] == firsts["replace"]
    assert status(replace)["history"][0]["phase"] == "Cancelled"
    assert status(replace)["active"] == [seconds["replace"]]
    assert sorted(status(kube.get("schedules", namespace, "allow"))["active"]) == sorted(
        [firsts["allow"], seconds["allow"]]
    )


def test_a_manual_task_runs_and_its_duplicate_is_cancelled(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A manual task runs to Completed, labelled with its queue and `trigger: manual`; one
    with the same hash in the same queue while the first is running is Cancelled naming the
    first; once it finished, the hash may run again."""
    queue = f"manual-{namespace}"
    make_task(kube, namespace, "first", queue, hash_="same-work", run_for="5s")
    wait_phase(kube, namespace, "first", ["Running"])
    make_task(kube, namespace, "again", queue, hash_="same-work")
    again = wait_phase(kube, namespace, "again", FINISHED, timeout=30)
    assert phase_of(again) == "Cancelled", status(again)
    assert "first" in status(again).get("message", ""), status(again)
    assert phase_of(kube.get("tasks", namespace, "first")) == "Running"

    first = wait_phase(kube, namespace, "first", FINISHED, timeout=60)
    assert phase_of(first) == "Completed", status(first)
    assert condition(first, "Succeeded")["status"] == "True"
    assert first["metadata"]["labels"]["kadence.dev/scheduler-id"] == queue, (
        "every task is labelled"
    )
    assert first["metadata"]["labels"]["kadence.dev/trigger"] == "manual", "made by hand"
    assert sorted(job.metadata.name for job in kube.jobs(namespace)) == ["first"]

    make_task(kube, namespace, "later", queue, hash_="same-work")
    later = wait_phase(kube, namespace, "later", FINISHED, timeout=60)
    assert phase_of(later) == "Completed", status(later)


def test_manual_duplicates_created_together_run_once(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Five manual tasks with one hash, created back to back: one runs, four are Cancelled."""
    names = [f"dup-{i}" for i in range(5)]
    for name in names:
        make_task(kube, namespace, name, f"together-{namespace}", hash_="same-work", run_for="2s")
    done = wait_all(kube, namespace, names, FINISHED, timeout=60)
    phases = {name: phase_of(task) for name, task in done.items()}
    assert sorted(phases.values()) == ["Cancelled"] * 4 + ["Completed"], phases


def test_history_limits_prune_tasks_and_disabling_cancels_queued(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """successfulTasksHistoryLimit 1 keeps one Completed Task (older ones and their Jobs go)
    while status.history keeps the runs; disabling the schedule cancels its queued task."""
    make_schedule(
        kube, namespace, "often", schedulerId=ONE, interval="1s",
        successfulTasksHistoryLimit=1, jobTemplate=job_template(),
    )  # fmt: skip

    def completed_runs(at_least: int) -> Body | None:
        schedule = kube.get("schedules", namespace, "often")
        return (
            schedule if status(schedule).get("counts", {}).get("completed", 0) >= at_least else None
        )

    wait_for(lambda: completed_runs(3), 60, "three completed runs")

    # Hold the slot so the schedule's next task waits in the queue, then disable it.
    try:
        make_task(kube, namespace, "blocker", ONE, priority=-1, run_for="60s")
        wait_phase(kube, namespace, "blocker", ["Running"], timeout=30)

        def queued() -> str | None:
            tasks = kube.list("tasks", namespace, "kadence.dev/schedule=often")
            return next((t["metadata"]["name"] for t in tasks if phase_of(t) == "Queued"), None)

        waiting = wait_for(queued, 30, "a task of the schedule waiting in the queue")
        kube.patch("schedules", namespace, "often", {"spec": {"enabled": False}})
        cancelled = wait_phase(kube, namespace, waiting, FINISHED, timeout=30)
        assert phase_of(cancelled) == "Cancelled", status(cancelled)
        assert "disabled" in status(cancelled).get("message", "")
    finally:
        with contextlib.suppress(ApiException):
            kube.delete("tasks", namespace, "blocker")

    def settled() -> Body | None:
        schedule = kube.get("schedules", namespace, "often")
        got = status(schedule)
        return schedule if not got.get("active") and got["history"][0]["task"] == waiting else None

    schedule = wait_for(settled, 30, "the cancelled run in the schedule's history")
    got = status(schedule)
    assert condition(schedule, "Ready")["reason"] == "Disabled"
    completed_history = [h["task"] for h in got["history"] if h["phase"] == "Completed"]
    assert len(completed_history) >= 3, got["history"]
    assert got["counts"]["completed"] == len(completed_history)
    finished = [h["finishedAt"] for h in got["history"]]
    assert finished == sorted(finished, reverse=True), "history is not newest first"

    def pruned() -> list[Body] | None:
        tasks = kube.list("tasks", namespace, "kadence.dev/schedule=often")
        return tasks if sum(phase_of(t) == "Completed" for t in tasks) == 1 else None

    tasks = wait_for(pruned, 30, "old completed tasks to be deleted")
    kept = {t["metadata"]["name"] for t in tasks}
    assert completed_history[0] in kept, "the newest completed task was not the one kept"
    assert not kept & set(completed_history[1:])
    wait_for(
        lambda: {j.metadata.name for j in kube.jobs(namespace)} <= kept,
        60,
        "the pruned tasks' Jobs to be deleted",
    )


@pytest.mark.every_version
def test_a_deleted_tasks_slot_stays_taken_until_its_job_is_gone(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """Capacity 1: deleting a running task does not start the next one while the garbage
    collector still holds its Job (kept here by a finalizer); once the Job is gone, it does."""
    hold = "kadence.dev/test-hold"
    make_task(kube, namespace, "blocker", ONE, run_for="300s")
    wait_phase(kube, namespace, "blocker", ["Running"])
    make_task(kube, namespace, "next", ONE)
    wait_phase(kube, namespace, "next", ["Queued"])
    kube.batch.patch_namespaced_job("blocker", namespace, {"metadata": {"finalizers": [hold]}})
    try:
        kube.delete("tasks", namespace, "blocker")
        wait_for(lambda: kube.get("tasks", namespace, "blocker") is None, 30, "the task to go")
        wait_for(
            lambda: (
                kube.batch.read_namespaced_job("blocker", namespace).metadata.deletion_timestamp
            ),
            60,
            "the garbage collector to delete the blocker's Job",
        )
        # A task in another queue, made after the deletion, running to the end shows that
        # the operator has acted on the deletion by now.
        make_task(kube, namespace, "marker", f"marker-{namespace}")
        wait_phase(kube, namespace, "marker", ["Completed"], timeout=60)
        assert phase_of(kube.get("tasks", namespace, "next")) == "Queued"
    finally:
        kube.batch.patch_namespaced_job("blocker", namespace, {"metadata": {"finalizers": None}})
    done = wait_phase(kube, namespace, "next", FINISHED, timeout=60)
    assert phase_of(done) == "Completed", status(done)


@pytest.mark.every_version
def test_a_missing_service_account_fails_the_task_instead_of_holding_its_slot(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A Job whose pods could never be created (no such ServiceAccount) would hold its slot
    for ever: its task fails at once, naming the account, and the queue moves on."""
    template = job_template()
    template["spec"]["template"]["spec"]["serviceAccountName"] = "nobody"
    make_task(kube, namespace, "no-account", ONE, template=template)
    make_task(kube, namespace, "after", ONE, priority=1)
    failed = wait_phase(kube, namespace, "no-account", FINISHED, timeout=30)
    assert phase_of(failed) == "Failed", status(failed)
    assert "ServiceAccount nobody does not exist" in status(failed)["message"]
    assert [job.metadata.name for job in kube.jobs(namespace)] in ([], ["after"])
    after = wait_phase(kube, namespace, "after", FINISHED, timeout=60)
    assert phase_of(after) == "Completed", status(after)


@pytest.mark.every_version
def test_a_refused_job_fails_its_task_and_the_queue_moves_on(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A Job the API server refuses fails its task with the server's message and a Warning
    event; the next task of the capacity-1 queue still runs."""
    make_task(
        kube, namespace, "refused", ONE, priority=-1, template=job_template(restart_policy="Always")
    )
    make_task(kube, namespace, "next", ONE, priority=0)
    refused = wait_phase(kube, namespace, "refused", FINISHED, timeout=30)
    assert phase_of(refused) == "Failed", status(refused)
    message = status(refused).get("message", "")
    assert "spec.template.spec.restartPolicy" in message, message  # the server's words
    assert condition(refused, "Failed")["status"] == "True"
    warning = wait_for(
        lambda: [e for e in kube.events(namespace, "refused") if e.type == "Warning"],
        30,
        "a Warning event on the refused task",
    )[0]
    assert "restartPolicy" in warning.message, warning.message
    assert phase_of(wait_phase(kube, namespace, "next", FINISHED, timeout=60)) == "Completed"
    assert [job.metadata.name for job in kube.jobs(namespace)] == ["next"]


# -- restarts ---------------------------------------------------------------------------


def test_a_killed_operator_resumes_without_running_anything_twice(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """SIGKILL mid-stream (twice) and restart: every task Completed once, each Job created
    once, capacity 3 never exceeded (sampled across the restarts)."""
    names = [f"crash-{i}" for i in range(8)]
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        try:
            for name in names:
                make_task(kube, namespace, name, THREE, run_for="3s")

            def mid_stream(*also: str) -> bool:
                phases = {phase_of(t) for t in kube.list("tasks", namespace)}
                return bool(phases & set(ACTIVE)) and {"Queued", *also} <= phases

            # Killed while the first tasks run, and again once some have finished.
            wait_for(mid_stream, 30, "some tasks running while others wait")
            operator.stop(signal.SIGKILL)
            operator.start()
            wait_for(lambda: mid_stream("Completed"), 60, "some done, some running, some waiting")
            operator.stop(signal.SIGKILL)
        finally:
            if operator.process is None:
                operator.start()
        done = wait_all(kube, namespace, names, FINISHED, timeout=120)
    sampler.assert_within(THREE, 3)
    assert {name: phase_of(task) for name, task in done.items()} == dict.fromkeys(
        names, "Completed"
    )
    jobs = kube.jobs(namespace)
    assert sorted(job.metadata.name for job in jobs) == names
    twice = {name: uids for name, uids in sampler.job_uids.items() if len(uids) > 1}
    assert not twice, f"Jobs created more than once: {twice}"
    for job in jobs:
        owner = job.metadata.owner_references[0]
        assert owner.uid == done[job.metadata.name]["metadata"]["uid"]
        assert (job.status.succeeded, job.status.failed or 0) == (1, 0), job.status
    pods = kube.core.list_namespaced_pod(namespace).items
    assert len(pods) == len(names), [p.metadata.name for p in pods]
