"""The queue of a scheduler: order, dispatch and de-duplication, decided from plain data.

The queue is the `Queued` tasks of one `schedulerId`, with the API server as its table:
these functions decide what leaves it first and what a deadline does about work that is
still unfinished, so that the controllers only read tasks and write results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kadence.models import ConcurrencyPolicy


@dataclass(frozen=True)
class QueueItem:
    """What the queue needs to know about one task."""

    namespace: str
    name: str
    priority: int
    deadline_at: datetime
    hash: str

    @property
    def sort_key(self) -> tuple[int, datetime, str, str]:
        """Lower priority first, then earlier deadline, then namespace and name."""
        return (self.priority, self.deadline_at, self.namespace, self.name)


def queue_order(items: Iterable[QueueItem]) -> list[QueueItem]:
    """The items in the order they leave the queue: lower priority first."""
    return sorted(items, key=lambda item: item.sort_key)


def plan_dispatch(queued: Iterable[QueueItem], active: int, capacity: int) -> list[QueueItem]:
    """The heads of the queue that fit in the free slots, in dispatch order.

    `active` is the number of tasks of this scheduler that are Dispatched or Running;
    when it exceeds `capacity` (capacity lowered, or a restart) nothing is dispatched.
    """
    free = max(0, capacity - active)
    return queue_order(queued)[:free]


@dataclass(frozen=True)
class ConcurrencyDecision:
    """What a deadline does about the unfinished tasks with the same hash."""

    create: bool
    cancel: tuple[str, ...]
    reason: str


def decide_concurrency(policy: ConcurrencyPolicy, holders: Sequence[str]) -> ConcurrencyDecision:
    """Apply a schedule's `concurrencyPolicy` at one of its deadlines.

    `holders` are the names of the unfinished tasks (Pending, Queued, Dispatched or
    Running) with the same hash in the same queue and namespace; the namespace bound
    keeps one tenant's schedule from skipping or cancelling another tenant's work.
    """
    names = sorted(set(holders))
    if not names:
        return ConcurrencyDecision(
            create=True, cancel=(), reason="no unfinished task with the same hash"
        )
    listed = ", ".join(names)
    if policy is ConcurrencyPolicy.FORBID:
        return ConcurrencyDecision(
            create=False, cancel=(), reason=f"Forbid: same hash still unfinished in {listed}"
        )
    if policy is ConcurrencyPolicy.REPLACE:
        return ConcurrencyDecision(
            create=True, cancel=tuple(names), reason=f"Replace: cancelling {listed}"
        )
    return ConcurrencyDecision(create=True, cancel=(), reason=f"Allow: running alongside {listed}")
