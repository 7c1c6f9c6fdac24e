"""The Schedule controller: read, ask `plan_schedule`, carry the plan out.

Each reconcile reads one Schedule and the Tasks it controls from the store, asks the
pure `kadence.schedule_plan` what to do at `now`, and does exactly that: create Tasks,
cancel or delete Tasks, write the status, raise Events, and come back at the next
deadline. Keys come from the work queue, so one Schedule is never reconciled twice at
once, and a failure comes back with backoff instead of dropping its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Container
from datetime import datetime

from kadence import metrics
from kadence.faults import crash_point
from kadence.jobs import build_job
from kadence.kube import ApiError, KubeApi
from kadence.models import ScheduleSpec, TaskPhase, TaskStatus
from kadence.naming import TRIGGER_BACKFILL
from kadence.resources import read_schedule, scheduler_of, task_for_run, trigger_of, work_hash
from kadence.schedule_plan import (
    SchedulePlan,
    ScheduleWorld,
    plan_schedule,
    template_accepted,
)
from kadence.status import parse_time
from kadence.status_writer import StatusWriter, write_status
from kadence.store import Body, Key, Store, key_of
from kadence.task_plan import transition
from kadence.workqueue import WorkQueue

log = logging.getLogger(__name__)

WORKERS = 64


class ScheduleController:
    """Reconciles Schedules from a work queue; a deadline is a delayed add of the key."""

    def __init__(
        self,
        kube: KubeApi,
        store: Store,
        task_status: StatusWriter[TaskStatus],
        now: Callable[[], datetime],
        *,
        held: Callable[[], str | None] = lambda: None,
        pull_queues: Container[str] = (),
    ) -> None:
        self._kube = kube
        self._held = held
        self._pull_queues = pull_queues
        self._store = store
        self._task_status = task_status
        self._now = now
        self._template_checks: dict[Key, tuple[int, str | None]] = {}
        self._work_locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.queue: WorkQueue[Key] = WorkQueue("schedules", self.reconcile, workers=WORKERS)

    async def reconcile(self, key: Key) -> float | None:
        """One reconcile; returns the seconds until the next deadline, if one is armed."""
        body = self._store.schedules.get(key)
        if body is None:
            self.queue.forget(key)
            self._template_checks.pop(key, None)
            return None
        pull = scheduler_of(body) in self._pull_queues
        template_problem = await self._check_template(key, body, pull=pull)
        # Schedules that do the same work in one queue decide one at a time, so that each
        # sees the Tasks the others made: Forbid holds across deadlines that coincide.
        async with self._work_lock(key[0], body):
            namespace, uid = key[0], body["metadata"]["uid"]
            world = ScheduleWorld(
                schedule=body,
                owned=self._store.owned_tasks(uid),
                namespace_tasks=self._store.namespace_tasks(namespace),
                queue_unfinished=self._store.unfinished(namespace, scheduler_of(body)),
                template_problem=template_problem,
                held=self._held(),
                pull=pull,
            )
            now = self._now()
            plan = plan_schedule(world, now)
            if not await self._carry_out(key, body, plan, now):
                return 0.0  # the status changed under us: plan again on what is current
        if plan.wake_at is None:
            return None
        return max((plan.wake_at - now).total_seconds(), 0.0)

    def _work_lock(self, namespace: str, body: Body) -> asyncio.Lock:
        """The lock of one (namespace, queue, work hash); dropped when nobody holds it."""
        spec = body.get("spec") or {}
        work = work_hash(spec)
        key = (namespace, str(spec.get("schedulerId", "")), str(work))
        lock = self._work_locks.get(key)
        if lock is None:
            lock = self._work_locks[key] = asyncio.Lock()
        return lock

    async def _carry_out(self, key: Key, body: Body, plan: SchedulePlan, now: datetime) -> bool:
        """Tasks first, then the status that counts them, then pruning: a crash in between
        leaves Tasks that the next reconcile finds and counts, never a count without a Task."""
        await asyncio.gather(*(self._create(task) for task in plan.create))
        for name, reason, message in plan.cancel:
            await self._cancel((key[0], name), reason, message, now)
        try:
            written = await write_status(self._kube, "schedules", body, plan.status.to_kube())
        except ApiError as error:
            if not error.conflict:
                raise
            self._store.put_schedule(await self._kube.get("schedules", *key))
            return False
        if written is not None:
            self._store.put_schedule(written)
        for name in plan.delete:
            await self._delete_task((key[0], name))
        for event in plan.events:
            self._kube.event(body, event.type, event.reason, event.message)
        for task in plan.create:
            log.info("schedule %s/%s: task %s", *key, task["metadata"]["name"])
        if plan.skipped:
            metrics.DEADLINES_SKIPPED.inc(plan.skipped)
        if plan.missed:
            metrics.DEADLINES_MISSED.inc(plan.missed)
        return True

    async def _create(self, task: Body) -> None:
        """Create the Task; AlreadyExists means an earlier try made it, which is success."""
        try:
            created = await self._kube.create("tasks", task)
        except ApiError as error:
            if not error.already_exists:
                raise
            created = await self._kube.get("tasks", *key_of(task))
        else:
            crash_point("task-created", task["metadata"]["namespace"])
            label = metrics.queue_label(scheduler_of(task))
            metrics.TASKS_CREATED.labels(scheduler_id=label).inc()
            made_for = parse_time(task["spec"].get("deadlineAt"))
            if made_for is not None and trigger_of(task) != TRIGGER_BACKFILL:
                lag = (self._now() - made_for).total_seconds()
                metrics.TASK_CREATION_LAG.labels(scheduler_id=label).observe(max(lag, 0.0))
        self._store.put_task(created)

    async def _cancel(self, key: Key, reason: str, message: str, now: datetime) -> None:
        """Cancelled is written here; the Task controller stops its Job."""
        await self._task_status.update(
            key, transition(TaskPhase.CANCELLED, now, reason=reason, message=message)
        )

    async def _delete_task(self, key: Key) -> None:
        try:
            await self._kube.delete("tasks", *key)
        except ApiError as error:
            if not error.not_found:
                raise

    async def _check_template(self, key: Key, body: Body, *, pull: bool) -> str | None:
        """Ask the API server, with a dry run, whether the template makes a valid Job; once
        per generation, and not again after a restart for a generation already accepted.
        A pull queue's Tasks make no Job: their template is not read."""
        generation = int(body["metadata"].get("generation", 0))
        checked = self._template_checks.get(key)
        if checked is not None and checked[0] == generation:
            return checked[1]
        reading = read_schedule(body, pull=pull)
        if pull or reading.spec is None or reading.problem is not None or template_accepted(body):
            return None
        problem = await self._dry_run(body, reading.spec)
        self._template_checks[key] = (generation, problem)
        return problem

    async def _dry_run(self, body: Body, spec: ScheduleSpec) -> str | None:
        probe = task_for_run(body, spec, "dry-run-probe", self._now())
        probe["metadata"]["uid"] = body["metadata"]["uid"]
        try:
            await self._kube.create_job(build_job(probe), dry_run=True)
        except ValueError as error:
            return f"jobTemplate cannot be made into a Job: {error}"
        except ApiError as error:
            if not error.user_error:
                raise
            return f"jobTemplate is rejected by the API server: {error.message}"
        return None
