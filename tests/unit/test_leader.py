"""Two replicas competing for one Lease, on a fake clock: who acts, and when."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

from kadence.config import LeaderElectionConfig
from kadence.kube import ApiError
from kadence.leader import LeaderElector

SETTINGS = LeaderElectionConfig.model_validate(
    {"leaseName": "kadence", "leaseDuration": "15s", "renewDeadline": "10s", "retryPeriod": "2s"}
)


class Leases:
    """One namespace's Leases, with resourceVersions and an outage switch."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False
        self.events: list[tuple[str, str]] = []

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise ApiError(0, "Unreachable", "connection refused")
        found = self.objects.get(name)
        return copy.deepcopy(found) if found else None

    async def write_lease(self, lease: dict[str, Any], *, create: bool) -> dict[str, Any]:
        if self.down:
            raise ApiError(0, "Unreachable", "connection refused")
        name = lease["metadata"]["name"]
        stored = self.objects.get(name)
        if create and stored is not None:
            raise ApiError(409, "AlreadyExists", name)
        if not create:
            if stored is None:
                raise ApiError(404, "NotFound", name)
            if stored["metadata"]["resourceVersion"] != lease["metadata"].get("resourceVersion"):
                raise ApiError(409, "Conflict", "the object has been modified")
        self.version += 1
        written = copy.deepcopy(lease)
        written["metadata"]["resourceVersion"] = str(self.version)
        self.objects[name] = written
        return copy.deepcopy(written)

    def watch_lease(self, namespace: str, name: str, changed: Any) -> None:
        """Not used: the tests call `try_once` themselves."""

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def holder(self) -> str | None:
        return self.objects["kadence"]["spec"]["holderIdentity"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Replica:
    def __init__(self, name: str, leases: Leases, clock: Clock) -> None:
        self.acting = False
        self.starts = 0

        async def started() -> None:
            self.acting = True
            self.starts += 1

        async def stopped() -> None:
            self.acting = False

        self.elector = LeaderElector(
            leases, SETTINGS, "kadence-system", name,
            started=started, stopped=stopped, clock=clock,
            wall=lambda: datetime.fromtimestamp(clock.now, UTC),
        )  # fmt: skip


def world() -> tuple[Leases, Clock, Replica, Replica]:
    leases, clock = Leases(), Clock()
    return leases, clock, Replica("a", leases, clock), Replica("b", leases, clock)


def rounds(clock: Clock, replicas: list[Replica], seconds: float, step: float = 2.0) -> None:
    """Every replica tries once per step, for `seconds` of fake time."""

    async def go() -> None:
        end = clock.now + seconds
        while clock.now < end:
            for replica in replicas:
                await replica.elector.try_once()
            await asyncio.sleep(0)  # a takeover's start runs beside the election loop
            clock.now += step

    asyncio.run(go())


def test_the_first_replica_leads_and_the_second_waits_warm() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 60)
    assert (a.acting, b.acting) == (True, False)
    assert (a.elector.leading, b.elector.leading) == (True, False)
    assert b.elector.holder == "a"
    assert a.starts == 1
    assert leases.events == [("LeaderElection", "a became leader")]


def test_a_killed_leader_is_replaced_once_its_lease_expires_and_not_before() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 10)
    rounds(clock, [b], 14)  # a is gone: it renews no more
    assert not b.acting, "the Lease has not expired yet"
    rounds(clock, [b], 6)
    assert b.acting, "taken within two tries of the Lease expiring"
    assert leases.holder() == "b"
    assert leases.objects["kadence"]["spec"]["leaseTransitions"] == 1


def test_a_released_lease_is_taken_at_the_next_try() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 10)
    asyncio.run(a.elector.release())
    assert not a.elector.leading
    assert leases.holder() is None
    rounds(clock, [b], 2)
    assert b.acting


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_could_expire() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 10)
    last_renewal = clock.now - 2
    leases.down = True
    rounds(clock, [a], 8)
    assert a.acting, "within the renew deadline it still acts"
    rounds(clock, [a], 4)
    assert not a.acting
    assert not a.elector.leading
    assert clock.now - last_renewal < 15, "it stopped before the Lease could expire"
    leases.down = False
    rounds(clock, [a, b], 4)
    assert a.acting, "the API is back and nobody took the Lease: it leads again"
    assert a.starts == 2
    assert not b.acting


def test_a_frozen_leader_does_not_act_when_it_wakes() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 10)
    assert a.elector.leading
    rounds(clock, [b], 20)  # a is frozen (SIGSTOP): time passes, it runs nothing
    assert b.acting
    assert not a.elector.leading, "the fence closes on the clock alone, before a's next round"
    rounds(clock, [a, b], 10)
    assert not a.acting
    assert b.acting
    assert leases.holder() == "b"


def test_two_replicas_trying_at_once_on_the_same_version_make_one_leader() -> None:
    _, _, a, b = world()

    async def together() -> None:
        await asyncio.gather(a.elector.try_once(), b.elector.try_once())
        await asyncio.sleep(0)

    asyncio.run(together())
    assert [a.acting, b.acting].count(True) == 1


def test_a_standby_tries_at_once_when_the_lease_is_released_not_when_it_is_renewed() -> None:
    leases, clock, a, b = world()
    rounds(clock, [a, b], 4)

    async def woken(lease: dict[str, Any], replica: Replica) -> bool:
        changed = asyncio.Event()
        replica.elector._seen(lease, changed)
        return changed.is_set()

    renewed = leases.objects["kadence"]
    assert not asyncio.run(woken(renewed, b)), "a renewal wakes nobody"
    assert not asyncio.run(woken(renewed, a))
    asyncio.run(a.elector.release())
    released = leases.objects["kadence"]
    assert asyncio.run(woken(released, b)), "a released Lease wakes the standby"
