from datetime import UTC, datetime, timedelta

import pytest

from kadence.models import ConcurrencyPolicy
from kadence.queue import (
    ConcurrencyDecision,
    QueueItem,
    decide_concurrency,
    plan_dispatch,
    queue_order,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def item(
    name: str,
    priority: int = 0,
    minute: int = 0,
    namespace: str = "default",
    hash: str = "h",
) -> QueueItem:
    return QueueItem(
        namespace=namespace,
        name=name,
        priority=priority,
        deadline_at=T0 + timedelta(minutes=minute),
        hash=hash,
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
