"""The Task controller: follow each Task's Job and carry its progress to the Task.

Each reconcile reads one Task and the Job it controls, asks the pure `plan_task` what
changes, and writes that; a cancelled Task's Job is deleted. Admission and dispatch are
the queue controller's (`kadence.queues`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from kadence.kube import ApiError, KubeApi
from kadence.models import TaskStatus
from kadence.status_writer import StatusWriter
from kadence.store import Key, Store, key_of
from kadence.task_plan import plan_task
from kadence.workqueue import WorkQueue

log = logging.getLogger(__name__)

WORKERS = 16


class TaskController:
    """Reconciles Tasks from a work queue."""

    def __init__(
        self,
        kube: KubeApi,
        store: Store,
        status: StatusWriter[TaskStatus],
        now: Callable[[], datetime],
    ) -> None:
        self._kube = kube
        self._store = store
        self._status = status
        self._now = now
        self.queue: WorkQueue[Key] = WorkQueue("tasks", self.reconcile, workers=WORKERS)

    async def reconcile(self, key: Key) -> None:
        task = self._store.tasks.get(key)
        if task is None:
            self.queue.forget(key)
            return
        job = self._store.job_of(task)
        now = self._now()
        plan = plan_task(task, job, now)
        if plan.status is not None:
            # On a conflict the plan is made again from the Task as it is now.
            await self._status.update(key, lambda _, current: plan_task(current, job, now).status)
        if plan.delete_job and job is not None:
            log.info("task %s/%s: cancelled; deleting its Job", *key)
            try:
                await self._kube.delete_job(*key_of(job))
            except ApiError as error:
                if not error.not_found:
                    raise
