"""A shared cluster: every way to get a Job made by the operator needs the right to make
that Job, only the operator writes status and makes look-alike objects, queues belong to
namespaces, and the operator makes no Job while its admission policies are missing.

Who may NOT is shown by acting as ServiceAccounts (`kubectl --as`) with exactly the
rights named, against the chart's admission policies that the suite installs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cluster
from tests.e2e.conftest import RELEASE, SHARED_NAMESPACES, Operator
from tests.e2e.test_schedules import (
    job_template,
    parse_time,
    phase,
    schedule_body,
    task_body,
    utcnow,
)
from tests.support.chart import apply_objects
from tests.support.expansion import expand
from tests.support.kube import Kube, condition, status, wait_for

API_VERSION = "kadence.dev/v1alpha1"
LONG_RUN = job_template(annotations={"kwok.kadence.dev/run-for": "120s"})


def account(cluster: Cluster, namespace: str, name: str, rules: list[dict[str, Any]]) -> str:
    """A ServiceAccount with exactly these rules in `namespace`; returns its user name."""
    apply_objects(
        cluster,
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": name, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": name, "namespace": namespace}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name, "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
        ],
    )  # fmt: skip
    return f"system:serviceaccount:{namespace}:{name}"


KADENCE_ALL = {"apiGroups": ["kadence.dev"], "resources": ["*"], "verbs": ["*"]}
CREATE_JOBS = {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]}


def as_user(
    cluster: Cluster, user: str, namespace: str, *args: str, body: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        *args, f"--namespace={namespace}", f"--as={user}",
        input=yaml.safe_dump(body) if body is not None else None, check=False,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess[str], policy: str) -> bool:
    return result.returncode != 0 and f"ValidatingAdmissionPolicy '{RELEASE}-{policy}'" in (
        result.stderr
    )


def task_of(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    found = kube.get("tasks", namespace, name)
    assert found is not None, name
    return found


@pytest.fixture
def second_namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    yield name
    kube.core.delete_namespace(name)


# -- asking for runs ----------------------------------------------------------------------


@pytest.mark.every_version
def test_run_now_needs_the_right_to_create_jobs(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """May patch Schedules, may not create Jobs: setting the run-now annotation is refused,
    a label change is not. Once it may create Jobs, the same request makes one run."""
    kube.create("schedules", namespace, schedule_body("nightly", f"q-{namespace}", interval="1h"))
    patcher = account(cluster, namespace, "patcher", [KADENCE_ALL])

    asked = as_user(cluster, patcher, namespace, "annotate", "schedule", "nightly",
                    "kadence.dev/run-requested-at=now")  # fmt: skip
    assert refused(asked, "require-job-create"), asked.stderr
    assert "may not create Jobs" in asked.stderr
    labelled = as_user(cluster, patcher, namespace, "label", "schedule", "nightly", "team=blue")
    assert labelled.returncode == 0, labelled.stderr

    account(cluster, namespace, "patcher", [KADENCE_ALL, CREATE_JOBS])
    wait_for(
        lambda: as_user(cluster, patcher, namespace, "annotate", "schedule", "nightly",
                        "kadence.dev/run-requested-at=now").returncode == 0,
        30, "the annotation to pass once the patcher may create Jobs",
    )  # fmt: skip
    wait_for(
        lambda: (
            status(kube.get("schedules", namespace, "nightly")).get("lastHandledRunRequest")
            == "now"
        ),
        30,
        "the run request to be handled",
    )


@pytest.mark.every_version
def test_suspending_with_a_reason_needs_the_right_to_create_jobs(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """`spec.suspendReason` and `enabled` are spec: someone who may patch Schedules but not
    create Jobs cannot suspend one, neither with `kubectl kadence suspend --reason` nor by
    patching the field alone; with the right, the reason shows in the Ready condition."""
    kube.create("schedules", namespace, schedule_body("nightly", f"q-{namespace}", interval="1h"))
    patcher = account(cluster, namespace, "suspender", [KADENCE_ALL])
    plugin = Path(sys.executable).parent / "kubectl-kadence"

    def suspend() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(plugin), "suspend", "nightly", "--reason", "maintenance", "-n", namespace,
             "--as", patcher],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        )  # fmt: skip

    refused_suspend = suspend()
    assert refused_suspend.returncode != 0
    assert "may not create Jobs" in refused_suspend.stderr, refused_suspend.stderr
    patched = as_user(cluster, patcher, namespace, "patch", "schedule", "nightly", "--type=merge",
                      "-p", json.dumps({"spec": {"suspendReason": "x"}}))  # fmt: skip
    assert refused(patched, "require-job-create"), patched.stderr
    spec = kube.get("schedules", namespace, "nightly")["spec"]  # type: ignore[index]
    assert spec.get("enabled", True) is True
    assert "suspendReason" not in spec

    account(cluster, namespace, "suspender", [KADENCE_ALL, CREATE_JOBS])
    wait_for(lambda: suspend().returncode == 0, 30, "the suspend to pass with the right")
    ready = wait_for(
        lambda: (
            (c := condition(kube.get("schedules", namespace, "nightly"), "Ready"))
            and c.get("reason") == "Disabled"
            and c
        ),
        30,
        "Ready False Disabled",
    )
    assert ready["message"].endswith(": maintenance")


@pytest.mark.every_version
def test_status_is_written_only_by_the_operator(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """Granted every kadence.dev resource and subresource, and Jobs: forging a Schedule's
    deadlineAt or a Task's phase is still refused."""
    kube.create("schedules", namespace, schedule_body("nightly", f"q-{namespace}", interval="1h"))
    kube.create("tasks", namespace, task_body("by-hand", f"q-{namespace}", jobTemplate=LONG_RUN))
    wait_for(lambda: phase(kube.get("tasks", namespace, "by-hand")) == "Running", 60, "running")
    forger = account(cluster, namespace, "forger", [KADENCE_ALL, CREATE_JOBS])

    for plural, name, forged in (
        ("schedule", "nightly", {"status": {"deadlineAt": "2001-01-01T00:00:00Z"}}),
        ("task", "by-hand", {"status": {"phase": "Completed"}}),
    ):
        patch = f"--patch={json.dumps(forged)}"
        result = as_user(cluster, forger, namespace, "patch", plural, name,
                         "--subresource=status", "--type=merge", patch)  # fmt: skip
        assert refused(result, "operator-only"), result.stderr
    assert phase(task_of(kube, namespace, "by-hand")) == "Running"
    assert status(kube.get("schedules", namespace, "nightly")).get("deadlineAt") != (
        "2001-01-01T00:00:00Z"
    )


# -- look-alike objects -------------------------------------------------------------------


@pytest.mark.every_version
def test_a_forged_job_is_refused_and_a_job_a_task_does_not_control_never_moves_it(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """Someone who may create Jobs and Tasks may not create a Job that claims a Task (its
    label, an ownerReference to it), nor a Task that claims a Schedule. A look-alike Job
    that gets in anyway (a cluster administrator's) is ignored: the Task does not move."""
    kube.create("tasks", namespace, task_body("blocker", "one-at-a-time", jobTemplate=LONG_RUN))
    wait_for(lambda: phase(kube.get("tasks", namespace, "blocker")) == "Running", 60, "blocker")
    kube.create("tasks", namespace, task_body("victim", "one-at-a-time"))
    wait_for(lambda: phase(kube.get("tasks", namespace, "victim")) == "Queued", 30, "victim queued")
    victim = task_of(kube, namespace, "victim")
    tenant = account(cluster, namespace, "tenant", [KADENCE_ALL, CREATE_JOBS])

    claim = {"apiVersion": API_VERSION, "kind": "Task", "name": "victim",
             "uid": victim["metadata"]["uid"], "controller": True}  # fmt: skip
    for n, metadata in enumerate(
        ({"labels": {"kadence.dev/task": "victim"}}, {"ownerReferences": [claim]})
    ):
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"forged-{n}", **metadata},
               "spec": job_template()["spec"]}  # fmt: skip
        result = as_user(cluster, tenant, namespace, "create", "--filename=-", body=job)
        assert refused(result, "operator-jobs"), result.stderr
    schedule = kube.create("schedules", namespace, schedule_body("s", "elsewhere", interval="1h"))
    owned = task_body("claims-a-schedule", "elsewhere", scheduleRef={"name": "s"})
    result = as_user(cluster, tenant, namespace, "create", "--filename=-", body=owned)
    assert refused(result, "operator-only"), result.stderr
    owned = task_body("owned-by-a-schedule", "elsewhere")
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": API_VERSION, "kind": "Schedule", "name": "s",
         "uid": schedule["metadata"]["uid"], "controller": True}
    ]  # fmt: skip
    result = as_user(cluster, tenant, namespace, "create", "--filename=-", body=owned)
    assert refused(result, "operator-only"), result.stderr

    # An administrator's look-alike: labelled for the victim, controlled by someone else.
    look_alike = {"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": "look-alike", "labels": {"kadence.dev/task": "victim"}},
                  "spec": job_template()["spec"]}  # fmt: skip
    kube.batch.create_namespaced_job(namespace, look_alike)
    wait_for(
        lambda: any(
            c.type == "Complete" and c.status == "True"
            for c in kube.batch.read_namespaced_job("look-alike", namespace).status.conditions or []
        ),
        60,
        "the look-alike Job to complete",
    )
    # A positive sign that the operator has seen the look-alike's events: a task made after
    # it, in another queue of the namespace, has run.
    kube.create("tasks", namespace, task_body("after", f"q-{namespace}"))
    wait_for(lambda: phase(kube.get("tasks", namespace, "after")) == "Completed", 60, "after")
    assert phase(kube.get("tasks", namespace, "blocker")) == "Running"
    assert phase(task_of(kube, namespace, "victim")) == "Queued"
    assert status(task_of(kube, namespace, "victim")).get("jobName") is None


# -- failing closed -----------------------------------------------------------------------


@pytest.mark.every_version
def test_without_its_admission_policies_the_operator_makes_no_job(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    operator: Operator,
    admission_policies: list[dict[str, Any]],
) -> None:
    """Delete one binding: Tasks are still made but no Job, and the Schedule's Ready says why;
    put it back: the waiting Task runs and Ready is True again."""
    binding = next(
        p
        for p in admission_policies
        if p["kind"] == "ValidatingAdmissionPolicyBinding"
        and p["metadata"]["name"] == f"{RELEASE}-operator-jobs"
    )
    name = binding["metadata"]["name"]
    cluster.kubectl("delete", "validatingadmissionpolicybinding", name)
    try:
        wait_for(
            lambda: "kadence_admission_policies_missing 1.0" in operator.metrics(),
            30,
            "the operator to notice (it checks every few seconds)",
        )
        kube.create("schedules", namespace, schedule_body("held", f"q-{namespace}", interval="1h"))
        ready = wait_for(
            lambda: (
                (c := condition(kube.get("schedules", namespace, "held"), "Ready"))
                and c.get("reason") == "AdmissionPolicyMissing"
                and c
            ),
            60,
            "Ready to say that the admission policies are missing",
        )
        assert ready["status"] == "False"
        assert name in ready["message"]
        task = wait_for(
            lambda: [t for t in kube.list("tasks", namespace) if phase(t) == "Queued"],
            30,
            "the schedule's task, queued",
        )[0]
        assert kube.jobs(namespace) == []
    finally:
        restored_at = utcnow()
        apply_objects(cluster, [binding])
    ran = wait_for(
        lambda: (
            (t := kube.get("tasks", namespace, task["metadata"]["name"]))
            and phase(t) == "Completed"
            and t
        ),
        60,
        "the held task to run once the binding is back",
    )
    assert parse_time(status(ran)["dispatchedAt"]) >= restored_at, "no Job while held"
    wait_for(
        lambda: (
            condition(kube.get("schedules", namespace, "held"), "Ready").get("reason")
            == "Scheduled"
        ),
        30,
        "Ready True again",
    )
    assert "kadence_admission_policies_missing 0.0" in operator.metrics()


# -- queues belong to namespaces ----------------------------------------------------------


def active(kube: Kube, namespace: str) -> list[str]:
    return [
        t["metadata"]["name"]
        for t in kube.list("tasks", namespace)
        if phase(t) in ("Dispatched", "Running")
    ]


@pytest.mark.every_version
def test_namespaces_using_one_scheduler_id_each_have_their_own_capacity(
    kube: Kube, namespace: str, second_namespace: str, operator: Operator
) -> None:
    """With capacity 1 and no shared queue configured, one task of each namespace runs at
    once: neither namespace can fill the other's queue."""
    for ns in (namespace, second_namespace):
        for n in (1, 2):
            kube.create("tasks", ns, task_body(f"long-{n}", "one-at-a-time", jobTemplate=LONG_RUN))
    wait_for(
        lambda: len(active(kube, namespace)) == 1 and len(active(kube, second_namespace)) == 1,
        60,
        "one running task in each namespace",
    )
    for ns in (namespace, second_namespace):
        queued = [t["metadata"]["name"] for t in kube.list("tasks", ns) if phase(t) == "Queued"]
        assert len(queued) == 1, (ns, queued)


@pytest.fixture
def shared_namespaces(kube: Kube) -> Iterator[tuple[str, ...]]:
    for name in SHARED_NAMESPACES:
        kube.core.create_namespace({"metadata": {"name": name}})
    yield SHARED_NAMESPACES
    for name in SHARED_NAMESPACES:
        kube.core.delete_namespace(name)


SHARED_BURST = 200


def test_a_shared_queue_takes_turns_and_keeps_other_namespaces_out(
    kube: Kube, namespace: str, shared_namespaces: tuple[str, ...], operator: Operator
) -> None:
    """Two namespaces share the queue `shared` (capacity 2); each makes a burst of tasks at
    equal priority: they are dispatched in turns. A third namespace naming `shared` gets its
    own queue: its five long tasks run at once, beside the shared queue's two. A priority
    outside the shared queue's range is refused."""
    first = shared_namespaces[0]
    for n in range(SHARED_BURST):
        for ns in shared_namespaces:
            kube.create("tasks", ns, task_body(f"burst-{n:03d}", "shared"))
    outsider = [f"outsider-{n}" for n in range(5)]
    for name in outsider:
        kube.create("tasks", namespace, task_body(name, "shared", jobTemplate=LONG_RUN))
    kube.create("tasks", first, task_body("jumper", "shared", priority=-100))

    wait_for(
        lambda: all(phase(kube.get("tasks", namespace, name)) == "Running" for name in outsider),
        60,
        "the outsider's 5 tasks running at once: a queue of its own, not the shared one of 2",
    )
    jumper = wait_for(
        lambda: (t := kube.get("tasks", first, "jumper")) and phase(t) == "Failed" and t,
        30,
        "the out-of-range priority refused",
    )
    assert "outside -10..10" in status(jumper)["message"]

    def done() -> list[dict[str, Any]] | None:
        tasks = [t for ns in shared_namespaces for t in kube.list("tasks", ns)]
        burst = [t for t in tasks if t["metadata"]["name"].startswith("burst-")]
        return burst if all(phase(t) == "Completed" for t in burst) else None

    burst = wait_for(done, 900, "both bursts to run through the shared queue", interval=2)
    order = sorted(burst, key=lambda t: status(t)["dispatchedAt"])
    lead = 0
    worst = 0
    for task in order:
        lead += 1 if task["metadata"]["namespace"] == first else -1
        worst = max(worst, abs(lead))
    assert worst <= 3, f"one namespace got {worst} dispatches ahead of the other"


# -- data ---------------------------------------------------------------------------------


@pytest.mark.every_version
def test_data_reaches_the_container_unchanged(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """The Job's KADENCE_TASK_DATA, expanded as the kubelet expands env values ($(VAR) and
    $$), is the task's data as JSON, whatever it holds. kwok runs no container, so the test
    applies Kubernetes' expansion rules (tests/support/expansion.py) to the Job's env."""
    data = {
        "home": "$(HOME)",
        "escaped": "$$ and $$(HOME)",
        "quotes": "\"double\" 'single'",
        "lines": "one\ntwo\r\n",
        "text": "ünïcødé ✓ 日本",
        "nested": {"list": [1, "$(KADENCE_TASK_NAME)", None, True]},
    }
    kube.create("tasks", namespace, task_body("tricky", f"q-{namespace}", data=data))
    wait_for(lambda: kube.jobs(namespace), 30, "the Job")
    (job,) = kube.jobs(namespace)
    env = job.spec.template.spec.containers[0].env
    defined = {"HOME": "/root"}
    seen = None
    for var in env:
        value = expand(var.value, defined)
        if var.name == "KADENCE_TASK_DATA":
            seen = value
            break
        defined[var.name] = value
    assert seen is not None
    assert json.loads(seen) == data
