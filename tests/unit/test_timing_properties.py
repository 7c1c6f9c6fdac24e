from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, pairwise, takewhile
from zoneinfo import available_timezones

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kadence.cron import MACROS, Cron, InvalidSchedule, parse_cron
from kadence.deadlines import ON_TIME_GRACE, ScheduleTiming, plan_due

ZONES = sorted(available_timezones() - {"localtime"})

FIELD_LIMITS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = ["jan", "Feb", "MAR", "sun", "Mon", "fri"]


def item(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high).map(str)
    number = st.integers(0, 99).map(str)
    return st.one_of(
        st.just("*"),
        value,
        st.tuples(value, value).map("-".join),
        st.tuples(value, value, number).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.tuples(st.sampled_from(["*", "H"]), number).map("/".join),
        st.tuples(value, number).map("/".join),
        st.sampled_from(
            ["H", "?", "L", "1W", "5#2", "H(0-5)", "H(3-9)/2", "H(9-3)", "H(9-3)/2", *NAMES]
        ),
        st.text("0123456789*/-,?HLW#", min_size=1, max_size=4),
    )


def field(low: int, high: int) -> st.SearchStrategy[str]:
    return st.lists(item(low, high), min_size=1, max_size=3).map(",".join)


EXPRESSIONS = st.one_of(
    st.tuples(*(field(low, high) for low, high in FIELD_LIMITS)).map(" ".join),
    st.sampled_from([*MACROS, "@reboot", "0 0 30 2 *", "* * * * * *"]),
    st.text(max_size=20),
)
ZONE_NAMES = st.one_of(st.sampled_from(ZONES), st.sampled_from(["Mars/Base", "", "utc"]))
INSTANTS = st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)
NAME = st.sampled_from(["", "default/job", "team-a/nightly-backup"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, ZONE_NAMES, INSTANTS, NAME)
def test_deadlines_increase_after_any_instant(
    expression: str, zone: str, after: datetime, name: str
) -> None:
    try:
        cron = parse_cron(expression, zone, name)
    except InvalidSchedule:
        return
    deadlines = list(islice(cron.after(after), 6))
    assert deadlines, "a valid expression fires within the horizon"
    assert deadlines[0] > after
    assert all(a < b for a, b in pairwise(deadlines))
    assert all(t.tzinfo is UTC for t in deadlines)
    assert all(cron.next_after(a) == b for a, b in pairwise(deadlines))
    assert list(islice(cron.at_or_before(deadlines[-1]), len(deadlines))) == deadlines[::-1]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["*/7 * * * *", "0 * * * *", "30 2 * * *", "0 0 13 * 5", "*/20 1-3 * * *"]),
    st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Beirut"]),
    INSTANTS,
    st.integers(0, 3 * 86400),
    st.fixed_dictionaries(
        {
            "missed_run_policy": st.sampled_from(["RunLatest", "Skip", "RunAll"]),
            "missed_run_limit": st.integers(1, 5),
            "starting_deadline_seconds": st.one_of(st.none(), st.integers(0, 7200)),
        }
    ),
)
def test_plan_never_bursts_and_always_moves_on(
    expression: str, zone: str, deadline_at: datetime, downtime: int, options: dict
) -> None:
    timing = ScheduleTiming(parse_cron(expression, zone), expression)
    now = deadline_at + timedelta(seconds=downtime)
    plan = plan_due(timing, deadline_at, now, **options)
    policy = options["missed_run_policy"]
    limit = options["missed_run_limit"]
    starting_deadline_seconds = options["starting_deadline_seconds"]
    due = [deadline_at, *takewhile(lambda t: t <= now, timing.rule.after(deadline_at))]
    assert len(plan.run) <= (limit if policy == "RunAll" else 1)
    assert set(plan.run) <= set(due)
    assert list(plan.run) == sorted(plan.run)
    assert len(plan.run) + plan.missed == len(due)
    assert plan.next_deadline == timing.rule.next_after(now)
    if policy == "RunLatest" and starting_deadline_seconds is None:
        assert plan.run == (due[-1],)
    if starting_deadline_seconds is not None:
        assert all(now - t <= timedelta(seconds=starting_deadline_seconds) for t in plan.run)
    if policy == "Skip":
        assert all(now - t <= ON_TIME_GRACE for t in plan.run)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(range(4)), st.integers(1, 70))
def test_a_range_counts_from_its_start_around_the_field(
    data: st.DataObject, field: int, step: int
) -> None:
    """``a-b/n`` is every ``n``-th value from ``a``, going on at the field's first value after
    its last, until ``b``: one rule whether or not ``a`` is past ``b``."""
    low, high = FIELD_LIMITS[field]
    first, last = (data.draw(st.integers(low, high)) for _ in range(2))
    size = high - low + 1
    length = (last - first) % size + 1
    expected = {(first - low + k) % size + low for k in range(0, length, step)}
    fields = ["0", "0", "1", "*", "*"]
    fields[field] = f"{first}-{last}/{step}"
    cron = parse_cron(" ".join(fields))
    found = [set(cron.minutes), set(cron.hours), cron.days_of_month, cron.months][field]
    assert found == expected


CHANGING_ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Beirut",
    "America/Havana",
    "Pacific/Chatham",
    "UTC",
]


def offset_changes(cron: Cron, day: date) -> bool:
    start, end = (datetime.combine(d, time(), cron.zone) for d in (day, day + timedelta(days=1)))
    return start.utcoffset() != end.utcoffset()


def brute_force(cron: Cron, day: date) -> list[datetime]:
    """Deadlines on ``day`` found by looking at every minute around it: elapsed-time rules take
    each instant whose local time matches; wall-clock rules take, per wall time, the first
    instant whose local time reaches it."""
    if not cron.fires_on(day):
        return []
    start = datetime.combine(day - timedelta(days=1), time(), UTC)
    minutes = [start + timedelta(minutes=i) for i in range(3 * 24 * 60)]
    local = [(t, t.astimezone(cron.zone).replace(tzinfo=None)) for t in minutes]
    walls = [datetime.combine(day, time(h, m)) for h in cron.hours for m in cron.minutes]
    if cron.wall_clock:
        return sorted({next(t for t, wall in local if wall >= w) for w in walls})
    return [t for t, wall in local if wall in set(walls)]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["0 * * * *", "*/30 * * * *", "15,45 2 * * *", "30 2 * * *", "0 0,1,23 * * *"]),
    st.sampled_from(CHANGING_ZONES),
    st.dates(date(1980, 1, 1), date(2100, 1, 1)),
    st.booleans(),
)
def test_instants_match_brute_force(
    expression: str, zone: str, day: date, on_a_change: bool
) -> None:
    cron = parse_cron(expression, zone)
    if on_a_change:
        following = (day + timedelta(days=i) for i in range(400))
        day = next((d for d in following if offset_changes(cron, d)), day)
    assert cron.instants_on(day) == brute_force(cron, day)
