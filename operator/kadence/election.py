"""Who leads: one attempt to take or keep a `coordination.k8s.io` Lease, decided purely.

This is client-go's `leaderelection.tryAcquireOrRenew`. A Lease held by another replica
is taken only once it has gone unrenewed for its whole `leaseDurationSeconds`, measured
on this replica's own monotonic clock from the moment it saw the record last change
(never from the `renewTime` written by another machine, whose clock may differ). A
released Lease (no holder) is taken at once. Writing the returned record with the
resourceVersion that was read makes the attempt atomic: of two replicas that try at
once, the API server accepts one.

A leader acts only while `still_leading` says so: it stops acting `renewDeadline` after
its last successful renewal, which is before any other replica may take the Lease
(`leaseDuration` later), so two replicas never act at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease's spec says about its holder."""

    holder: str
    duration_seconds: int
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observation:
    """The record last read, and when (monotonic seconds) it was first seen as it is."""

    record: LeaseRecord
    since: float


@dataclass(frozen=True)
class Attempt:
    """What to do: write `record` (create the Lease when it does not exist), or nothing
    because another replica holds the Lease (`holder`) and it has not expired."""

    write: LeaseRecord | None
    create: bool
    holder: str


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def record_of(lease: Body) -> LeaseRecord:
    """A Lease object's spec as a record; missing fields read as a released Lease."""
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquired_at=_time(spec.get("acquireTime")),
        renewed_at=_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def _micro(instant: datetime | None) -> str | None:
    """A Lease's MicroTime: RFC 3339 with microseconds, in UTC."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if instant else None


def lease_spec(record: LeaseRecord) -> Body:
    """The Lease spec that says `record`."""
    return {
        "holderIdentity": record.holder or None,
        "leaseDurationSeconds": record.duration_seconds,
        "acquireTime": _micro(record.acquired_at),
        "renewTime": _micro(record.renewed_at),
        "leaseTransitions": record.transitions,
    }


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """Remember `record`, restarting its clock only when it changed since last read."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def attempt(
    current: LeaseRecord | None,
    observed: Observation | None,
    identity: str,
    *,
    duration: timedelta,
    now: float,
    wall: datetime,
) -> Attempt:
    """Take or renew the Lease, or leave it to the replica that holds it.

    `current` is the record as just read (None: there is no Lease yet), `observed` the
    observation made from it (its clock), `now` the monotonic time and `wall` the time
    written into the record for people to read.
    """
    seconds = max(1, round(duration.total_seconds()))
    if current is None:
        mine = LeaseRecord(identity, seconds, acquired_at=wall, renewed_at=wall)
        return Attempt(write=mine, create=True, holder=identity)
    held_by_other = current.holder not in ("", identity)
    unexpired = observed is None or now < observed.since + current.duration_seconds
    if held_by_other and unexpired:
        return Attempt(write=None, create=False, holder=current.holder)
    if current.holder == identity:
        renewed = replace(current, duration_seconds=seconds, renewed_at=wall)
        return Attempt(write=renewed, create=False, holder=identity)
    taken = LeaseRecord(
        identity,
        seconds,
        acquired_at=wall,
        renewed_at=wall,
        transitions=current.transitions + 1,
    )
    return Attempt(write=taken, create=False, holder=identity)


def released(current: LeaseRecord, wall: datetime) -> LeaseRecord:
    """The record a leader writes on its way out: no holder, so the next replica to try
    takes the Lease at once instead of waiting for it to expire."""
    return replace(current, holder="", duration_seconds=1, renewed_at=wall)


def still_leading(last_renewal: float | None, now: float, renew_deadline: timedelta) -> bool:
    """Whether a leader may still act: its last successful renewal (monotonic time, taken
    before the request was sent) is younger than the renew deadline."""
    return last_renewal is not None and now - last_renewal < renew_deadline.total_seconds()
