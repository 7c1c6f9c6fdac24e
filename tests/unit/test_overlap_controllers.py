"""The queue controller carrying out serial dispatch: a buffered Task waits, says so once,
and leaves when the Task of its work finishes (against the in-memory API server)."""

from __future__ import annotations

import asyncio

from tests.unit.test_controllers import JUST_AFTER_THE_HOUR, QUEUE, World


def test_a_buffered_task_waits_says_why_once_then_runs_when_its_work_is_done() -> None:
    world = World(JUST_AFTER_THE_HOUR)
    world.task("b1", "Running", hash="w", concurrencyPolicy="BufferOne")
    world.job("b1", active=1, ready=1)
    world.task("b2", "Queued", hash="w", concurrencyPolicy="BufferOne")
    asyncio.run(world.queues.reconcile(QUEUE))
    assert world.kube.actions == [("patch_status", "tasks", "b2")], "no Job while b1 runs"
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
