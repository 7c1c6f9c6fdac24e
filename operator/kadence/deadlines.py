"""Deadlines of a Schedule: intervals, the first deadline, and what to do with deadlines that
passed while nothing acted on them.

Pure: ``now`` is always a parameter. Every instant in and out is a timezone-aware UTC
``datetime``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import islice, takewhile
from typing import Protocol

from kadence.cron import Cron, InvalidSchedule, parse_cron

__all__ = [
    "INTERVAL_PATTERN",
    "MAX_INTERVAL",
    "MISSED_COUNT_CAP",
    "ON_TIME_GRACE",
    "DuePlan",
    "MissedRunPolicy",
    "ScheduleTiming",
    "TimingSpec",
    "parse_interval",
    "plan_due",
    "timing_of",
]

INTERVAL_PATTERN = r"^([0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$"
"""Go-style durations in hours, minutes and seconds (``90s``, ``15m``, ``1h30m``), in the RE2
dialect that CRD schemas use."""

MISSED_COUNT_CAP = 1000
"""``DuePlan.missed`` is exact up to this many; beyond it, planning stops counting, so that a
year of a minutely schedule's downtime is planned as quickly as an hour of it."""

ON_TIME_GRACE = timedelta(seconds=30)
"""How late a deadline may be acted on and still count as on time for ``Skip``: long enough for
a slow API server or an operator restart, short enough that a deadline passed during an outage
is dropped."""

MAX_INTERVAL = timedelta(days=3650)
"""The longest interval: ten years, so that deadlines stay far inside the calendar."""


# spec.missedRunPolicy, here rather than in kadence.models because the models import this
# module (plan_due takes the field as it is). No docstring: it would show in the CRDs.
class MissedRunPolicy(StrEnum):
    RUN_LATEST = "RunLatest"
    SKIP = "Skip"
    RUN_ALL = "RunAll"


_INTERVAL = re.compile(INTERVAL_PATTERN)
_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_interval(text: str) -> timedelta:
    """Read ``spec.interval``: whole hours, minutes and seconds, from ``1s`` to
    ``MAX_INTERVAL``."""
    if _INTERVAL.fullmatch(text) is None:
        raise InvalidSchedule(
            f"invalid interval {text!r}: use a duration in h, m and s such as '90s', '15m', "
            "'24h' or '1h30m'"
        )
    seconds = sum(
        int(amount) * _UNITS[unit] for amount, unit in re.findall(r"([0-9]+)([hms])", text)
    )
    if not 1 <= seconds <= MAX_INTERVAL.total_seconds():
        raise InvalidSchedule(f"invalid interval {text!r}: must be between 1s and 87600h")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DuePlan:
    """What to do at ``now`` about deadlines that are due.

    ``run``: the deadlines to create tasks for, oldest first (task names derive from them).
    ``missed``: how many due deadlines are not run, for ``status.counts.missed`` (exact up to
    ``MISSED_COUNT_CAP``). ``next_deadline``: the first deadline strictly after ``now``; see
    ``ScheduleTiming.next_after_fire`` for the one to store.
    """

    run: tuple[datetime, ...]
    missed: int
    next_deadline: datetime


class TimingSpec(Protocol):
    """The fields of a Schedule's spec that decide its deadlines."""

    schedule: str | None
    time_zone: str
    interval: str | None


@dataclass(frozen=True)
class ScheduleTiming:
    """When a Schedule's deadlines fall: a cron read in a zone, or an interval after each run."""

    rule: Cron | timedelta
    signature: str
    """The spec fields it was read from, for ``status.observedTiming``: when it changes, the
    timing was edited and the next deadline is recomputed from now."""

    @property
    def interval(self) -> timedelta | None:
        """The interval of an interval schedule; ``None`` for a cron."""
        return self.rule if isinstance(self.rule, timedelta) else None

    def first_deadline(
        self,
        *,
        now: datetime,
        created_at: datetime,
        last_finished_at: datetime | None,
        has_run: bool,
        active: bool,
    ) -> datetime | None:
        """The deadline of a new schedule or one whose timing was edited; never in the past
        except for an interval schedule's first run.

        Cron: the first deadline strictly after ``now``. Interval: the creation if it never
        ran; ``None`` while a run is active (its finish sets the deadline); else the last
        finish plus the interval, or ``now`` if that has passed.
        """
        if isinstance(self.rule, Cron):
            return self.rule.next_after(now)
        if not has_run:
            return created_at
        if active:
            return None
        return max(now, (last_finished_at or now) + self.rule)

    def after_run(self, finished_at: datetime) -> datetime:
        """The next deadline counted from ``finished_at``: the interval after it, or the cron's
        next deadline."""
        if isinstance(self.rule, Cron):
            return self.rule.next_after(finished_at)
        return finished_at + self.rule

    def next_after_fire(self, plan: DuePlan, *, created: bool) -> datetime | None:
        """The ``status.deadlineAt`` to store after acting on ``plan``: ``None`` for an interval
        schedule that created a task (the task's finish sets it), else ``plan.next_deadline``."""
        if isinstance(self.rule, timedelta) and created:
            return None
        return plan.next_deadline


def timing_of(spec: TimingSpec, name: str) -> ScheduleTiming:
    """Read and validate the timing of the schedule ``name`` (``namespace/name``, which ``H``
    hashes). Raises ``InvalidSchedule`` unless exactly one of schedule and interval is set and
    it is valid."""
    if spec.schedule is not None and spec.interval is None:
        return ScheduleTiming(
            parse_cron(spec.schedule, spec.time_zone, name), f"{spec.schedule} in {spec.time_zone}"
        )
    if spec.interval is not None and spec.schedule is None:
        return ScheduleTiming(parse_interval(spec.interval), f"every {spec.interval}")
    raise InvalidSchedule("set exactly one of schedule and interval")


def plan_due(
    timing: ScheduleTiming,
    deadline_at: datetime,
    now: datetime,
    *,
    missed_run_policy: MissedRunPolicy = MissedRunPolicy.RUN_LATEST,
    missed_run_limit: int = 10,
    starting_deadline_seconds: int | None = None,
) -> DuePlan:
    """Decide which due deadlines run, given the stored next deadline ``deadline_at``
    (``status.deadlineAt``) and ``now``.

    For a cron the due deadlines are ``deadline_at`` and every deadline after it up to and
    including ``now``; for an interval only ``deadline_at``. A deadline is late when acted on
    more than ``starting_deadline_seconds`` after it; a late deadline never runs. The latest
    due deadline is the current one, the older ones were missed (the operator was down or the
    schedule disabled):

    - ``RunLatest``: the latest runs unless late.
    - ``Skip``: runs missed while nothing acted are dropped: the latest runs only when acted on
      within ``ON_TIME_GRACE`` (and not late), as it is when the operator is up.
    - ``RunAll``: every due deadline that is not late runs, at most ``missed_run_limit`` of
      them: the most recent ones, oldest first, so that the latest is never the one dropped.

    Due deadlines that do not run are counted in ``missed``. ``next_deadline`` is the first
    deadline strictly after ``now``: a cron's next one, or for an interval, the first
    ``deadline_at`` plus a whole number of intervals (used when no task was created). Cost is
    bounded by the policy and ``MISSED_COUNT_CAP``, not by the length of the downtime.
    """
    if missed_run_policy not in ("RunLatest", "Skip", "RunAll"):
        raise ValueError(f"unknown missedRunPolicy {missed_run_policy!r}")
    if missed_run_limit < 1:
        raise ValueError("missedRunLimit must be at least 1")
    if now < deadline_at:
        return DuePlan(run=(), missed=0, next_deadline=deadline_at)

    def runs(deadline: datetime) -> bool:
        lateness = now - deadline
        if starting_deadline_seconds is not None and lateness > timedelta(
            seconds=starting_deadline_seconds
        ):
            return False
        return missed_run_policy != MissedRunPolicy.SKIP or lateness <= ON_TIME_GRACE

    schedule = timing.rule
    if isinstance(schedule, timedelta):
        following = deadline_at + ((now - deadline_at) // schedule + 1) * schedule
        run: tuple[datetime, ...] = (deadline_at,) if runs(deadline_at) else ()
        return DuePlan(run=run, missed=1 - len(run), next_deadline=following)

    following = schedule.next_after(deadline_at)
    if following > now:  # the usual case: only the stored deadline is due
        run = (deadline_at,) if runs(deadline_at) else ()
        return DuePlan(run=run, missed=1 - len(run), next_deadline=following)

    wanted = missed_run_limit if missed_run_policy == MissedRunPolicy.RUN_ALL else 1
    recent = list(islice(takewhile(lambda t: t > deadline_at, schedule.at_or_before(now)), wanted))
    if len(recent) < wanted:
        recent.append(deadline_at)
    run = tuple(t for t in reversed(recent) if runs(t))
    later = takewhile(lambda t: t <= now, schedule.after(deadline_at))
    due = 1 + sum(1 for _ in islice(later, MISSED_COUNT_CAP + len(run) - 1))
    return DuePlan(
        run=run,
        missed=due - len(run),
        next_deadline=schedule.next_after(now),
    )
