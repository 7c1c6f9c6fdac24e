"""Runners of pull queues end to end: `kadence.runner` and `kadence work` against the API
server and the operator, as ServiceAccounts bound to the chart's kadence-runner role.

Racing runners each take every Task once, in the queue's order, within its capacity; a
runner killed mid-Task loses it to another when its lease runs out, and a Task whose
runners always die ends Failed; filters pick by data; the admission policy refuses
claims from whoever may not claim that queue, and any change to a claim but its own
user's (shown by acting as those users with `kubectl --as`); a Schedule feeding a pull
queue keeps the runners' results in its history.

The queues are in the suite's operator configuration (conftest.CONFIG): `runners-race`
(capacity 8) and `runners` (maxAttempts 2). Each test uses its own namespace.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from kadence.naming import RUN_REQUEST_ANNOTATION
from kadence.runner import ClaimLost, Filter, Runner, RunnerError
from tests.conftest import ROOT, Cluster
from tests.e2e.conftest import RELEASE, Operator
from tests.support.chart import apply_objects, render_chart, service_account_kubeconfig, the
from tests.support.kube import Kube, condition, status, task_in_phase, task_phase, wait_for

RACE_QUEUE = "runners-race"
RACE_CAPACITY = 8
RACE_TASKS = 500
RACE_RUNNERS = 10
QUEUE = "runners"
SMALL_QUEUE = "pulled"
"""The operator tests' pull queue, of capacity 2 (conftest.CONFIG)."""
MAX_ATTEMPTS = 2
SHORT_LEASE = 5
RUNNER_ROLE = f"{RELEASE}-runner"
ACTIVE = ("Dispatched", "Running")

Body = dict[str, Any]


@pytest.fixture(scope="module")
def runner_role(cluster: Cluster) -> str:
    """The chart's kadence-runner ClusterRole, installed as a release would."""
    role = the(
        render_chart(cluster, release=RELEASE, namespace=RELEASE), "ClusterRole", RUNNER_ROLE
    )
    apply_objects(cluster, [role])
    return RUNNER_ROLE


def runner_account(
    cluster: Cluster, namespace: str, name: str, role: Body | None = None
) -> tuple[Path, str]:
    """A ServiceAccount bound to the kadence-runner ClusterRole in `namespace` (or to a
    Role with these rules): a kubeconfig with its token, and its user name."""
    binding: Body = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": RUNNER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }  # fmt: skip
    objects: list[Body] = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": namespace}},
    ]  # fmt: skip
    if role is not None:
        objects.append(
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": name, "namespace": namespace}, "rules": role["rules"]}
        )  # fmt: skip
        binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    apply_objects(cluster, [*objects, binding])
    user = f"system:serviceaccount:{namespace}:{name}"
    token = cluster.kubectl("create", "token", name, f"--namespace={namespace}").stdout.strip()
    path = cluster.kubeconfig.parent / f"runner-{namespace}-{name}.kubeconfig"
    path.write_text(yaml.safe_dump(service_account_kubeconfig(cluster.kubeconfig, token, user)))
    path.chmod(0o600)
    return path, user


OPEN_RUNNERS: list[Runner] = []
"""The in-process Runners of the running test, whose queue watches end with it."""


STARTED: list[subprocess.Popen[bytes]] = []
"""The `kadence work` processes of the running test, killed after it whatever happened."""


@pytest.fixture(autouse=True)
def close_runners() -> Iterator[None]:
    yield
    while OPEN_RUNNERS:
        OPEN_RUNNERS.pop().close()
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def runner_as(kubeconfig: Path, namespace: str, holder: str, lease: int = 30) -> Runner:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    runner = Runner(namespace=namespace, holder=holder, lease_seconds=lease, api=api)
    OPEN_RUNNERS.append(runner)
    return runner


def impersonating(cluster: Cluster, user: str, namespace: str) -> Runner:
    """A Runner that acts as `user` through the administrator's right to impersonate."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    api.set_default_header("Impersonate-User", user)
    runner = Runner(namespace=namespace, holder="impersonated/1", api=api)
    OPEN_RUNNERS.append(runner)
    return runner


def pull_task(
    name: str, queue: str, *, priority: int = 0, deadline: datetime | None = None, **data: Any
) -> Body:
    """A manual Task of a pull queue: no jobTemplate."""
    spec: Body = {"schedulerId": queue, "priority": priority, "data": {"task": name, **data}}
    if deadline is not None:
        spec["deadlineAt"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def queued(kube: Kube, namespace: str, names: list[str]) -> bool:
    return all(task_phase(kube, namespace, name) == "Queued" for name in names)


def as_user(cluster: Cluster, user: str, namespace: str, task: str, patch: Body) -> str:
    """A status patch of a Task by `user` (impersonated); the refusal, or "" when let through."""
    result = cluster.kubectl(
        "patch", "task", task, f"--namespace={namespace}", f"--as={user}",
        "--subresource=status", "--type=merge", f"--patch={json.dumps(patch)}", check=False,
    )  # fmt: skip
    return result.stderr if result.returncode else ""


def work_command(
    kubeconfig: Path, namespace: str, queue: str, *command: str, lease: int = SHORT_LEASE
) -> subprocess.Popen[bytes]:
    """`kadence work` as a process of its own (in its own process group, to kill it whole)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kadence", "work", queue, f"--namespace={namespace}",
         f"--lease={lease}", "--", *command],
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )  # fmt: skip
    STARTED.append(process)
    return process


def claim_of(task: Body | None) -> Body:
    return status(task).get("claim") or {}


# --- many runners, one queue ------------------------------------------------------------


class Sampler:
    """Counts the queue's claimed Tasks (Dispatched or Running) every so often."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.counts: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            tasks = self.kube.list("tasks", self.namespace)
            self.counts.append(sum(status(t).get("phase") in ACTIVE for t in tasks))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def race_runners(
    cluster: Cluster, namespace: str, runner_role: str, tmp_path: Path
) -> Iterator[Callable[[], list[Path]]]:
    """Starts the racing runner processes on demand; stops them after the test."""
    kubeconfig, _ = runner_account(cluster, namespace, "racer")
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> list[Path]:
        logs = [tmp_path / f"runner-{i}.jsonl" for i in range(RACE_RUNNERS)]
        for log in logs:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.support.pull_runner",
                        "--kubeconfig",
                        str(kubeconfig),
                        "--namespace",
                        namespace,
                        "--queue",
                        RACE_QUEUE,
                        "--log",
                        str(log),
                        "--work-seconds",
                        "0.05",
                    ],
                    cwd=ROOT,
                    stderr=(tmp_path / f"{log.stem}.err").open("wb"),
                )
            )
        return logs

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def test_racing_runners_take_each_task_once_in_queue_order_within_capacity(
    kube: Kube, namespace: str, operator: Operator, race_runners: Callable[[], list[Path]]
) -> None:
    """Ten runner processes race over 500 Tasks of a queue with capacity 8. Every Task is
    claimed once and reported once by the runner that claimed it; no Task is granted
    while more than a runner's worth of Tasks ahead of it in the queue's order (priority,
    deadline, name) still wait; the queue never has more than 8 claimed Tasks, sampled
    from the API server and from the runners' own logs."""
    shuffled = random.Random(13)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    tasks = [
        pull_task(
            f"t-{i:03d}",
            RACE_QUEUE,
            priority=shuffled.randrange(3),
            deadline=base + timedelta(seconds=shuffled.randrange(600)),
        )
        for i in range(RACE_TASKS)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda body: kube.create("tasks", namespace, body), tasks))
    names = [t["metadata"]["name"] for t in tasks]
    wait_for(
        lambda: (
            sum(status(t).get("phase") == "Queued" for t in kube.list("tasks", namespace))
            == RACE_TASKS
        ),
        120,
        "every Task Queued (a pull queue makes no Job)",
        interval=1,
    )

    with Sampler(kube, namespace) as sampler:
        logs = race_runners()
        finished = wait_for(
            lambda: (
                (listed := kube.list("tasks", namespace))
                and all(status(t).get("phase") == "Completed" for t in listed)
                and listed
            ),
            300,
            "every Task Completed",
            interval=1,
        )

    events = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    claimed = Counter(e["task"] for e in events if e["event"] == "claimed")
    reported = Counter(e["task"] for e in events if e["event"] == "reported")
    assert set(claimed) == set(names)
    assert set(claimed.values()) == {1}, [n for n, c in claimed.items() if c > 1]
    assert set(reported) == set(names)
    assert set(reported.values()) == {1}
    by_name = {t["metadata"]["name"]: t for t in finished}
    holder_of = {e["task"]: e["holder"] for e in events if e["event"] == "claimed"}
    for name, task in by_name.items():
        assert status(task)["attempts"] == 1, name
        assert json.loads(status(task)["result"]) == {"holder": holder_of[name]}, name
    assert len(set(holder_of.values())) == RACE_RUNNERS  # every runner took part

    # Capacity: sampled from the API server, and from the runners' own claimed-to-reported
    # spans (each inside the span the operator counts against the queue).
    assert sampler.counts, "no samples"
    assert max(sampler.counts) <= RACE_CAPACITY, Counter(sampler.counts)
    spans = sorted(
        [(e["at"], 1) for e in events if e["event"] == "claimed"]
        + [(e["at"], -1) for e in events if e["event"] == "working-done"]
    )
    at_once, most = 0, 0
    for _, step in spans:
        at_once += step
        most = max(most, at_once)
    assert 2 <= most <= RACE_CAPACITY, most

    # Order: when a Task was granted, few Tasks ahead of it in the queue still waited.
    order = sorted(
        names,
        key=lambda n: (
            by_name[n]["spec"]["priority"], by_name[n]["spec"]["deadlineAt"], n
        ),
    )  # fmt: skip
    granted = {n: datetime.fromisoformat(claim_of(by_name[n])["claimedAt"]) for n in names}
    overtaken = {
        name: sum(granted[ahead] > granted[name] for ahead in order[:rank])
        for rank, name in enumerate(order)
    }
    worst = max(overtaken.values())
    assert worst <= RACE_RUNNERS, sorted(overtaken.items(), key=lambda kv: -kv[1])[:5]


# --- leases ----------------------------------------------------------------------------


def test_a_killed_runner_loses_its_task_to_another_when_its_lease_runs_out(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """`kadence work` is SIGKILLed mid-Task with its command: nothing renews the claim, the
    operator sends the Task back to the queue once the 5 s lease has run out (with a
    ClaimExpired Event), and another runner completes it."""
    kubeconfig, user = runner_account(cluster, namespace, "worker")
    kube.create("tasks", namespace, pull_task("scan", QUEUE))
    wait_for(lambda: queued(kube, namespace, ["scan"]), 30, "scan Queued")
    doomed = work_command(kubeconfig, namespace, QUEUE, "sleep", "300")
    running = wait_for(task_in_phase(kube, namespace, "scan", "Running"), 30, "scan Running")
    first = claim_of(running)
    assert first["user"] == user
    assert first["holder"].endswith(f"/{doomed.pid}")

    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()
    requeued = wait_for(
        task_in_phase(kube, namespace, "scan", "Queued"), SHORT_LEASE + 20, "scan back in its queue"
    )
    assert f"claim of {first['holder']} expired" in status(requeued)["message"]
    assert time.monotonic() - killed_at < SHORT_LEASE + 15
    assert any(e.reason == "ClaimExpired" for e in kube.events(namespace, "scan"))

    rescuer = work_command(kubeconfig, namespace, QUEUE, "sh", "-c", "exit 0")
    assert rescuer.wait(timeout=60) == 0
    done = wait_for(task_in_phase(kube, namespace, "scan", "Completed"), 30, "scan Completed")
    assert status(done)["attempts"] == 2
    assert claim_of(done)["holder"].endswith(f"/{rescuer.pid}")


def test_a_task_whose_runners_always_die_fails_after_its_attempts(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """With maxAttempts 2, the second expired claim fails the Task (ClaimExpired)."""
    kubeconfig, _ = runner_account(cluster, namespace, "worker")
    kube.create("tasks", namespace, pull_task("poison", QUEUE))
    wait_for(lambda: queued(kube, namespace, ["poison"]), 30, "poison Queued")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        doomed = work_command(kubeconfig, namespace, QUEUE, "sleep", "300")
        wait_for(
            lambda attempt=attempt: (
                (t := task_in_phase(kube, namespace, "poison", "Running")())
                and status(t).get("attempts") == attempt
            ),
            30,
            f"attempt {attempt} running",
        )
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        if attempt < MAX_ATTEMPTS:
            wait_for(
                task_in_phase(kube, namespace, "poison", "Queued"), SHORT_LEASE + 20, "requeued"
            )
    failed = wait_for(
        task_in_phase(kube, namespace, "poison", "Failed"), SHORT_LEASE + 20, "poison Failed"
    )
    assert condition(failed, "Ready")["reason"] == "ClaimExpired", status(failed)
    assert "no attempts left" in status(failed)["message"]
    reasons = [e.reason for e in kube.events(namespace, "poison")]
    assert reasons.count("ClaimExpired") == MAX_ATTEMPTS, reasons


@pytest.mark.every_version
def test_a_stopped_runner_gives_back_its_task_and_its_request(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """In a queue of capacity 2 two runners hold Tasks and a third waits for a slot with
    its request written. SIGTERM to the waiting one takes its request back; SIGTERM to a
    holder releases its Task, which goes back to the queue at once (ClaimReleased), the
    attempt not counted, and the slot goes to the next request."""
    kubeconfig, _ = runner_account(cluster, namespace, "worker")
    names = ["first", "second", "third"]
    for rank, name in enumerate(names):
        kube.create("tasks", namespace, pull_task(name, SMALL_QUEUE, priority=rank))
    wait_for(lambda: queued(kube, namespace, names), 30, "all Queued")
    holders = [work_command(kubeconfig, namespace, SMALL_QUEUE, "sleep", "300") for _ in range(2)]
    for name in names[:2]:
        wait_for(task_in_phase(kube, namespace, name, "Running"), 30, f"{name} Running")
    waiting = work_command(kubeconfig, namespace, SMALL_QUEUE, "true")
    asked = wait_for(
        lambda: (
            claim_of(kube.get("tasks", namespace, "third"))
            .get("holder", "")
            .endswith(f"/{waiting.pid}")
        ),
        30,
        "the third runner's request on the third Task",
    )
    assert asked
    assert "claimedAt" not in claim_of(kube.get("tasks", namespace, "third"))

    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(timeout=30) == 6
    assert claim_of(kube.get("tasks", namespace, "third")) == {}
    assert task_phase(kube, namespace, "third") == "Queued"

    stopped = next(p for p in holders if claim_of(kube.get("tasks", namespace, "first"))[
        "holder"].endswith(f"/{p.pid}"))  # fmt: skip
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=30) == 6
    back = wait_for(
        task_in_phase(kube, namespace, "first", "Queued"), 10, "first back in its queue"
    )
    assert status(back).get("attempts", 0) == 0
    assert any(e.reason == "ClaimReleased" for e in kube.events(namespace, "first"))


# --- filters and who may claim -----------------------------------------------------------


@pytest.mark.every_version
def test_filters_select_by_data(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """The head of the queue is an nmap scan; a runner that filters on dns scans of port 53
    or above takes the best of those instead, and leaves the rest."""
    kubeconfig, _ = runner_account(cluster, namespace, "worker")
    for body in [
        pull_task("nmap", QUEUE, priority=-5, boefje={"id": "nmap"}, port=80),
        pull_task("dns-low", QUEUE, priority=0, boefje={"id": "dns"}, port=22),
        pull_task("dns-late", QUEUE, priority=2, boefje={"id": "dns"}, port=53),
        pull_task("dns-first", QUEUE, priority=1, boefje={"id": "dns"}, port=853),
    ]:
        kube.create("tasks", namespace, body)
    names = ["nmap", "dns-low", "dns-late", "dns-first"]
    wait_for(lambda: queued(kube, namespace, names), 30, "all Queued")
    runner = runner_as(kubeconfig, namespace, "filtering/1")
    dns = [Filter("boefje.id", "eq", "dns"), Filter("port", "ge", 53)]
    took = []
    for _ in range(2):
        task = runner.claim(QUEUE, dns, wait=20)
        assert task is not None
        took.append(task.name)
        runner.complete(task, {"took": task.name})
    assert took == ["dns-first", "dns-late"]
    assert runner.claim(QUEUE, dns, wait=1) is None
    assert task_phase(kube, namespace, "nmap") == "Queued"
    assert task_phase(kube, namespace, "dns-low") == "Queued"
    only_nmap = runner.claim(QUEUE, [Filter("boefje.id", "in", ["nmap", "whois"])], wait=20)
    assert only_nmap is not None
    assert only_nmap.name == "nmap"


@pytest.mark.every_version
def test_only_runners_allowed_on_the_queue_may_claim(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """A user without the runner role, and one with a Role whose `claim` names another
    queue only, are refused; one with that Role claims from its own queue."""
    kube.create("tasks", namespace, pull_task("wanted", QUEUE))
    kube.create("tasks", namespace, pull_task("other", RACE_QUEUE))
    wait_for(lambda: queued(kube, namespace, ["wanted"]), 30, "wanted Queued")
    runner_kubeconfig, _ = runner_account(cluster, namespace, "worker")
    # Any user who may write Task status (as edit-like rights would) but not claim.
    writer_rules = the(
        render_chart(cluster, release=RELEASE, namespace=RELEASE), "ClusterRole", RUNNER_ROLE
    )
    writer_only = {"rules": [r for r in writer_rules["rules"] if "queues" not in r["resources"]]}
    narrow = {
        "rules": [
            *writer_only["rules"],
            {"apiGroups": ["kadence.dev"], "resources": ["queues"], "verbs": ["claim"],
             "resourceNames": [RACE_QUEUE]},
        ]
    }  # fmt: skip
    writer_config, writer = runner_account(cluster, namespace, "writer", role=writer_only)
    narrow_config, narrow_user = runner_account(cluster, namespace, "narrow", role=narrow)
    nobody = f"system:serviceaccount:{namespace}:default"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def request(user: str) -> Body:
        return {"status": {"claim": {"holder": "h/1", "user": user, "leaseSeconds": 30,
                                     "requestedAt": now}}}  # fmt: skip

    refusal = as_user(cluster, nobody, namespace, "wanted", request(nobody))
    assert 'cannot get resource "tasks/status"' in refusal, refusal  # RBAC: no role at all
    with pytest.raises(RunnerError, match='cannot list resource "tasks"'):
        impersonating(cluster, nobody, namespace).claim(QUEUE, wait=5)
    refusal = as_user(cluster, writer, namespace, "wanted", request(writer))
    assert f"{writer} may not claim Tasks of queue {QUEUE}" in refusal, refusal
    refusal = as_user(cluster, narrow_user, namespace, "wanted", request(narrow_user))
    assert f"{narrow_user} may not claim Tasks of queue {QUEUE}" in refusal, refusal
    assert claim_of(kube.get("tasks", namespace, "wanted")) == {}

    # The library says the same, and the narrow runner may claim from its own queue.
    with pytest.raises(RunnerError, match=f"may not claim Tasks of queue {QUEUE}"):
        runner_as(narrow_config, namespace, "narrow/1").claim(QUEUE, wait=5)
    with pytest.raises(RunnerError, match=f"may not claim Tasks of queue {QUEUE}"):
        runner_as(writer_config, namespace, "writer/1").claim(QUEUE, wait=5)
    wait_for(lambda: queued(kube, namespace, ["other"]), 30, "other Queued")
    allowed = runner_as(narrow_config, namespace, "narrow/1").claim(RACE_QUEUE, wait=20)
    assert allowed is not None
    assert allowed.name == "other"
    theirs = runner_as(runner_kubeconfig, namespace, "worker/1").claim(QUEUE, wait=20)
    assert theirs is not None
    assert theirs.name == "wanted"


@pytest.mark.every_version
def test_a_claim_is_renewed_and_reported_only_by_its_user(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """Another runner (allowed on the queue) may not renew, report, take over or withdraw
    a claim that is not its own, nor grant one; the holder may."""
    kube.create("tasks", namespace, pull_task("held", QUEUE))
    kube.create("tasks", namespace, pull_task("free", QUEUE, priority=5))
    wait_for(lambda: queued(kube, namespace, ["held", "free"]), 30, "both Queued")
    owner_config, owner = runner_account(cluster, namespace, "owner")
    _, rival = runner_account(cluster, namespace, "rival")
    runner = runner_as(owner_config, namespace, "owner/1")
    task = runner.claim(QUEUE, wait=20)
    assert task is not None
    assert task.name == "held"
    runner.renew(task)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    held_by = f"the claim on task held is held by {owner}"
    for patch in [
        {"status": {"claim": {"renewedAt": now}}},
        {"status": {"claim": {"outcome": "Completed", "finishedAt": now}}},
        {"status": {"claim": {"holder": "rival/1", "user": rival}}},
        {"status": {"claim": None}},
    ]:
        refusal = as_user(cluster, rival, namespace, "held", patch)
        assert held_by in refusal, (patch, refusal)
    for patch, said in [
        ({"status": {"phase": "Completed"}}, "only the kadence operator writes the status"),
        (
            {"status": {"claim": {"holder": "r/1", "user": rival, "leaseSeconds": 30,
                                  "requestedAt": now, "claimedAt": now}}},
            "only the kadence operator grants a claim",
        ),
        (
            {"status": {"claim": {"holder": "r/1", "user": owner, "leaseSeconds": 30,
                                  "requestedAt": now}}},
            f"status.claim.user must be {rival}",
        ),
        (
            {"status": {"claim": {"holder": "r/1", "user": rival, "leaseSeconds": 30,
                                  "requestedAt": now, "outcome": "Completed"}}},
            "a runner asks for a Queued Task only, and reports only what it was granted",
        ),
    ]:  # fmt: skip
        refusal = as_user(cluster, rival, namespace, "free", patch)
        assert said in refusal, (patch, refusal)
    assert claim_of(kube.get("tasks", namespace, "free")) == {}

    # The library of another user finds the claim is not its own before it writes.
    with pytest.raises(ClaimLost):
        runner_as(owner_config, namespace, "owner/2").held("held")
    runner.complete(task, {"ok": True})
    done = wait_for(task_in_phase(kube, namespace, "held", "Completed"), 30, "held Completed")
    assert json.loads(status(done)["result"]) == {"ok": True}
    refusal = as_user(cluster, owner, namespace, "held", {"status": {"claim": {"message": "x"}}})
    assert "task held is Completed" in refusal, refusal


# --- a Schedule feeding a pull queue ----------------------------------------------------


@pytest.mark.every_version
def test_schedule_of_a_pull_queue_records_runner_outcomes(
    cluster: Cluster, kube: Kube, namespace: str, operator: Operator, runner_role: str
) -> None:
    """An interval Schedule without a jobTemplate feeds the pull queue (its first run at
    once, a second one asked for by hand); `kadence work` completes the first with a
    result and fails the second; the Schedule's history and counts say so."""
    kubeconfig, _ = runner_account(cluster, namespace, "worker")
    kube.create(
        "schedules",
        namespace,
        {
            "apiVersion": "kadence.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "scans"},
            "spec": {"schedulerId": QUEUE, "interval": "1h", "runLimit": 3,
                     "data": {"target": "example.org"}},
        },
    )  # fmt: skip
    script = 'printf \'{"found": 3, "data": %s}\' "$KADENCE_TASK_DATA" > "$KADENCE_RESULT_FILE"'
    ok = work_command(kubeconfig, namespace, QUEUE, "sh", "-c", script, lease=30)
    assert ok.wait(timeout=60) == 0
    kube.patch("schedules", namespace, "scans", {
        "metadata": {"annotations": {RUN_REQUEST_ANNOTATION: "again"}}
    })  # fmt: skip
    bad = work_command(kubeconfig, namespace, QUEUE, "sh", "-c", "echo no route >&2; exit 3")
    assert bad.wait(timeout=60) == 1

    def recorded() -> Body | None:
        schedule = kube.get("schedules", namespace, "scans")
        counts = status(schedule).get("counts") or {}
        done = counts.get("completed") == 1 and counts.get("failed") == 1
        return schedule if done and len(status(schedule).get("history") or []) >= 2 else None

    schedule = wait_for(recorded, 30, "both runs in the Schedule's history and counts")
    history = {entry["phase"]: entry for entry in status(schedule)["history"]}
    assert json.loads(history["Completed"]["result"]) == {
        "found": 3,
        "data": {"target": "example.org"},
    }
    assert "result" not in history["Failed"]
    failed = kube.get("tasks", namespace, history["Failed"]["task"])
    assert "sh exited with code 3" in status(failed)["message"]
