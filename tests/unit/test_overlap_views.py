"""`kubectl kadence queue` with a buffered Task: it keeps its place in the order, and the
wide view and the JSON say which Task of its hash it waits for; a pull queue says so, and
which runner asks for or holds each Task."""

from __future__ import annotations

from typing import Any

from kadence.config import parse_config
from kadence.views import queue_views, queues_document, render_queues
from tests.unit.test_views import CONFIG, NOW, at, job, task


def buffered(name: str, phase: str = "Queued", **kwargs: Any) -> dict[str, Any]:
    body = task(name, phase, **kwargs)
    body["spec"].update(hash="w", concurrencyPolicy="BufferOne")
    return body


def test_a_buffered_task_keeps_its_place_and_says_what_it_waits_for() -> None:
    tasks = [
        buffered("running", "Running"),
        buffered("held", priority=-5, queuedAt=at(-2)),
        task("other", priority=5, queuedAt=at(-1)),
    ]
    (view,) = queue_views(tasks, [job("running")], CONFIG, capacity=3)
    assert [(item.name, item.waits_for) for item in view.waiting] == [
        ("held", "running"),
        ("other", None),
    ]
    wide = render_queues([view], NOW, wide=True).splitlines()
    assert wide[3].split()[-1] == "running"
    assert wide[4].split()[-1] == "-"
    (document,) = queues_document([view], NOW)["queues"]
    assert [entry["waitsFor"] for entry in document["waiting"]] == ["running", None]


def test_a_pull_queue_says_so_and_names_the_runners_asking_and_holding() -> None:
    config = parse_config("queues:\n  capacity: {scans: 2}\n  pull:\n    scans: {}\n")
    claimed = task("claimed", "Running", queue="scans", claim={"holder": "worker-a/1"})
    asked = task("asked", queue="scans", priority=-1, queuedAt=at(-1),
                 claim={"holder": "worker-b/7"})  # fmt: skip
    idle = task("idle", queue="scans", queuedAt=at(-1))
    (view,) = queue_views([claimed, asked, idle], [], config)
    assert view.pulled
    assert view.holders == ("claimed (worker-a/1)",)
    assert [(item.name, item.requested_by) for item in view.waiting] == [
        ("asked", "worker-b/7"),
        ("idle", None),
    ]
    wide = render_queues([view], NOW, wide=True).splitlines()
    assert wide[0] == "Queue ns/scans (pulled by runners): 1/2 in use, 2 waiting"
    assert wide[1] == "Holding slots: claimed (worker-a/1)"
    assert wide[2].split()[-2:] == ["REQUESTED", "BY"]
    assert wide[3].split()[-1] == "worker-b/7"
    assert wide[4].split()[-1] == "-"
    (document,) = queues_document([view], NOW)["queues"]
    assert document["pulled"] is True
    assert [entry["requestedBy"] for entry in document["waiting"]] == ["worker-b/7", None]


def test_a_queue_of_jobs_is_not_pulled() -> None:
    (view,) = queue_views([task("plain")], [], CONFIG)
    assert not view.pulled
    assert "pulled" not in render_queues([view], NOW)
