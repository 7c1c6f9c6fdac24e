from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from kadence.models import ConcurrencyPolicy
from kadence.queue import (
    ConcurrencyDecision,
    QueueItem,
    decide_concurrency,
    plan_dispatch,
    queue_order,
    serial_waits,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def item(
    name: str,
    priority: int = 0,
    *,
    minute: int = 0,
    namespace: str = "default",
    hash: str = "h",
    serial: bool = False,
) -> QueueItem:
    return QueueItem(
        namespace=namespace,
        name=name,
        priority=priority,
        deadline_at=T0 + timedelta(minutes=minute),
        hash=hash,
        serial=serial,
    )


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([item("a", 5), item("b", 1), item("c", 3)], ["b", "c", "a"]),
        ([item("a", -1), item("b", 0)], ["a", "b"]),
        ([item("late", 1, minute=9), item("early", 1, minute=1)], ["early", "late"]),
        ([item("b", 1, minute=1), item("a", 1, minute=1)], ["a", "b"]),
        ([item("x", namespace="zeta"), item("y", namespace="alpha")], ["y", "x"]),
        (
            [item("late-but-urgent", 0, minute=9), item("early", 1, minute=0)],
            ["late-but-urgent", "early"],
        ),
        ([], []),
    ],
    ids=[
        "lower-priority-first",
        "negative-priority-first",
        "tie-by-deadline",
        "tie-by-name",
        "tie-by-namespace-before-name",
        "priority-beats-deadline",
        "empty",
    ],
)
def test_queue_order(items: list[QueueItem], expected: list[str]) -> None:
    assert [i.name for i in queue_order(items)] == expected


@pytest.mark.parametrize(
    ("priorities", "active", "capacity", "expected"),
    [
        ([5, 1, 3], 0, 1, ["p1"]),
        ([5, 1, 3], 0, 2, ["p1", "p3"]),
        ([5, 1, 3], 0, 10, ["p1", "p3", "p5"]),
        ([5, 1, 3], 1, 2, ["p1"]),
        ([5, 1, 3], 2, 2, []),
        ([5, 1, 3], 7, 2, []),
        ([], 0, 3, []),
    ],
    ids=[
        "capacity-1-takes-lowest-priority",
        "two-free-slots",
        "more-slots-than-tasks",
        "one-slot-taken",
        "full",
        "over-capacity-never-negative",
        "empty-queue",
    ],
)
def test_plan_dispatch(
    priorities: list[int], active: int, capacity: int, expected: list[str]
) -> None:
    queued = [item(f"p{p}", p) for p in priorities]
    assert [i.name for i in plan_dispatch(queued, active, capacity)] == expected


def test_plan_dispatch_accepts_a_generator() -> None:
    assert [i.name for i in plan_dispatch((item(n) for n in "ba"), 0, 1)] == ["a"]


@pytest.mark.parametrize(
    ("policy", "holders", "create", "cancel", "reason_has"),
    [
        (ConcurrencyPolicy.FORBID, [], True, (), "no unfinished"),
        (ConcurrencyPolicy.FORBID, ["t-2", "t-1"], False, (), "t-1, t-2"),
        (ConcurrencyPolicy.ALLOW, [], True, (), "no unfinished"),
        (ConcurrencyPolicy.ALLOW, ["t-1"], True, (), "t-1"),
        (ConcurrencyPolicy.REPLACE, [], True, (), "no unfinished"),
        (ConcurrencyPolicy.REPLACE, ["t-2", "t-1", "t-2"], True, ("t-1", "t-2"), "t-1, t-2"),
    ],
    ids=[
        "forbid-free",
        "forbid-skips-and-names-holders",
        "allow-free",
        "allow-alongside",
        "replace-free",
        "replace-cancels-each-holder-once",
    ],
)
def test_decide_concurrency(
    policy: ConcurrencyPolicy,
    holders: list[str],
    create: bool,
    cancel: tuple[str, ...],
    reason_has: str,
) -> None:
    decision = decide_concurrency(policy, holders)
    assert isinstance(decision, ConcurrencyDecision)
    assert (decision.create, decision.cancel) == (create, cancel)
    assert reason_has in decision.reason


BUFFER_ONE, BUFFER_ALL = ConcurrencyPolicy.BUFFER_ONE, ConcurrencyPolicy.BUFFER_ALL


@pytest.mark.parametrize(
    ("policy", "holders", "waiting", "limit", "expected"),
    [
        (BUFFER_ONE, [], [], 10, (True, "no unfinished")),
        (BUFFER_ONE, ["t-1"], [], 10, (True, "BufferOne: waiting its turn after t-1")),
        (BUFFER_ONE, ["t-1", "t-2"], ["t-2"], 10, (False, "1 of at most 1 already waiting (t-2)")),
        (BUFFER_ONE, ["t-2"], ["t-2"], 10, (False, "already waiting (t-2)")),
        (BUFFER_ALL, ["t-1", "t-2", "t-3"], ["t-2", "t-3"], 3, (True, "waiting its turn")),
        (BUFFER_ALL, ["t-1", "t-2", "t-3", "t-4"], ["t-2", "t-3", "t-4"], 3,
         (False, "3 of at most 3 already waiting (t-2, t-3, t-4)")),
        (BUFFER_ALL, ["t-1", "t-2"], ["t-2"], 1, (False, "1 of at most 1")),
        (BUFFER_ALL, ["t-1"], ["gone"], 1, (True, "waiting its turn")),
    ],
    ids=[
        "buffer-one-free",
        "buffer-one-one-running-the-deadline-waits",
        "buffer-one-one-waiting-already-skips",
        "buffer-one-one-queued-none-running-skips",
        "buffer-all-below-the-limit-waits",
        "buffer-all-at-the-limit-skips-the-overflow",
        "buffer-all-limit-one-is-buffer-one",
        "waiting-counts-only-holders",
    ],
)  # fmt: skip
def test_decide_concurrency_buffers(
    policy: ConcurrencyPolicy,
    holders: list[str],
    waiting: list[str],
    limit: int,
    expected: tuple[bool, str],
) -> None:
    """`expected`: whether the deadline makes its task, and what the reason says."""
    create, reason_has = expected
    decision = decide_concurrency(policy, holders, waiting=waiting, buffer_limit=limit)
    assert (decision.create, decision.cancel) == (create, ())
    assert reason_has in decision.reason


@pytest.mark.parametrize(
    ("queued", "busy", "waits"),
    [
        ([item("a", serial=True), item("b", minute=1, serial=True)], {}, {"b": "a"}),
        ([item("a", serial=True), item("b", serial=True)], {("default", "h"): "r"},
         {"a": "r", "b": "r"}),
        ([item("a")], {("default", "h"): "r"}, {}),
        ([item("a", serial=True), item("o", minute=9, hash="other", serial=True)],
         {("default", "h"): "r"}, {"a": "r"}),
        ([item("a", serial=True)], {("elsewhere", "h"): "r"}, {}),
        ([item("allow", minute=0), item("b", minute=1, serial=True)], {}, {"b": "allow"}),
        ([item("b", minute=1, serial=True), item("later", minute=2)], {}, {}),
        ([item("low", priority=5, serial=True), item("urgent", priority=-1, serial=True)], {},
         {"low": "urgent"}),
        ([], {("default", "h"): "r"}, {}),
    ],
    ids=[
        "nothing-busy-the-first-leaves-the-next-waits-for-it",
        "busy-work-holds-back-each-buffered-task-of-it",
        "a-task-not-buffered-is-never-held",
        "other-work-passes",
        "the-same-hash-in-another-namespace-is-other-work",
        "an-earlier-task-of-the-work-holds-a-buffered-one",
        "a-buffered-task-holds-back-nothing-unbuffered",
        "queue-order-decides-who-goes-first",
        "empty",
    ],
)  # fmt: skip
def test_serial_waits(
    queued: list[QueueItem], busy: dict[tuple[str, str], str], waits: dict[str, str]
) -> None:
    assert serial_waits(queued, busy) == {("default", name): by for name, by in waits.items()}


@dataclass
class Timeline:
    """One schedule's deadlines and its running task finishing, one step at a time."""

    id: str
    policy: ConcurrencyPolicy
    steps: list[tuple[str, str]]
    """(`deadline` or `finish`, the queue after it: `running | waiting | skipped N`)."""
    buffer_limit: int = 10


TIMELINES = [
    Timeline("Forbid: a deadline while one runs is skipped", ConcurrencyPolicy.FORBID, [
        ("deadline", "t1 | - | skipped 0"),
        ("deadline", "t1 | - | skipped 1"),
        ("finish", "- | - | skipped 1"),
        ("deadline", "t4 | - | skipped 1"),
    ]),
    Timeline("Allow: every deadline runs at once", ConcurrencyPolicy.ALLOW, [
        ("deadline", "t1 | - | skipped 0"),
        ("deadline", "t1,t2 | - | skipped 0"),
        ("finish", "t2 | - | skipped 0"),
    ]),
    Timeline("Replace: the new run replaces the running one", ConcurrencyPolicy.REPLACE, [
        ("deadline", "t1 | - | skipped 0"),
        ("deadline", "t2 | - | skipped 0"),
        ("finish", "- | - | skipped 0"),
    ]),
    Timeline("BufferOne: one waits, more are skipped, it runs when the first finishes",
             BUFFER_ONE, [
        ("deadline", "t1 | - | skipped 0"),
        ("deadline", "t1 | t2 | skipped 0"),
        ("deadline", "t1 | t2 | skipped 1"),
        ("deadline", "t1 | t2 | skipped 2"),
        ("finish", "t2 | - | skipped 2"),
        ("deadline", "t2 | t6 | skipped 2"),
        ("finish", "t6 | - | skipped 2"),
        ("finish", "- | - | skipped 2"),
    ]),
    Timeline("BufferAll: all wait up to bufferLimit, run one at a time in order", BUFFER_ALL, [
        ("deadline", "t1 | - | skipped 0"),
        ("deadline", "t1 | t2 | skipped 0"),
        ("deadline", "t1 | t2,t3 | skipped 0"),
        ("deadline", "t1 | t2,t3 | skipped 1"),
        ("finish", "t2 | t3 | skipped 1"),
        ("deadline", "t2 | t3,t6 | skipped 1"),
        ("finish", "t3 | t6 | skipped 1"),
        ("finish", "t6 | - | skipped 1"),
    ], buffer_limit=2),
]  # fmt: skip


@pytest.mark.parametrize("timeline", TIMELINES, ids=[t.id for t in TIMELINES])
def test_overlap_policies_over_a_timeline(timeline: Timeline) -> None:
    """Each step is what the schedule (`decide_concurrency`) and then the queue, with room
    for ten (`serial_waits`, `plan_dispatch`), decide; a finish ends the oldest run."""
    running: list[str] = []
    waiting: list[str] = []
    skipped = 0
    for number, (step, expected) in enumerate(timeline.steps, start=1):
        if step == "finish":
            running.pop(0)
        else:
            decision = decide_concurrency(
                timeline.policy,
                [*running, *waiting],
                waiting=waiting,
                buffer_limit=timeline.buffer_limit,
            )
            running = [name for name in running if name not in decision.cancel]
            if decision.create:
                waiting.append(f"t{number}")
            else:
                skipped += 1
        queued = [
            item(name, minute=int(name[1:]), serial=timeline.policy.serial) for name in waiting
        ]
        busy = {("default", "h"): running[0]} if running else {}
        eligible = [i for i in queued if ("default", i.name) not in serial_waits(queued, busy)]
        for head in plan_dispatch(eligible, len(running), 10):
            waiting.remove(head.name)
            running.append(head.name)
        seen = f"{','.join(running) or '-'} | {','.join(waiting) or '-'} | skipped {skipped}"
        assert seen == expected, f"after step {number} ({step})"
