"""Schedules: keep each one's status true, and make a Task at each of its deadlines.

One loop keeps every deadline of every schedule in a heap and sleeps until the
earliest: no timer per object. The steps of `reconcile` and `fire` read top to
bottom; each decision comes from the pure core (`kadence.deadlines`,
`kadence.queue`, `kadence.status`), and this module only reads and writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from kadence import metrics
from kadence.background import spawn, spawn_later
from kadence.deadlines import DuePlan, plan_due
from kadence.jobs import build_job
from kadence.kube import ApiError, Kube
from kadence.models import (
    ConcurrencyPolicy,
    HistoryEntry,
    ScheduleSpec,
    ScheduleStatus,
)
from kadence.naming import (
    RUN_REQUEST_ANNOTATION,
    default_hash,
    task_name_for_deadline,
    task_name_for_run_request,
)
from kadence.queue import decide_concurrency
from kadence.resources import read_schedule, task_for_run, unrecorded_runs
from kadence.status import (
    disabled_condition,
    invalid_condition,
    parse_time,
    record_created,
    record_finished,
    record_missed,
    record_skipped,
    scheduled_condition,
    set_condition,
)
from kadence.status_writer import StatusWriter
from kadence.store import Body, Key, Store, key_of

if TYPE_CHECKING:
    from kadence.tasks import TaskController

log = logging.getLogger(__name__)

FIRE_CONCURRENCY = 64
RETRY_SECONDS = 5.0


class ScheduleController:
    """Reconciles Schedules and fires their deadlines from one heap."""

    def __init__(
        self,
        kube: Kube,
        store: Store,
        writer: StatusWriter[ScheduleStatus],
        now: Callable[[], datetime],
    ) -> None:
        self._kube = kube
        self._store = store
        self._writer = writer
        self._now = now
        self.tasks: TaskController
        self._heap: list[tuple[datetime, Key]] = []
        self._due: dict[Key, datetime] = {}
        self._wake = asyncio.Event()
        self._locks: dict[Key, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._template_checks: dict[Key, tuple[int, str | None]] = {}
        self._warned: dict[Key, str] = {}
        self._fire_slots = asyncio.Semaphore(FIRE_CONCURRENCY)

    # -- events --------------------------------------------------------------------

    async def changed(self, key: Key) -> None:
        """A Schedule was listed, added or modified."""
        async with self._locks[key]:
            try:
                await self._reconcile(key)
            except Exception as error:  # one schedule must never stop the rest
                self._retry_later(key, error)

    def deleted(self, key: Key) -> None:
        """Its tasks and their Jobs go with it (ownerReferences); forget its deadline."""
        self._store.drop_schedule(key)
        self._due.pop(key, None)
        self._template_checks.pop(key, None)
        self._warned.pop(key, None)
        self._locks.pop(key, None)

    # -- reconcile -----------------------------------------------------------------

    async def _reconcile(self, key: Key) -> None:
        body = self._store.schedules.get(key)
        if body is None:
            return
        now = self._now()
        generation = body["metadata"].get("generation")

        # 1. Is the spec usable? What the CRD schema cannot reject is reported here.
        reading = read_schedule(body)
        spec, timing, problem = reading.spec, reading.timing, reading.problem
        if problem is None and spec is not None:
            problem = await self._check_template(key, body, spec)
        if problem is not None or spec is None or timing is None:
            await self._mark_invalid(key, body, problem or "invalid spec", generation, now)
            return
        self._warned.pop(key, None)

        # 2. The next deadline: kept, or recomputed from now after an edit of the timing.
        def settle(status: ScheduleStatus, current: Body) -> ScheduleStatus:
            status = status.model_copy(deep=True)
            if status.observed_timing != timing.signature:
                status.deadline_at = timing.first_deadline(
                    now=now,
                    created_at=parse_time(current["metadata"]["creationTimestamp"]),
                    last_finished_at=_last_finished_at(status),
                    has_run=status.counts.created > 0,
                    active=bool(status.active),
                )
                status.observed_timing = timing.signature
            elif status.deadline_at is None and not status.active:
                status.deadline_at = timing.after_run(now)
            condition = (
                scheduled_condition(generation) if spec.enabled else disabled_condition(generation)
            )
            status.conditions = set_condition(status.conditions, condition, now)
            status.observed_generation = generation
            return status

        written = await self._writer.update(key, settle)
        if written is None:
            return
        status = ScheduleStatus.model_validate(written.get("status") or {})

        # 3. Disabled: no new tasks, queued ones cancelled; enabled: wait for the deadline.
        if spec.enabled:
            self._arm(key, status.deadline_at)
        else:
            self._due.pop(key, None)
            await self.tasks.cancel_queued_of(key, "its schedule was disabled")

        # 4. Run now, when asked through the annotation.
        request = (body["metadata"].get("annotations") or {}).get(RUN_REQUEST_ANNOTATION)
        if request and request != status.last_handled_run_request:
            await self._run_requested(key, written, spec, request, now)

    async def _check_template(self, key: Key, body: Body, spec: ScheduleSpec) -> str | None:
        """Ask the API server, with a dry run, whether the template makes a valid Job."""
        generation = body["metadata"].get("generation", 0)
        checked = self._template_checks.get(key)
        if checked is not None and checked[0] == generation:
            return checked[1]
        if _accepted_before(body, generation):
            return None
        probe = task_for_run(body, spec, "dry-run-probe", self._now())
        probe["metadata"]["uid"] = body["metadata"]["uid"]
        try:
            await self._kube.create_job(build_job(probe), dry_run=True)
            problem = None
        except ApiError as error:
            if not error.user_error:
                raise
            problem = f"jobTemplate is rejected by the API server: {error.message}"
        self._template_checks[key] = (generation, problem)
        return problem

    async def _mark_invalid(
        self, key: Key, body: Body, problem: str, generation: int | None, now: datetime
    ) -> None:
        self._due.pop(key, None)

        def invalid(status: ScheduleStatus, _: Body) -> ScheduleStatus:
            status = status.model_copy(deep=True)
            status.conditions = set_condition(
                status.conditions, invalid_condition(problem, generation), now
            )
            status.observed_generation = generation
            return status

        await self._writer.update(key, invalid)
        if self._warned.get(key) != problem:
            self._warned[key] = problem
            self._kube.event(body, "Warning", "InvalidSpec", problem)

    async def _run_requested(
        self, key: Key, body: Body, spec: ScheduleSpec, request: str, now: datetime
    ) -> None:
        name = task_name_for_run_request(key[1], request)
        await self._create_task(body, spec, name, now)

        def handled(status: ScheduleStatus, _: Body) -> ScheduleStatus | None:
            if status.last_handled_run_request == request:
                return None
            status = record_created(status, name, now)
            status.last_handled_run_request = request
            return status

        await self._writer.update(key, handled)
        self._kube.event(body, "Normal", "RunRequested", f"created task {name}")

    # -- deadlines -----------------------------------------------------------------

    def _arm(self, key: Key, deadline: datetime | None) -> None:
        if deadline is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == deadline:
            return
        self._due[key] = deadline
        heapq.heappush(self._heap, (deadline, key))
        self._wake.set()

    async def run(self) -> None:
        """The one loop: sleep until the earliest deadline, then fire what is due."""
        while True:
            now = self._now()
            while self._heap and self._heap[0][0] <= now:
                deadline, key = heapq.heappop(self._heap)
                if self._due.get(key) == deadline:
                    del self._due[key]
                    spawn(self._fire(key, deadline))
            delay = (self._heap[0][0] - now).total_seconds() if self._heap else 3600.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.0))

    async def _fire(self, key: Key, deadline: datetime) -> None:
        async with self._fire_slots, self._locks[key]:
            try:
                await self._fire_locked(key, deadline)
            except Exception as error:  # its deadline must not be dropped
                self._due.pop(key, None)
                self._retry_later(key, error)

    def _retry_later(self, key: Key, error: Exception) -> None:
        """Reconcile again in a while: the API may be back, a fixed bug deployed."""
        if isinstance(error, ApiError):
            log.warning("schedule %s/%s: %s; retrying in %ss", *key, error, RETRY_SECONDS)
        else:
            log.exception("schedule %s/%s: unexpected error; retrying in %ss", *key, RETRY_SECONDS)
        spawn_later(RETRY_SECONDS, lambda: self.changed(key))

    async def _fire_locked(self, key: Key, deadline: datetime) -> None:
        body = self._store.schedules.get(key)
        if body is None:
            return
        reading = read_schedule(body)
        spec, timing, problem = reading.spec, reading.timing, reading.problem
        status = ScheduleStatus.model_validate(body.get("status") or {})
        if problem or spec is None or timing is None or not spec.enabled:
            return
        if status.deadline_at != deadline or status.observed_timing != timing.signature:
            self._arm(key, status.deadline_at)
            return
        now = self._now()

        # 1. Which deadlines run, which are missed (operator down, schedule re-enabled).
        plan: DuePlan = plan_due(
            timing,
            deadline_at=deadline,
            now=now,
            missed_run_policy=spec.missed_run_policy,
            missed_run_limit=spec.missed_run_limit,
            starting_deadline_seconds=spec.starting_deadline_seconds,
        )

        # 2. A Task that an earlier attempt made for a due deadline, but could not record
        #    (a crash between the two writes), counts as run, not missed.
        running = {task_name_for_deadline(key[1], run_at) for run_at in plan.run}
        adopted = [
            task
            for task in unrecorded_runs(
                key[1], self._store.tasks_of_schedule(key), status, deadline
            )
            if key_of(task)[1] not in running
        ]

        # 3. Each run: the concurrency policy decides, then a Task named for its deadline.
        created: list[tuple[str, datetime]] = []
        skipped: list[str] = []
        task_hash = spec.hash or default_hash(spec.data)
        for run_at in plan.run:
            name = task_name_for_deadline(key[1], run_at)
            holders = self.tasks.holders(key[0], spec.scheduler_id, task_hash, exclude=name)
            decision = decide_concurrency(ConcurrencyPolicy(spec.concurrency_policy), holders)
            if not decision.create:
                skipped.append(decision.reason)
                continue
            for holder in decision.cancel:
                await self.tasks.cancel((key[0], holder), f"replaced by {name}")
            await self._create_task(body, spec, name, run_at)
            created.append((name, run_at))
            metrics.DEADLINE_LAG.observe(max((self._now() - run_at).total_seconds(), 0.0))

        # 4. One status write for all of it, applied only if the deadline has not moved.
        next_deadline = timing.next_after_fire(plan, created=bool(created))
        missed = max(plan.missed - len(adopted), 0)

        def fired(status: ScheduleStatus, _: Body) -> ScheduleStatus | None:
            if status.deadline_at != deadline:
                return None
            for name in [*(key_of(t)[1] for t in adopted), *(name for name, _ in created)]:
                status = record_created(status, name, now)
            if skipped:
                status = record_skipped(status, len(skipped))
            if missed:
                status = record_missed(status, missed, now)
            status = status.model_copy(update={"deadline_at": next_deadline})
            return status

        written = await self._writer.update(key, fired)
        for task in adopted:
            await self.tasks.report(task)
        for name, run_at in created:
            log.info("schedule %s/%s: task %s for %s", *key, name, run_at.isoformat())
            self._kube.event(body, "Normal", "TaskCreated", f"created task {name}")
        if skipped:
            metrics.DEADLINES_SKIPPED.inc(len(skipped))
            self._kube.event(body, "Normal", "DeadlineSkipped", skipped[-1])
        if missed:
            metrics.DEADLINES_MISSED.inc(missed)
            self._kube.event(
                body,
                "Warning",
                "DeadlineMissed",
                f"{missed} deadline(s) missed ({spec.missed_run_policy} policy)",
            )
        if written is not None:
            self._arm(key, ScheduleStatus.model_validate(written.get("status") or {}).deadline_at)

    async def _create_task(
        self, body: Body, spec: ScheduleSpec, name: str, deadline: datetime
    ) -> None:
        """Create the Task; AlreadyExists means an earlier attempt made it, which is success."""
        try:
            await self._kube.create("tasks", task_for_run(body, spec, name, deadline))
        except ApiError as error:
            if not error.already_exists:
                raise
        else:
            metrics.TASKS_CREATED.labels(scheduler_id=spec.scheduler_id).inc()

    # -- runs finishing ------------------------------------------------------------

    async def run_finished(self, key: Key, entry: HistoryEntry) -> bool:
        """Record a finished run once; an interval schedule's next deadline counts from it."""
        body = self._store.schedules.get(key)
        if body is None:
            return False
        reading = read_schedule(body)
        spec, timing = reading.spec, reading.timing
        history_limit = spec.history_limit if spec is not None else 10
        now = self._now()
        recorded = False

        def finished(status: ScheduleStatus, _: Body) -> ScheduleStatus | None:
            nonlocal recorded
            if entry.task not in status.active:
                return None
            new = record_finished(status, entry, history_limit, now)
            recorded = True
            if timing is not None and timing.interval is not None and new.deadline_at is None:
                new = new.model_copy(
                    update={"deadline_at": timing.after_run(entry.finished_at or now)}
                )
            return new

        written = await self._writer.update(key, finished)
        if written is not None and spec is not None and spec.enabled:
            self._arm(key, ScheduleStatus.model_validate(written.get("status") or {}).deadline_at)
        return recorded


def _accepted_before(body: Body, generation: int) -> bool:
    """Whether this generation was already found valid (before a restart): no new dry run."""
    status = ScheduleStatus.model_validate(body.get("status") or {})
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    return (
        status.observed_generation == generation
        and ready is not None
        and ready.reason != "InvalidSpec"
    )


def _last_finished_at(status: ScheduleStatus) -> datetime | None:
    return next((h.finished_at for h in status.history if h.finished_at is not None), None)
