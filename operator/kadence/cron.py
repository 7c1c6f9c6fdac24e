"""Cron expressions read the way Kubernetes CronJob reads them, in a time zone, with Debian
cron's daylight-saving rule.

croniter parses and expands the fields (names, steps, Jenkins-style ``H``) except ranges, which
follow one rule here (``_span``), ``H(a-b)`` included: croniter refuses a wrapping ``H(a-b)`` and
steps across a wrap one value off. The walk over days and wall-clock times is done here too,
because croniter's own iteration does not follow the daylight-saving rule (it runs
``30 2 * * *`` twice on a fall-back day).

Pure: no clock reads. Every instant in and out is a timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import islice
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterError, croniter

__all__ = [
    "HORIZON_DAYS",
    "MACROS",
    "Cron",
    "CronRule",
    "CronUnion",
    "InvalidSchedule",
    "next_deadlines",
    "parse_cron",
    "parse_crons",
]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

HORIZON_DAYS = 3660
"""A walk gives up after this many consecutive days (ten years) without a deadline: enough for
``0 0 29 2 *`` across a century year that is not a leap year (2096 to 2104)."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    cycle_end: int
    """The value after which a wrapping range goes on at ``low``: ``high``, except Saturday in
    day-of-week, whose 7 is Sunday again."""
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, 59, {}),
    _Field("hour", 0, 23, 23, {}),
    _Field("day-of-month", 1, 31, 31, {}),
    _Field("month", 1, 12, 12, {n: i for i, n in enumerate(_MONTH_NAMES, 1)}),
    _Field("day-of-week", 0, 7, 6, {n: i for i, n in enumerate(_DAY_NAMES)}),
)
_DAY_OF_MONTH, _DAY_OF_WEEK = 2, 4

_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<first>[a-z0-9]+)(?:-(?P<last>[a-z0-9]+))?)(?:/(?P<step>[0-9]+))?",
    re.IGNORECASE | re.ASCII,
)
_HASHED = re.compile(
    r"H(?:\((?P<first>[0-9]+)-(?P<last>[0-9]+)\))?(?:/(?P<step>[0-9]+))?", re.IGNORECASE | re.ASCII
)

_FIRST_DAY = date(1, 1, 2)
_LAST_DAY = date(9999, 12, 30)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_SECONDS = 86400


class InvalidSchedule(ValueError):
    """A schedule (cron expression, time zone or interval) that cannot be used, with a message
    for the person who wrote it."""


_Fail = Callable[[str], InvalidSchedule]


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime"})


def _zone(time_zone: str) -> ZoneInfo:
    """The IANA zone named ``time_zone``; only real zone names, never the host's ``localtime``."""
    if time_zone not in _zone_names():
        raise InvalidSchedule(
            f"unknown time zone {time_zone!r}: use an IANA name such as 'Europe/Amsterdam' or 'UTC'"
        )
    return ZoneInfo(time_zone)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression in a zone: the sets of values each field allows, and the two
    flags that decide how days and daylight-saving changes are read."""

    expression: str
    zone: ZoneInfo
    resolved: str
    """The expression with each ``H`` field replaced by the values it hashed to, for people
    (``status.observedTiming``)."""
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    either_day: bool
    """Both day fields are restricted, so a day matching either one fires (CronJob, Vixie cron)."""
    wall_clock: bool
    """Minute and hour are both fixed (neither starts with ``*``): fire once per matching local
    day, a skipped wall time right after the gap, a repeated one at its first occurrence only.
    Otherwise deadlines follow elapsed time: skipped wall times never run, repeated ones run at
    both instants."""

    def fires_on(self, day: date) -> bool:
        """Whether the local calendar day ``day`` matches the month and day fields."""
        if day.month not in self.months:
            return False
        by_month = day.day in self.days_of_month
        by_week = day.isoweekday() % 7 in self.days_of_week
        return (by_month or by_week) if self.either_day else (by_month and by_week)

    def instants_on(self, day: date) -> list[datetime]:
        """The deadlines whose local wall time falls on ``day``, ascending."""
        if not self.fires_on(day):
            return []
        walls = (datetime.combine(day, time(h, m)) for h in self.hours for m in self.minutes)
        offset = self._steady_offset(day)
        if offset is not None:
            return [(wall - offset).replace(tzinfo=UTC) for wall in walls]
        found: set[datetime] = set()
        for wall in walls:
            found.update(self._resolve(wall))
        return sorted(found)

    def _steady_offset(self, day: date) -> timedelta | None:
        """The UTC offset of the whole local ``day``, or ``None`` if it changes that day (probed
        every six hours: no zone changes its offset and back within six hours)."""
        midnight = datetime.combine(day, time())
        start = midnight.replace(tzinfo=self.zone).astimezone(UTC)
        if start != midnight.replace(tzinfo=self.zone, fold=1).astimezone(UTC):
            return None
        probes = (start + timedelta(hours=hours) for hours in range(0, 25, 6))
        offsets = {probe.astimezone(self.zone).utcoffset() for probe in probes}
        return offsets.pop() if len(offsets) == 1 else None

    def _resolve(self, wall: datetime) -> tuple[datetime, ...]:
        earlier = wall.replace(tzinfo=self.zone).astimezone(UTC)
        later = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if earlier == later:
            return (earlier,)
        if earlier < later:
            return (earlier,) if self.wall_clock else (earlier, later)
        return (_gap_end(later, earlier, self.zone),) if self.wall_clock else ()

    def after(self, instant: datetime) -> Iterator[datetime]:
        """Deadlines strictly after ``instant``, ascending; ends after ``HORIZON_DAYS`` days
        without one, or at the end of the calendar."""
        return self._walk(instant, forward=True)

    def at_or_before(self, instant: datetime) -> Iterator[datetime]:
        """Deadlines at or before ``instant``, descending, ending the same way as ``after``."""
        return self._walk(instant, forward=False)

    def next_after(self, instant: datetime) -> datetime:
        """The first deadline strictly after ``instant``."""
        for deadline in self.after(instant):
            return deadline
        raise InvalidSchedule(
            f"cron {self.expression!r} in {self.zone.key} has no deadline in the "
            f"{HORIZON_DAYS} days after {instant.isoformat()}"
        )

    def _walk(self, origin: datetime, *, forward: bool) -> Iterator[datetime]:
        previous: datetime | None = None
        for instant in self._ordered(origin, forward=forward):
            if instant != previous:
                yield instant
            previous = instant

    def _ordered(self, origin: datetime, *, forward: bool) -> Iterator[datetime]:
        """Deadlines in order from ``origin``; an instant that several skipped wall times
        collapse to may come more than once."""
        # Days are visited in order, but a fall-back change near midnight can put a day's last
        # instants after the next day's first ones, so instants wait in a heap until no day
        # still to visit can precede them: a UTC offset is always less than a day.
        sign = 1 if forward else -1
        step = timedelta(days=sign)
        day = origin.astimezone(UTC).date() - step
        runs: list[Sequence[datetime]] = []
        pending: list[tuple[int, int, int]] = []  # (sort key, run, position): a lazy merge
        idle = 0
        while idle <= HORIZON_DAYS and _FIRST_DAY <= day <= _LAST_DAY:
            instants = _day_instants(self, day)
            idle = 0 if instants else idle + 1
            cut = bisect.bisect_right(instants, origin)
            chosen = instants[cut:] if forward else instants[cut - 1 :: -1] if cut else ()
            if chosen:
                runs.append(chosen)
                heapq.heappush(pending, (sign * _seconds(chosen[0]), len(runs) - 1, 0))
            day_start = _seconds(datetime.combine(day, time(), UTC))
            safe = day_start if forward else -(day_start + _DAY_SECONDS)
            while pending and pending[0][0] <= safe:
                yield self._advance(pending, runs, sign)
            day += step
        while pending:
            yield self._advance(pending, runs, sign)

    @staticmethod
    def _advance(
        pending: list[tuple[int, int, int]], runs: list[Sequence[datetime]], sign: int
    ) -> datetime:
        """Take the earliest pending instant, and queue the next one of its day."""
        _, run, position = heapq.heappop(pending)
        if position + 1 < len(runs[run]):
            following = runs[run][position + 1]
            heapq.heappush(pending, (sign * _seconds(following), run, position + 1))
        return runs[run][position]


@lru_cache(maxsize=4096)
def _day_instants(cron: Cron, day: date) -> tuple[datetime, ...]:
    """``cron.instants_on(day)``, kept: schedules sharing an expression and zone (the usual
    case) and the deadlines of one fire ask for the same few days again and again."""
    return tuple(cron.instants_on(day))


def _seconds(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(seconds=1)


def _gap_end(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant a spring-forward gap ends: the first second in (before, after] that already
    has the later UTC offset."""
    offset = after.astimezone(tz).utcoffset()
    low, high = _seconds(before), _seconds(after)
    while high - low > 1:
        middle = (low + high) // 2
        if (_EPOCH + timedelta(seconds=middle)).astimezone(tz).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return _EPOCH + timedelta(seconds=high)


PARSED = 65536
"""How many (expression, zone, name) readings are kept: every Schedule is read at each of
its reconciles, and parsing (croniter's expansion of `H` above all) was a third of one."""


@lru_cache(maxsize=PARSED)
def parse_cron(expression: str, time_zone: str = "UTC", name: str = "") -> Cron:
    """Parse and validate ``expression`` read in ``time_zone``, hashing ``H`` from ``name``
    (``namespace/name`` of the schedule).

    Raises ``InvalidSchedule`` for anything the operator cannot run: a malformed or unsupported
    field, an unknown zone, ``H`` without a name, or a calendar that never fires
    (``0 0 30 2 *``). An expression that passes fires at least once every few years.
    """
    tz = _zone(time_zone)
    fields = _split(expression)
    canonical = [
        _canonical_field(expression, spec, text, name)
        for spec, text in zip(_FIELDS, fields, strict=True)
    ]
    try:
        expanded, _ = croniter.expand(" ".join(canonical), hash_id=name.encode())
    except CroniterError as error:
        raise InvalidSchedule(f"invalid cron {expression!r}: {error}") from error
    values = [
        sorted({int(v) for v in (range(spec.low, spec.high + 1) if "*" in found else found)})
        for spec, found in zip(_FIELDS, expanded, strict=True)
    ]
    restricted = [text not in ("*", "?") for text in fields]
    cron = Cron(
        expression=expression,
        zone=tz,
        resolved=_resolved(expression, fields, values),
        minutes=tuple(values[0]),
        hours=tuple(values[1]),
        days_of_month=frozenset(values[2]),
        months=frozenset(values[3]),
        days_of_week=frozenset(day % 7 for day in values[4]),
        either_day=restricted[_DAY_OF_MONTH] and restricted[_DAY_OF_WEEK],
        wall_clock=not fields[0].startswith("*") and not fields[1].startswith("*"),
    )
    _check_fires(cron)
    return _shared(cron)


@lru_cache(maxsize=PARSED)
def _shared(cron: Cron) -> Cron:
    """One object for equal rules: thousands of Schedules whose `H` chose the same minute
    and hour in the same zone keep one copy of it, and share `_day_instants`."""
    return cron


def _resolved(expression: str, fields: list[str], values: list[list[int]]) -> str:
    """``expression`` as written, except that an ``H`` field shows the values it chose."""
    if not any(text[0] in "Hh" for text in fields):
        return expression.strip()
    return " ".join(
        ",".join(map(str, found)) if text[0] in "Hh" else text
        for text, found in zip(fields, values, strict=True)
    )


@dataclass(frozen=True)
class CronUnion:
    """Several crons read in one zone as one schedule: their deadlines merged in order, an
    instant that more than one of them names counted once. Same interface as ``Cron``."""

    members: tuple[Cron, ...]

    @property
    def resolved(self) -> str:
        """Each member's resolved expression, joined by ", "."""
        return ", ".join(member.resolved for member in self.members)

    def after(self, instant: datetime) -> Iterator[datetime]:
        """Deadlines of any member strictly after ``instant``, ascending, each once."""
        return _distinct(heapq.merge(*(member.after(instant) for member in self.members)))

    def at_or_before(self, instant: datetime) -> Iterator[datetime]:
        """Deadlines of any member at or before ``instant``, descending, each once."""
        merged = heapq.merge(
            *(member.at_or_before(instant) for member in self.members), reverse=True
        )
        return _distinct(merged)

    def next_after(self, instant: datetime) -> datetime:
        """The first deadline of any member strictly after ``instant``."""
        return min(member.next_after(instant) for member in self.members)


CronRule = Cron | CronUnion
"""What a cron schedule's deadlines come from: ``spec.schedule`` or ``spec.schedules``."""


def _distinct(instants: Iterator[datetime]) -> Iterator[datetime]:
    """``instants`` (sorted) without repeats."""
    previous: datetime | None = None
    for instant in instants:
        if instant != previous:
            yield instant
        previous = instant


def parse_crons(expressions: Sequence[str], time_zone: str = "UTC", name: str = "") -> CronRule:
    """Parse a list of cron expressions (``spec.schedules``) read in one zone as one schedule;
    ``H`` in each is hashed from the same ``name``. Raises ``InvalidSchedule`` for an empty list
    or any expression ``parse_cron`` refuses."""
    if not expressions:
        raise InvalidSchedule("schedules must list at least one cron expression")
    members = tuple(parse_cron(expression, time_zone, name) for expression in expressions)
    return members[0] if len(members) == 1 else CronUnion(members)


def next_deadlines(
    expr: str, time_zone: str, after: datetime, count: int, name: str
) -> list[datetime]:
    """The first ``count`` deadlines of cron ``expr`` strictly after ``after``, as the operator
    computes them (``kadence next``); fewer only if the schedule stops firing for a decade."""
    return list(islice(parse_cron(expr, time_zone, name).after(after), count))


def _split(expression: str) -> list[str]:
    text = expression.strip()
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise InvalidSchedule(
                f"invalid cron {expression!r}: unknown macro; use one of {', '.join(MACROS)}, "
                "or spec.interval for a fixed period"
            )
        text = macro
    fields = text.split()
    if len(fields) != len(_FIELDS):
        hint = " (seconds and years are not supported)" if len(fields) in (6, 7) else ""
        raise InvalidSchedule(
            f"invalid cron {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or a macro such as @daily, got {len(fields)}{hint}"
        )
    return fields


def _canonical_field(expression: str, spec: _Field, text: str, name: str) -> str:
    """Check one field and spell it with numbers only, for croniter to expand."""

    def fail(problem: str) -> InvalidSchedule:
        return InvalidSchedule(f"invalid cron {expression!r}: cron field {spec.name!r} {problem}")

    if text == "?":
        if spec.name not in ("day-of-month", "day-of-week"):
            raise fail("may not be '?'; only day-of-month and day-of-week may")
        return "*"
    if text[0] in "Hh":
        return _hashed_field(text, spec, name, fail)
    items = []
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise fail(
                f"has unsupported item {item!r}"
                " (use numbers, names, '*', ranges 'a-b', steps '/n' and lists; L, W and # are"
                " not supported, and H must be the whole field)"
            )
        step = _step(match["step"], fail)
        if match["star"]:
            items.append(f"*{_suffix(step)}")
        elif match["last"] is None:
            items.append(f"{_value(match['first'], spec, fail)}{_suffix(step)}")
        else:
            first, last = (_value(match[group], spec, fail) for group in ("first", "last"))
            items.append(_spelled(spec, _span(spec, first, last)[:: step or 1]))
    return ",".join(items)


def _hashed_field(text: str, spec: _Field, name: str, fail: _Fail) -> str:
    match = _HASHED.fullmatch(text)
    if match is None:
        raise fail(
            f"has unsupported item {text!r}"
            " (H must be the whole field: H, H/n, H(a-b) or H(a-b)/n, with numbers a and b)"
        )
    if not name:
        raise fail("uses H, which needs the schedule's namespace/name to hash")
    step = _step(match["step"], fail)
    if match["first"] is None:
        return f"H{_suffix(step)}"
    first, last = (_value(match[group], spec, fail) for group in ("first", "last"))
    if first < last:
        return f"H({first}-{last}){_suffix(step)}"  # croniter's own hash, unchanged
    # Wrapped (or one value): the same choice croniter makes for a range of as many values,
    # counted from ``first`` along the wrapped span.
    span = _span(spec, first, last)
    offset = _hash_index(spec, name, min(step or len(span), len(span)))
    return _spelled(spec, span[offset::step] if step else [span[offset]])


def _span(spec: _Field, first: int, last: int) -> list[int]:
    """The values of the range ``first-last``, in order from ``first``: the one rule for ranges.
    A range whose start is past its end wraps: up to ``spec.cycle_end``, then from ``spec.low`` to
    ``last`` (``59-0`` is 59, 0; day-of-week ``5-1`` is Fri, Sat, Sun, Mon, and ``7-1``, from
    Sunday, is ``0-1``). Steps count along this order, across the wrap."""
    if first > last and first > spec.cycle_end:
        first -= spec.cycle_end - spec.low + 1
    if first <= last:
        return list(range(first, last + 1))
    return [*range(first, spec.cycle_end + 1), *range(spec.low, last + 1)]


def _spelled(spec: _Field, values: list[int]) -> str:
    """``values`` as a list for croniter, which then never sees a range: it reads an equal one
    (``5-5``) as the whole field, and steps across a wrap one value off."""
    cycle = spec.cycle_end - spec.low + 1
    unique = dict.fromkeys(value - cycle if value > spec.cycle_end else value for value in values)
    return ",".join(map(str, unique))


def _hash_index(spec: _Field, name: str, count: int) -> int:
    """croniter's ``H`` hash of ``name`` for the field ``spec``, as an index below ``count``:
    what ``H(low-(low+count-1))`` picks, less ``low``, so that a wrapped ``H(a-b)`` draws
    from the same hash as every other ``H``."""
    if count == 1:
        return 0
    index = _FIELDS.index(spec)
    fields = ["*"] * len(_FIELDS)
    fields[index] = f"H({spec.low}-{spec.low + count - 1})"
    expanded, _ = croniter.expand(" ".join(fields), hash_id=name.encode())
    return int(expanded[index][0]) - spec.low


def _step(text: str | None, fail: _Fail) -> int | None:
    if text is None:
        return None
    if int(text) < 1:
        raise fail(f"step /{text} must be at least 1")
    return int(text)


def _suffix(step: int | None) -> str:
    return "" if step is None else f"/{step}"


def _value(text: str, spec: _Field, fail: _Fail) -> int:
    if text.isdigit():
        value = int(text)
    elif text.lower() in spec.names:
        value = spec.names[text.lower()]
    else:
        kind = {"month": " or month name", "day-of-week": " or day name"}.get(spec.name, "")
        raise fail(f"value {text!r} is not a number{kind}")
    if not spec.low <= value <= spec.high:
        raise fail(f"value {value} is out of range {spec.low}-{spec.high}")
    return value


def _check_fires(cron: Cron) -> None:
    """Reject a calendar that names no real day, such as the 30th of February. Only the
    day-of-month and month fields can do that: any weekday and any time of day recur."""
    if cron.either_day or len(cron.days_of_week) < 7:
        return
    if any(day <= _LONGEST_MONTH[month - 1] for month in cron.months for day in cron.days_of_month):
        return
    raise InvalidSchedule(
        f"invalid cron {cron.expression!r}: never fires: day-of-month "
        f"{','.join(map(str, sorted(cron.days_of_month)))} does not occur in "
        f"{','.join(_MONTH_NAMES[month - 1].capitalize() for month in sorted(cron.months))}"
    )
