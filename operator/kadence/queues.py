"""The queue controller: admit new Tasks to their queue and turn its heads into Jobs.

A queue is one namespace's Tasks of a `schedulerId`, or the Tasks of the namespaces
that the configuration lets share one (`QueueKey`). Each pass reads the queue's
unfinished Tasks and Jobs from the store, asks the pure `plan_queue` which Tasks join or
are refused and which heads fit the capacity, and carries that out. One worker holds a
queue at a time, so admissions of one queue see each other and its capacity is never
counted twice. While the admission policies are missing, nothing is dispatched.

In a pull queue the heads are the Tasks that runners asked to claim: a head leaves by a
grant written to its status, and requests that outlived their lease are removed; the
pass comes back when the first request left waiting runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from kadence import metrics
from kadence.config import OperatorConfig, QueueKey
from kadence.faults import crash_point
from kadence.jobs import DataTooLarge, build_job
from kadence.kube import ApiError, KubeApi
from kadence.models import TaskPhase, TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TRIGGER_LABEL, TRIGGER_MANUAL
from kadence.resources import (
    controller_uid,
    phase_of,
    scheduler_of,
    service_account_of,
    waiting_since,
)
from kadence.status import JOB_REFUSED, observe_job, parse_time
from kadence.status_writer import StatusWriter
from kadence.store import Body, Key, Store, key_of
from kadence.task_plan import (
    Admission,
    QueueRules,
    admission_status,
    claim_of,
    grant_claim,
    in_turn,
    plan_queue,
    transition,
    withdraw_request,
)
from kadence.workqueue import WorkQueue

log = logging.getLogger(__name__)

WORKERS = 8
RESYNC_SECONDS = 30.0


class QueueController:
    """Reconciles queues from a work queue keyed by `QueueKey`."""

    def __init__(
        self,
        kube: KubeApi,
        store: Store,
        status: StatusWriter[TaskStatus],
        config: OperatorConfig,
        now: Callable[[], datetime],
        *,
        held: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._kube = kube
        self._store = store
        self._status = status
        self._config = config
        self._now = now
        self._held = held
        self._states: dict[QueueKey, metrics.QueueState] = {}
        self.queue: WorkQueue[QueueKey] = WorkQueue("queues", self.reconcile, workers=WORKERS)

    def queue_of(self, namespace: str, scheduler_id: str) -> QueueKey:
        return self._config.queues.queue_of(namespace, scheduler_id)

    def add_all(self) -> None:
        """Every queue with unfinished Tasks, so that no missed event can stall one."""
        for namespace, scheduler_id in self._store.queues():
            self.queue.add(self.queue_of(namespace, scheduler_id))

    async def resync(self) -> None:
        while True:
            self.add_all()
            await asyncio.sleep(RESYNC_SECONDS)

    async def reconcile(self, queue: QueueKey) -> float | None:
        """One pass; returns the seconds until the first waiting claim request runs out."""
        queues = self._config.queues
        sharing = queues.sharing(queue)
        namespaces = sharing.namespaces if sharing is not None else [queue.namespace or ""]
        sid = queue.scheduler_id
        rules = QueueRules(
            capacity=queues.capacity_of(queue),
            shared=sharing is not None,
            namespace_capacity=sharing.namespace_capacity if sharing is not None else None,
            priorities=(
                (sharing.priority.min, sharing.priority.max) if sharing is not None else None
            ),
            held=self._held() is not None,
            pull=queues.pull_of(sid) is not None,
        )
        tasks = [task for ns in namespaces for task in self._store.unfinished(ns, sid)]
        now = self._now()
        plan = plan_queue(
            tasks,
            self._store.jobs_by_owner,
            [job for ns in namespaces for job in self._store.unfinished_jobs(ns, sid)],
            self._store.task_uids,
            rules,
            now=now,
            item_of=self._store.queue_item,
        )
        # A Task that waits for its work, not for a slot, is not what a queue's wait measures.
        slot_waiters = [task for task in tasks if key_of(task) not in plan.held_for_work]
        self._observe(queue, slot_waiters, plan.depth, plan.active, rules.capacity)
        joining = {admission.key: admission for admission in plan.admit if admission.dispatch}
        await asyncio.gather(*(self._admit(admission, now) for admission in plan.admit))
        await asyncio.gather(*(self._start(sid, key, joining.get(key)) for key in plan.dispatch))
        await asyncio.gather(*(self._grant(sid, key, now) for key in plan.grant))
        await asyncio.gather(
            *(self._status.update(key, withdraw_request(now)) for key in plan.withdraw)
        )
        await asyncio.gather(*(self._say(key, message, now) for key, message in plan.messages))
        if plan.wake_at is None:
            return None
        return max((plan.wake_at - now).total_seconds(), 0.0)

    def states(self) -> list[metrics.QueueState]:
        """Each queue as its last reconcile saw it, for the metrics."""
        return list(self._states.values())

    def _observe(
        self, queue: QueueKey, tasks: list[Body], depth: int, active: int, capacity: int
    ) -> None:
        """Remember the queue for the metrics; an empty queue is forgotten unless the
        configuration names it, so invented schedulerIds cannot grow the operator."""
        queues = self._config.queues
        named = (
            queue.scheduler_id in queues.capacity
            or queues.sharing(queue) is not None
            or queues.pull_of(queue.scheduler_id) is not None
        )
        if not (depth or active or named):
            self._states.pop(queue, None)
            return
        waiting = [
            parse_time((task.get("status") or {}).get("queuedAt"))
            for task in tasks
            if phase_of(task) is TaskPhase.QUEUED
        ]
        self._states[queue] = metrics.QueueState(
            namespace=queue.namespace or "",
            scheduler_id=queue.scheduler_id,
            pending=depth,
            active=active,
            capacity=capacity,
            oldest_pending=min((moment for moment in waiting if moment is not None), default=None),
        )

    async def _admit(self, admission: Admission, now: datetime) -> None:
        key = admission.key
        if admission.label:
            labels = {SCHEDULER_ID_LABEL: self._queue_of(key), TRIGGER_LABEL: TRIGGER_MANUAL}
            patch = {"metadata": {"labels": labels}}
            self._store.put_task(await self._kube.patch("tasks", *key, patch))
        if admission.dispatch:
            return  # its status is written once, as it leaves (`_start`)
        await self._status.update(key, admission_status(admission, now))

    async def _say(self, key: Key, message: str, now: datetime) -> None:
        """A Queued Task's message: what it waits for (it stays Queued)."""
        await self._status.update(key, transition(TaskPhase.QUEUED, now, message=message))

    def _queue_of(self, key: Key) -> str:
        task = self._store.tasks.get(key)
        return scheduler_of(task) if task is not None else ""

    async def _start(self, scheduler_id: str, key: Key, joining: Admission | None) -> None:
        """Create the Task's Job, then mark it Dispatched; a Job that cannot be made fails
        the Task with the reason, so its slot is never held by something that cannot run.
        A Task `joining` the queue in this pass goes from Pending to Dispatched in one
        write, its queuedAt and dispatchedAt the same instant."""
        task = self._store.tasks.get(key)
        expected = TaskPhase.PENDING if joining is not None else TaskPhase.QUEUED
        if task is None or phase_of(task) is not expected:
            return
        now = self._now()
        account = service_account_of(task)
        if account and not await self._kube.service_account_exists(key[0], account):
            await self._fail(
                task, f"ServiceAccount {account} does not exist in namespace {key[0]}", now
            )
            return
        try:
            job = await self._create_job(task)
        except (DataTooLarge, ValueError) as error:
            await self._fail(task, str(error), now)
            return
        except ApiError as error:
            if not error.user_error:
                raise
            await self._fail(task, f"the Job was refused: {error.message}", now)
            return
        self._store.put_job(job)
        crash_point("job-created", key[0])
        name = job["metadata"]["name"]
        dispatched = transition(
            TaskPhase.DISPATCHED, now, message=observe_job(job).message, job_name=name
        )
        if joining is not None:
            dispatched = in_turn(admission_status(joining, now), dispatched)
        await self._status.update(key, dispatched)
        self._dispatched(task, scheduler_id, now)
        log.info("task %s/%s: dispatched as Job %s", *key, name)

    async def _grant(self, scheduler_id: str, key: Key, now: datetime) -> None:
        """Grant the claim a runner asked for: the Task becomes Dispatched to it."""
        task = self._store.tasks.get(key)
        written = await self._status.update(key, grant_claim(now))
        claim = claim_of(written) if written is not None else None
        if task is None or written is None or claim is None or claim.claimed_at != now:
            return  # the request was withdrawn meanwhile: nothing granted
        label = metrics.queue_label(scheduler_id)
        metrics.CLAIMS_GRANTED.labels(scheduler_id=label).inc()
        self._waited(task, label, now)
        # %r: a holder is the runner's free text; a newline in it must not forge a log line.
        log.info("task %s/%s: claimed by %r", *key, claim.holder)

    @staticmethod
    def _dispatched(task: Body, scheduler_id: str, now: datetime) -> None:
        label = metrics.queue_label(scheduler_id)
        metrics.TASKS_DISPATCHED.labels(scheduler_id=label).inc()
        made_for = waiting_since(task)
        if made_for is not None:
            lag = max((now - made_for).total_seconds(), 0.0)
            metrics.JOB_CREATION_LAG.labels(scheduler_id=label).observe(lag)
        QueueController._waited(task, label, now)

    @staticmethod
    def _waited(task: Body, label: str, now: datetime) -> None:
        """How long it waited in its queue: none when it left as it joined."""
        queued_at = parse_time((task.get("status") or {}).get("queuedAt")) or now
        wait = max((now - queued_at).total_seconds(), 0.0)
        metrics.TASK_WAIT.labels(scheduler_id=label).observe(wait)

    async def _create_job(self, task: Body) -> Body:
        """Create the Job; one that exists already is taken only if this Task controls it."""
        job = build_job(task)
        try:
            return await self._kube.create_job(job)
        except ApiError as error:
            if not error.already_exists:
                raise
        existing = await self._kube.get_job(*key_of(task))
        if controller_uid(existing) != task["metadata"]["uid"]:
            raise ApiError(
                409, "AlreadyExists", f"a Job named {key_of(task)[1]} exists and is not this task's"
            )
        return existing

    async def _fail(self, task: Body, message: str, now: datetime) -> None:
        await self._status.update(
            key_of(task), transition(TaskPhase.FAILED, now, reason=JOB_REFUSED, message=message)
        )
