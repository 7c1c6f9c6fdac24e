"""The in-memory mirror: newer versions win, and queues list only unfinished tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kadence.resources import queue_item
from kadence.store import Store, stale


def task(name: str, version: int, phase: str | None = None, queue: str = "q") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(version)},
        "spec": {"schedulerId": queue, "scheduleRef": {"name": "s"}},
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [(1, 2, 2), (2, 1, 2), (3, 3, 3)],
    ids=["newer-replaces", "older-is-ignored", "same-version-is-kept"],
)
def test_the_newest_version_wins(first: int, second: int, kept: int) -> None:
    store = Store()
    assert store.put_task(task("t", first))
    assert store.put_task(task("t", second)) is (second > first)
    assert store.tasks[("ns", "t")]["metadata"]["resourceVersion"] == str(kept)


@pytest.mark.parametrize(
    ("phases", "open_names"),
    [
        ({"a": "Queued", "b": "Running"}, {"a", "b"}),
        ({"a": "Queued", "b": "Completed", "c": "Cancelled"}, {"a"}),
        ({"a": None}, {"a"}),
    ],
    ids=["queued-and-running", "finished-left-out", "no-phase-yet"],
)
def test_unfinished_lists_only_open_tasks(
    phases: dict[str, str | None], open_names: set[str]
) -> None:
    store = Store()
    for name, phase in phases.items():
        store.put_task(task(name, 1, phase))
    assert {t["metadata"]["name"] for t in store.unfinished("ns", "q")} == open_names


def test_a_task_that_finishes_leaves_its_queue_and_moving_queues_moves_it() -> None:
    store = Store()
    store.put_task(task("t", 1, "Running", queue="q"))
    store.put_task(task("t", 2, "Completed", queue="q"))
    assert list(store.unfinished("ns", "q")) == []
    assert store.queues() == []
    store.put_task(task("u", 1, "Queued", queue="q"))
    store.drop_task(("ns", "u"))
    assert list(store.unfinished("ns", "q")) == []


def owned(name: str, version: int, owner_uid: str, phase: str | None = None) -> dict[str, Any]:
    body = task(name, version, phase)
    body["metadata"]["uid"] = f"uid-{name}"
    body["metadata"]["ownerReferences"] = [
        {"kind": "Schedule", "name": "s", "uid": owner_uid, "controller": True}
    ]
    return body


def job(name: str, version: int, owner_uid: str | None, kind: str = "Task") -> dict[str, Any]:
    references = [{"kind": kind, "name": name, "uid": owner_uid, "controller": True}]
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "resourceVersion": str(version),
            "labels": {"kadence.dev/task": name, "kadence.dev/scheduler-id": "q"},
            "ownerReferences": references if owner_uid else [],
        }
    }


def test_a_schedules_tasks_are_those_it_controls_by_uid() -> None:
    store = Store()
    store.put_task(owned("mine", 1, "uid-s"))
    store.put_task(owned("old-incarnation", 1, "uid-old"))
    store.put_task(task("named-after-it", 1))  # scheduleRef, but no ownerReference
    assert [t["metadata"]["name"] for t in store.owned_tasks("uid-s")] == ["mine"]
    assert set(store.namespace_tasks("ns")) == {"mine", "old-incarnation", "named-after-it"}
    store.drop_task(("ns", "mine"))
    assert store.owned_tasks("uid-s") == []
    assert set(store.namespace_tasks("ns")) == {"old-incarnation", "named-after-it"}


def test_a_job_is_a_tasks_only_when_the_task_controls_it() -> None:
    store = Store()
    store.put_task(owned("t", 1, "uid-s", "Running"))
    assert not store.put_job(job("t", 5, None)), "a Job no Task controls is not kept"
    store.put_job(job("t", 6, "uid-other"))
    assert store.job_of(store.tasks[("ns", "t")]) is None, "controlled by another uid"
    store.put_job(job("t", 7, "uid-t"))
    assert store.job_of(store.tasks[("ns", "t")]) is not None
    assert [j["metadata"]["name"] for j in store.unfinished_jobs("ns", "q")] == ["t"]
    store.drop_job(("ns", "t"))
    assert store.job_of(store.tasks[("ns", "t")]) is None
    assert store.unfinished_jobs("ns", "q") == []


def test_a_queue_lists_only_its_unfinished_jobs() -> None:
    store = Store()
    running, done = job("running", 1, "uid-running"), job("done", 2, "uid-done")
    done["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    store.put_job(running)
    store.put_job(done)
    assert [j["metadata"]["name"] for j in store.unfinished_jobs("ns", "q")] == ["running"]
    finished = job("running", 3, "uid-running")
    finished["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    store.put_job(finished)
    assert store.unfinished_jobs("ns", "q") == [], "a Job that finishes leaves it"
    assert set(store.jobs) == {("ns", "running"), ("ns", "done")}, "both are still known"


def test_the_store_keeps_only_what_the_operator_reads() -> None:
    store = Store()
    body = owned("t", 1, "uid-s", "Running")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...the whole object...}",
        "kadence.dev/run-requested-at": "kept",
    }
    store.put_task(body)
    kept = store.tasks[("ns", "t")]
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"kadence.dev/run-requested-at": "kept"}
    assert kept["spec"] == body["spec"]
    assert "managedFields" in body["metadata"], "the caller's body is left alone"

    big = job("t", 2, "uid-t")
    big["spec"] = {"template": {"spec": {"containers": [{"name": "c", "image": "x" * 1000}]}}}
    store.put_job(big)
    assert "spec" not in store.jobs[("ns", "t")], "a Job's spec is never read"
    assert store.job_of(kept) is store.jobs[("ns", "t")]


def test_bodies_in_the_store_share_their_keys_and_short_strings() -> None:
    """Each watch event is decoded on its own; the store keeps one copy of each key and
    short value across bodies, and the bodies stay equal to what was put."""
    store = Store()
    first, second = owned("t1", 1, "uid-s", "Running"), owned("t2", 1, "uid-s", "Running")
    long_text = "".join(["x"] * 200)
    first["status"]["message"] = long_text
    store.put_task(json.loads(json.dumps(first)))
    store.put_task(json.loads(json.dumps(second)))
    a, b = store.tasks[("ns", "t1")], store.tasks[("ns", "t2")]
    assert a == first
    assert b == second
    phase_key_a = next(k for k in a["status"] if k == "phase")
    phase_key_b = next(k for k in b["status"] if k == "phase")
    assert phase_key_a is phase_key_b
    assert a["status"]["phase"] is b["status"]["phase"]
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["status"]["message"] == long_text, "long text is kept as it is"


@pytest.mark.parametrize(
    ("listed", "list_version", "namespace", "gone"),
    [
        (["a", "b"], "50", None, []),
        (["a"], "50", None, ["b"]),
        (["a"], "50", "other", []),
        ([], "9", None, ["a"]),
        ([], "not-a-number", None, []),
    ],
    ids=[
        "all-listed",
        "deleted-during-a-watch-gap",
        "another-namespace-is-not-judged",
        "newer-than-the-list-stays",
        "unreadable-list-version-drops-nothing",
    ],
)
def test_stale_objects_are_those_a_full_list_no_longer_has(
    listed: list[str], list_version: str, namespace: str | None, gone: list[str]
) -> None:
    stored = {("ns", "a"): task("a", 5), ("ns", "b"): task("b", 10)}
    found = stale(stored, {("ns", name) for name in listed}, list_version, namespace)
    assert [body["metadata"]["name"] for body in found] == gone


def test_a_task_is_read_as_its_queue_orders_it_once_per_version() -> None:
    store = Store()
    store.put_task(owned("t", 1, "uid-s", "Queued"))
    stored = store.tasks[("ns", "t")]
    assert store.queue_item(stored) == queue_item(stored)
    assert store.queue_item(stored) is store.queue_item(stored), "kept, not read again"
    newer = owned("t", 2, "uid-s", "Queued")
    newer["spec"]["priority"] = 7
    store.put_task(newer)
    assert store.queue_item(store.tasks[("ns", "t")]).priority == 7
    other = owned("t", 3, "uid-s", "Queued")
    other["spec"]["priority"] = 9
    assert store.queue_item(other).priority == 9, "a body that is not the stored one is read"
