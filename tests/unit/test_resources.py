"""Any Schedule a user can write is read without crashing: usable, or a clear problem."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kadence.jobs import build_job
from kadence.models import TaskPhase
from kadence.naming import default_hash, task_name_for_deadline, task_name_for_run_request
from kadence.resources import (
    controller_uid,
    deadline_of_run,
    history_entry,
    phase_of,
    queue_item,
    read_schedule,
    serial,
    service_account_of,
    task_for_run,
    task_problem,
    trigger_of,
    waiting_since,
    work_hash,
)

TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
DEADLINE = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def schedule(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "nightly", "uid": "u-1"},
        "spec": {"schedulerId": "q", "jobTemplate": TEMPLATE, **spec},
    }


OTHER = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "alpine"}]}}}}


@pytest.mark.parametrize(
    ("spec", "work"),
    [
        ({"data": {"a": 1}, "jobTemplate": TEMPLATE}, default_hash({"a": 1}, TEMPLATE)),
        ({"data": {"a": 1}, "jobTemplate": OTHER}, default_hash({"a": 1}, OTHER)),
        ({"data": {}, "jobTemplate": TEMPLATE}, default_hash({}, TEMPLATE)),
        ({"data": {"a": 1}, "jobTemplate": OTHER, "hash": "mine"}, "mine"),
        ({"data": {"a": 1}, "jobTemplate": TEMPLATE, "hash": ""}, default_hash({"a": 1}, TEMPLATE)),
    ],
    ids=["data-and-template", "another-template", "empty-data", "explicit-wins", "empty-is-unset"],
)
def test_work_hash(spec: dict[str, Any], work: str) -> None:
    assert work_hash(spec) == work
    assert queue_item(a_task(spec=spec)).hash == work


def test_default_hashes_differ_by_template() -> None:
    assert default_hash({"a": 1}, TEMPLATE) != default_hash({"a": 1}, OTHER)


@pytest.mark.parametrize(
    ("policy", "serial"),
    [("BufferOne", True), ("BufferAll", True), ("Forbid", False), ("Allow", False), (None, False)],
    ids=["buffer-one", "buffer-all", "forbid", "allow", "none-made-by-hand-or-before"],
)
def test_a_buffered_task_queues_serially(policy: str | None, serial: bool) -> None:
    spec = {"concurrencyPolicy": policy} if policy else {}
    assert queue_item(a_task(spec=spec)).serial is serial


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"schedule": "30 2 * * *", "timeZone": "Europe/Amsterdam"}, None),
        ({"interval": "1h30m"}, None),
        ({"schedule": "61 * * * *"}, "minute"),
        ({"schedule": "0 0 31 2 *"}, "never fires"),
        ({"schedule": "0 0 * * *", "timeZone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"schedule": "* * * * *", "interval": "1m"}, "exactly one"),
        ({}, "exactly one"),
        ({"interval": "1h", "data": {"blob": "x" * 200_000}}, "bytes"),
        ({"interval": "1h", "priority": "high"}, "schema"),
        ({"interval": "1h", "suspendAfterFailures": 10}, None),
        ({"interval": "1h", "suspendAfterFailures": 3, "historyLimit": 2}, "historyLimit"),
    ],
    ids=[
        "cron-in-zone",
        "interval",
        "minute-out-of-range",
        "never-fires",
        "unknown-zone",
        "both-timings",
        "no-timing",
        "data-too-large",
        "wrong-type",
        "suspend-after-failures-within-history",
        "suspend-after-failures-beyond-history",
    ],
)
def test_read_schedule(spec: dict[str, Any], problem: str | None) -> None:
    reading = read_schedule(schedule(**spec))
    if problem is None:
        assert reading.usable, reading.problem
    else:
        assert not reading.usable
        assert problem in (reading.problem or "")


def test_a_task_copies_the_spec_and_is_owned_by_its_schedule() -> None:
    body = schedule(interval="1h", priority=3, data={"b": 1, "a": [1, 2]})
    spec = read_schedule(body).spec
    assert spec is not None
    task = task_for_run(body, spec, "nightly-1774747800", DEADLINE)
    assert task["metadata"]["labels"] == {
        "kadence.dev/scheduler-id": "q",
        "kadence.dev/schedule": "nightly",
        "kadence.dev/trigger": "schedule",
    }
    assert task["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert task["spec"]["priority"] == 3
    assert task["spec"]["deadlineAt"] == "2026-03-29T01:30:00Z"
    assert task["spec"]["scheduleRef"] == {"name": "nightly"}
    assert len(task["spec"]["hash"]) == 32
    spec.data["b"] = 2
    assert task["spec"]["data"] == {"b": 1, "a": [1, 2]}, "a later edit must not reach the task"


@pytest.mark.parametrize(
    ("labels", "trigger"),
    [
        ({"kadence.dev/trigger": "schedule"}, "schedule"),
        ({"kadence.dev/trigger": "manual"}, "manual"),
        ({"kadence.dev/trigger": "backfill"}, "backfill"),
        (None, "manual"),
        ({"team": "blue"}, "manual"),
    ],
    ids=["deadline", "run-now", "backfill", "made-by-hand-no-labels", "made-by-hand-other-labels"],
)
def test_trigger_of(labels: dict[str, str] | None, trigger: str) -> None:
    task: dict[str, Any] = {"metadata": {"name": "t", "namespace": "ns"}}
    if labels is not None:
        task["metadata"]["labels"] = labels
    assert trigger_of(task) == trigger


@pytest.mark.parametrize(
    ("trigger", "deadline", "since"),
    [
        ("schedule", "2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"),
        ("manual", "2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"),
        ("backfill", "2026-03-20T01:30:00Z", "2026-03-29T01:30:05Z"),
        (None, None, "2026-03-29T01:30:05Z"),
    ],
    ids=["deadline-run", "run-now", "backfill-from-its-creation", "made-by-hand"],
)
def test_waiting_since(trigger: str | None, deadline: str | None, since: str) -> None:
    task: dict[str, Any] = {
        "metadata": {"name": "t", "creationTimestamp": "2026-03-29T01:30:05Z"},
        "spec": {"deadlineAt": deadline} if deadline else {},
    }
    if trigger is not None:
        task["metadata"]["labels"] = {"kadence.dev/trigger": trigger}
    assert waiting_since(task) == datetime.fromisoformat(since)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
cron_field = st.sampled_from(["*", "?", "H", "0", "59", "*/5", "1-5", "mon", "jan", "L", "99", "x"])
crons = st.lists(cron_field, min_size=1, max_size=7).map(" ".join) | st.sampled_from(
    ["@daily", "@hourly", "@yearly", "@reboot", ""]
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "schedulerId": st.text(max_size=70),
        "schedule": crons,
        "interval": st.sampled_from(["90s", "15m", "1h30m", "0s", "1d", "", "h"]),
        "timeZone": st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Nowhere", ""]),
        "enabled": st.booleans(),
        "priority": st.integers(min_value=-(2**40), max_value=2**40),
        "hash": st.text(max_size=40),
        "data": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
        "jobTemplate": st.just(TEMPLATE) | st.dictionaries(st.text(max_size=5), json_values),
        "concurrencyPolicy": st.sampled_from(["Forbid", "Allow", "Replace", "Sometimes"]),
        "missedRunPolicy": st.sampled_from(["RunLatest", "Skip", "RunAll", "Never"]),
        "startingDeadlineSeconds": st.integers(min_value=-5, max_value=10**6),
    },
)


@settings(max_examples=300, deadline=None)
@given(spec=specs)
def test_any_spec_is_read_without_crashing_and_a_usable_one_makes_a_job(
    spec: dict[str, Any],
) -> None:
    body = {"metadata": {"namespace": "ns", "name": "s", "uid": "u"}, "spec": spec}
    reading = read_schedule(body, pull=False)  # a queue of Jobs: a usable one has a template
    if not reading.usable:
        assert reading.problem
        return
    assert reading.spec is not None
    task = task_for_run(body, reading.spec, "s-1774747800", DEADLINE)
    task["metadata"]["uid"] = "task-uid"
    job = build_job(task)
    assert job["metadata"]["name"] == "s-1774747800"


def a_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "metadata": {
            "namespace": "ns",
            "name": "t",
            "uid": "u",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"schedulerId": "q", "priority": 2, "data": {"a": 1}, "jobTemplate": TEMPLATE},
    }
    for key, value in overrides.items():
        task[key] = {**task.get(key, {}), **value}
    return task


@pytest.mark.parametrize(
    ("status", "phase"),
    [({}, TaskPhase.PENDING), ({"phase": "Running"}, TaskPhase.RUNNING)],
    ids=["not-admitted-yet", "running"],
)
def test_phase_of(status: dict[str, Any], phase: TaskPhase) -> None:
    assert phase_of(a_task(status=status)) == phase


def test_a_manual_task_queues_by_its_creation_and_hashes_its_data() -> None:
    item = queue_item(a_task())
    assert item.deadline_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert item.priority == 2
    assert item.hash == default_hash({"a": 1}, TEMPLATE)
    assert queue_item(a_task(spec={"hash": "h"})).hash == "h"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({}, None),
        ({"data": {"blob": "x" * 200_000}}, "bytes"),
        ({"jobTemplate": {"spec": "not a mapping"}}, "spec cannot be used"),
    ],
    ids=["usable", "data-too-large", "template-not-an-object"],
)
def test_task_problem(spec: dict[str, Any], problem: str | None) -> None:
    found = task_problem(a_task(spec=spec))
    assert (found is None) if problem is None else (problem in (found or ""))


def test_history_entry_uses_the_task_times_or_now() -> None:
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    entry = history_entry(
        a_task(status={"startedAt": "2026-01-01T00:01:00Z"}), TaskPhase.FAILED, now
    )
    assert entry.started_at == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert entry.finished_at == now
    assert entry.deadline_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pod_spec", "account"),
    [
        ({}, None),
        ({"serviceAccountName": "runner"}, "runner"),
        ({"serviceAccount": "legacy"}, "legacy"),
    ],
    ids=["default-account", "named", "deprecated-field"],
)
def test_service_account_of(pod_spec: dict[str, Any], account: str | None) -> None:
    template = {"spec": {"template": {"spec": {"containers": [], **pod_spec}}}}
    assert service_account_of(a_task(spec={"jobTemplate": template})) == account


def a_run(name: str, deadline: datetime) -> dict[str, Any]:
    return a_task(
        metadata={"name": name}, spec={"deadlineAt": deadline.strftime("%Y-%m-%dT%H:%M:%SZ")}
    )


NINE = datetime(2026, 1, 1, 9, tzinfo=UTC)
TEN = datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("task", "deadline"),
    [
        (a_run(task_name_for_deadline("s", TEN), TEN), TEN),
        (a_run(task_name_for_run_request("s", "now"), TEN), None),
        (a_run(task_name_for_deadline("s", NINE), TEN), None),
        (a_task(metadata={"name": "manual"}), None),
    ],
    ids=["deadline-run", "requested-run", "name-and-deadline-disagree", "manual"],
)
def test_deadline_of_run(task: dict[str, Any], deadline: datetime | None) -> None:
    assert deadline_of_run("s", task) == deadline


@pytest.mark.parametrize(
    ("references", "controller"),
    [
        ([{"uid": "uid-1", "controller": True}], "uid-1"),
        ([{"uid": "other", "controller": False}, {"uid": "uid-1", "controller": True}], "uid-1"),
        ([{"uid": "uid-1", "controller": False}], None),
        ([{"uid": "uid-1"}], None),
        ([{"uid": "uid-old", "controller": True}], "uid-old"),
        ([], None),
        (None, None),
    ],
    ids=[
        "controller-match",
        "second-reference",
        "owner-but-not-controller",
        "controller-unset",
        "task-recreated-with-new-uid",
        "no-references",
        "no-metadata-field",
    ],
)
def test_controller_uid(references: list[dict[str, Any]] | None, controller: str | None) -> None:
    """Ownership says whose run a Task is and whose Job a Job is: only the controlling
    reference counts, and a re-created owner has another uid."""
    job: dict[str, Any] = {"metadata": {"name": "nightly-1704067200"}}
    if references is not None:
        job["metadata"]["ownerReferences"] = references
    assert controller_uid(job) == controller


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("BufferOne", True), ("BufferAll", True), ("Allow", False), ("Forbid", False),
     (None, False), ("Bogus", False)],
    ids=["BufferOne", "BufferAll", "Allow", "Forbid", "none (made by hand)", "unknown"],
)  # fmt: skip
def test_only_a_buffered_task_runs_one_at_a_time(policy: str | None, expected: bool) -> None:
    spec = {} if policy is None else {"concurrencyPolicy": policy}
    assert serial({"metadata": {"name": "t"}, "spec": spec}) is expected
