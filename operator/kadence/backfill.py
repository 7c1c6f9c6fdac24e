"""Which deadlines a `kadence.dev/backfill` request asks for. Pure: `now` is an input.

A request names an interval `START/END` (RFC 3339, END exclusive); its deadlines are the
schedule's own, from START up to END, and never after `now`: a deadline still to come is the
schedule's to run when it comes. A request is bounded by `spec.backfillLimit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice, takewhile

from kadence.deadlines import ScheduleTiming
from kadence.models import ConcurrencyPolicy

_JUST_BEFORE = timedelta(microseconds=1)

BACKFILL_POLICIES = frozenset({ConcurrencyPolicy.ALLOW.value})
"""The values `kadence.dev/backfill-policy` may take; unset, the schedule's own applies."""


@dataclass(frozen=True)
class BackfillRange:
    """The deadlines to act on, oldest first, and whether the range held more than the limit."""

    deadlines: tuple[datetime, ...]
    limited: bool


def parse_backfill(value: str) -> tuple[datetime, datetime]:
    """`START/END` as two instants; raises ValueError, for a person, when it is not one."""
    parts = value.split("/")
    if len(parts) != 2:
        raise ValueError("expected START/END, two RFC 3339 times such as 2026-06-01T00:00:00Z")
    start, end = (_instant(part.strip()) for part in parts)
    if start >= end:
        raise ValueError("START must be before END (END is exclusive)")
    return start, end


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone offset (add Z for UTC)")
    return moment


def backfill_range(
    timing: ScheduleTiming, value: str, policy: str | None, limit: int, now: datetime
) -> BackfillRange:
    """The deadlines of `value` (the annotation) at `now`, at most `limit` of them: the
    schedule's own, so none outside its `startAt` and `endAt`.

    Raises ValueError for a request that can never be acted on: not START/END, START not
    before END, an unknown `policy`, or an interval schedule (its deadlines follow each run's
    finish, so a past range has none to enumerate).
    """
    start, end = parse_backfill(value)
    if policy and policy not in BACKFILL_POLICIES:
        raise ValueError(f"kadence.dev/backfill-policy {policy!r} is not one of: Allow")
    rule = timing.rule
    if isinstance(rule, timedelta):
        raise ValueError(
            "an interval schedule has no deadlines to backfill: each of its deadlines follows "
            "the finish of the run before"
        )
    first = max(start, timing.start_at) if timing.start_at is not None else start
    last = min(end - _JUST_BEFORE, now)
    if timing.end_at is not None:
        last = min(last, timing.end_at)
    inside = takewhile(lambda deadline: deadline <= last, rule.after(first - _JUST_BEFORE))
    found = tuple(islice(inside, limit + 1))
    return BackfillRange(deadlines=found[:limit], limited=len(found) > limit)
