"""The queue controller carrying out serial dispatch: a buffered Task waits, says so once,
and leaves when the Task of its work finishes (against the in-memory API server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.unit.test_controllers import JUST_AFTER_THE_HOUR, QUEUE, World


def test_a_buffered_task_waits_says_why_once_then_runs_when_its_work_is_done() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("b1", "Running", hash="w", concurrencyPolicy="BufferOne")
    world.job("b1", active=1, ready=1)
    queued = world.task("b2", "Queued", hash="w", concurrencyPolicy="BufferOne")
    queued["status"]["queuedAt"] = "2026-06-01T10:00:01Z"
    world.store.put_task(world.kube.put("tasks", queued))
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("patch_status", "tasks", "b2")], "no Job while b1 runs"
    (state,) = world.queues.states()
    assert (state.pending, state.active) == (1, 1)
    assert state.oldest_pending is None, "it waits for its work, not for a slot"
    waiting = world.kube.objects[("tasks", "ns", "b2")]["status"]
    assert waiting["phase"] == "Queued"
    assert waiting["message"] == "waiting for task b1 (same hash) to finish"

    world.kube.actions.clear()
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [], "the message is written once"

    world.task("b1", "Completed", hash="w", concurrencyPolicy="BufferOne")
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("create", "jobs", "b2"), ("patch_status", "tasks", "b2")]
    assert world.store.tasks[("ns", "b2")]["status"]["phase"] == "Dispatched"


def test_a_task_waiting_for_a_slot_is_still_the_oldest_pending() -> None:
    """The other side of the rule above: a Task not buffered waits for a slot."""
    world = World(JUST_AFTER_THE_HOUR)
    world.task("r", "Running", hash="w")
    world.job("r", active=1, ready=1)
    for name in (f"r{n}" for n in range(9)):
        world.task(name, "Running")
    queued = world.task("q", "Queued", hash="w")
    queued["status"]["queuedAt"] = "2026-06-01T10:00:01Z"
    world.store.put_task(world.kube.put("tasks", queued))
    asyncio.run(world.queues.reconcile(QUEUE))
    (state,) = world.queues.states()
    assert state.oldest_pending == datetime(2026, 6, 1, 10, 0, 1, tzinfo=UTC)
