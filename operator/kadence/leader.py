"""Leader election on a `coordination.k8s.io` Lease: one replica acts, the others wait warm.

Every `retryPeriod` each replica reads the Lease and asks `election.attempt` whether to
take it, renew it, or leave it. The replica that writes it leads: `started` runs (the
controllers' workers start) and `leading` stays true while renewals succeed. A leader
whose renewals fail for `renewDeadline` stops acting (`leading` turns false on its own
clock, before the Lease can expire for anyone else), then `stopped` runs; it keeps
trying, and leads again if it wins the Lease again. `release` hands the Lease over on a
clean shutdown; a standby watches the Lease and tries again the moment it changes, so it
takes a released Lease at once instead of after it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from kadence import metrics
from kadence.background import spawn
from kadence.config import LeaderElectionConfig
from kadence.deadlines import parse_interval
from kadence.election import (
    Observation,
    attempt,
    lease_spec,
    observe,
    record_of,
    released,
    still_leading,
)
from kadence.kube import ApiError, LeaseApi

log = logging.getLogger(__name__)

JITTER = 1.2
"""A standby waits up to this fraction longer than `retryPeriod` (client-go's factor), so
that replicas started together do not try in step."""


def identity() -> str:
    """This replica's name in the Lease: its pod (or host) and a per-process suffix, so that
    a restarted process never mistakes its predecessor's Lease for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Takes, keeps and gives back one Lease; says at any instant whether this replica
    may act."""

    def __init__(
        self,
        leases: LeaseApi,
        settings: LeaderElectionConfig,
        namespace: str,
        me: str,
        *,
        started: Callable[[], Coroutine[Any, Any, None]],
        stopped: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.identity = me
        self.namespace = namespace
        self.name = settings.lease_name
        self.holder = ""
        self._leases = leases
        self._duration = parse_interval(settings.lease_duration)
        self._renew_deadline = parse_interval(settings.renew_deadline)
        self._retry = parse_interval(settings.retry_period).total_seconds()
        self._started = started
        self._stopped = stopped
        self._clock = clock
        self._wall = wall
        self._observed: Observation | None = None
        self._lease: dict[str, Any] | None = None
        self._renewed: float | None = None
        self._acting = False
        self._starting: asyncio.Task[Any] | None = None
        self._last_error = ""

    @property
    def leading(self) -> bool:
        """Whether this replica may act now: it won the Lease and renewed it within the
        renew deadline. Read by every write (the fence), so it consults only the clock."""
        return still_leading(self._renewed, self._clock(), self._renew_deadline)

    @property
    def lease_duration(self) -> timedelta:
        return self._duration

    async def run(self) -> None:
        """Try every retry period for the life of the operator, and at once whenever the
        Lease changes (a leader that released it is followed without waiting)."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        threading.Thread(
            target=self._leases.watch_lease,
            args=(
                self.namespace,
                self.name,
                lambda lease: loop.call_soon_threadsafe(self._seen, lease, changed),
            ),
            name="kadence-lease-watch",
            daemon=True,
        ).start()
        while True:
            changed.clear()
            await self.try_once()
            wait = self._retry if self._acting else self._retry * (1 + random.random() * JITTER)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=wait)

    def _seen(self, lease: dict[str, Any], changed: asyncio.Event) -> None:
        """Try again at once when the Lease was released (a standby takes it) or taken by
        another while this replica acts (it stops); a renewal needs nothing."""
        holder = record_of(lease).holder
        if holder == "" or (self._acting and holder != self.identity):
            changed.set()

    async def try_once(self) -> None:
        """One round: read the Lease, take or renew it if allowed, and start or stop acting
        as the outcome says."""
        await self._acquire_or_renew()
        if self._acting and not self.leading:
            await self._step_down()
        elif not self._acting and self.leading:
            await self._step_up()

    async def _acquire_or_renew(self) -> None:
        began = self._clock()
        try:
            lease = await self._leases.get_lease(self.namespace, self.name)
            current = record_of(lease) if lease is not None else None
            if current is not None:
                self._observed = observe(self._observed, current, began)
            plan = attempt(
                current, self._observed, self.identity,
                duration=self._duration, now=began, wall=self._wall(),
            )  # fmt: skip
            self.holder = plan.holder
            if plan.write is None:
                self._renewed = None  # someone else holds it: whatever we thought, we don't
                return
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    **({"resourceVersion": lease["metadata"]["resourceVersion"]} if lease else {}),
                },
                "spec": lease_spec(plan.write),
            }
            self._lease = await self._leases.write_lease(body, create=plan.create)
            self._observed = Observation(plan.write, self._clock())
            self._renewed = began
            self._last_error = ""
        except ApiError as error:
            text = str(error)
            if text != self._last_error:
                self._last_error = text
                level = logging.WARNING if self._acting else logging.INFO
                log.log(level, "Lease %s/%s: %s", self.namespace, self.name, text)

    async def _step_up(self) -> None:
        self._acting = True
        metrics.LEADER.set(1)
        metrics.LEADER_TRANSITIONS.inc()
        log.info("%s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
        if self._lease is not None:
            self._leases.event(
                self._lease, "Normal", "LeaderElection", f"{self.identity} became leader"
            )
        # Beside this loop, which must go on renewing however long a takeover's listing takes.
        self._starting = spawn(self._started())

    async def _step_down(self) -> None:
        self._acting = False
        self._renewed = None
        metrics.LEADER.set(0)
        log.warning(
            "%s stopped leading: the Lease %s/%s was not renewed within %ss",
            self.identity, self.namespace, self.name, self._renew_deadline.total_seconds(),
        )  # fmt: skip
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        self._starting = None
        await self._stopped()

    async def release(self) -> None:
        """Give the Lease up (on a clean shutdown, after the last write) so that a standby
        takes it at its next try."""
        if self._lease is None or not self.leading:
            return
        self._renewed = None
        self._acting = False
        metrics.LEADER.set(0)
        body = {**self._lease, "spec": lease_spec(released(record_of(self._lease), self._wall()))}
        try:
            await self._leases.write_lease(body, create=False)
        except ApiError as error:
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, error)
            return
        log.info("%s released the Lease %s/%s", self.identity, self.namespace, self.name)
