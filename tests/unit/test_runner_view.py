"""A runner's view of a queue: listed once, then followed by a watch. What a runner asks
of it (the candidates, whether it has caught up with its own write, whether a Task it
tried has changed) against a scripted list and watch."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kadence.runner import _QueueView

Body = dict[str, Any]
END = ("END", {})


def task(name: str, version: str, phase: str = "Queued") -> Body:
    return {
        "metadata": {"name": name, "resourceVersion": version, "namespace": "scan"},
        "spec": {"schedulerId": "boefje"},
        "status": {"phase": phase},
    }


class ScriptedApi:
    """Lists what `listing` holds; a watch yields what the test puts in `events` until END."""

    def __init__(self, *listed: Body) -> None:
        self.listing = list(listed)
        self.lists = 0
        self.events: queue.Queue[tuple[str, Body]] = queue.Queue()

    def _list(self, label_selector: str) -> tuple[list[Body], str]:
        assert label_selector == "kadence.dev/scheduler-id=boefje"
        self.lists += 1
        return list(self.listing), f"list-{self.lists}"

    def _watch(
        self, selector: dict[str, str], resource_version: str, seconds: float
    ) -> Iterator[tuple[str, Body]]:
        while True:
            kind, body = self.events.get()
            if (kind, body) == END:
                return
            yield kind, body


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi(task("a", "1"), task("done", "2", phase="Completed"))


@pytest.fixture
def view(api: ScriptedApi) -> Iterator[_QueueView]:
    made = _QueueView(api, "boefje")  # the view asks its runner only for _list and _watch
    yield made
    made.stop()
    api.events.put(END)


def settle(view: _QueueView, seen: int) -> None:
    view.wait_change(seen, 5)


def names(view: _QueueView) -> list[str]:
    return sorted(t["metadata"]["name"] for t in view.tasks())


def test_listed_once_keeps_the_unfinished_tasks(api: ScriptedApi, view: _QueueView) -> None:
    assert names(view) == ["a"]
    assert api.lists == 1
    assert view.since("done", "2") == (True, None)  # finished: gone for good


def test_a_runner_waits_until_the_view_has_its_own_write(
    api: ScriptedApi, view: _QueueView
) -> None:
    assert view.since("a", "5") == (False, None)  # written, not heard of yet
    seen = view.version
    api.events.put(("MODIFIED", task("a", "5")))
    settle(view, seen)
    caught_up, seen_task = view.since("a", "5")
    assert caught_up
    assert seen_task is not None
    assert seen_task["metadata"]["resourceVersion"] == "5"
    seen = view.version
    api.events.put(("MODIFIED", task("a", "6", phase="Dispatched")))
    settle(view, seen)
    caught_up, seen_task = view.since("a", "5")  # still caught up, and newer now
    assert caught_up
    assert seen_task is not None
    assert seen_task["metadata"]["resourceVersion"] == "6"


def test_a_task_that_ends_while_asked_for_is_gone(api: ScriptedApi, view: _QueueView) -> None:
    seen = view.version
    api.events.put(("MODIFIED", task("a", "7", phase="Cancelled")))
    settle(view, seen)
    assert view.since("a", "5") == (True, None)
    assert names(view) == []


def test_wait_newer_returns_once_a_tried_task_changed(api: ScriptedApi, view: _QueueView) -> None:
    started = time.monotonic()
    view.wait_newer({"a": "1"}, 0.2)  # nothing newer: it waits the time out
    assert time.monotonic() - started >= 0.2
    api.events.put(("ADDED", task("b", "8")))
    api.events.put(("MODIFIED", task("a", "9", phase="Queued")))
    started = time.monotonic()
    view.wait_newer({"a": "1"}, 5)
    assert time.monotonic() - started < 5
    assert names(view) == ["a", "b"]


def test_a_new_list_after_the_watch_ends_drops_what_is_gone(
    api: ScriptedApi, view: _QueueView
) -> None:
    seen = view.version
    api.events.put(("MODIFIED", task("a", "5")))
    settle(view, seen)
    api.listing = [task("a", "11"), task("c", "12")]
    api.events.put(END)  # the watch ends: the view lists again
    view.wait_newer({"a": "5"}, 5)
    assert api.lists == 2
    assert names(view) == ["a", "c"]
    assert view.since("a", "5")[0]  # versions seen before the list stay known
    api.listing = [task("c", "12")]
    api.events.put(END)
    view.wait_newer({"a": "11"}, 5)
    assert view.since("a", "11") == (True, None)
    assert names(view) == ["c"]
