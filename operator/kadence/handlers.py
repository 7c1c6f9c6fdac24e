"""The kopf layer: watch events go to the controllers, nothing else happens here.

kopf watches Schedules, Tasks and the Jobs that carry the `kadence.dev/task`
label, serves the liveness probe, and runs the controllers' loops for the life of
the operator. Handlers are `on.event` only: kopf keeps no state on the objects
(no annotations, no finalizers), so GitOps tools see only what they applied.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from kadence import GROUP, VERSION
from kadence.config import OperatorConfig
from kadence.kube import Kube
from kadence.models import ScheduleStatus, TaskStatus
from kadence.naming import TASK_LABEL
from kadence.schedules import ScheduleController
from kadence.status_writer import StatusWriter
from kadence.store import Store, key_of
from kadence.tasks import TaskController

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """The controllers, their shared store, and the loops that drive them."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.kube = Kube()
        self.store = Store()
        self.schedules = ScheduleController(
            self.kube,
            self.store,
            StatusWriter(
                self.kube, "schedules", ScheduleStatus, self.store.schedules.get,
                self.store.put_schedule,
            ),
            utcnow,
        )  # fmt: skip
        self.tasks = TaskController(
            self.kube,
            self.store,
            StatusWriter(self.kube, "tasks", TaskStatus, self.store.tasks.get, self.store.put_task),
            config,
            utcnow,
        )
        self.schedules.tasks = self.tasks
        self.tasks.schedules = self.schedules
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load every Task and Job first, so the first dispatch pass knows all capacity in use."""
        namespaces = self.config.namespaces or [None]
        for namespace in namespaces:
            for task in await self.kube.list("tasks", namespace):
                self.store.put_task(task)
            for job in await self.kube.list_jobs(TASK_LABEL, namespace):
                self.store.put_job(job)
        self._loops = [
            asyncio.create_task(self.schedules.run(), name="kadence-deadlines"),
            asyncio.create_task(self.tasks.run(), name="kadence-dispatch"),
        ]

    def check_alive(self) -> None:
        """Fail the liveness probe when a loop has died, so that the pod is restarted."""
        for loop in self._loops:
            if loop.done():
                raise RuntimeError(f"the {loop.get_name()} loop has stopped")

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)


def runtime_of(memo: Any) -> Runtime:
    return memo["runtime"]


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
async def schedule_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    if event["type"] == "DELETED":
        runtime.schedules.deleted(key_of(body))
        return
    runtime.store.put_schedule(event["object"])
    await runtime.schedules.changed(key_of(body))


@kopf.on.event(GROUP, VERSION, "tasks")
async def task_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    if event["type"] == "DELETED":
        await runtime.tasks.deleted(event["object"])
        return
    runtime.store.put_task(event["object"])
    await runtime.tasks.changed(key_of(body))


@kopf.on.event("batch", "v1", "jobs", labels={TASK_LABEL: kopf.PRESENT})
async def job_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    if event["type"] == "DELETED":
        await runtime.tasks.job_deleted(event["object"])
        return
    runtime.store.put_job(event["object"])
    await runtime.tasks.job_changed(event["object"])
