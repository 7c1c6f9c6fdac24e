"""The kopf layer: watch events become keys in the controllers' work queues, nothing else.

kopf watches Schedules, Tasks and the Jobs that carry the `kadence.dev/task` label and
serves the liveness probe. Each event updates the store and marks dirty the keys it
concerns: a Task's change concerns the Task, its queue and the Schedule that controls
it; a Job's change concerns its Task and its queue. Handlers are `on.event` only: kopf
keeps no state on the objects (no annotations, no finalizers), so GitOps tools see only
what they applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from kadence import GROUP, VERSION, metrics
from kadence.config import OperatorConfig
from kadence.kube import Kube
from kadence.models import FINISHED_PHASES, TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TASK_LABEL
from kadence.queues import QueueController
from kadence.resources import Body, key_of, schedule_key_of, scheduler_of
from kadence.schedules import ScheduleController
from kadence.status_writer import StatusWriter
from kadence.store import Store
from kadence.tasks import TaskController

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _count_finished(old: Body, new: Body) -> None:
    """A Task the operator moved into a final phase, for the finished-tasks metric."""
    before = (old.get("status") or {}).get("phase")
    after = (new.get("status") or {}).get("phase")
    if after in FINISHED_PHASES and before not in FINISHED_PHASES:
        metrics.TASKS_FINISHED.labels(scheduler_id=scheduler_of(new), phase=after).inc()


class Runtime:
    """The store, the three controllers, and what routes events to them."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.kube = Kube()
        self.store = Store()
        task_status = StatusWriter(
            self.kube, "tasks", TaskStatus, self.store.tasks.get, self.store.put_task,
            written=_count_finished,
        )  # fmt: skip
        self.schedules = ScheduleController(self.kube, self.store, task_status, utcnow)
        self.tasks = TaskController(self.kube, self.store, task_status, utcnow)
        self.queues = QueueController(self.kube, self.store, task_status, config, utcnow)
        self._resync: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load every Task and Job first, so that no reconcile decides on half a world."""
        namespaces: list[str | None] = [*self.config.namespaces] or [None]
        for namespace in namespaces:
            for task in await self.kube.list("tasks", namespace):
                self.store.put_task(task)
            for job in await self.kube.list_jobs(TASK_LABEL, namespace):
                self.store.put_job(job)
        for controller in (self.schedules, self.tasks, self.queues):
            controller.queue.start()
        self._resync = asyncio.create_task(self.queues.resync(), name="kadence-resync")

    def check_alive(self) -> None:
        """Fail the liveness probe when a worker has died, so that the pod is restarted."""
        for controller in (self.schedules, self.tasks, self.queues):
            if not controller.queue.alive:
                raise RuntimeError(f"the {controller.queue.name} workers have stopped")
        if self._resync is None or self._resync.done():
            raise RuntimeError("the queue resync has stopped")

    async def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
        for controller in (self.schedules, self.tasks, self.queues):
            await controller.queue.stop()

    def schedule_event(self, kind: str, body: Body) -> None:
        key = key_of(body)
        if kind == "DELETED":
            self.store.drop_schedule(key)
        else:
            self.store.put_schedule(body)
        self.schedules.queue.add(key)

    def task_event(self, kind: str, body: Body) -> None:
        key = key_of(body)
        if kind == "DELETED":
            self.store.drop_task(key)
        else:
            self.store.put_task(body)
        self.tasks.queue.add(key)
        self.queues.queue.add(scheduler_of(body))
        schedule = schedule_key_of(body)
        if schedule is not None:
            self.schedules.queue.add(schedule)

    def job_event(self, kind: str, body: Body) -> None:
        if kind == "DELETED":
            self.store.drop_job(key_of(body))
        else:
            self.store.put_job(body)
        labels = body["metadata"].get("labels") or {}
        task_key = (body["metadata"]["namespace"], labels.get(TASK_LABEL, ""))
        self.tasks.queue.add(task_key)
        task = self.store.tasks.get(task_key)
        queue = scheduler_of(task) if task is not None else labels.get(SCHEDULER_ID_LABEL)
        if queue:
            self.queues.queue.add(queue)


def runtime_of(memo: Any) -> Runtime:
    runtime: Runtime = memo["runtime"]
    return runtime


def _plain(body: Mapping[str, Any]) -> Body:
    return dict(body)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials as the operator's own client (loaded at start-up)."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    await runtime_of(memo).start()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await runtime_of(memo).stop()


@kopf.on.probe(id="kadence", errors=kopf.ErrorsMode.PERMANENT)
def alive(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    runtime = runtime_of(memo)
    runtime.check_alive()
    return {"schedules": len(runtime.store.schedules), "tasks": len(runtime.store.tasks)}


@kopf.on.event(GROUP, VERSION, "schedules")
async def schedule_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime_of(memo).schedule_event(str(event["type"]), _plain(event["object"]))


@kopf.on.event(GROUP, VERSION, "tasks")
async def task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime_of(memo).task_event(str(event["type"]), _plain(event["object"]))


@kopf.on.event("batch", "v1", "jobs", labels={TASK_LABEL: kopf.PRESENT})
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime_of(memo).job_event(str(event["type"]), _plain(event["object"]))
