"""The kopf layer: watch events become keys in the controllers' work queues, nothing else.

kopf watches Schedules, Tasks and the Jobs that carry the `kadence.dev/task` label. Each
event updates the store and marks dirty the keys it concerns: a Task's change concerns
the Task, its queue and the Schedule that controls it; a Job's change concerns its Task
and its queue. Handlers are `on.event` only: kopf keeps no state on the objects (no
annotations, no finalizers), so GitOps tools see only what they applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from kadence import GROUP, VERSION, metrics
from kadence.background import spawn
from kadence.config import OperatorConfig
from kadence.guard import AdmissionGuard
from kadence.kube import LIST_PAGE, ApiError, Kube, default_namespace
from kadence.leader import LeaderElector, identity
from kadence.models import TaskStatus
from kadence.naming import SCHEDULER_ID_LABEL, TASK_LABEL
from kadence.queues import QueueController
from kadence.resources import Body, Key, key_of, schedule_key_of, scheduler_of
from kadence.schedules import ScheduleController
from kadence.status_writer import StatusWriter
from kadence.store import Store, stale
from kadence.tasks import TaskController, report_finished

log = logging.getLogger(__name__)

RELIST_SECONDS = 300.0
RELIST_AFTER_LISTING = 2.0
"""Seconds after the last object kopf listed again before the store is checked against a
full list: one list for the whole burst of listed objects."""
RELIST_LISTING_LONGEST = 60.0
"""However long kopf's listing goes on, the store is checked this many seconds after it
began at the latest."""
LIST_RETRY_SECONDS = 2.0
"""How soon a list that failed as this replica started to lead is tried again."""
KINDS = ("schedules", "tasks", "jobs")
KINDS_OF_QUEUES = ("tasks", "jobs")
"""What the queues and the Task controller read: listed before the Schedules."""
DRAIN_SECONDS = 10.0
"""On a clean shutdown, how long the reconciles in flight may take to finish."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """The store, the three controllers, what routes events to them, and who may act.

    Every replica watches and keeps its store warm; only the one that holds the Lease
    (`leader`) runs the controllers' workers and writes.
    """

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.kube = Kube(may_write=self.may_write)
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
        election = config.leader_election
        self.elector = (
            LeaderElector(
                self.kube,
                election,
                election.lease_namespace or default_namespace(),
                identity(),
                started=self._lead,
                stopped=self._follow,
            )
            if election.enabled
            else None
        )
        self.schedules = ScheduleController(
            self.kube, self.store, task_status, utcnow, held=self.held,
            pull_queues=config.queues.pull,
        )  # fmt: skip
        self.tasks = TaskController(self.kube, self.store, task_status, config, utcnow)
        self.queues = QueueController(
            self.kube, self.store, task_status, config, utcnow, held=self.held
        )
        metrics.name_queues([*config.queues.capacity, *config.queues.shared, *config.queues.pull])
        self.started = False
        self._loops: list[asyncio.Task[None]] = []
        self._leading_loops: list[asyncio.Task[None]] = []
        self._relist_soon: asyncio.TimerHandle | None = None
        self._listing_began = 0.0
        self._listed: set[str] = set()
        self._kinds: dict[str, tuple[Mapping[Key, Body], Callable[[str, Body], None]]] = {
            "schedules": (self.store.schedules, self.schedule_event),
            "tasks": (self.store.tasks, self.task_event),
            "jobs": (self.store.jobs, self.job_event),
        }

    @property
    def controllers(self) -> tuple[ScheduleController, TaskController, QueueController]:
        return self.schedules, self.tasks, self.queues

    def may_write(self) -> bool:
        """Whether this replica may change the cluster now (the fence on every write)."""
        return self.elector is None or self.elector.leading

    def leading(self) -> bool:
        """Whether this replica acts: it leads and its workers run."""
        return self.may_write() and self.schedules.queue.working

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
        know whether the admission policies are in place before any Job could be made.
        Then lead at once (no leader election), or compete for the Lease.

        With leader election the Lease is tried once first: a replica that takes it at once
        (a restart) lists as it starts to lead (`_lead`), and a standby lists now, to
        take over warm. Either way everything is listed once, not twice."""
        if self.elector is not None:
            await self.elector.try_once()
        if not self.may_write():
            await self.relist(KINDS_OF_QUEUES, refresh=True)
        if self.guard is not None:
            await self.guard.check()
            self._loops.append(asyncio.create_task(self.guard.run(), name="kadence-guard"))
        else:
            log.warning(
                "admission.requirePolicies is false: Jobs are made without the "
                "admission policies that keep tenants apart (single-tenant use only)"
            )
        self._loops.append(asyncio.create_task(self._relist(), name="kadence-relist"))
        self.started = True
        if self.elector is None:
            await self._lead()
        else:
            self._loops.append(asyncio.create_task(self.elector.run(), name="kadence-election"))

    async def _lead(self) -> None:
        """Start acting. A replica that takes over lists everything again first, so that it
        decides on a world at least as new as the moment it won the Lease (its watches may
        lag what the old leader wrote last), and reconciles every object once.

        Tasks and Jobs come first and their controllers start on them: a queue needs
        nothing else, so the first dispatch does not wait for the list of every Schedule
        (the largest by far: 10,000 of them are 28 MB)."""
        await self._take_over(KINDS_OF_QUEUES)
        for key in list(self.store.tasks):
            self.tasks.queue.add(key)
        self.queues.add_all()
        self.tasks.queue.start()
        self.queues.queue.start()
        self._leading_loops = [asyncio.create_task(self.queues.resync(), name="kadence-resync")]
        await self._take_over(("schedules",))
        for key in list(self.store.schedules):
            self.schedules.queue.add(key)
        self.schedules.queue.start()

    async def _take_over(self, kinds: Sequence[str]) -> None:
        """List `kinds` as this replica starts to lead. If that fails, a store that was
        listed before (a warm standby) is acted on as watched; one never listed is not:
        no decision is made on half a world."""
        while True:
            try:
                await self.relist(kinds, refresh=True)
                return
            except ApiError as error:
                if self._listed.issuperset(kinds):
                    log.warning(
                        "listing on takeover failed; acting on the watched state: %s", error
                    )
                    return
                log.warning("listing %s failed; trying again: %s", ", ".join(kinds), error)
            await asyncio.sleep(LIST_RETRY_SECONDS)

    async def _follow(self) -> None:
        """Stop acting (the Lease is lost): the workers stop, the watches go on."""
        for loop in self._leading_loops:
            loop.cancel()
        self._leading_loops = []
        for controller in self.controllers:
            await controller.queue.stop()

    def readiness(self) -> dict[str, object]:
        """What /readyz says: started (ready to act or to take over), and who leads."""
        elector = self.elector
        return {
            "ready": self.started,
            "leading": self.leading(),
            "identity": elector.identity if elector is not None else None,
            "leader": elector.holder if elector is not None else None,
            "lease": f"{elector.namespace}/{elector.name}" if elector is not None else None,
        }

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

    async def relist(self, kinds: Sequence[str] = KINDS, *, refresh: bool = False) -> None:
        """List every object of `kinds` and forget what no longer exists; with `refresh`,
        also take in what the list shows (newer than the store only) and mark it dirty."""
        for namespace in self._scopes():
            for kind in kinds:
                stored, handle = self._kinds[kind]
                present: set[Key] = set()
                version = ""
                selector = TASK_LABEL if kind == "jobs" else ""
                async for page in self.kube.pages(kind, namespace, selector):
                    version = page.resource_version
                    present.update(key_of(body) for body in page.items)
                    if refresh:
                        for body in page.items:
                            handle("MODIFIED", body)
                for body in stale(stored, present, version, namespace):
                    log.info("%s/%s no longer exists; forgotten", *key_of(body))
                    handle("DELETED", body)
                self._listed.add(kind)

    def listed(self) -> None:
        """kopf listed a kind again (at start, or after its watch expired with 410 Gone or
        broke): what was deleted meanwhile came with no event, so list everything soon
        and forget it. One list follows a burst of listed objects, once it is over: kopf
        hands 10,000 listed Schedules on one by one over many seconds, and a full list
        of everything each time a short timer ran out cost several lists per burst."""
        if not self.started:
            return
        loop = asyncio.get_running_loop()
        if self._relist_soon is None:
            self._listing_began = loop.time()
        else:
            self._relist_soon.cancel()
        at = min(loop.time() + RELIST_AFTER_LISTING, self._listing_began + RELIST_LISTING_LONGEST)
        self._relist_soon = loop.call_at(at, self._relist_now)

    def _relist_now(self) -> None:
        self._relist_soon = None
        spawn(self.relist())

    def check_alive(self) -> None:
        """Fail the liveness probe when a worker or a loop has died, so that the pod is
        restarted."""
        for controller in self.controllers:
            if not controller.queue.alive:
                raise RuntimeError(f"the {controller.queue.name} workers have stopped")
        for loop in [*self._loops, *self._leading_loops]:
            if loop.done():
                raise RuntimeError(f"the {loop.get_name()} loop has stopped")

    async def stop(self) -> None:
        """A clean shutdown: stop competing, let the reconciles in flight finish their
        writes, then hand the Lease over so that a standby takes it at once."""
        for loop in self._loops:
            loop.cancel()
        for loop in self._leading_loops:
            loop.cancel()
        grace = self.elector.lease_duration.total_seconds() / 2 if self.elector else DRAIN_SECONDS
        await asyncio.gather(
            *(controller.queue.drain(min(grace, DRAIN_SECONDS)) for controller in self.controllers)
        )
        if self.elector is not None:
            await self.elector.release()

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


KOPF_WORKER_IDLE = 1.0
"""Seconds a per-object worker waits for another event of its object before it ends (kopf:
5), so that a listing does not leave thousands of idle workers behind. Their number is not
bounded: a worker holds its slot while it idles, so a bound of N would let only about N
new objects a second through, far below a burst of deadlines."""


class NoDiffBase(kopf.DiffBaseStorage):
    """No copy of what was last handled: kadence has only `on.event` handlers, so kopf never
    compares an object with its previous state, yet its default storage deep-copied every
    body of every event to be able to (an eighth of the event loop at start-up)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False
    settings.scanning.disabled = True  # no CRD or namespace lookups: its RBAC has neither
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.chunk_size = LIST_PAGE
    settings.queueing.idle_timeout = KOPF_WORKER_IDLE
    await runtime_of(memo).start()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await runtime_of(memo).stop()


def _route(runtime: Runtime, handle: Callable[[str, Body], None], event: kopf.RawEvent) -> None:
    """Hand the event on; an event with no type is kopf listing again (see `listed`)."""
    if event["type"] is None:
        runtime.listed()
    handle(str(event["type"]), _plain(event["object"]))


@kopf.on.event(GROUP, VERSION, "schedules")
async def schedule_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    _route(runtime, runtime.schedule_event, event)


@kopf.on.event(GROUP, VERSION, "tasks")
async def task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    _route(runtime, runtime.task_event, event)


@kopf.on.event("batch", "v1", "jobs", labels={TASK_LABEL: kopf.PRESENT})
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    _route(runtime, runtime.job_event, event)
