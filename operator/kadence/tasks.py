"""The Task controller: follow each Task's Job and carry its progress to the Task.

Each reconcile reads one Task and the Job it controls, asks the pure `plan_task` what
changes, and writes that; a cancelled Task's Job is deleted. Admission and dispatch are
the queue controller's (`kadence.queues`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from kadence import metrics
from kadence.config import OperatorConfig
from kadence.kube import ApiError, KubeApi
from kadence.models import TaskPhase, TaskStatus
from kadence.resources import scheduler_of
from kadence.status import finished_now
from kadence.status_writer import StatusWriter
from kadence.store import Body, Key, Store, key_of
from kadence.task_plan import plan_task
from kadence.workqueue import WorkQueue

log = logging.getLogger(__name__)

WORKERS = 16


def report_finished(kube: KubeApi) -> Callable[[Body, Body], None]:
    """What follows each Task status write: a Task moved into a final phase is counted,
    and, unless it completed, told in an Event whose reason is the one its conditions
    carry. Once per write that ended it, whichever controller wrote it."""

    def written(old: Body, new: Body) -> None:
        ended = finished_now(old, new)
        if ended is None:
            return
        phase, reason, message = ended
        label = metrics.queue_label(scheduler_of(new))
        metrics.TASKS_FINISHED.labels(scheduler_id=label, phase=phase).inc()
        if phase is not TaskPhase.COMPLETED:
            kind = "Warning" if phase is TaskPhase.FAILED else "Normal"
            kube.event(new, kind, reason, message)

    return written


class TaskController:
    """Reconciles Tasks from a work queue."""

    def __init__(
        self,
        kube: KubeApi,
        store: Store,
        status: StatusWriter[TaskStatus],
        config: OperatorConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._kube = kube
        self._store = store
        self._status = status
        self._config = config
        self._now = now
        self.queue: WorkQueue[Key] = WorkQueue("tasks", self.reconcile, workers=WORKERS)

    async def reconcile(self, key: Key) -> float | None:
        """One reconcile; returns the seconds until its Job's start timeout, if one runs."""
        task = self._store.tasks.get(key)
        if task is None:
            self.queue.forget(key)
            return None
        job = self._store.job_of(task)
        now = self._now()
        timeout = self._config.queues.start_timeout_of(scheduler_of(task))
        plan = plan_task(task, job, now, timeout)
        if plan.status is not None:
            # On a conflict the plan is made again from the Task as it is now.
            await self._status.update(
                key, lambda _, current: plan_task(current, job, now, timeout).status
            )
        if plan.delete_job and job is not None:
            log.info("task %s/%s: finished; deleting its unfinished Job", *key)
            try:
                await self._kube.delete_job(*key_of(job))
            except ApiError as error:
                if not error.not_found:
                    raise
        return (plan.wake_at - now).total_seconds() if plan.wake_at is not None else None
