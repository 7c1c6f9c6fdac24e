"""The in-memory mirror: newer versions win, and queues list only unfinished tasks."""

from __future__ import annotations

from typing import Any

import pytest

from kadence.store import Store


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
    ids=["newer-replaces", "older-is-ignored", "same-version-replaces"],
)
def test_the_newest_version_wins(first: int, second: int, kept: int) -> None:
    store = Store()
    store.put_task(task("t", first))
    store.put_task(task("t", second))
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
    assert {t["metadata"]["name"] for t in store.unfinished("q")} == open_names


def test_a_task_that_finishes_leaves_its_queue_and_moving_queues_moves_it() -> None:
    store = Store()
    store.put_task(task("t", 1, "Running", queue="q"))
    store.put_task(task("t", 2, "Completed", queue="q"))
    assert list(store.unfinished("q")) == []
    assert store.scheduler_ids() == []
    store.put_task(task("u", 1, "Queued", queue="q"))
    store.drop_task(("ns", "u"))
    assert list(store.unfinished("q")) == []


def test_tasks_of_a_schedule_and_their_jobs() -> None:
    store = Store()
    store.put_task(task("t", 1, "Running"))
    assert [t["metadata"]["name"] for t in store.tasks_of_schedule(("ns", "s"))] == ["t"]
    job = {"metadata": {"namespace": "ns", "name": "t", "resourceVersion": "5", "labels": {}}}
    store.put_job(job)
    assert store.job_for(store.tasks[("ns", "t")]) is None, "a Job without our label is not ours"
    job["metadata"]["labels"] = {"kadence.dev/task": "t"}
    store.put_job({**job, "metadata": {**job["metadata"], "resourceVersion": "6"}})
    assert store.job_for(store.tasks[("ns", "t")]) is not None
