"""Two replicas, one leader: the standby takes over from a leader that is killed at the
worst moment or frozen past its Lease, and no run is lost, doubled, or over capacity.

Each test stops the session's operator (SIGTERM: it hands its Lease over) and runs a
leader and a warm standby of its own, competing for the same Lease; the leader may be
armed to SIGKILL itself at a crash point (`KADENCE_FAULTS`). Each ends by checking every
run it made: one Task per deadline, one Job per Task (one uid ever), every run finished,
and the queue's capacity never exceeded while the Sampler watched.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import CONFIG, LEASE, Operator
from tests.support.faults import Sampler, assert_exactly_once
from tests.support.kube import Kube, status, wait_for
from tests.support.manifests import schedule_manifest, task_manifest

Body = dict[str, Any]
Replicas = Callable[..., Operator]

BURST = "burst"
BURST_SIZE = 500
BURST_CAPACITY = 100
BURST_CONFIG = CONFIG.replace("  capacity:\n", f"  capacity:\n    {BURST}: {BURST_CAPACITY}\n", 1)
ONE = "one-at-a-time"  # capacity 1 in the suite's configuration


@pytest.fixture
def replicas(
    cluster: Cluster, operator: Operator, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[Replicas]:
    """Start replicas of the test's own (`start(name, lead=..., env=..., config=...)`), the
    session's operator stopped meanwhile; all are stopped and the session's operator
    leads again afterwards."""
    started: list[Operator] = []
    operator.stop(signal.SIGTERM)

    def start(
        name: str, *, lead: bool, env: dict[str, str] | None = None, config: str = CONFIG
    ) -> Operator:
        workdir = tmp_path / name
        workdir.mkdir()
        replica = Operator(cluster, operator_kubeconfig, workdir, config=config, env=env)
        started.append(replica)
        replica.start(lead=lead)
        return replica

    try:
        yield start
    finally:
        for replica in started:
            if replica.process is not None:
                replica.process.send_signal(signal.SIGCONT)  # a frozen one must hear SIGTERM
                replica.stop(signal.SIGTERM)
        operator.start()


def died(replica: Operator, timeout: float) -> int:
    """Wait until the replica's process has killed itself at its crash point."""
    assert replica.process is not None
    code = wait_for(
        lambda: replica.process is not None and replica.process.poll() is not None,
        timeout, "the leader to die at its crash point",
    )  # fmt: skip
    assert code
    returncode = replica.process.returncode
    replica.process = None
    assert "fault point" in replica.log.read_text(), "it died, but not at its crash point"
    return returncode


def finished_tasks(kube: Kube, namespace: str, count: int, timeout: float) -> list[Body]:
    def all_done() -> list[Body] | None:
        tasks = kube.list("tasks", namespace)
        done = [t for t in tasks if status(t).get("phase") in ("Completed", "Failed", "Cancelled")]
        return tasks if len(tasks) >= count and len(done) == len(tasks) else None

    return wait_for(all_done, timeout, f"{count} tasks to finish", interval=1.0)


def assert_each_task_ran_once(
    kube: Kube, namespace: str, tasks: list[Body], sampler: Sampler
) -> None:
    """Every Task Completed, with exactly one Job that it controls, created once."""
    phases = {t["metadata"]["name"]: status(t).get("phase") for t in tasks}
    assert set(phases.values()) == {"Completed"}, phases
    jobs = {job.metadata.name: job for job in kube.jobs(namespace)}
    assert sorted(jobs) == sorted(phases), "one Job per Task, and no other"
    for task in tasks:
        name = task["metadata"]["name"]
        assert jobs[name].metadata.owner_references[0].uid == task["metadata"]["uid"]
    sampler.sync()
    assert not sampler.doubled(), f"made more than once: {sampler.doubled()}"


def assert_one_task_per_deadline(tasks: list[Body], schedules: list[str]) -> None:
    """Each Schedule's one deadline in the window has exactly one Task."""
    per_deadline: dict[tuple[str, str], list[str]] = {}
    for task in tasks:
        owner = task["spec"]["scheduleRef"]["name"]
        deadline = datetime.fromisoformat(task["spec"]["deadlineAt"]).astimezone(UTC)
        per_deadline.setdefault((owner, deadline.isoformat()), []).append(task["metadata"]["name"])
    assert sorted(owner for owner, _ in per_deadline) == sorted(schedules)
    doubled = {key: names for key, names in per_deadline.items() if len(names) != 1}
    assert not doubled, f"deadlines with more than one Task: {doubled}"


def test_killed_after_creating_a_task_before_counting_it(
    cluster: Cluster, kube: Kube, namespace: str, replicas: Replicas
) -> None:
    """The leader dies right after its first Task create, before the Schedule's status
    says so; the standby takes over, counts that Task once and makes the other runs."""
    names = [f"interval-{i}" for i in range(4)]
    leader = replicas(
        "leader",
        lead=True,
        env={"KADENCE_FAULTS": "task-created=1", "KADENCE_FAULTS_NAMESPACE": namespace},
    )
    standby = replicas("standby", lead=False)
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        for name in names:  # an interval Schedule's first deadline is its creation
            kube.create("schedules", namespace, schedule_manifest(name, "failover", interval="24h"))
        assert died(leader, timeout=60) == -signal.SIGKILL
        wait_for(standby.leading, 40, "the standby to take over", check=standby.check_alive)
        tasks = finished_tasks(kube, namespace, len(names), timeout=120)
    assert_one_task_per_deadline(tasks, names)
    assert_each_task_ran_once(kube, namespace, tasks, sampler)
    for name in names:
        counted = wait_for(
            lambda n=name: (c := status(kube.get("schedules", namespace, n)).get("counts", {}))
            .get("completed") and c,
            30, f"{name} to count its run",
        )  # fmt: skip
        assert (counted["created"], counted["completed"]) == (1, 1), (name, counted)


def test_killed_after_creating_a_job_before_marking_it_dispatched(
    cluster: Cluster, kube: Kube, namespace: str, replicas: Replicas
) -> None:
    """The leader dies right after creating a Job, before its queue controller marks the
    Task Dispatched; the standby adopts that Job (its Task controls it) instead of making
    another, and the capacity of 1 holds across the hand-over. (The unit table of the task
    controller covers the adoption step itself: a Queued Task whose Job exists.)"""
    leader = replicas(
        "leader",
        lead=True,
        env={"KADENCE_FAULTS": "job-created=1", "KADENCE_FAULTS_NAMESPACE": namespace},
    )
    standby = replicas("standby", lead=False)
    names = [f"manual-{i}" for i in range(3)]
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        for name in names:
            kube.create("tasks", namespace, task_manifest(name, ONE))
        assert died(leader, timeout=60) == -signal.SIGKILL
        first = [job.metadata.name for job in kube.jobs(namespace)]
        assert len(first) == 1, first
        stuck = kube.get("tasks", namespace, first[0])
        # The queue controller dies before its Dispatched write: a Task that joined the queue
        # with a slot free has no status yet (it goes from Pending to Dispatched in one write),
        # one that waited is Queued. The Job's own watch event can beat the answer to its POST,
        # though, and the task controller then adopts the Job (Dispatched) with a write
        # already on the wire when the process dies: all are states a crash leaves, and from
        # each the standby must make no second Job.
        assert status(stuck).get("phase") in (None, "Queued", "Dispatched"), status(stuck)
        wait_for(standby.leading, 40, "the standby to take over", check=standby.check_alive)
        tasks = finished_tasks(kube, namespace, len(names), timeout=120)
    assert_each_task_ran_once(kube, namespace, tasks, sampler)
    adopted = kube.get("tasks", namespace, first[0])
    assert status(adopted).get("jobName") == first[0]
    sampler.assert_within(ONE, 1)


def said(replica: Operator, field: str) -> Any:
    """A field of the replica's /readyz, waiting out a slow answer on a busy machine."""
    return wait_for(replica.readiness, 10, "/readyz to answer")[field]


WRITE_SERIES = re.compile(
    r'^(kadence_api_requests_total\{.*verb="(?:create|patch|patch_status|delete)".*\}) (\S+)$',
    re.M,
)
WRITE_LOGGED = re.compile(r'"(POST|PATCH|PUT|DELETE) (?!/apis/coordination\.k8s\.io/)\S+ HTTP')
"""A write the client sent and got an answer to (urllib3 logs each), Lease renewals aside."""


DEPTH = re.compile(r"^kadence_workqueue_depth\{.*\} (\S+)$", re.M)


def write_series(replica: Operator) -> dict[str, float]:
    """The replica's write counters, by verb, resource and answer (`code`)."""
    return {series: float(value) for series, value in WRITE_SERIES.findall(replica.metrics())}


def settled(replica: Operator) -> Callable[[], bool]:
    """A condition: true once two scrapes a poll apart show the same number of writes and
    no key waiting, so that no write of the replica's is in flight."""
    seen: list[float] = []

    def check() -> bool:
        scrape = replica.metrics()
        writes = sum(float(value) for _, value in WRITE_SERIES.findall(scrape))
        waiting = sum(float(value) for value in DEPTH.findall(scrape))
        still = bool(seen) and seen[-1] == writes
        seen.append(writes)
        return still and waiting == 0

    return check


def test_a_frozen_leader_is_replaced_and_does_not_act_when_it_wakes(
    cluster: Cluster, kube: Kube, namespace: str, replicas: Replicas
) -> None:
    """SIGSTOP the leader past its Lease: the standby takes over and runs what comes;
    the old leader, woken with work in its stale view, sends no write and stands by."""
    leader = replicas("leader", lead=True)
    standby = replicas("standby", lead=False)
    kube.create("tasks", namespace, task_manifest("before", ONE))
    finished_tasks(kube, namespace, 1, timeout=60)
    assert leader.process is not None
    wait_for(settled(leader), 120, "the leader to have no write in flight", interval=1.0)
    frozen_writes = write_series(leader)
    leader.process.send_signal(signal.SIGSTOP)
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        kube.create("tasks", namespace, task_manifest("while-frozen", ONE))
        wait_for(standby.leading, 40, "the standby to take over", check=standby.check_alive)
        wait_for(
            lambda: status(kube.get("tasks", namespace, "while-frozen")).get("phase")
            == "Completed",
            60, "the new leader to run the Task made while the old one was frozen",
        )  # fmt: skip
        kube.create("tasks", namespace, task_manifest("after", ONE))
        woken_at = leader.log.stat().st_size
        leader.process.send_signal(signal.SIGCONT)
        wait_for(
            lambda: "stopped leading" in leader.log.read_text(),
            30, "the woken leader to notice that it no longer leads",
        )  # fmt: skip
        new_leader = said(standby, "identity")
        wait_for(lambda: said(leader, "leader") == new_leader, 10, "the woken one to name it")
        assert not leader.leading()
        tasks = finished_tasks(kube, namespace, 3, timeout=60)
    # No write went out after it woke: its client logs every answer, and its own counters
    # (counted in the thread that sends, so a reconcile cancelled when it stopped leading
    # counts nothing) show none since the freeze, by verb, resource and answer.
    after_waking = leader.log.read_bytes()[woken_at:].decode(errors="replace")
    assert not WRITE_LOGGED.findall(after_waking), "the woken leader sent writes"
    grown = {
        series: (frozen_writes.get(series, 0.0), count)
        for series, count in write_series(leader).items()
        if count != frozen_writes.get(series, 0.0)
    }
    assert not grown, f"the woken leader counted writes: {grown}"
    assert_each_task_ran_once(kube, namespace, tasks, sampler)
    sampler.assert_within(ONE, 1)


def leader_gauge(replica: Operator) -> float:
    found = re.search(r"^kadence_leader (\S+)$", replica.metrics(), re.M)
    assert found, "no kadence_leader in the scrape"
    return float(found.group(1))


@pytest.mark.every_version
def test_sigterm_hands_the_lease_over_and_everything_says_who_leads(
    cluster: Cluster, kube: Kube, namespace: str, replicas: Replicas
) -> None:
    """A clean stop releases the Lease (the standby need not wait for it to expire); the
    Lease, an Event on it, /readyz and kadence_leader all name the new leader, and a Task
    made during the hand-over runs once."""
    first = replicas("first", lead=True)
    second = replicas("second", lead=False)
    old, new = said(first, "identity"), said(second, "identity")
    lease_namespace, lease_name = LEASE

    def holder() -> str | None:
        lease = kube.custom.get_namespaced_custom_object(
            "coordination.k8s.io", "v1", lease_namespace, "leases", lease_name
        )
        return lease["spec"].get("holderIdentity")

    assert holder() == old
    assert (leader_gauge(first), leader_gauge(second)) == (1.0, 0.0)
    assert said(second, "leader") == old
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        kube.create("tasks", namespace, task_manifest("handed-over", ONE))
        assert first.stop(signal.SIGTERM) == 0
        assert holder() != old, "the stopped leader still holds the Lease: it did not release it"
        wait_for(second.leading, 30, "the standby to lead")
        tasks = finished_tasks(kube, namespace, 1, timeout=60)
    assert holder() == new
    assert leader_gauge(second) == 1.0
    assert said(second, "leader") == new
    messages = [
        e.message for e in kube.events(lease_namespace, lease_name) if e.reason == "LeaderElection"
    ]
    assert f"{new} became leader" in messages, messages
    assert_each_task_ran_once(kube, namespace, tasks, sampler)


def test_killed_in_the_middle_of_a_burst_of_500_deadlines(
    cluster: Cluster, kube: Kube, namespace: str, replicas: Replicas
) -> None:
    """500 Schedules share one deadline; the leader dies after making 250 of their Tasks.
    The standby makes the other 250 and no second Task for any deadline. (Last in this
    module: deleting its namespace keeps an operator busy for a while.)"""
    leader = replicas(
        "leader", lead=True, config=BURST_CONFIG,
        env={
            "KADENCE_FAULTS": f"task-created={BURST_SIZE // 2}",
            "KADENCE_FAULTS_NAMESPACE": namespace,
        },
    )  # fmt: skip
    standby = replicas("standby", lead=False, config=BURST_CONFIG)
    deadline = (datetime.now(UTC) + timedelta(seconds=150)).replace(second=0, microsecond=0)
    cron = f"{deadline.minute} {deadline.hour} * * *"  # once a day: one deadline in the window
    names = [f"burst-{i:03d}" for i in range(BURST_SIZE)]
    with Sampler(cluster.kubeconfig, namespace) as sampler:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: kube.create(
                        "schedules",
                        namespace,
                        schedule_manifest(n, BURST, schedule=cron, run_for="1s"),
                    ),
                    names,
                )
            )

        def every_deadline_known() -> bool:
            known = [status(s).get("deadlineAt") for s in kube.list("schedules", namespace)]
            return sum(map(bool, known)) == BURST_SIZE

        wait_for(every_deadline_known, 120, "every Schedule to know its deadline", interval=1.0)
        assert datetime.now(UTC) < deadline, "the Schedules were not ready before the deadline"
        assert died(leader, timeout=(deadline - datetime.now(UTC)).total_seconds() + 60)
        made_before = len(kube.list("tasks", namespace))
        assert BURST_SIZE // 2 <= made_before < BURST_SIZE, made_before
        wait_for(standby.leading, 40, "the standby to take over", check=standby.check_alive)
        tasks = finished_tasks(kube, namespace, BURST_SIZE, timeout=600)
        assert_exactly_once(kube, namespace, names, (deadline, deadline), sampler, timeout=120)
    assert_each_task_ran_once(kube, namespace, tasks, sampler)
    sampler.assert_within(BURST, BURST_CAPACITY)
