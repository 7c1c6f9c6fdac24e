"""Schedules end to end: Tasks made at each deadline, on a real control plane with the operator.

Each test uses its own namespace and, unless it needs a configured capacity, its own
schedulerId. Nothing sleeps in place of a condition: where a test shows that something
does NOT happen, it first waits for a positive sign that the operator had the time and
the occasion to do it (another schedule's later run, a deadline that moved, the wall
clock crossing a deadline while the operator was down).

The order is for speed: the tests that wait for cron minutes are spread so that the short
ones run while the clock moves toward the next minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from kadence.naming import task_name_for_deadline, task_name_for_run_request
from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.support.kube import GROUP, VERSION, Kube, condition, status, wait_for

API_VERSION = "kadence.dev/v1alpha1"
SCHEDULE_LABEL = "kadence.dev/schedule"
SCHEDULER_ID_LABEL = "kadence.dev/scheduler-id"
RUN_REQUEST = "kadence.dev/run-requested-at"
MINUTE = timedelta(minutes=1)


# -- helpers ---------------------------------------------------------------------------


def job_template(
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    container: dict[str, Any] | None = None,
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """A Job template whose pod kwok runs (and completes at once unless told otherwise)."""
    return {
        "metadata": {"labels": {"app.kubernetes.io/part-of": "kadence-e2e"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels or {}, "annotations": annotations or {}},
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [container or {"name": "main", "image": "busybox"}],
                },
            },
        },
    }


def schedule_body(name: str, scheduler_id: str, **spec: Any) -> dict[str, Any]:
    """A Schedule manifest; `spec` is in camelCase, and a jobTemplate is added if missing."""
    spec.setdefault("jobTemplate", job_template())
    return {
        "apiVersion": API_VERSION,
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {"schedulerId": scheduler_id, **spec},
    }


def task_body(name: str, scheduler_id: str, **spec: Any) -> dict[str, Any]:
    """A manual Task manifest; its data names it (so its default hash is its own) unless
    `spec` says otherwise, and a jobTemplate is added if missing."""
    spec.setdefault("jobTemplate", job_template())
    spec.setdefault("data", {"task": name})
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"schedulerId": scheduler_id, **spec},
    }


def queue_of(namespace: str) -> str:
    """A schedulerId of this test's own, so that no other test shares its queue."""
    return f"q-{namespace}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_hash_of(data: dict[str, Any], template: dict[str, Any]) -> str:
    """The default hash as docs/queue.md defines it, written out independently of the code:
    md5 of the canonical JSON of the data and the Job template."""
    work = {
        "data": data,
        "jobTemplate": {"metadata": template.get("metadata") or {}, "spec": template["spec"]},
    }
    text = json.dumps(work, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def tasks_of(kube: Kube, namespace: str, schedule: str) -> list[dict[str, Any]]:
    return kube.list("tasks", namespace, selector=f"{SCHEDULE_LABEL}={schedule}")


def task_names(kube: Kube, namespace: str, schedule: str) -> list[str]:
    return sorted(t["metadata"]["name"] for t in tasks_of(kube, namespace, schedule))


def phase(obj: dict[str, Any] | None) -> str | None:
    return status(obj).get("phase")


def schedule_status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return status(kube.get("schedules", namespace, name))


def deadline_of(kube: Kube, namespace: str, name: str) -> datetime | None:
    value = schedule_status(kube, namespace, name).get("deadlineAt")
    return parse_time(value) if value else None


def ready(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return condition(kube.get("schedules", namespace, name), "Ready")


def ready_is(
    kube: Kube, namespace: str, name: str, value: str, reason: str
) -> Callable[[], dict[str, Any] | None]:
    """A condition for wait_for: the Ready condition, once it has this status and reason."""

    def check() -> dict[str, Any] | None:
        found = ready(kube, namespace, name)
        return found if (found.get("status"), found.get("reason")) == (value, reason) else None

    return check


def wait_for_task(
    kube: Kube, namespace: str, name: str, timeout: float, what: str
) -> dict[str, Any]:
    return wait_for(lambda: kube.get("tasks", namespace, name), timeout, what)


def events_of(kube: Kube, namespace: str, name: str, reason: str) -> list[Any]:
    return [e for e in kube.events(namespace, name) if e.reason == reason]


def wait_for_wall_clock(instant: datetime, what: str) -> None:
    """Wait until the wall clock has passed `instant`: a real condition (a deadline passing)."""
    timeout = max((instant - utcnow()).total_seconds(), 0.0) + 10
    wait_for(lambda: utcnow() > instant, timeout, what, interval=0.2)


def away_from_a_minute_boundary(latest_second: int) -> None:
    """Wait for a fresh minute if this one is past `latest_second`, so that what a test does
    next is not split by a cron minute deadline."""
    if utcnow().second > latest_second:
        fresh = utcnow().replace(second=0, microsecond=0) + MINUTE + timedelta(seconds=1)
        wait_for_wall_clock(fresh, "the start of a fresh minute")


def wait_for_fire(
    kube: Kube, namespace: str, names: list[str], fired: datetime, timeout: float
) -> None:
    """Wait until each schedule acted on the deadline `fired`: its next deadline moved past it."""
    for name in names:
        wait_for(
            lambda name=name: (deadline_of(kube, namespace, name) or fired) > fired,
            timeout,
            f"schedule {name} to act on its deadline {fired.isoformat()}",
        )


# -- 1. interval schedules: the first task, its shape, the status, garbage collection ----


@pytest.mark.every_version
def test_an_interval_schedule_makes_its_first_task_at_once(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """The first Task of an interval Schedule is made at its creation, named, labelled, owned
    and specified as docs/resources.md says; the status records it; after the run, the next deadline
    is the finish plus the interval; deleting the Schedule removes its Tasks and Jobs."""
    queue = queue_of(namespace)
    data = {"target": "example.org", "ports": [443, 80], "deep": {"b": 1, "a": "é"}}
    template = job_template(labels={"team": "blue"})
    created = kube.create(
        "schedules",
        namespace,
        schedule_body("scan", queue, interval="1h", priority=7, data=data, jobTemplate=template),
    )
    created_at = parse_time(created["metadata"]["creationTimestamp"])
    name = task_name_for_deadline("scan", created_at)
    assert re.fullmatch(r"scan-[0-9]{10}", name)
    assert name == f"scan-{int(created_at.timestamp())}"

    task = wait_for_task(kube, namespace, name, 15, "the first task, made at creation")
    assert task["metadata"]["labels"][SCHEDULER_ID_LABEL] == queue
    assert task["metadata"]["labels"][SCHEDULE_LABEL] == "scan"
    assert task["metadata"]["ownerReferences"] == [
        {
            "apiVersion": API_VERSION,
            "kind": "Schedule",
            "name": "scan",
            "uid": created["metadata"]["uid"],
            "controller": True,
        }
    ]
    spec = task["spec"]
    assert spec["schedulerId"] == queue
    assert spec["priority"] == 7
    assert spec["data"] == data
    assert spec["hash"] == default_hash_of(data, created["spec"]["jobTemplate"])
    assert spec["concurrencyPolicy"] == created["spec"]["concurrencyPolicy"]
    assert task["metadata"]["labels"]["kadence.dev/trigger"] == "schedule"
    assert spec["jobTemplate"]["spec"] == created["spec"]["jobTemplate"]["spec"]
    assert spec["jobTemplate"]["metadata"] == created["spec"]["jobTemplate"]["metadata"]
    assert spec["scheduleRef"] == {"name": "scan"}
    assert parse_time(spec["deadlineAt"]) == created_at

    # The run completes (kwok), and the schedule counts the next deadline from its finish.
    done = wait_for(
        lambda: (t := kube.get("tasks", namespace, name)) and phase(t) == "Completed" and t,
        60,
        "the first task to complete",
    )
    finished_at = parse_time(status(done)["finishedAt"])
    sched = wait_for(
        lambda: (
            (s := kube.get("schedules", namespace, "scan"))
            and status(s).get("counts", {}).get("completed") == 1
            and status(s).get("deadlineAt")
            and s
        ),
        30,
        "the schedule to record the finished run and its next deadline",
    )
    st = status(sched)
    assert parse_time(st["deadlineAt"]) == finished_at + timedelta(hours=1)
    assert created_at <= parse_time(st["lastScheduledAt"]) <= finished_at + timedelta(seconds=1)
    assert st["counts"]["created"] == 1
    assert st.get("active", []) == []
    assert [entry["task"] for entry in st["history"]] == [name]
    assert st["observedGeneration"] == sched["metadata"]["generation"]
    ready_now = condition(sched, "Ready")
    assert (ready_now["status"], ready_now["reason"]) == ("True", "Scheduled")
    wait_for(lambda: events_of(kube, namespace, "scan", "TaskCreated"), 15, "a TaskCreated event")

    jobs = kube.jobs(namespace)
    assert [j.metadata.name for j in jobs] == [name]
    assert jobs[0].metadata.labels["kadence.dev/task"] == name
    assert jobs[0].metadata.owner_references[0].uid == task["metadata"]["uid"]

    kube.delete("schedules", namespace, "scan")
    wait_for(lambda: not tasks_of(kube, namespace, "scan"), 60, "the GC to delete the task")
    wait_for(lambda: not kube.jobs(namespace), 60, "the GC to delete the task's Job")


# -- 2 and 7. cron every minute: one Task per minute, also across a crash -----------------


def test_an_every_minute_cron_makes_one_task_per_minute_even_across_a_crash(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """`* * * * *` makes exactly one Task per minute, named for the minute and made within
    seconds of it, for two minutes with the operator up. The operator is then killed (SIGKILL)
    and restarted after the third minute passed: the RunLatest schedule makes exactly one task
    for the missed minute and no duplicate; a Skip schedule with startingDeadlineSeconds counts
    the minute missed and turns Healthy False (DeadlineMissed).

    One test, not two, so that the two minutes seen with the operator up are also the runs
    before the crash: the file stays within its time budget."""
    queue = queue_of(namespace)
    away_from_a_minute_boundary(55)  # the first deadline must not pass before it is read
    kube.create("schedules", namespace, schedule_body("latest", queue, schedule="* * * * *"))
    # Other data than `latest`: the Forbid policy compares hashes within the queue.
    skip_spec = {"missedRunPolicy": "Skip", "startingDeadlineSeconds": 5, "data": {"n": 2}}
    kube.create(
        "schedules", namespace, schedule_body("skip", queue, schedule="* * * * *", **skip_spec)
    )
    first = wait_for(lambda: deadline_of(kube, namespace, "latest"), 15, "the first deadline")
    assert (first.second, first.microsecond) == (0, 0)
    assert timedelta(0) < first - utcnow() <= MINUTE
    assert deadline_of(kube, namespace, "skip") == first
    second, third, fourth = (first + n * MINUTE for n in (1, 2, 3))

    # Two minutes with the operator up: one task each, at the minute.
    for count, minute in enumerate((first, second), start=1):
        for name in ("latest", "skip"):
            task = wait_for_task(
                kube,
                namespace,
                task_name_for_deadline(name, minute),
                (minute - utcnow()).total_seconds() + 15,
                f"{name}: the task for {minute.isoformat()}",
            )
            assert parse_time(task["spec"]["deadlineAt"]) == minute
            lag = parse_time(task["metadata"]["creationTimestamp"]) - minute
            assert timedelta(0) <= lag <= timedelta(seconds=3), f"made {lag} after the deadline"
            wait_for(
                lambda name=name, count=count, minute=minute: (
                    (st := schedule_status(kube, namespace, name)).get("deadlineAt")
                    and parse_time(st["deadlineAt"]) == minute + MINUTE
                    and st["counts"].get("completed") == count
                ),
                30,
                f"{name}: run {count} recorded and the next deadline set",
            )
    for name in ("latest", "skip"):
        tasks = tasks_of(kube, namespace, name)
        assert sorted(t["metadata"]["name"] for t in tasks) == [
            task_name_for_deadline(name, first),
            task_name_for_deadline(name, second),
        ]
        assert sorted(parse_time(t["spec"]["deadlineAt"]) for t in tasks) == [first, second]
        counts = schedule_status(kube, namespace, name)["counts"]
        assert (counts["created"], counts.get("missed", 0), counts.get("skipped", 0)) == (2, 0, 0)
    assert utcnow() < third - timedelta(seconds=10), "too close to the next minute to test"

    # Killed right after the second minute's runs; down while the third minute passes, and
    # longer than the Skip schedule's startingDeadlineSeconds.
    operator.stop(signal.SIGKILL)
    try:
        wait_for_wall_clock(third + timedelta(seconds=8), "the third minute to pass")
    finally:
        operator.start()

    missed_minute = task_name_for_deadline("latest", third)
    wait_for_task(kube, namespace, missed_minute, 30, "RunLatest: the missed minute's task")
    wait_for_fire(kube, namespace, ["latest", "skip"], third, 30)
    for name in ("latest", "skip"):
        assert deadline_of(kube, namespace, name) == fourth, name
    wait_for(
        lambda: schedule_status(kube, namespace, "latest")["counts"].get("completed") == 3,
        30,
        "latest: the missed minute's run to complete",
    )
    tasks = tasks_of(kube, namespace, "latest")
    assert sorted(t["metadata"]["name"] for t in tasks) == [
        task_name_for_deadline("latest", minute) for minute in (first, second, third)
    ]
    assert sorted(parse_time(t["spec"]["deadlineAt"]) for t in tasks) == [first, second, third]
    latest = schedule_status(kube, namespace, "latest")
    assert latest["counts"]["created"] == 3
    assert latest["counts"].get("missed", 0) == 0
    assert latest.get("active", []) == []
    assert sorted(entry["task"] for entry in latest["history"]) == sorted(
        t["metadata"]["name"] for t in tasks
    )

    skip = schedule_status(kube, namespace, "skip")
    assert task_names(kube, namespace, "skip") == [
        task_name_for_deadline("skip", minute) for minute in (first, second)
    ]
    assert skip["counts"]["created"] == 2
    assert skip["counts"]["missed"] == 1
    healthy = condition(kube.get("schedules", namespace, "skip"), "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "DeadlineMissed"), healthy
    missed_events = wait_for(
        lambda: events_of(kube, namespace, "skip", "DeadlineMissed"), 15, "a DeadlineMissed event"
    )
    assert missed_events[0].type == "Warning"


# -- 7b. a crash between creating a Task and recording it ---------------------------------


def test_a_task_made_just_before_a_crash_counts_as_run_not_missed(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A crash between creating a deadline's Task and writing the Schedule's status leaves the
    Task and the old status.deadlineAt. A restart after the next deadline counts that Task as
    its deadline's run (created, then in history), not as a missed deadline.

    No SIGKILL hits that instant reliably (the two writes are milliseconds apart), so the test
    builds the state it leaves while the operator is down: status.deadlineAt still the earlier
    minute, and that minute's Task as the operator makes it."""
    # All of it within one minute: the schedule's own first deadline (the next minute) must
    # not fire before the kill, and the restart comes before it.
    away_from_a_minute_boundary(40)
    schedule = kube.create(
        "schedules",
        namespace,
        schedule_body(
            "orphan", queue_of(namespace), schedule="* * * * *", concurrencyPolicy="Allow"
        ),
    )
    wait_for(ready_is(kube, namespace, "orphan", "True", "Scheduled"), 15, "Ready True")
    wait_for(lambda: deadline_of(kube, namespace, "orphan"), 15, "the first deadline")
    latest = utcnow().replace(second=0, microsecond=0)
    earlier = latest - MINUTE
    assert deadline_of(kube, namespace, "orphan") == latest + MINUTE
    spec = kube.get("schedules", namespace, "orphan")["spec"]

    operator.stop(signal.SIGKILL)
    try:
        kube.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            "schedules",
            "orphan",
            {"status": {"deadlineAt": earlier.strftime("%Y-%m-%dT%H:%M:%SZ")}},
        )
        kube.create(
            "tasks",
            namespace,
            {
                "apiVersion": API_VERSION,
                "kind": "Task",
                "metadata": {
                    "name": task_name_for_deadline("orphan", earlier),
                    "labels": {
                        SCHEDULER_ID_LABEL: spec["schedulerId"],
                        SCHEDULE_LABEL: "orphan",
                        "kadence.dev/trigger": "schedule",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "Schedule",
                            "name": "orphan",
                            "uid": schedule["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "schedulerId": spec["schedulerId"],
                    "priority": spec["priority"],
                    "hash": default_hash_of({}, spec["jobTemplate"]),
                    "data": {},
                    "jobTemplate": spec["jobTemplate"],
                    "concurrencyPolicy": "Allow",
                    "scheduleRef": {"name": "orphan"},
                    "deadlineAt": earlier.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
        )
    finally:
        operator.start()

    wait_for_task(
        kube, namespace, task_name_for_deadline("orphan", latest), 30, "RunLatest: the latest"
    )
    wait_for_fire(kube, namespace, ["orphan"], latest, 30)
    wait_for(
        lambda: all(phase(t) == "Completed" for t in tasks_of(kube, namespace, "orphan")),
        30,
        "both runs to complete",
    )
    counts = schedule_status(kube, namespace, "orphan")["counts"]
    assert counts.get("missed", 0) == 0, counts
    assert counts["created"] == 2, counts
    history = wait_for(
        lambda: len(h := schedule_status(kube, namespace, "orphan").get("history", [])) == 2 and h,
        15,
        "both runs in the history",
    )
    assert sorted(entry["task"] for entry in history) == task_names(kube, namespace, "orphan")


# -- 3. enabled: false ------------------------------------------------------------------


@pytest.mark.every_version
def test_disabling_cancels_queued_tasks_and_stops_new_ones_until_re_enabled(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """`enabled: false` turns Ready False (Disabled), cancels the schedule's queued task and
    makes nothing at a deadline that passes; re-enabling runs that deadline once (RunLatest)."""
    # A long run holds the only slot of `one-at-a-time`, so the victim's task stays Queued.
    long_run = job_template(annotations={"kwok.kadence.dev/run-for": "120s"})
    kube.create(
        "schedules",
        namespace,
        schedule_body(
            "blocker", "one-at-a-time", interval="1h", data={"who": "blocker"}, jobTemplate=long_run
        ),
    )
    wait_for(
        lambda: any(
            phase(t) in ("Dispatched", "Running") for t in tasks_of(kube, namespace, "blocker")
        ),
        60,
        "the blocker's task to hold the queue's only slot",
    )
    kube.create(
        "schedules",
        namespace,
        schedule_body("victim", "one-at-a-time", interval="5s", data={"who": "victim"}),
    )
    queued = wait_for(
        lambda: [t for t in tasks_of(kube, namespace, "victim") if phase(t) == "Queued"],
        30,
        "the victim's first task to wait in the queue",
    )
    first_task = queued[0]["metadata"]["name"]
    # A schedule of another queue keeps firing: the sign that the operator is acting.
    kube.create(
        "schedules", namespace, schedule_body("control", queue_of(namespace), interval="1s")
    )

    kube.patch("schedules", namespace, "victim", {"spec": {"enabled": False}})
    disabled = wait_for(
        ready_is(kube, namespace, "victim", "False", "Disabled"), 30, "Ready False Disabled"
    )
    assert disabled["observedGeneration"] == 2
    wait_for(
        lambda: phase(kube.get("tasks", namespace, first_task)) == "Cancelled",
        30,
        "the victim's queued task to be cancelled",
    )
    # The cancelled run counts as finished: the interval's next deadline is set from it...
    missed_deadline = wait_for(
        lambda: deadline_of(kube, namespace, "victim"), 30, "the victim's next deadline"
    )
    st = schedule_status(kube, namespace, "victim")
    assert st["counts"]["cancelled"] == 1
    assert st.get("active", []) == []
    # ...and passes with nothing made, while the control schedule runs well after it.
    wait_for_wall_clock(missed_deadline, "the disabled schedule's deadline to pass")
    wait_for(
        lambda: (
            parse_time(
                schedule_status(kube, namespace, "control").get("lastScheduledAt")
                or "1970-01-01T00:00:00Z"
            )
            > missed_deadline + timedelta(seconds=3)
        ),
        30,
        "the control schedule to make a task 3s after the victim's deadline",
    )
    assert task_names(kube, namespace, "victim") == [first_task]
    assert schedule_status(kube, namespace, "victim")["counts"]["created"] == 1

    kube.patch("schedules", namespace, "victim", {"spec": {"enabled": True}})
    wait_for(ready_is(kube, namespace, "victim", "True", "Scheduled"), 30, "Ready True again")
    rerun = task_name_for_deadline("victim", missed_deadline)
    wait_for_task(kube, namespace, rerun, 30, "the deadline missed while disabled to run once")
    wait_for(
        lambda: schedule_status(kube, namespace, "victim")["counts"]["created"] == 2,
        30,
        "the schedule to count the new task",
    )
    # An interval schedule waits for the run to finish; the blocker keeps it queued.
    assert task_names(kube, namespace, "victim") == sorted([first_task, rerun])
    assert schedule_status(kube, namespace, "victim")["counts"].get("missed", 0) == 0


# -- 4. run now ------------------------------------------------------------------------


@pytest.mark.every_version
def test_the_run_now_annotation_makes_one_extra_task_per_new_value(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A new `kadence.dev/run-requested-at` value makes one Task `<schedule>-r<9 hex>` and is
    recorded in status.lastHandledRunRequest; the same value again makes nothing."""
    # A yearly cron: no deadline task gets in the way.
    kube.create(
        "schedules", namespace, schedule_body("manual", queue_of(namespace), schedule="0 0 1 1 *")
    )
    wait_for(ready_is(kube, namespace, "manual", "True", "Scheduled"), 15, "Ready True")
    assert task_names(kube, namespace, "manual") == []

    def request(value: str, spec: dict[str, Any] | None = None) -> None:
        patch: dict[str, Any] = {"metadata": {"annotations": {RUN_REQUEST: value}}}
        if spec:
            patch["spec"] = spec
        kube.patch("schedules", namespace, "manual", patch)

    first_value = "2030-01-01T00:00:00Z"
    first = task_name_for_run_request("manual", first_value)
    assert re.fullmatch(r"manual-r[0-9a-f]{9}", first)
    request(first_value)
    wait_for_task(kube, namespace, first, 15, "the run-now task")
    wait_for(
        lambda: (
            schedule_status(kube, namespace, "manual").get("lastHandledRunRequest") == first_value
        ),
        15,
        "lastHandledRunRequest",
    )
    assert task_names(kube, namespace, "manual") == [first]
    assert schedule_status(kube, namespace, "manual")["counts"]["created"] == 1

    # The same value again (with an edit, so that the operator surely sees the object again).
    request(first_value, spec={"priority": 3})
    wait_for(
        lambda: schedule_status(kube, namespace, "manual").get("observedGeneration") == 2,
        15,
        "the operator to act on the edit",
    )
    second_value = "2030-01-01T00:05:00Z"
    second = task_name_for_run_request("manual", second_value)
    request(second_value)
    wait_for_task(kube, namespace, second, 15, "the second run-now task")
    wait_for(
        lambda: (
            schedule_status(kube, namespace, "manual").get("lastHandledRunRequest") == second_value
        ),
        15,
        "lastHandledRunRequest to be the new value",
    )
    # Requests are handled in order, so a task for the repeated value would exist by now.
    assert task_names(kube, namespace, "manual") == sorted([first, second])
    assert schedule_status(kube, namespace, "manual")["counts"]["created"] == 2
    assert kube.get("tasks", namespace, second)["spec"]["priority"] == 3
    wait_for(
        lambda: len(events_of(kube, namespace, "manual", "RunRequested")) == 2,
        15,
        "one RunRequested event per request",
    )

    # A run asked for by hand runs even while the schedule is disabled.
    kube.patch("schedules", namespace, "manual", {"spec": {"enabled": False}})
    wait_for(ready_is(kube, namespace, "manual", "False", "Disabled"), 15, "Ready False Disabled")
    third_value = "2030-01-01T00:10:00Z"
    third = task_name_for_run_request("manual", third_value)
    request(third_value)
    wait_for(
        lambda: phase(kube.get("tasks", namespace, third)) in ("Completed", "Cancelled", "Failed"),
        30,
        "the run requested while disabled to finish",
    )
    assert phase(kube.get("tasks", namespace, third)) == "Completed"


# -- 6. what the schema rejects ---------------------------------------------------------

LONG_NAME = "x" * 53


def _valid() -> dict[str, Any]:
    return schedule_body("valid", "q-schema", interval="15m")


def _with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = _valid()
    change(body)
    return body


REJECTED: list[Any] = [
    pytest.param(
        _with(lambda b: b["spec"].update(schedule="* * * * *")),
        "set exactly one of schedule",
        id="both-schedule-and-interval",
    ),
    pytest.param(
        _with(lambda b: b["spec"].pop("interval")), "set exactly one of schedule", id="neither"
    ),
    pytest.param(
        _with(lambda b: b["metadata"].update(name=LONG_NAME)),
        "at most 52 characters",
        id="name-too-long",
    ),
    pytest.param(
        _with(lambda b: b["spec"].update(concurrencyPolicy="Sometimes")),
        'Unsupported value: "Sometimes"',
        id="bad-enum",
    ),
    pytest.param(_with(lambda b: b["spec"].update(hash="a" * 33)), "spec.hash", id="hash-too-long"),
    pytest.param(
        _with(lambda b: b["spec"]["jobTemplate"]["spec"].pop("template")),
        "spec.jobTemplate.spec.template: Required value",
        id="job-spec-without-template",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), REJECTED)
@pytest.mark.every_version
def test_the_schema_rejects_what_it_should(
    cluster: Cluster, kube: Kube, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    """`kubectl apply` of a Schedule the schema forbids fails with a readable message, while the
    same manifest without the fault is accepted."""
    accepted = cluster.kubectl(
        "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=yaml.safe_dump(_valid())
    )
    assert accepted.returncode == 0
    refused = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert refused.returncode != 0, refused.stdout
    assert message in refused.stderr, refused.stderr
    assert kube.list("schedules", namespace) == []


# -- 5. specs the schema cannot reject ----------------------------------------------------

BAD_SPECS: dict[str, tuple[dict[str, Any], list[str], dict[str, Any]]] = {
    # name: (spec, fragments of the message, the patch that fixes it)
    "bad-cron": (
        {"schedule": "61 * * * *"},
        ["invalid cron", "61 * * * *", "minute"],
        {"schedule": "* * * * *"},
    ),
    "bad-zone": (
        {"schedule": "* * * * *", "timeZone": "Mars/Olympus_Mons"},
        ["unknown time zone", "Mars/Olympus_Mons"],
        {"timeZone": "Europe/Amsterdam"},
    ),
    "never": (
        {"schedule": "0 0 31 2 *"},
        ["never fires", "0 0 31 2 *"],
        {"schedule": "* * * * *"},
    ),
    "no-image": (
        {"interval": "1h", "jobTemplate": job_template(container={"name": "main"})},
        ["jobTemplate", "image", "Required value"],
        {"jobTemplate": job_template()},
    ),
    "restart-always": (
        {"interval": "1h", "jobTemplate": job_template(restart_policy="Always")},
        ["jobTemplate", "restartPolicy", "Never"],
        {"jobTemplate": job_template()},
    ),
}


def reason_of(name: str) -> str:
    """The reason a bad spec gets: what the API server's dry run of the template refuses is
    TemplateRejected; what kadence itself cannot read is InvalidSpec."""
    return "TemplateRejected" if name in ("no-image", "restart-always") else "InvalidSpec"


@pytest.mark.every_version
def test_invalid_specs_are_reported_and_recover_when_fixed(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """What the schema cannot reject gives Ready False and Stalled (InvalidSpec, or
    TemplateRejected) with a readable message and one Warning event, makes no task, leaves
    other schedules alone, and recovers when the spec is fixed."""
    queue = queue_of(namespace)
    for name, (spec, _, _) in BAD_SPECS.items():
        # Distinct data, so that the concurrency policy (Forbid) never skips one for another.
        body = schedule_body(name, queue, data={"name": name}, **spec)
        kube.create("schedules", namespace, body)
    kube.create("schedules", namespace, schedule_body("good", queue, interval="1h"))

    for name, (_, fragments, _) in BAD_SPECS.items():
        reason = reason_of(name)
        invalid = wait_for(
            ready_is(kube, namespace, name, "False", reason), 30, f"{name}: {reason}"
        )
        stalled = condition(kube.get("schedules", namespace, name), "Stalled")
        assert (stalled.get("status"), stalled.get("reason")) == ("True", reason), name
        for fragment in fragments:
            assert fragment in invalid["message"], (name, invalid["message"])
        events = wait_for(
            lambda name=name, reason=reason: events_of(kube, namespace, name, reason),
            15,
            f"{name}: a Warning event {reason}",
        )
        assert events[0].type == "Warning"
        assert events[0].message == invalid["message"]

    # The good schedule, created after the bad ones, is served as usual.
    wait_for(lambda: task_names(kube, namespace, "good"), 15, "the good schedule's task")
    wait_for(ready_is(kube, namespace, "good", "True", "Scheduled"), 15, "good: Ready True")
    for name in BAD_SPECS:
        assert task_names(kube, namespace, name) == [], name
        # Reported once, not in a retry loop.
        assert len(events_of(kube, namespace, name, reason_of(name))) == 1, name
    operator.check_alive()

    for name, (_, _, fix) in BAD_SPECS.items():
        kube.patch("schedules", namespace, name, {"spec": fix})
    for name in BAD_SPECS:
        wait_for(ready_is(kube, namespace, name, "True", "Scheduled"), 30, f"{name}: Ready True")
    for name in BAD_SPECS:
        # The fixed crons fire at the next minute; the fixed interval ones at once.
        wait_for(lambda name=name: task_names(kube, namespace, name), 75, f"{name}: a task")
