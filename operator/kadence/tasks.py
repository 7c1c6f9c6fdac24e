"""Tasks: admit them to their queue, dispatch the head of each queue as a Job within
its capacity, follow the Job to the end, and report each finished run to its Schedule.

The queue of a scheduler is its Queued tasks in the store, ordered by the pure
`kadence.queue`; capacity counts tasks Dispatched or Running, plus a Queued task
whose Job already exists (a crash between creating the Job and writing the task's
status), so a restart never exceeds a capacity nor runs a task twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from kadence import metrics
from kadence.background import spawn, spawn_later
from kadence.config import OperatorConfig
from kadence.jobs import DataTooLarge, build_job, job_belongs_to
from kadence.kube import ApiError, Kube
from kadence.models import TaskPhase, TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TASK_LABEL
from kadence.queue import QueueItem, duplicate_of, plan_dispatch
from kadence.resources import (
    deadline_of_run,
    history_entry,
    phase_of,
    queue_item,
    service_account_of,
    task_hash,
    task_problem,
)
from kadence.status import FinishedTask, advance_task, observe_job, parse_time, tasks_to_prune
from kadence.status_writer import StatusWriter
from kadence.store import Body, Key, Store, key_of, schedule_of, scheduler_of

if TYPE_CHECKING:
    from kadence.schedules import ScheduleController

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0
RETRY_SECONDS = 5.0


class TaskController:
    """Admits, dispatches and follows Tasks; one dispatch pass per dirty queue."""

    def __init__(
        self,
        kube: Kube,
        store: Store,
        writer: StatusWriter[TaskStatus],
        config: OperatorConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._kube = kube
        self._store = store
        self._writer = writer
        self._config = config
        self._now = now
        self.schedules: ScheduleController
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._starting: dict[str, set[Key]] = defaultdict(set)
        self._manual_admission: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._draining: dict[str, set[Key]] = defaultdict(set)

    # -- what other parts ask ------------------------------------------------------

    def effective_phase(self, task: Body) -> TaskPhase:
        """The task's phase, counting a Queued task whose Job exists as Dispatched."""
        phase = phase_of(task)
        if phase in (TaskPhase.PENDING, TaskPhase.QUEUED):
            job = self._store.job_for(task)
            if job is not None and job_belongs_to(job, task["metadata"]["uid"]):
                return TaskPhase.DISPATCHED
        return phase

    def holders(self, namespace: str, scheduler_id: str, hash_: str, exclude: str) -> list[str]:
        """Unfinished tasks with this hash in this queue and namespace (concurrency policy)."""
        return sorted(
            t["metadata"]["name"]
            for t in self._store.unfinished(scheduler_id)
            if t["metadata"]["namespace"] == namespace
            and t["metadata"]["name"] != exclude
            and task_hash(t) == hash_
        )

    def poke(self, scheduler_id: str) -> None:
        """Ask for a dispatch pass of this queue."""
        self._dirty.add(scheduler_id)
        self._wake.set()

    async def cancel(self, key: Key, message: str) -> None:
        """Cancel an unfinished task and delete its Job, if it has one."""
        now = self._now()
        written = await self._writer.update(
            key, lambda status, _: advance_task(status, TaskPhase.CANCELLED, now, message=message)
        )
        if written is not None and phase_of(written) == TaskPhase.CANCELLED:
            await self._delete_job(key)

    async def cancel_queued_of(self, schedule: Key, message: str) -> None:
        """Cancel a disabled schedule's waiting deadline runs; runs asked for by hand stay."""
        for task in self._store.tasks_of_schedule(schedule):
            by_deadline = deadline_of_run(schedule[1], task) is not None
            if by_deadline and phase_of(task) in (TaskPhase.PENDING, TaskPhase.QUEUED):
                await self.cancel(key_of(task), message)

    # -- events --------------------------------------------------------------------

    async def changed(self, key: Key) -> None:
        """A Task was listed, added or modified: move it along by its phase."""
        task = self._store.tasks.get(key)
        if task is None:
            return
        phase = phase_of(task)
        try:
            if phase == TaskPhase.PENDING:
                await self._admit(key, task)
            elif phase.finished:
                await self.report(task)
        except ApiError as error:
            log.warning("task %s/%s: %s; retrying in %ss", *key, error, RETRY_SECONDS)
            spawn_later(RETRY_SECONDS, lambda: self.changed(key))
        self.poke(scheduler_of(task))

    async def deleted(self, body: Body) -> None:
        """A deleted task's Job goes with it (ownerReference); its slot stays taken until
        that Job is gone or finished, so a capacity holds while the garbage collector works."""
        key = key_of(body)
        job = self._store.job_for(body)
        if job is not None and not phase_of(body).finished and not observe_job(job).phase.finished:
            self._draining[scheduler_of(body)].add(key)
        self._store.drop_task(key)
        schedule = schedule_of(body)
        if schedule is not None and not phase_of(body).finished:
            entry = history_entry(body, TaskPhase.CANCELLED, self._now())
            await self.schedules.run_finished(schedule, entry)
        self.poke(scheduler_of(body))

    def _task_of(self, job: Body) -> Body | None:
        """The task a Job of ours runs, if that task still exists and owns it."""
        task_name = (job["metadata"].get("labels") or {}).get(TASK_LABEL, "")
        task = self._store.tasks.get((job["metadata"]["namespace"], task_name))
        return task if task is not None and job_belongs_to(job, task["metadata"]["uid"]) else None

    def _drained(self, job: Body) -> None:
        """A Job of a deleted task is gone or finished: its slot is free."""
        for scheduler_id, keys in self._draining.items():
            if key_of(job) in keys:
                keys.discard(key_of(job))
                self.poke(scheduler_id)

    async def job_changed(self, job: Body) -> None:
        """A Job of ours moved: carry its progress to the task."""
        if observe_job(job).phase.finished:
            self._drained(job)
        task = self._task_of(job)
        if task is None:
            return
        seen = observe_job(job)
        now = self._now()
        await self._writer.update(
            key_of(task),
            lambda status, _: advance_task(
                status,
                seen.phase,
                now,
                message=seen.message or None,
                started_at=None if seen.phase == TaskPhase.DISPATCHED else seen.started_at,
                finished_at=seen.finished_at,
                job_name=job["metadata"]["name"],
            ),
        )

    async def job_deleted(self, job: Body) -> None:
        """A Job deleted by hand fails its unfinished task, so the queue does not stall."""
        self._store.drop_job(key_of(job))
        self._drained(job)
        task = self._task_of(job)
        if task is None:
            return
        if phase_of(task) in (TaskPhase.DISPATCHED, TaskPhase.RUNNING):
            now = self._now()
            message = f"its Job {job['metadata']['name']} was deleted before it finished"
            await self._writer.update(
                key_of(task),
                lambda status, _: advance_task(status, TaskPhase.FAILED, now, message=message),
            )

    # -- admission -----------------------------------------------------------------

    async def _admit(self, key: Key, task: Body) -> None:
        """Pending to Queued; a manual duplicate or an unusable task ends here.

        Manual tasks of one queue are admitted one at a time, so that duplicates created
        together see each other: the first is queued, the others are cancelled.
        """
        if schedule_of(task) is not None:
            await self._queue_or_refuse(key, task, duplicate=None)
            return
        async with self._manual_admission[scheduler_of(task)]:
            task = self._store.tasks.get(key) or task
            if phase_of(task) != TaskPhase.PENDING:
                return
            await self._label_manual(key, task)
            peers = [
                queue_item(t)
                for t in self._store.unfinished(scheduler_of(task))
                if phase_of(t) in (TaskPhase.QUEUED, TaskPhase.DISPATCHED, TaskPhase.RUNNING)
            ]
            duplicate = duplicate_of(key[1], task_hash(task), peers, namespace=key[0])
            await self._queue_or_refuse(key, task, duplicate)

    async def _label_manual(self, key: Key, task: Body) -> None:
        """Give a manual task the scheduler-id label that every task carries (for selectors)."""
        labels = task["metadata"].get("labels") or {}
        if labels.get(SCHEDULER_ID_LABEL) != scheduler_of(task):
            patch = {"metadata": {"labels": {SCHEDULER_ID_LABEL: scheduler_of(task)}}}
            self._store.put_task(await self._kube.patch("tasks", *key, patch))

    async def _queue_or_refuse(self, key: Key, task: Body, duplicate: str | None) -> None:
        now = self._now()
        problem = task_problem(task)
        if problem is not None:
            phase, message = TaskPhase.FAILED, problem
        elif duplicate is not None:
            phase, message = TaskPhase.CANCELLED, f"duplicate of task {duplicate}, already in queue"
        else:
            phase, message = TaskPhase.QUEUED, f"waiting in queue {scheduler_of(task)}"
        await self._writer.update(
            key, lambda status, _: advance_task(status, phase, now, message=message)
        )
        if phase != TaskPhase.QUEUED:
            self._kube.event(task, "Warning", f"Task{phase.value}", message)

    # -- finished runs -------------------------------------------------------------

    async def report(self, task: Body) -> None:
        """A finished task: tell its schedule once, then delete finished tasks beyond its
        history limits. Unfinished tasks are reported when they finish."""
        phase = phase_of(task)
        if not phase.finished:
            return
        schedule = schedule_of(task)
        if schedule is None:
            return
        entry = history_entry(task, phase, self._now())
        if await self.schedules.run_finished(schedule, entry):
            log.info("task %s/%s: %s", *key_of(task), phase.value)
            metrics.TASKS_FINISHED.labels(scheduler_id=scheduler_of(task), phase=phase.value).inc()
        await self._prune(schedule)

    async def _prune(self, schedule: Key) -> None:
        spec = (self._store.schedules.get(schedule) or {}).get("spec") or {}
        finished = [
            FinishedTask(
                name=t["metadata"]["name"],
                phase=phase_of(t),
                finished_at=parse_time((t.get("status") or {}).get("finishedAt"))
                or parse_time(t["metadata"]["creationTimestamp"]),  # type: ignore[arg-type]
            )
            for t in self._store.tasks_of_schedule(schedule)
            if phase_of(t).finished
        ]
        for name in tasks_to_prune(
            finished,
            int(spec.get("successfulTasksHistoryLimit", 3)),
            int(spec.get("failedTasksHistoryLimit", 1)),
        ):
            try:
                await self._kube.delete("tasks", schedule[0], name)
            except ApiError as error:
                if not error.not_found:
                    raise

    # -- dispatch ------------------------------------------------------------------

    async def run(self) -> None:
        """The dispatch loop: a pass over each queue that changed, and over all now and then."""
        for scheduler_id in self._store.scheduler_ids():
            self.poke(scheduler_id)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=RESYNC_SECONDS)
            except TimeoutError:
                self._dirty.update(self._store.scheduler_ids())
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for scheduler_id in sorted(dirty):
                self._dispatch(scheduler_id)

    def _dispatch(self, scheduler_id: str) -> None:
        starting = self._starting[scheduler_id]
        queued: list[QueueItem] = []
        active = len(starting) + len(self._draining[scheduler_id])
        for task in self._store.unfinished(scheduler_id):
            phase = self.effective_phase(task)
            if phase.active and key_of(task) not in starting:
                active += 1
            elif phase == TaskPhase.QUEUED and key_of(task) not in starting:
                queued.append(queue_item(task))
        capacity = self._config.queues.capacity_of(scheduler_id)
        metrics.QUEUE_DEPTH.labels(scheduler_id=scheduler_id).set(len(queued))
        metrics.QUEUE_ACTIVE.labels(scheduler_id=scheduler_id).set(active)
        for item in plan_dispatch(queued, active, capacity):
            key = (item.namespace, item.name)
            starting.add(key)
            spawn(self._start(scheduler_id, key))

    async def _start(self, scheduler_id: str, key: Key) -> None:
        """Create the task's Job and mark it Dispatched; the slot is held meanwhile."""
        try:
            task = self._store.tasks.get(key)
            if task is None or phase_of(task) != TaskPhase.QUEUED:
                return
            now = self._now()
            account = service_account_of(task)
            if account and not await self._kube.service_account_exists(key[0], account):
                message = f"ServiceAccount {account} does not exist in namespace {key[0]}"
                await self._fail(key, task, message, now)
                return
            try:
                job = await self._create_job(task)
            except DataTooLarge as error:
                await self._fail(key, task, str(error), now)
                return
            except ApiError as error:
                if not error.user_error:
                    raise
                await self._fail(key, task, f"the Job was refused: {error.message}", now)
                return
            await self._writer.update(
                key,
                lambda status, _: advance_task(
                    status,
                    TaskPhase.DISPATCHED,
                    now,
                    message=f"running as Job {job['metadata']['name']}",
                    job_name=job["metadata"]["name"],
                ),
            )
            metrics.TASKS_DISPATCHED.labels(scheduler_id=scheduler_id).inc()
            log.info("task %s/%s: dispatched as Job %s", *key, job["metadata"]["name"])
        except ApiError as error:
            log.warning("task %s/%s: %s; retrying in %ss", *key, error, RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)  # back off while holding the slot
        finally:
            self._starting[scheduler_id].discard(key)
            self.poke(scheduler_id)

    async def _create_job(self, task: Body) -> Body:
        """Create the Job; one that exists already is adopted only if it is this task's."""
        job = build_job(task)
        try:
            return await self._kube.create_job(job)
        except ApiError as error:
            if not error.already_exists:
                raise
        existing = await self._kube.get_job(*key_of(task))
        if not job_belongs_to(existing, task["metadata"]["uid"]):
            raise ApiError(
                409, "AlreadyExists", f"a Job named {key_of(task)[1]} exists and is not this task's"
            )
        return existing

    async def _fail(self, key: Key, task: Body, message: str, now: datetime) -> None:
        await self._writer.update(
            key, lambda status, _: advance_task(status, TaskPhase.FAILED, now, message=message)
        )
        self._kube.event(task, "Warning", "JobRefused", message)

    async def _delete_job(self, key: Key) -> None:
        try:
            await self._kube.delete_job(*key)
        except ApiError as error:
            if not error.not_found:
                raise
