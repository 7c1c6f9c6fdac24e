"""Who takes the Lease: client-go's tryAcquireOrRenew as a table of named scenarios."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from kadence.election import (
    Attempt,
    LeaseRecord,
    Observation,
    attempt,
    lease_spec,
    observe,
    record_of,
    released,
    still_leading,
)

WALL = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
EARLIER = WALL - timedelta(minutes=5)
DURATION = timedelta(seconds=15)
ME, OTHER = "pod-a_1", "pod-b_2"


def held(by: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(by, 15, acquired_at=EARLIER, renewed_at=EARLIER, transitions=transitions)


@dataclass(frozen=True)
class Case:
    name: str
    current: LeaseRecord | None
    seen_since: float | None
    now: float
    expected: Attempt


CASES = [
    Case(
        "no Lease yet: create it, holding it",
        None, None, 100.0,
        Attempt(LeaseRecord(ME, 15, acquired_at=WALL, renewed_at=WALL), create=True, holder=ME),
    ),
    Case(
        "held by another and renewed within its duration: wait",
        held(OTHER), 90.0, 100.0,
        Attempt(None, create=False, holder=OTHER),
    ),
    Case(
        "held by another, unchanged for just under its duration: still wait",
        held(OTHER), 85.001, 100.0,
        Attempt(None, create=False, holder=OTHER),
    ),
    Case(
        "held by another, unchanged for its whole duration: take it, one more transition",
        held(OTHER), 85.0, 100.0,
        Attempt(
            LeaseRecord(ME, 15, acquired_at=WALL, renewed_at=WALL, transitions=4),
            create=False, holder=ME,
        ),
    ),
    Case(
        "held by another, never observed before: wait a whole duration first",
        held(OTHER), None, 1e9,
        Attempt(None, create=False, holder=OTHER),
    ),
    Case(
        "released (no holder): take it at once",
        released(held(OTHER), EARLIER), 99.9, 100.0,
        Attempt(
            LeaseRecord(ME, 15, acquired_at=WALL, renewed_at=WALL, transitions=4),
            create=False, holder=ME,
        ),
    ),
    Case(
        "held by me: renew, keeping when I acquired it and the transitions",
        held(ME), 99.0, 100.0,
        Attempt(
            LeaseRecord(ME, 15, acquired_at=EARLIER, renewed_at=WALL, transitions=3),
            create=False, holder=ME,
        ),
    ),
    Case(
        "held by me though expired (I was slow): renew it, nobody took it",
        held(ME), 0.0, 100.0,
        Attempt(
            LeaseRecord(ME, 15, acquired_at=EARLIER, renewed_at=WALL, transitions=3),
            create=False, holder=ME,
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_attempt(case: Case) -> None:
    observed = (
        Observation(case.current, case.seen_since)
        if case.current is not None and case.seen_since is not None
        else None
    )
    got = attempt(case.current, observed, ME, duration=DURATION, now=case.now, wall=WALL)
    assert got == case.expected


def test_the_clock_restarts_only_when_the_record_changes() -> None:
    first = observe(None, held(OTHER), 10.0)
    assert observe(first, held(OTHER), 20.0) == Observation(held(OTHER), 10.0)
    renewed = LeaseRecord(OTHER, 15, acquired_at=EARLIER, renewed_at=WALL, transitions=3)
    assert observe(first, renewed, 20.0) == Observation(renewed, 20.0)


def test_a_lease_reads_back_as_written() -> None:
    record = LeaseRecord(ME, 15, acquired_at=EARLIER, renewed_at=WALL, transitions=7)
    spec = lease_spec(record)
    assert spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-12-04T11:55:00.000000Z",
        "renewTime": "2026-12-04T12:00:00.000000Z",
        "leaseTransitions": 7,
    }
    assert record_of({"spec": spec}) == record


def test_a_released_lease_has_no_holder_and_reads_as_free() -> None:
    spec = lease_spec(released(held(ME), WALL))
    assert spec["holderIdentity"] is None
    assert record_of({"spec": spec}).holder == ""
    assert record_of({}) == LeaseRecord("", 0)


@pytest.mark.parametrize(
    ("last_renewal", "now", "leading"),
    [
        (None, 100.0, False),
        (100.0, 100.0, True),
        (100.0, 109.999, True),
        (100.0, 110.0, False),
        (100.0, 1000.0, False),
    ],
    ids=[
        "never renewed",
        "just renewed",
        "just inside the renew deadline",
        "at the renew deadline: stop acting",
        "woke long after (frozen): stop acting",
    ],
)
def test_still_leading(last_renewal: float | None, now: float, leading: bool) -> None:
    assert still_leading(last_renewal, now, timedelta(seconds=10)) is leading


def test_a_leader_stops_acting_before_anyone_else_may_take_the_lease() -> None:
    """The renew deadline (10 s) ends before the lease duration (15 s) can: between the
    two, nobody acts."""
    renewal = 100.0
    other_observed = Observation(held(ME), renewal + 0.5)  # the other saw the renewal later
    for now in (renewal + x / 10 for x in range(0, 300)):
        taken = attempt(
            held(ME), other_observed, OTHER, duration=DURATION, now=now, wall=WALL
        ).write
        assert not (taken is not None and still_leading(renewal, now, timedelta(seconds=10)))
