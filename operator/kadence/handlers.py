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
from kadence.guard import AdmissionGuard
from kadence.kube import ApiError, Kube
from kadence.models import TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TASK_LABEL
from kadence.queues import QueueController
from kadence.resources import Body, key_of, schedule_key_of, scheduler_of
from kadence.schedules import ScheduleController
from kadence.status_writer import StatusWriter
from kadence.store import Store, stale
from kadence.tasks import TaskController, report_finished

log = logging.getLogger(__name__)

RELIST_SECONDS = 300.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """The store, the three controllers, and what routes events to them."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.kube = Kube()
        self.store = Store()
        task_status = StatusWriter(
            self.kube, "tasks", TaskStatus, self.store.tasks.get, self.store.put_task,
            written=report_finished(self.kube),
        )  # fmt: skip
        admission = config.admission
        self.guard = (
            AdmissionGuard(self.kube, admission.policies, self._protection_changed)
            if admission.require_policies
            else None
        )
        self.schedules = ScheduleController(
            self.kube, self.store, task_status, utcnow, held=self.held
        )
        self.tasks = TaskController(self.kube, self.store, task_status, config, utcnow)
        self.queues = QueueController(
            self.kube, self.store, task_status, config, utcnow, held=self.held
        )
        metrics.name_queues([*config.queues.capacity, *config.queues.shared])
        self._loops: list[asyncio.Task[None]] = []

    def held(self) -> str | None:
        """Why no Job may be made now, or None."""
        return self.guard.problem if self.guard is not None else None

    def _protection_changed(self) -> None:
        """Jobs held back or let go: every Schedule says so, every queue looks again."""
        for key in list(self.store.schedules):
            self.schedules.queue.add(key)
        self.queues.add_all()

    async def start(self) -> None:
        """Load every Task and Job first, so that no reconcile decides on half a world; and
        know whether the admission policies are in place before any Job could be made."""
        for namespace in self._scopes():
            for task in (await self.kube.list("tasks", namespace)).items:
                self.store.put_task(task)
            for job in (await self.kube.list_jobs(TASK_LABEL, namespace)).items:
                self.store.put_job(job)
        if self.guard is not None:
            await self.guard.check()
            self._loops.append(asyncio.create_task(self.guard.run(), name="kadence-guard"))
        else:
            log.warning(
                "admission.requirePolicies is false: Jobs are made without the "
                "admission policies that keep tenants apart (single-tenant use only)"
            )
        for controller in (self.schedules, self.tasks, self.queues):
            controller.queue.start()
        self._loops.append(asyncio.create_task(self.queues.resync(), name="kadence-resync"))
        self._loops.append(asyncio.create_task(self._relist(), name="kadence-relist"))

    def _scopes(self) -> list[str | None]:
        """The namespaces to list: each watched one, or all at once."""
        return [*self.config.namespaces] or [None]

    async def _relist(self) -> None:
        """Now and then, list everything again and forget what no longer exists: a watch
        that broke and resumed says nothing of what was deleted meanwhile."""
        while True:
            await asyncio.sleep(RELIST_SECONDS)
            try:
                await self.relist()
            except ApiError as error:
                log.warning("re-list failed, trying again later: %s", error)

    async def relist(self) -> None:
        for namespace in self._scopes():
            schedules = await self.kube.list("schedules", namespace)
            tasks = await self.kube.list("tasks", namespace)
            jobs = await self.kube.list_jobs(TASK_LABEL, namespace)
            for listing, stored, gone in (
                (schedules, self.store.schedules, self.schedule_event),
                (tasks, self.store.tasks, self.task_event),
                (jobs, self.store.jobs, self.job_event),
            ):
                for body in stale(stored, listing.items, listing.resource_version, namespace):
                    log.info("%s/%s no longer exists; forgotten", *key_of(body))
                    gone("DELETED", body)

    def check_alive(self) -> None:
        """Fail the liveness probe when a worker or a loop has died, so that the pod is
        restarted."""
        for controller in (self.schedules, self.tasks, self.queues):
            if not controller.queue.alive:
                raise RuntimeError(f"the {controller.queue.name} workers have stopped")
        for loop in self._loops:
            if loop.done():
                raise RuntimeError(f"the {loop.get_name()} loop has stopped")

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
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
        self.queues.queue.add(self.queues.queue_of(key[0], scheduler_of(body)))
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
        sid = scheduler_of(task) if task is not None else labels.get(SCHEDULER_ID_LABEL)
        if sid:
            self.queues.queue.add(self.queues.queue_of(task_key[0], str(sid)))


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
    settings.scanning.disabled = True  # no CRD or namespace lookups: its RBAC has neither
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
