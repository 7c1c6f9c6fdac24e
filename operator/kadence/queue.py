"""The queue of a scheduler: order, dispatch and de-duplication, decided from plain data.

The queue is the `Queued` tasks of one `schedulerId`, with the API server as its table:
these functions decide what leaves it first and what a deadline does about work that is
still unfinished, so that the controllers only read tasks and write results.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
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
    serial: bool = False
    """Made by a BufferOne or BufferAll schedule: it runs one at a time with its hash."""

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


def serial_waits(
    queued: Iterable[QueueItem], busy: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], str]:
    """The serial items that must stay in the queue now, by (namespace, name), each with
    the task it waits for.

    `busy` names, by (namespace, hash), a task of that work holding a slot (Dispatched or
    Running). A serial item waits while its work is busy, or behind an earlier item of
    the same work (which leaves first and then is busy), so no two of them run at once;
    items of other work pass it. It keeps its place in `queue_order`.
    """
    ahead = dict(busy)
    waits: dict[tuple[str, str], str] = {}
    for item in queue_order(queued):
        work = (item.namespace, item.hash)
        blocker = ahead.setdefault(work, item.name)
        if item.serial and blocker != item.name:
            waits[(item.namespace, item.name)] = blocker
    return waits


@dataclass(frozen=True)
class ConcurrencyDecision:
    """What a deadline does about the unfinished tasks with the same hash."""

    create: bool
    cancel: tuple[str, ...]
    reason: str


def decide_concurrency(
    policy: ConcurrencyPolicy,
    holders: Sequence[str],
    *,
    waiting: Collection[str] = (),
    buffer_limit: int = 1,
) -> ConcurrencyDecision:
    """Apply a schedule's `concurrencyPolicy` at one of its deadlines.

    `holders` are the names of the unfinished tasks (Pending, Queued, Dispatched or
    Running) with the same hash in the same queue and namespace; the namespace bound
    keeps one tenant's schedule from skipping or cancelling another tenant's work.
    `waiting` are those of them not yet dispatched (Pending or Queued): BufferOne keeps
    at most one of them, BufferAll at most `buffer_limit`.
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
    if policy.serial:
        return _buffer(policy, listed, sorted(set(waiting) & set(names)), buffer_limit)
    if policy is ConcurrencyPolicy.REPLACE:
        return ConcurrencyDecision(
            create=True, cancel=tuple(names), reason=f"Replace: cancelling {listed}"
        )
    return ConcurrencyDecision(create=True, cancel=(), reason=f"Allow: running alongside {listed}")


def _buffer(
    policy: ConcurrencyPolicy, listed: str, waiting: list[str], buffer_limit: int
) -> ConcurrencyDecision:
    """BufferOne and BufferAll: add one more waiting task while there is room."""
    limit = 1 if policy is ConcurrencyPolicy.BUFFER_ONE else buffer_limit
    if len(waiting) >= limit:
        return ConcurrencyDecision(
            create=False,
            cancel=(),
            reason=(
                f"{policy}: {len(waiting)} of at most {limit} already waiting "
                f"({', '.join(waiting)}); same hash unfinished in {listed}"
            ),
        )
    return ConcurrencyDecision(
        create=True, cancel=(), reason=f"{policy}: waiting its turn after {listed}"
    )
