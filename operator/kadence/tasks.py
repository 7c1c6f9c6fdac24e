"""The Task controller: follow each Task's Job and carry its progress to the Task.

Each reconcile reads one Task and the Job it controls, asks the pure `plan_task` what
changes, and writes that; a cancelled Task's Job is deleted. In a pull queue it follows
the runner's claim instead, and comes back when the claim's lease runs out. Admission,
dispatch and grants are the queue controller's (`kadence.queues`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from kadence import metrics
from kadence.config import OperatorConfig
from kadence.kube import ApiError, KubeApi
from kadence.models import TaskPhase, TaskStatus
from kadence.resources import phase_of, scheduler_of
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
        """One reconcile; returns the seconds until its Job's start timeout or its claim's
        lease runs out, if one does."""
        task = self._store.tasks.get(key)
        if task is None:
            self.queue.forget(key)
            return None
        job = self._store.job_of(task)
        now = self._now()
        scheduler_id = scheduler_of(task)
        timeout = self._config.queues.start_timeout_of(scheduler_id)
        pull = self._config.queues.pull_of(scheduler_id)
        plan = plan_task(task, job, now, timeout, pull)
        if plan.status is not None:
            # On a conflict the plan is made again from the Task as it is now; what the
            # last try decided is what was written.
            applied = [plan]

            def again(_: TaskStatus, current: Body) -> TaskStatus | None:
                applied.append(plan_task(current, job, now, timeout, pull))
                return applied[-1].status

            written = await self._status.update(key, again)
            plan = applied[-1]
            if written is not None and plan.lost is not None:
                self._lost(written, scheduler_id, *plan.lost)
        if plan.delete_job and job is not None:
            log.info("task %s/%s: finished; deleting its unfinished Job", *key)
            try:
                await self._kube.delete_job(*key_of(job))
            except ApiError as error:
                if not error.not_found:
                    raise
        return (plan.wake_at - now).total_seconds() if plan.wake_at is not None else None

    def _lost(self, task: Body, scheduler_id: str, kind: str, reason: str, message: str) -> None:
        """A runner's claim ended before its Task: counted, and told by an Event when the
        Task went back to its queue (one that failed is told of by `report_finished`)."""
        label = metrics.queue_label(scheduler_id)
        metrics.CLAIMS_LOST.labels(scheduler_id=label, reason=reason).inc()
        if phase_of(task) is TaskPhase.QUEUED:
            self._kube.event(task, kind, reason, message)
        # %r: the message quotes the runner's holder, whose newlines must not forge log lines.
        log.info("task %s/%s: %r", *key_of(task), message)
