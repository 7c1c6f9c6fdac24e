"""Faults: the operator killed, the API server gone, watches broken, a GitOps tool fighting
over the Schedule, objects deleted behind the operator's back. After each, every deadline
of an every-minute cron Schedule ran exactly once (or, where its missedRunPolicy says so,
not at all), every Task had exactly one Job, no queue went over its capacity, and no run
was lost: every run finished and the Schedules' `status.counts` say what really happened.

A `Sampler` (tests/support/faults.py) watches the Tasks and Jobs for the whole test, so a
Job made twice under one name, or a queue over capacity for a moment, is seen even if it
did not last. The tests wait for conditions; the only plain waits are a fault's own
duration (the API server down for 60 s) and the wall clock passing a deadline. Each test
takes the minute boundaries as they come instead of waiting for a fresh minute, so the
deadlines it expects are computed from the clock with the operator's own cron engine.
The API server outage comes last: the controller manager's informers take a minute or more
to come back after it, and the tests before it should not wait for that.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kadence.deadlines import ON_TIME_GRACE
from kadence.naming import task_name_for_run_request
from kadence.status import JOB_DELETED
from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.support.apiproxy import ApiProxy
from tests.support.faults import (
    Sampler,
    assert_exactly_once,
    new_lines,
    parse_time,
    phase_of,
    run_problems,
    settle,
)
from tests.support.kube import Kube, condition, status, wait_for
from tests.support.manifests import (
    job_template,
    schedule_manifest,
    task_manifest,
)

ONE = "one-at-a-time"  # capacity 1 in the suite's operator configuration
THREE = "three-at-a-time"  # capacity 3
MINUTE = timedelta(minutes=1)
OUTAGE = 60.0
"""Seconds the API server stays down."""
POLICIES = {"latest": "RunLatest", "skip": "Skip", "all": "RunAll"}

Body = dict[str, Any]


# -- building blocks --------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def wait_phase(
    kube: Kube, namespace: str, name: str, phases: tuple[str, ...], timeout: float
) -> Body:
    def reached() -> Body | None:
        task = kube.get("tasks", namespace, name)
        return task if phase_of(task) in phases else None

    return wait_for(reached, timeout, f"task {namespace}/{name} to be {'/'.join(phases)}")


def first_deadlines(kube: Kube, namespace: str, names: list[str]) -> datetime:
    """Wait until each Schedule has its first deadline, and return the latest of them (made
    together, they share it unless a minute began in between)."""

    def known() -> list[datetime] | None:
        found = [status(kube.get("schedules", namespace, name)).get("deadlineAt") for name in names]
        return [parse_time(d) for d in found if d] if None not in found else None

    return max(wait_for(known, 15, f"{names} to know their first deadline"))


def acted_on(kube: Kube, namespace: str, names: list[str], deadline: datetime) -> bool:
    """Whether every Schedule has acted on `deadline` (its next deadline is later)."""
    for name in names:
        value = status(kube.get("schedules", namespace, name)).get("deadlineAt")
        if value is None or parse_time(value) <= deadline:
            return False
    return True


def settled(kube: Kube, namespace: str, names: list[str], deadline: datetime) -> bool:
    """Whether every Schedule has acted on `deadline` and has no run still unfinished."""
    return acted_on(kube, namespace, names, deadline) and not any(
        status(kube.get("schedules", namespace, name)).get("active") for name in names
    )


def wait_for_wall_clock(instant: datetime, what: str) -> None:
    """Wait until the wall clock has passed `instant` (a deadline passing is the condition)."""
    timeout = max((instant - utcnow()).total_seconds(), 0.0) + 10
    wait_for(lambda: utcnow() > instant, timeout, what, interval=0.2)


def log_size(operator: Operator) -> int:
    return operator.log.stat().st_size if operator.log.exists() else 0


def assert_no_traceback(operator: Operator, since: int) -> None:
    """Nothing in the operator's log since byte `since` is a Python traceback."""
    lines = list(new_lines(operator.log, since))
    at = [i for i, line in enumerate(lines) if "Traceback" in line]
    assert not at, "the operator logged a traceback:\n" + "\n".join(lines[at[0] : at[0] + 30])


@contextlib.contextmanager
def namespace_of_its_own(kube: Kube) -> Iterator[str]:
    """A second namespace for a test (the fixture gives one), deleted afterwards if it is
    still there."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: any(
            sa.metadata.name == "default"
            for sa in kube.core.list_namespaced_service_account(name).items
        ),
        30,
        "the default ServiceAccount",
    )
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            kube.core.delete_namespace(name)


def namespace_gone(kube: Kube, name: str) -> bool:
    try:
        kube.core.read_namespace(name)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


# -- watches broken ---------------------------------------------------------------------


@pytest.mark.every_version
def test_events_lost_to_a_broken_watch_are_recovered_by_listing_again_after_410_gone(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    operator: Operator,
    tmp_path: Path,
) -> None:
    """The leading operator talks to the API server through a proxy. While the proxy drops
    every watch event of Schedules, Tasks and Jobs, a Schedule (asking for a run now) and a
    manual Task are made, and a running Task's Job is deleted: the operator misses all three
    (it does nothing). Then the proxy ends every watch with 410 Gone: the operator lists
    again and acts on what it missed. The Schedule's run is made and Completes, the manual
    Task (behind the running one in a capacity-1 queue) runs and Completes, the Task whose
    Job was deleted fails (JobDeleted) and gets no second Job."""
    with ApiProxy(operator.kubeconfig, tmp_path) as proxy:
        proxied = Operator(cluster, proxy.kubeconfig, tmp_path)
        operator.stop()  # SIGTERM: it hands the Lease over
        try:
            proxied.start()
            with Sampler(cluster.kubeconfig, namespace) as sampler:
                kube.create("tasks", namespace, task_manifest("victim", ONE, run_for="600s"))
                wait_phase(kube, namespace, "victim", ("Running",), 60)
                wait_for(
                    lambda: {"schedules", "tasks", "jobs"} <= proxy.watching(),
                    30,
                    "the operator's watches to go through the proxy",
                )
                since = log_size(proxied)

                proxy.hold()
                kube.create(
                    "schedules",
                    namespace,
                    schedule_manifest("fresh", f"q-{namespace}", run_now=True),
                )
                kube.create("tasks", namespace, task_manifest("manual", ONE))
                kube.batch.delete_namespaced_job(
                    "victim", namespace, propagation_policy="Background"
                )
                wait_for(
                    lambda: (
                        "fresh" in proxy.dropped_names("schedules", "ADDED")
                        and "manual" in proxy.dropped_names("tasks", "ADDED")
                        and "victim" in proxy.dropped_names("jobs", "DELETED")
                    ),
                    30,
                    "the three events to be held back",
                )
                # Missed, so nothing was done about them.
                assert status(kube.get("schedules", namespace, "fresh")) == {}
                assert phase_of(kube.get("tasks", namespace, "manual")) is None
                assert phase_of(kube.get("tasks", namespace, "victim")) == "Running"

                expired_at = utcnow()
                assert proxy.expire() >= 3
                victim = wait_phase(
                    kube, namespace, "victim", ("Completed", "Failed", "Cancelled"), 60
                )
                assert phase_of(victim) == "Failed", status(victim)
                assert condition(victim, "Failed")["reason"] == JOB_DELETED, status(victim)
                manual = wait_phase(
                    kube, namespace, "manual", ("Completed", "Failed", "Cancelled"), 60
                )
                assert phase_of(manual) == "Completed", status(manual)
                run = task_name_for_run_request("fresh", "at-creation")
                made = wait_phase(kube, namespace, run, ("Completed", "Failed", "Cancelled"), 60)
                assert phase_of(made) == "Completed", status(made)
                # From a few seconds after the lists, every deadline of the Schedule runs.
                assert_exactly_once(
                    kube,
                    namespace,
                    ["fresh"],
                    (expired_at + timedelta(seconds=5), utcnow()),
                    sampler,
                )
            sampler.assert_within(ONE, 1)
            assert not sampler.doubled(), sampler.doubled()
            jobs = sampler.jobs(namespace)
            assert [len(jobs[namespace, name].uids) for name in ("victim", "manual")] == [1, 1]
            assert proxy.expired >= 3
            assert_no_traceback(proxied, since)
        finally:
            if proxied.process is not None:
                proxied.stop()
            operator.start()


# -- a GitOps tool re-applying the Schedule ---------------------------------------------


@pytest.mark.every_version
def test_a_gitops_tool_re_applying_the_schedule_loses_no_status_write_and_owns_the_spec(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, tmp_path: Path
) -> None:
    """`kubectl apply --server-side --field-manager=argocd`, again and again (each time with a
    new annotation, as a tool stamping its revision does, so every apply is a write), while
    an interval Schedule runs every second and the operator writes its status after each
    run; the last apply disables it. Every status write survived: the counts and the
    history name every run, and every run Completed (or was cancelled by the disabling)
    once. The spec is exactly what was applied (no field owned by anyone else), the status
    owned by the operator alone, and `kubectl diff --server-side` finds nothing."""
    manifest = tmp_path / "schedule.yaml"
    body = schedule_manifest("applied", f"q-{namespace}", interval="1s", run_for="1s")
    body["metadata"]["namespace"] = namespace

    def apply(revision: int, **spec: Any) -> None:
        body["metadata"]["annotations"] = {"gitops.example/revision": str(revision)}
        body["spec"].update(spec)
        manifest.write_text(yaml.safe_dump(body))
        cluster.kubectl("apply", "--server-side", "--field-manager=argocd", "-f", str(manifest))

    def completed() -> int:
        counts = status(kube.get("schedules", namespace, "applied")).get("counts") or {}
        return int(counts.get("completed", 0))

    with Sampler(cluster.kubeconfig, namespace) as sampler:
        revision = 0
        started = time.monotonic()
        while revision < 10 or completed() < 5:
            revision += 1
            apply(revision)
            assert time.monotonic() - started < 180, (
                f"five runs did not complete in 180 s ({revision} applies): "
                f"{status(kube.get('schedules', namespace, 'applied'))}"
            )
        print(f"{revision} applies in {time.monotonic() - started:.1f} s")
        revision += 1
        apply(revision, enabled=False)

        def settled() -> list[str]:
            try:
                sampler.sync(timeout=10)
            except AssertionError as behind:  # a busy moment: look again
                return [str(behind)]
            schedule = kube.get("schedules", namespace, "applied")
            assert schedule is not None
            runs = sampler.tasks_of_schedule(namespace, "applied")
            problems = run_problems(schedule, runs, sampler.jobs(namespace), missed=0)
            recorded = {entry["task"] for entry in status(schedule).get("history", [])}
            if not problems and recorded != set(runs):
                problems.append(f"history names {sorted(recorded)}, the Tasks are {sorted(runs)}")
            if status(schedule).get("observedGeneration") != schedule["metadata"]["generation"]:
                problems.append("the disabling is not observed yet")
            return problems

        settle(settled, 60, "every run to be finished and recorded")
    schedule = kube.get("schedules", namespace, "applied")
    assert schedule is not None
    assert completed() >= 5
    assert not sampler.doubled(), sampler.doubled()

    dry_run = cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=argocd",
        "--dry-run=server",
        "-o",
        "yaml",
        "-f",
        str(manifest),
    )
    assert schedule["spec"] == yaml.safe_load(dry_run.stdout)["spec"], "the spec drifted"
    assert schedule["metadata"]["generation"] == 2, "the spec changed other than by the two applies"
    for entry in schedule["metadata"]["managedFields"]:
        owned = entry.get("fieldsV1", {})
        if entry["manager"] != "argocd":
            assert "f:spec" not in owned, f"{entry['manager']} owns spec fields: {owned['f:spec']}"
        else:
            assert "f:status" not in owned, "argocd owns status fields"
    diff = cluster.kubectl(
        "diff", "--server-side", "--field-manager=argocd", "-f", str(manifest), check=False
    )
    assert diff.returncode == 0, f"kubectl diff found a difference:\n{diff.stdout}{diff.stderr}"


# -- deletions while the operator is down -----------------------------------------------


def test_objects_deleted_while_the_operator_was_killed_are_accounted_for_after_restart(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """While the operator is down (SIGKILL): a Schedule's queued run is deleted, a running
    Task's Job is deleted, and a whole namespace goes, with a Schedule of the same name and
    queue as one here. After the restart the operator goes on: the deleted run is counted
    once as cancelled and never made again, the Task that lost its Job fails (JobDeleted),
    this namespace's twin Schedule is untouched (its run, finished meanwhile, is counted
    Completed, nothing cancelled), the capacity-1 queue moves on, every deadline of the
    window ran once, and the operator logs no traceback."""
    twin_queue = f"twin-{namespace}"
    waits_run = task_name_for_run_request("waits", "at-creation")
    twin_run = task_name_for_run_request("twin", "at-creation")
    with (
        namespace_of_its_own(kube) as doomed,
        Sampler(cluster.kubeconfig, namespace, doomed) as sampler,
    ):
        kube.create("tasks", namespace, task_manifest("blocker", ONE, run_for="600s"))
        wait_phase(kube, namespace, "blocker", ("Running",), 60)
        # Allow: a deadline while the run asked for is still queued makes its own run.
        kube.create(
            "schedules",
            namespace,
            schedule_manifest("waits", ONE, run_now=True, concurrencyPolicy="Allow"),
        )
        kube.create(
            "schedules",
            namespace,
            schedule_manifest(
                "twin", twin_queue, run_now=True, run_for="15s", concurrencyPolicy="Allow"
            ),
        )
        kube.create(
            "schedules",
            doomed,
            schedule_manifest(
                "twin", twin_queue, run_now=True, run_for="600s", concurrencyPolicy="Allow"
            ),
        )
        kube.create("tasks", doomed, task_manifest("blocker", ONE, run_for="600s"))
        wait_phase(kube, namespace, waits_run, ("Queued",), 30)
        wait_phase(kube, namespace, twin_run, ("Running",), 30)
        wait_phase(kube, doomed, twin_run, ("Running",), 30)
        wait_phase(kube, doomed, "blocker", ("Running",), 30)
        first = first_deadlines(kube, namespace, ["waits", "twin"])

        since = log_size(operator)
        operator.stop(signal.SIGKILL)
        try:
            kube.delete("tasks", namespace, waits_run)
            kube.batch.delete_namespaced_job("blocker", namespace, propagation_policy="Background")
            kube.core.delete_namespace(doomed)
            wait_for(
                lambda: kube.get("tasks", namespace, waits_run) is None, 30, "the queued run to go"
            )
            wait_for(lambda: namespace_gone(kube, doomed), 120, f"namespace {doomed} to go")
        finally:
            operator.start()

        blocker = wait_phase(kube, namespace, "blocker", ("Completed", "Failed", "Cancelled"), 60)
        assert phase_of(blocker) == "Failed", status(blocker)
        assert condition(blocker, "Failed")["reason"] == JOB_DELETED, status(blocker)
        kube.create("tasks", namespace, task_manifest("after", ONE))
        after = wait_phase(kube, namespace, "after", ("Completed", "Failed", "Cancelled"), 60)
        assert phase_of(after) == "Completed", status(after)

        schedules = assert_exactly_once(
            kube, namespace, ["waits", "twin"], (first, utcnow()), sampler
        )
    waits, twin = status(schedules["waits"]), status(schedules["twin"])
    assert waits["counts"]["cancelled"] == 1, waits["counts"]
    assert [(h["task"], h["phase"]) for h in waits["history"] if h["task"] == waits_run] == [
        (waits_run, "Cancelled")
    ]
    assert kube.get("tasks", namespace, waits_run) is None, "the deleted run was made again"
    assert len(sampler.tasks(namespace)[namespace, waits_run].uids) == 1
    assert (namespace, waits_run) not in sampler.jobs(namespace), "the deleted run got a Job"
    assert twin["counts"].get("cancelled", 0) == 0, twin["counts"]
    assert phase_of(kube.get("tasks", namespace, twin_run)) == "Completed"
    sampler.assert_within(ONE, 1)
    assert not sampler.doubled(), sampler.doubled()
    assert_no_traceback(operator, since)


# -- the operator down ------------------------------------------------------------------


def test_deadlines_passed_while_the_operator_was_killed_run_as_each_missed_run_policy_says(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """Three every-minute Schedules in a capacity-1 queue, one per missedRunPolicy; the
    operator is killed (SIGKILL) and stays down across two deadlines, and starts again more
    than the Skip grace after the second. RunLatest makes one Task, for the later deadline,
    and counts the other missed; Skip makes none and counts both; RunAll makes both (it may
    run them at once: concurrencyPolicy Allow). No deadline gets a second Task, no Task a
    second Job, the queue never runs two at once, every run Completes and is counted."""
    names = list(POLICIES)
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        for name, policy in POLICIES.items():
            spec: Body = {"missedRunPolicy": policy}
            if policy == "RunAll":
                spec["concurrencyPolicy"] = "Allow"
            kube.create("schedules", namespace, schedule_manifest(name, ONE, **spec))
        first = first_deadlines(kube, namespace, names)
        before: list[datetime] = []
        while (first + len(before) * MINUTE) - utcnow() < timedelta(seconds=2):
            # Too close to kill before it: let it run, and finish (a run still queued when
            # the operator is killed would make Forbid skip the next deadline).
            ran = first + len(before) * MINUTE
            wait_for(lambda at=ran: settled(kube, namespace, names, at), 90, f"the runs of {ran}")
            before.append(ran)
        down_across = (first + len(before) * MINUTE, first + (len(before) + 1) * MINUTE)
        since = log_size(operator)
        operator.stop(signal.SIGKILL)
        try:
            wait_for_wall_clock(
                down_across[1] + ON_TIME_GRACE + timedelta(seconds=1),
                "the second deadline and the Skip grace after it to pass",
            )
        finally:
            operator.start()
        assert_exactly_once(
            kube,
            namespace,
            names,
            (first, down_across[1]),
            sampler,
            runs={
                "latest": [*before, down_across[1]],
                "skip": before,
                "all": [*before, *down_across],
            },
        )
    sampler.assert_within(ONE, 1)
    assert not sampler.doubled(), sampler.doubled()
    assert_no_traceback(operator, since)


# -- the API server down ----------------------------------------------------------------


def test_an_api_server_outage_over_a_deadline_runs_what_each_missed_run_policy_says(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """kube-apiserver stopped for 60 s over a deadline of three every-minute Schedules (one
    per missedRunPolicy), and started again on the same port 35 s after it. The operator,
    running all along, reconnects, lists again and leads again; RunLatest and RunAll run
    the late deadline, Skip counts it missed (more than its grace late), and all three run
    the next deadline on time. Nothing doubled, the capacity-3 queue never exceeded, every
    run Completed. The rest of the control plane reconnects by itself too: a plain Job
    made once the API server is back completes.

    The controller manager's informers back off for up to a minute after such an outage,
    so the late deadline's Jobs may not have started by the next deadline: the Schedules
    allow runs to overlap (concurrencyPolicy Allow), or that deadline would be skipped."""
    plane = cluster.plane
    if plane is None:
        pytest.skip(
            "KADENCE_TEST_KUBECONFIG names a cluster whose API server this suite cannot stop"
        )
    names = list(POLICIES)
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        for name, policy in POLICIES.items():
            manifest = schedule_manifest(
                name, THREE, missedRunPolicy=policy, concurrencyPolicy="Allow"
            )
            kube.create("schedules", namespace, manifest)
        first = first_deadlines(kube, namespace, names)
        # The deadline the outage covers: stopped 25 s before it, back 35 s after it.
        over = first if first - utcnow() > timedelta(seconds=27) else first + MINUTE
        wait_for_wall_clock(over - timedelta(seconds=25), "25 s before the deadline")
        since = log_size(operator)
        plane.stop_component("kube-apiserver")
        try:
            wait_for_wall_clock(over + timedelta(seconds=OUTAGE - 25), "the outage to last 60 s")
        finally:
            plane.start_component("kube-apiserver")
        back = utcnow()
        assert back - over > ON_TIME_GRACE, "the API server came back too early to test Skip"

        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "plain"},
            "spec": job_template("1s")["spec"],
        }
        kube.batch.create_namespaced_job(namespace, job)
        wait_for(operator.leading, 60, "the operator to lead again", check=operator.check_alive)
        after = over + MINUTE
        assert_exactly_once(
            kube,
            namespace,
            names,
            (first, after),
            sampler,
            runs={"skip": [d for d in (first, over, after) if d != over]},
            timeout=180,
        )
        wait_for(
            lambda: (kube.batch.read_namespaced_job("plain", namespace).status.succeeded or 0) == 1,
            60,
            "a plain Job to complete (controller manager, scheduler and kwok reconnected)",
        )
    sampler.assert_within(THREE, 3, max_gap=OUTAGE + 30)
    assert not sampler.doubled(), sampler.doubled()
    assert_no_traceback(operator, since)
