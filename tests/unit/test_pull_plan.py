"""Pull queues: which claim requests a queue grants, and how a claimed Task follows its claim."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.config import PullQueue
from kadence.models import TaskPhase, TaskStatus
from kadence.naming import default_hash
from kadence.resources import history_entry, task_problem
from kadence.schedule_plan import ScheduleWorld, plan_schedule
from kadence.status import advance_task
from kadence.task_plan import QueueRules, grant_claim, plan_queue, plan_task, withdraw_request

ON_THE_HOUR = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
SECONDS = timedelta(seconds=1)
LEASE = 30
START = timedelta(minutes=15)
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
THREE_ATTEMPTS = PullQueue(maxAttempts=3)
P = TaskPhase


def rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def request(holder: str = "runner-1", asked: datetime = ON_THE_HOUR, **more: Any) -> dict[str, Any]:
    """A claim as a runner writes it; `more` adds the fields written later (camelCase)."""
    claim = {
        "holder": holder,
        "user": "system:serviceaccount:scan:runner",
        "leaseSeconds": LEASE,
        "requestedAt": rfc(asked),
    }
    return claim | {name: rfc(v) if isinstance(v, datetime) else v for name, v in more.items()}


def granted(at: datetime = ON_THE_HOUR, holder: str = "runner-1", **more: Any) -> dict[str, Any]:
    return request(holder, at, **({"claimedAt": at, "renewedAt": at} | more))


def task(
    name: str,
    phase: str | None = "Queued",
    *,
    claim: dict[str, Any] | None = None,
    priority: int = 0,
    namespace: str = "ns",
    attempts: int | None = None,
    template: bool = False,
    by_schedule: bool = False,
    more: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Task of the pull queue `q`, without a jobTemplate unless `template`; `more` adds
    status fields."""
    body: dict[str, Any] = {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-06-01T09:00:00Z",
            "labels": {"kadence.dev/scheduler-id": "q", "kadence.dev/trigger": "manual"},
            "ownerReferences": (
                [{"kind": "Schedule", "name": "s", "uid": "uid-s", "controller": True}]
                if by_schedule
                else []
            ),
        },
        "spec": {"schedulerId": "q", "priority": priority, "data": {"n": name}, **spec},
        "status": {},
    }
    if template:
        body["spec"]["jobTemplate"] = TEMPLATE
    if phase is not None:
        status: dict[str, Any] = {"phase": phase, "queuedAt": "2026-06-01T09:00:00Z"}
        if phase == "Queued":
            status["message"] = "waiting in queue q"
        if TaskPhase(phase).active:
            status["dispatchedAt"] = rfc(ON_THE_HOUR)
        if attempts is not None:
            status["attempts"] = attempts
        if claim is not None:
            status["claim"] = claim
        body["status"] = settled(status | (more or {}))
    return body


def settled(status: dict[str, Any]) -> dict[str, Any]:
    """The status as the operator wrote it when the Task entered its phase: with conditions."""
    model = TaskStatus.model_validate(status)
    assert model.phase is not None
    written = advance_task(
        model.model_copy(update={"phase": None}),
        model.phase,
        ON_THE_HOUR,
        generation=None,
        message=model.message,
    )
    assert written is not None
    return written.to_kube()


@dataclass
class QueueCase:
    id: str
    tasks: list[dict[str, Any]]
    now: datetime = ON_THE_HOUR + 10 * SECONDS
    capacity: int = 2
    shared: bool = False
    namespace_capacity: int | None = None
    held: bool = False
    pull: bool = True
    grant: list[str] = field(default_factory=list)
    withdraw: list[str] = field(default_factory=list)
    dispatch: list[str] = field(default_factory=list)
    admit: list[tuple[str, TaskPhase]] = field(default_factory=list)
    wake_at: datetime | None = None


ASKED = ON_THE_HOUR
RUNS_OUT = ASKED + LEASE * SECONDS

QUEUE_CASES = [
    QueueCase("nobody asked: every Task stays Queued, no Job",
              [task("a"), task("b")]),
    QueueCase("a request is granted",
              [task("a", claim=request())], grant=["a"]),
    QueueCase("requests are granted in queue order within the free slots",
              [task("low", claim=request("r1"), priority=5),
               task("high", claim=request("r2"), priority=-1),
               task("busy", "Running", claim=granted())],
              capacity=2, grant=["high"], wake_at=RUNS_OUT),
    QueueCase("a Task nobody asked for lets a requested one behind it pass",
              [task("head", priority=-10), task("next", claim=request())], grant=["next"]),
    QueueCase("a full queue keeps requests waiting until the first runs out",
              [task("a", claim=request(asked=ASKED + 5 * SECONDS)), task("b", claim=request()),
               task("x", "Dispatched", claim=granted()), task("y", "Running", claim=granted())],
              wake_at=RUNS_OUT),
    QueueCase("a request not granted within its lease is withdrawn",
              [task("gone", claim=request()), task("x", "Running", claim=granted()),
               task("y", "Running", claim=granted())],
              now=RUNS_OUT, withdraw=["gone"]),
    QueueCase("a stale request is withdrawn while a live one is granted",
              [task("gone", claim=request(asked=ASKED - LEASE * SECONDS)),
               task("live", claim=request())],
              withdraw=["gone"], grant=["live"]),
    QueueCase("a Queued Task with grant fields holds no claim: withdrawn",
              [task("odd", claim=granted())], withdraw=["odd"]),
    QueueCase("an outcome written before any grant is no request: withdrawn, never granted",
              [task("early", claim=request(outcome="Completed", result='{"x": 1}')),
               task("honest", claim=request("r2"), priority=1)],
              withdraw=["early"], grant=["honest"]),
    QueueCase("a start or a renewal written before any grant is no request either",
              [task("started", claim=request(startedAt=ASKED)),
               task("renewed", claim=request(renewedAt=ASKED))],
              withdraw=["renewed", "started"]),
    QueueCase("without the admission policies nothing is granted, stale requests still go",
              [task("a", claim=request()), task("old", claim=request(asked=ASKED - 60 * SECONDS))],
              held=True, withdraw=["old"], wake_at=RUNS_OUT),
    QueueCase("a BufferOne Task waits for the work of its hash even when asked for",
              [task("first", "Running", claim=granted(), by_schedule=True, hash="w",
                    concurrencyPolicy="BufferOne"),
               task("second", claim=request(), by_schedule=True, hash="w",
                    concurrencyPolicy="BufferOne"),
               task("other", claim=request("r2"), priority=5)],
              grant=["other"], wake_at=RUNS_OUT),
    QueueCase("a shared pull queue grants namespaces in turns",
              [task("a1", claim=request(), namespace="team-a"),
               task("a2", claim=request(), namespace="team-a"),
               task("b1", claim=request(), namespace="team-b")],
              shared=True, grant=["a1", "b1"], wake_at=RUNS_OUT),
    QueueCase("a shared pull queue keeps a namespace at its own capacity waiting",
              [task("a1", "Running", claim=granted(), namespace="team-a"),
               task("a2", claim=request(), namespace="team-a"),
               task("b1", claim=request(), namespace="team-b", priority=9)],
              capacity=3, shared=True, namespace_capacity=1, grant=["b1"], wake_at=RUNS_OUT),
    QueueCase("a claim whose lease ran out holds its slot until the Task controller requeues it",
              [task("late", "Running", claim=granted(at=ASKED - timedelta(hours=1))),
               task("next", claim=request())],
              capacity=1, wake_at=RUNS_OUT),
    QueueCase("a claim reported done holds its slot until its Task is finished",
              [task("done", "Running", claim=granted(outcome="Completed")),
               task("next", claim=request())],
              capacity=1, wake_at=RUNS_OUT),
    QueueCase("requests beyond the free slots wait, the earliest to run out wakes the pass",
              [task("a", claim=request(asked=ASKED + 8 * SECONDS)),
               task("b", claim=request(asked=ASKED + 3 * SECONDS), priority=1),
               task("c", claim=request(asked=ASKED + 6 * SECONDS), priority=2)],
              capacity=1, grant=["a"], wake_at=RUNS_OUT + 3 * SECONDS),
    QueueCase("a request dated ahead of the operator's clock is granted like any other",
              [task("ahead", claim=request(asked=ASKED + timedelta(days=365)))],
              grant=["ahead"]),
    QueueCase("a Task without a jobTemplate joins a pull queue",
              [task("new", None)], admit=[("new", P.QUEUED)]),
    QueueCase("a Task with a jobTemplate joins a pull queue too (the template is ignored)",
              [task("new", None, template=True)], admit=[("new", P.QUEUED)]),
    QueueCase("a queue of Jobs refuses a Task without a jobTemplate",
              [task("new", None)], pull=False, admit=[("new", P.FAILED)]),
    QueueCase("a queue of Jobs ignores claims: its head becomes a Job",
              [task("a", template=True), task("b", claim=request(), template=True, priority=1)],
              capacity=1, pull=False, dispatch=["a"]),
]  # fmt: skip


@pytest.mark.parametrize("case", QUEUE_CASES, ids=[case.id for case in QUEUE_CASES])
def test_plan_queue_of_a_pull_queue(case: QueueCase) -> None:
    known = {t["metadata"]["uid"] for t in case.tasks}
    rules = QueueRules(
        case.capacity,
        shared=case.shared,
        namespace_capacity=case.namespace_capacity,
        held=case.held,
        pull=case.pull,
    )
    plan = plan_queue(case.tasks, {}, [], known, rules, now=case.now)
    assert [name for _, name in plan.grant] == case.grant
    assert [name for _, name in plan.withdraw] == case.withdraw
    assert [name for _, name in plan.dispatch] == case.dispatch
    assert [(a.key[1], a.phase) for a in plan.admit] == case.admit
    assert plan.wake_at == case.wake_at


def test_a_task_refused_by_a_queue_of_jobs_says_why() -> None:
    assert task_problem(task("t", None)) == (
        "spec.jobTemplate is required: queue q is not a pull queue"
    )
    assert task_problem(task("t", None), pull=True) is None
    too_big = task("t", None, data={"blob": "x" * 200_000})
    assert "bytes as JSON" in (task_problem(too_big, pull=True) or "")


def test_a_view_without_a_clock_counts_every_request() -> None:
    stale = task("a", claim=request(asked=ASKED - timedelta(days=1)))
    plan = plan_queue([stale], {}, [], set(), QueueRules(1, pull=True))
    assert plan.grant == (("ns", "a"),)
    assert plan.withdraw == ()


NOW = ON_THE_HOUR + 10 * SECONDS


def test_a_grant_dispatches_the_task_to_its_requester() -> None:
    body = task("t", claim=request("worker-7f9c/12"), attempts=1)
    status = TaskStatus.model_validate(body["status"])
    after = grant_claim(NOW)(status, body)
    assert after is not None
    assert after.phase is P.DISPATCHED
    assert after.dispatched_at == NOW
    assert after.message == "claimed by worker-7f9c/12"
    assert after.attempts == 2
    assert after.claim is not None
    assert (after.claim.claimed_at, after.claim.renewed_at) == (NOW, NOW)
    assert after.claim.holder == "worker-7f9c/12"


@pytest.mark.parametrize(
    "body",
    [
        task("t"),
        task("t", claim=request(asked=NOW - LEASE * SECONDS)),
        task("t", "Dispatched", claim=granted()),
        task("t", "Cancelled", claim=request()),
        task("t", claim=request(outcome="Completed", finishedAt=NOW)),
    ],
    ids=[
        "withdrawn",
        "ran-out-meanwhile",
        "granted-already",
        "cancelled-meanwhile",
        "reported-before-any-grant",
    ],
)
def test_a_grant_leaves_alone_what_is_no_live_request(body: dict[str, Any]) -> None:
    assert grant_claim(NOW)(TaskStatus.model_validate(body["status"]), body) is None


@pytest.mark.parametrize(
    ("body", "withdrawn"),
    [
        (task("t", claim=request(asked=NOW - LEASE * SECONDS)), True),
        (task("t", claim=granted()), True),
        (task("t", claim=request(outcome="Failed")), True),
        (task("t", claim=request()), False),
        (task("t", "Dispatched", claim=granted(renewedAt=NOW - 60 * SECONDS)), False),
        (task("t"), False),
    ],
    ids=[
        "request-ran-out",
        "grant-fields-on-a-queued-task",
        "outcome-before-any-grant",
        "live-request-stays",
        "a-claimed-task-is-the-task-controllers",
        "no-claim",
    ],
)
def test_withdraw_request(body: dict[str, Any], withdrawn: bool) -> None:
    after = withdraw_request(NOW)(TaskStatus.model_validate(body["status"]), body)
    assert (after is not None) is withdrawn
    if after is not None:
        assert after.claim is None
        assert after.phase is P.QUEUED


@dataclass
class ClaimCase:
    id: str
    body: dict[str, Any]
    now: datetime
    phase_after: TaskPhase | None
    """The phase written; None: nothing written."""
    wake_at: datetime | None = None
    lost: str | None = None
    claim_after: bool = True
    """Whether the written status keeps its claim."""
    pull: bool = True
    """In a pull queue of three attempts; False: a queue of Jobs."""


LEASE_END = ON_THE_HOUR + LEASE * SECONDS
STARTED = ON_THE_HOUR + 2 * SECONDS
RENEWED = ON_THE_HOUR + 20 * SECONDS
DONE = ON_THE_HOUR + 25 * SECONDS

CLAIM_CASES = [
    ClaimCase("pending: the queue admits it", task("t", None), NOW, None),
    ClaimCase("queued with a request: the queue grants it", task("t", claim=request()), NOW, None),
    ClaimCase("dispatched within its lease: looks again when it runs out",
              task("t", "Dispatched", claim=granted(), attempts=1), NOW, None, LEASE_END),
    ClaimCase("a renewal moves the lease on",
              task("t", "Dispatched", claim=granted(renewedAt=RENEWED), attempts=1),
              LEASE_END, None, RENEWED + LEASE * SECONDS),
    ClaimCase("the runner started: Running",
              task("t", "Dispatched", claim=granted(startedAt=STARTED), attempts=1),
              NOW, P.RUNNING, LEASE_END),
    ClaimCase("running and renewed: nothing to write",
              task("t", "Running", claim=granted(startedAt=STARTED, renewedAt=RENEWED),
                   attempts=1, more={"startedAt": rfc(STARTED),
                                     "message": "running, claimed by runner-1"}),
              RENEWED, None, RENEWED + LEASE * SECONDS),
    ClaimCase("the runner completed it",
              task("t", "Running", claim=granted(startedAt=STARTED, outcome="Completed",
                                                 result='{"found": 3}', finishedAt=DONE),
                   attempts=1),
              DONE, P.COMPLETED),
    ClaimCase("the runner failed it",
              task("t", "Running", claim=granted(outcome="Failed", message="exit 2",
                                                 finishedAt=DONE), attempts=1),
              DONE, P.FAILED),
    ClaimCase("an outcome reported late still counts: the lease is over but the work is done",
              task("t", "Running", claim=granted(outcome="Completed", finishedAt=DONE),
                   attempts=3),
              LEASE_END + 60 * SECONDS, P.COMPLETED),
    ClaimCase("the lease ran out with attempts left: back to the queue",
              task("t", "Running", claim=granted(startedAt=STARTED), attempts=1),
              LEASE_END, P.QUEUED, lost="ClaimExpired", claim_after=False),
    ClaimCase("the lease ran out on the last attempt: Failed",
              task("t", "Dispatched", claim=granted(), attempts=3),
              LEASE_END, P.FAILED, lost="ClaimExpired", claim_after=False),
    ClaimCase("the runner gave its claim back: back to the queue",
              task("t", "Running", attempts=2), NOW, P.QUEUED, lost="ClaimReleased",
              claim_after=False),
    ClaimCase("a claim given back on the last attempt still goes back to the queue",
              task("t", "Dispatched", attempts=3), NOW, P.QUEUED, lost="ClaimReleased",
              claim_after=False),
    ClaimCase("a renewal dated ahead of the operator's clock is written back as now",
              task("t", "Dispatched", claim=granted(renewedAt=NOW + timedelta(days=365)),
                   attempts=1), NOW, P.DISPATCHED, NOW + LEASE * SECONDS),
    ClaimCase("a renewal dated ahead while it starts: Running, and the renewal pulled back",
              task("t", "Dispatched", claim=granted(startedAt=STARTED,
                                                    renewedAt=NOW + timedelta(hours=1)),
                   attempts=1), NOW, P.RUNNING, NOW + LEASE * SECONDS),
    ClaimCase("a renewal dated before the grant counts from the grant",
              task("t", "Dispatched", claim=granted(renewedAt=ON_THE_HOUR - timedelta(hours=1)),
                   attempts=1), NOW, None, LEASE_END),
    ClaimCase("a Task cancelled while claimed keeps its claim: no expiry, no Event",
              task("t", "Cancelled", claim=granted(), attempts=1), LEASE_END + 60 * SECONDS,
              None),
    ClaimCase("a Task cancelled while claimed ignores an outcome reported after",
              task("t", "Cancelled", claim=granted(outcome="Completed", finishedAt=DONE)),
              LEASE_END, None),
    ClaimCase("a finished Task never moves again",
              task("t", "Completed", claim=granted(outcome="Completed")), NOW, None),
    ClaimCase("a Task dispatched as a Job does not read claims: its Job is gone, it fails",
              task("t", "Dispatched", claim=granted(), attempts=1, template=True,
                   more={"jobName": "t"}),
              NOW, P.FAILED, pull=False),
    ClaimCase("a Job's Task in a queue since made a pull queue follows its Job, not requeued",
              task("t", "Running", template=True, more={"jobName": "t"}),
              NOW, P.FAILED, claim_after=False),
    ClaimCase("a claimed Task in a queue since made a queue of Jobs follows its claim",
              task("t", "Dispatched", claim=granted(), attempts=1), NOW, None, LEASE_END,
              pull=False),
    ClaimCase("... and its lease still runs out (three attempts by default)",
              task("t", "Dispatched", claim=granted(), attempts=1), LEASE_END, P.QUEUED,
              lost="ClaimExpired", claim_after=False, pull=False),
]  # fmt: skip


@pytest.mark.parametrize("case", CLAIM_CASES, ids=[case.id for case in CLAIM_CASES])
def test_plan_task_follows_the_claim(case: ClaimCase) -> None:
    plan = plan_task(case.body, None, case.now, START, THREE_ATTEMPTS if case.pull else None)
    assert (plan.status.phase if plan.status else None) == case.phase_after
    assert plan.wake_at == case.wake_at
    assert (plan.lost[1] if plan.lost else None) == case.lost
    assert plan.delete_job is False
    if plan.status is not None and case.pull:
        assert (plan.status.claim is not None) is case.claim_after


def test_a_completed_claim_carries_the_result_and_the_runners_times() -> None:
    claim = granted(startedAt=STARTED, outcome="Completed", result='{"found": 3}', finishedAt=DONE)
    plan = plan_task(
        task("t", "Running", claim=claim, attempts=1), None, DONE + SECONDS, START, THREE_ATTEMPTS
    )
    assert plan.status is not None
    assert plan.status.result == '{"found": 3}'
    assert plan.status.finished_at == DONE
    assert plan.status.message == "completed, claimed by runner-1"
    assert {c.type: c.status for c in plan.status.conditions}["Succeeded"] == "True"


def test_a_renewal_dated_ahead_is_pulled_back_to_the_operators_clock() -> None:
    ahead = granted(renewedAt=NOW + timedelta(days=365))
    plan = plan_task(
        task("t", "Dispatched", claim=ahead, attempts=1), None, NOW, START, THREE_ATTEMPTS
    )
    assert plan.status is not None
    assert plan.status.claim is not None
    assert plan.status.claim.renewed_at == NOW
    again = task("t", "Dispatched", attempts=1) | {"status": plan.status.to_kube()}
    later = NOW + LEASE * SECONDS
    assert plan_task(again, None, later, START, THREE_ATTEMPTS).lost is not None, (
        "unrenewed after that, the claim runs out leaseSeconds after the operator's now"
    )


FAR = timedelta(days=365)

RUNNER_TIMES = [
    # (id, startedAt, finishedAt, now, startedAt written, finishedAt written)
    ("times as written", STARTED, DONE, DONE + SECONDS, STARTED, DONE),
    ("dated ahead of the operator's clock: now", NOW + FAR, NOW + FAR, NOW, NOW, NOW),
    ("dated before the grant: the grant", ON_THE_HOUR - FAR, ON_THE_HOUR - FAR, NOW,
     ON_THE_HOUR, ON_THE_HOUR),
    ("an end before the start: the start", STARTED, ON_THE_HOUR, NOW, STARTED, STARTED),
    ("no start: the end no earlier than the grant", None, ON_THE_HOUR - FAR, NOW, None,
     ON_THE_HOUR),
]  # fmt: skip


@pytest.mark.parametrize(
    ("started", "finished", "now", "started_after", "finished_after"),
    [case[1:] for case in RUNNER_TIMES],
    ids=[case[0] for case in RUNNER_TIMES],
)
def test_the_runners_times_are_held_between_the_grant_and_now(
    started: datetime | None,
    finished: datetime,
    now: datetime,
    started_after: datetime | None,
    finished_after: datetime,
) -> None:
    times = {"finishedAt": finished} | ({"startedAt": started} if started else {})
    claim = granted(outcome="Completed", **times)
    plan = plan_task(
        task("t", "Dispatched", claim=claim, attempts=1), None, now, START, THREE_ATTEMPTS
    )
    assert plan.status is not None
    assert (plan.status.started_at, plan.status.finished_at) == (started_after, finished_after)
    if started is not None:
        running = plan_task(
            task("t", "Dispatched", claim=granted(startedAt=started), attempts=1),
            None, now, START, THREE_ATTEMPTS,
        )  # fmt: skip
        assert running.status is not None
        assert running.status.started_at == started_after


@pytest.mark.parametrize(
    "result",
    ["{not json", "[" * 4000, '{"a": 1} trailing'],
    ids=["not-json", "nested-too-deep-to-parse", "trailing-text"],
)
def test_a_result_that_is_not_json_is_left_out(result: str) -> None:
    claim = granted(outcome="Completed", result=result, finishedAt=DONE)
    plan = plan_task(
        task("t", "Running", claim=claim, attempts=1), None, DONE, START, THREE_ATTEMPTS
    )
    assert plan.status is not None
    assert plan.status.phase is P.COMPLETED
    assert plan.status.result is None
    assert plan.status.message == (
        "completed, claimed by runner-1 (its result was not JSON and is left out)"
    )


def test_a_failed_claim_says_why_with_reason_runner_failed() -> None:
    claim = granted(outcome="Failed", message="exit 2", finishedAt=DONE)
    plan = plan_task(
        task("t", "Running", claim=claim, attempts=1), None, NOW, START, THREE_ATTEMPTS
    )
    assert plan.status is not None
    assert plan.status.message == "failed, claimed by runner-1: exit 2"
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "RunnerFailed")


def test_an_expired_claim_says_whose_when_and_which_attempt() -> None:
    body = task("t", "Running", claim=granted(startedAt=STARTED), attempts=1)
    plan = plan_task(body, None, LEASE_END, START, THREE_ATTEMPTS)
    message = "claim of runner-1 expired at 2026-06-01T10:00:30Z (attempt 1 of 3)"
    assert plan.lost == ("Warning", "ClaimExpired", message)
    assert plan.status is not None
    assert plan.status.message == message
    assert (plan.status.dispatched_at, plan.status.started_at) == (None, None)
    assert plan.status.attempts == 1, "attempts count grants, not expiries"
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "ClaimExpired")
    last = plan_task(
        task("t", "Running", claim=granted(), attempts=3), None, LEASE_END, START, THREE_ATTEMPTS
    )
    assert last.status is not None
    assert last.status.message == (
        "claim of runner-1 expired at 2026-06-01T10:00:30Z (attempt 3 of 3): no attempts left"
    )
    assert {c.type: c.reason for c in last.status.conditions}["Failed"] == "ClaimExpired"


def schedule(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "scan",
            "uid": "uid-scan",
            "generation": 1,
            "creationTimestamp": "2026-06-01T09:00:30Z",
        },
        "spec": {"schedulerId": "q", "interval": "1h", "data": {"x": 1}, **spec},
        "status": {},
    }


def test_a_schedule_without_a_template_feeds_a_pull_queue() -> None:
    body = schedule()
    plan = plan_schedule(ScheduleWorld(body, (), {}, pull=True), ON_THE_HOUR)
    (made,) = plan.create
    assert "jobTemplate" not in made["spec"]
    assert made["spec"]["hash"] == default_hash({"x": 1}, None)
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "Scheduled")


def test_a_schedule_without_a_template_in_a_queue_of_jobs_is_invalid() -> None:
    plan = plan_schedule(ScheduleWorld(schedule(), (), {}, pull=False), ON_THE_HOUR)
    assert plan.create == ()
    conditions = {c.type: (c.status, c.reason, c.message) for c in plan.status.conditions}
    problem = "spec.jobTemplate is required: queue q is not a pull queue"
    assert conditions["Ready"] == ("False", "InvalidSpec", problem)
    assert conditions["Stalled"] == ("True", "InvalidSpec", problem)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidSpec")]


def test_a_pull_queue_ignores_a_schedules_template() -> None:
    broken = {"spec": {"suspend": True, "template": {"spec": {"containers": []}}}}
    plan = plan_schedule(
        ScheduleWorld(schedule(jobTemplate=broken), (), {}, pull=True), ON_THE_HOUR
    )
    assert len(plan.create) == 1


def test_history_carries_the_runners_result() -> None:
    claim = granted(outcome="Completed", result='{"found": 3}', finishedAt=DONE)
    done = plan_task(
        task("t", "Running", claim=claim, attempts=1), None, NOW, START, THREE_ATTEMPTS
    )
    assert done.status is not None
    body = task("t", "Running") | {"status": done.status.to_kube()}
    entry = history_entry(body, P.COMPLETED, NOW)
    assert entry.result == '{"found": 3}'
    assert entry.to_kube()["result"] == '{"found": 3}'


def test_a_claim_given_back_does_not_count_as_an_attempt() -> None:
    plan = plan_task(task("t", "Running", attempts=3), None, NOW, START, THREE_ATTEMPTS)
    message = "its runner gave its claim back before it finished"
    assert plan.lost == ("Normal", "ClaimReleased", message)
    assert plan.status is not None
    assert (plan.status.phase, plan.status.attempts, plan.status.message) == (
        P.QUEUED,
        2,
        message,
    )
