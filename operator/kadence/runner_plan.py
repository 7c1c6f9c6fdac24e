"""What a runner of a pull queue decides, from plain data: which Task to ask for, what to
write, and whether a claim is still its own. Pure: no client, so every rule has a table test.

The writes are JSON merge patches of a Task's status carrying `metadata.resourceVersion`,
which makes each of them conditional: the API server answers 409 Conflict when the Task
changed since the runner read it (another runner was first, the operator granted or
expired the claim), and the runner reads again instead of overwriting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kadence.jobs import (
    DEADLINE_AT_ENV,
    SCHEDULER_ID_ENV,
    TASK_DATA_ENV,
    TASK_NAME_ENV,
    rfc3339,
    task_data_json,
)
from kadence.models import TaskPhase
from kadence.queue import queue_order
from kadence.resources import phase_of, queue_item
from kadence.status import parse_time

Body = dict[str, Any]

MIN_LEASE_SECONDS = 5
MAX_LEASE_SECONDS = 3600
MAX_HOLDER_LENGTH = 253
MAX_MESSAGE_LENGTH = 1024
MAX_RESULT_LENGTH = 4096
"""The CRD's limits on status.claim; checked here so a runner learns why before it writes."""

OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains")
_MISSING = object()


@dataclass(frozen=True)
class Filter:
    """A condition on a Task's `spec.data`: `field` is a dotted path (`boefje.id`).

    A field that is absent matches no operator, `ne` included, as a missing column would
    in a query. Ordering operators compare numbers with numbers and strings with strings;
    `in` asks whether the field is one of `value` (a list); `contains` whether a list field
    holds `value` or a string field has `value` in it.
    """

    field: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown filter operator {self.op!r}; one of {', '.join(OPS)}")
        if not self.field or any(not part for part in self.field.split(".")):
            raise ValueError(f"filter field {self.field!r} must be a dotted path such as a.b")
        if self.op == "in" and not isinstance(self.value, list | tuple):
            raise ValueError(f"filter {self.field} in needs a list, not {self.value!r}")

    def matches(self, data: Mapping[str, Any]) -> bool:
        found = lookup(data, self.field)
        if found is _MISSING:
            return False
        return _compare(self.op, found, self.value)


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path into `data`, or `_MISSING`."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(left: Any, right: Any) -> bool:
    both_numbers = _number(left) and _number(right)
    return both_numbers or (isinstance(left, str) and isinstance(right, str))


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return bool(left == right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return _equal(left, right)
    if op == "ne":
        return not _equal(left, right)
    if op == "in":
        return any(_equal(left, option) for option in right)
    if op == "contains":
        if isinstance(left, list):
            return any(_equal(item, right) for item in left)
        return isinstance(left, str) and isinstance(right, str) and right in left
    if not _comparable(left, right):
        return False
    ordered: dict[str, bool] = {
        "lt": left < right,
        "le": left <= right,
        "gt": left > right,
        "ge": left >= right,
    }
    return ordered[op]


def matches(data: Mapping[str, Any], filters: Iterable[Filter]) -> bool:
    """Whether the data meets every filter (no filters: any data)."""
    return all(each.matches(data) for each in filters)


def claim_of(task: Mapping[str, Any]) -> Body | None:
    claim = (task.get("status") or {}).get("claim")
    return dict(claim) if isinstance(claim, Mapping) else None


def candidates(tasks: Iterable[Body], filters: Sequence[Filter] = ()) -> list[Body]:
    """The Tasks a runner may ask for, head of the queue first: Queued, no claim or
    request on them, and data that meets the filters."""
    open_tasks = {
        task["metadata"]["name"]: task
        for task in tasks
        if phase_of(task) is TaskPhase.QUEUED
        and claim_of(task) is None
        and matches((task.get("spec") or {}).get("data") or {}, filters)
    }
    ordered = queue_order(queue_item(task) for task in open_tasks.values())
    return [open_tasks[item.name] for item in ordered]


class Standing(StrEnum):
    """Where a runner's claim on a Task stands."""

    REQUESTED = "Requested"
    """Its request waits for the operator's grant."""
    GRANTED = "Granted"
    """It holds the Task: renew, then report."""
    REPORTED = "Reported"
    """It has reported the outcome; the operator has yet to finish the Task, or has."""
    LOST = "Lost"
    """Not its own any more: expired, withdrawn, taken by another, or the Task ended."""


def standing(task: Body, holder: str, user: str) -> Standing:
    """Where the claim of `holder` (as `user`) stands on this Task as read."""
    claim = claim_of(task)
    if claim is None or claim.get("holder") != holder or claim.get("user") != user:
        return Standing.LOST
    if claim.get("outcome"):
        return Standing.REPORTED
    phase = phase_of(task)
    if claim.get("claimedAt"):
        return Standing.GRANTED if phase.active else Standing.LOST
    return Standing.REQUESTED if phase is TaskPhase.QUEUED else Standing.LOST


def _conditional(task: Mapping[str, Any], claim: Body | None) -> Body:
    return {
        "metadata": {"resourceVersion": task["metadata"]["resourceVersion"]},
        "status": {"claim": claim},
    }


def request_patch(
    task: Mapping[str, Any], holder: str, user: str, lease_seconds: int, now: datetime
) -> Body:
    """Ask for a Task: the claim without any of the operator's grant fields."""
    if not 0 < len(holder) <= MAX_HOLDER_LENGTH:
        raise ValueError(f"holder must be 1 to {MAX_HOLDER_LENGTH} characters: {holder!r}")
    if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
        raise ValueError(
            f"leaseSeconds must be {MIN_LEASE_SECONDS} to {MAX_LEASE_SECONDS}, not {lease_seconds}"
        )
    claim = {
        "holder": holder,
        "user": user,
        "leaseSeconds": lease_seconds,
        "requestedAt": rfc3339(now),
    }
    return _conditional(task, claim)


def renew_patch(task: Mapping[str, Any], now: datetime) -> Body:
    """A heartbeat; the first one also says the work began (the Task becomes Running)."""
    claim = {"renewedAt": rfc3339(now)}
    if not (claim_of(task) or {}).get("startedAt"):
        claim["startedAt"] = rfc3339(now)
    return _conditional(task, claim)


def finish_patch(
    task: Mapping[str, Any],
    completed: bool,
    now: datetime,
    *,
    message: str = "",
    result: str | None = None,
) -> Body:
    """The outcome; the operator finishes the Task from it."""
    claim: Body = {
        "outcome": "Completed" if completed else "Failed",
        "message": truncate(message, MAX_MESSAGE_LENGTH),
        "finishedAt": rfc3339(now),
    }
    if result is not None:
        claim["result"] = result
    return _conditional(task, claim)


def withdraw_patch(task: Mapping[str, Any]) -> Body:
    """Take back a request that was not granted (merge patch: null removes the claim)."""
    return _conditional(task, None)


def result_text(result: Any) -> str:
    """A runner's result as the JSON text status.claim.result holds; too long or not JSON
    is refused here, where the runner can still report something else."""
    try:
        text = result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))
        json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"result is not JSON: {error}") from error
    except RecursionError as error:  # nested deeper than readers of status.result parse
        raise ValueError("result is not JSON a reader can parse: nested too deep") from error
    if len(text) > MAX_RESULT_LENGTH:
        raise ValueError(f"result is {len(text)} characters of JSON; at most {MAX_RESULT_LENGTH}")
    return text


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lease_left(task: Mapping[str, Any], now: datetime) -> float:
    """Seconds until the claim's lease runs out (renewed, else requested), or 0."""
    claim = claim_of(task) or {}
    since = parse_time(claim.get("renewedAt") or claim.get("requestedAt"))
    if since is None:
        return 0.0
    lease = float(claim.get("leaseSeconds") or 0)
    return max(0.0, lease - (now - since).total_seconds())


def renew_interval(lease_seconds: int) -> float:
    """How often a holder renews: three times a lease, so one lost heartbeat costs nothing."""
    return max(1.0, math.floor(lease_seconds / 3))


def task_env(task: Mapping[str, Any]) -> dict[str, str]:
    """The KADENCE_* variables a Job of this Task would get, for a command a runner runs
    (plain values: there is no `$(VAR)` expansion to escape outside a pod spec)."""
    spec = task.get("spec") or {}
    meta = task["metadata"]
    deadline = parse_time(spec.get("deadlineAt") or meta.get("creationTimestamp"))
    env = {
        TASK_NAME_ENV: meta["name"],
        SCHEDULER_ID_ENV: spec["schedulerId"],
        TASK_DATA_ENV: task_data_json(spec.get("data") or {}),
    }
    if deadline is not None:
        env[DEADLINE_AT_ENV] = rfc3339(deadline)
    return env
