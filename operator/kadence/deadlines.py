"""Deadlines of a Schedule: intervals, the first deadline, and what to do with deadlines that
passed while nothing acted on them.

Pure: ``now`` is always a parameter. Every instant in and out is a timezone-aware UTC
``datetime``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice, takewhile
from typing import Protocol

from kadence.cron import CronRule, InvalidSchedule, parse_crons

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
    schedules: list[str] | None
    time_zone: str
    interval: str | None
    start_at: datetime | None
    end_at: datetime | None
    run_limit: int | None


@dataclass(frozen=True)
class ScheduleTiming:
    """When a Schedule's deadlines fall: a cron read in a zone, or an interval after each run."""

    rule: CronRule | timedelta
    signature: str
    """The spec fields it was read from, for ``status.observedTiming``: when it changes, the
    timing was edited and the next deadline is recomputed from now. A cron shows the values
    its ``H`` fields chose."""
    start_at: datetime | None = None
    """No deadline before it (``spec.startAt``)."""
    end_at: datetime | None = None
    """No deadline after it (``spec.endAt``)."""
    former_signature: str | None = None
    """The signature older versions wrote for the same timing (``H`` unresolved), so that an
    upgrade is not read as an edit."""

    def observed(self, observed_timing: str | None) -> bool:
        """Whether ``observed_timing`` (``status.observedTiming``) is this timing."""
        return observed_timing is not None and observed_timing in (
            self.signature,
            self.former_signature,
        )

    def bounded(self, deadline: datetime | None) -> datetime | None:
        """``deadline`` within ``start_at`` and ``end_at``: ``None`` past the end; an interval
        deadline before the start moves to it (a cron's never falls before it: see
        ``_cron_after``)."""
        if deadline is None or (self.end_at is not None and deadline > self.end_at):
            return None
        if isinstance(self.rule, timedelta) and self.start_at is not None:
            return max(deadline, self.start_at)
        return deadline

    def ended(self, deadline: datetime | None, *, active: bool, now: datetime) -> bool:
        """Whether no deadline is left before ``end_at``, given the next ``deadline`` (after
        ``bounded``). An interval schedule with a run active may still have one, unless its
        end has passed: the run's finish comes later still."""
        if self.end_at is None or deadline is not None:
            return False
        return not (isinstance(self.rule, timedelta) and active and now < self.end_at)

    def upcoming(self, deadline: datetime | None, count: int) -> list[datetime]:
        """The next ``count`` deadlines from the stored ``deadline`` on, within the bounds: a
        cron's follow from it; an interval's depend on when each run finishes, so only the
        stored one is known."""
        if deadline is None or count < 1:
            return []
        if isinstance(self.rule, timedelta):
            return [deadline]
        later = takewhile(
            lambda t: self.end_at is None or t <= self.end_at, self.rule.after(deadline)
        )
        return [deadline, *islice(later, count - 1)]

    def _cron_after(self, rule: CronRule, instant: datetime) -> datetime:
        """The cron's first deadline strictly after ``instant`` and at or after ``start_at``."""
        if self.start_at is not None and instant < self.start_at:
            instant = self.start_at - _JUST_BEFORE
        return rule.next_after(instant)

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
        if not isinstance(self.rule, timedelta):
            return self._cron_after(self.rule, now)
        if not has_run:
            return created_at
        if active:
            return None
        return max(now, (last_finished_at or now) + self.rule)

    def after_run(self, finished_at: datetime) -> datetime:
        """The next deadline counted from ``finished_at``: the interval after it, or the cron's
        next deadline."""
        if not isinstance(self.rule, timedelta):
            return self._cron_after(self.rule, finished_at)
        return finished_at + self.rule

    def next_after_fire(self, plan: DuePlan, *, created: bool) -> datetime | None:
        """The ``status.deadlineAt`` to store after acting on ``plan``: ``None`` for an interval
        schedule that created a task (the task's finish sets it), else ``plan.next_deadline``
        within the bounds."""
        if isinstance(self.rule, timedelta) and created:
            return None
        return self.bounded(plan.next_deadline)


_JUST_BEFORE = timedelta(microseconds=1)


def timing_of(spec: TimingSpec, name: str) -> ScheduleTiming:
    """Read and validate the timing of the schedule ``name`` (``namespace/name``, which ``H``
    hashes). Raises ``InvalidSchedule`` unless exactly one of schedule, schedules and interval
    is set and it is valid, and ``startAt`` is not after ``endAt``."""
    given = [spec.schedule is not None, spec.schedules is not None, spec.interval is not None]
    if given.count(True) != 1:
        raise InvalidSchedule("set exactly one of schedule, schedules and interval")
    start, end = _utc(spec.start_at), _utc(spec.end_at)
    if start is not None and end is not None and start > end:
        raise InvalidSchedule(
            f"startAt {_rfc3339(start)} is after endAt {_rfc3339(end)}: no deadline could fall"
        )
    rule: CronRule | timedelta
    if spec.interval is not None:
        rule = parse_interval(spec.interval)
        signature = former = f"every {spec.interval}"
    else:
        expressions = [spec.schedule] if spec.schedule is not None else spec.schedules or []
        rule = parse_crons(expressions, spec.time_zone, name)
        signature = f"{rule.resolved} in {spec.time_zone}"
        former = f"{', '.join(expressions)} in {spec.time_zone}"
    limits = _limits(start, end, spec.run_limit)
    return ScheduleTiming(
        rule,
        signature + limits,
        start_at=start,
        end_at=end,
        former_signature=None if limits or spec.schedule is None else former,
    )


def _limits(start: datetime | None, end: datetime | None, run_limit: int | None) -> str:
    """The bounds in a signature: an edit of any of them recomputes the next deadline."""
    parts = [
        *([f"from {_rfc3339(start)}"] if start is not None else []),
        *([f"until {_rfc3339(end)}"] if end is not None else []),
        *([f"at most {run_limit} runs"] if run_limit is not None else []),
    ]
    return f", {', '.join(parts)}" if parts else ""


def _utc(moment: datetime | None) -> datetime | None:
    """An instant from the spec in UTC; one without an offset is read as UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
    including ``now`` and ``timing.end_at``; for an interval only ``deadline_at``. A deadline
    is late when acted on more than ``starting_deadline_seconds`` after it; a late deadline
    never runs. The latest due deadline is the current one, the older ones were missed (the
    operator was down or the schedule disabled):

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
    # Deadlines after the end are never due; lateness is still counted from ``now``.
    horizon = now if timing.end_at is None else min(now, timing.end_at)
    if isinstance(schedule, timedelta):
        following = deadline_at + ((now - deadline_at) // schedule + 1) * schedule
        run: tuple[datetime, ...] = (deadline_at,) if runs(deadline_at) else ()
        return DuePlan(run=run, missed=1 - len(run), next_deadline=following)

    following = schedule.next_after(deadline_at)
    if following > horizon:  # the usual case: only the stored deadline is due
        run = (deadline_at,) if runs(deadline_at) else ()
        return DuePlan(run=run, missed=1 - len(run), next_deadline=following)

    wanted = missed_run_limit if missed_run_policy == MissedRunPolicy.RUN_ALL else 1
    recent = list(
        islice(takewhile(lambda t: t > deadline_at, schedule.at_or_before(horizon)), wanted)
    )
    if len(recent) < wanted:
        recent.append(deadline_at)
    run = tuple(t for t in reversed(recent) if runs(t))
    later = takewhile(lambda t: t <= horizon, schedule.after(deadline_at))
    due = 1 + sum(1 for _ in islice(later, MISSED_COUNT_CAP + len(run) - 1))
    return DuePlan(
        run=run,
        missed=due - len(run),
        next_deadline=schedule.next_after(now),
    )
