"""`kubectl kadence queue` with a buffered Task: it keeps its place in the order, and the
wide view and the JSON say which Task of its hash it waits for."""

from __future__ import annotations

from typing import Any

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
