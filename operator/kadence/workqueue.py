"""A work queue per kind of object, in the manner of client-go's rate-limited workqueue.

Keys, not events, are queued: a key added while it waits is not added twice, and a key
added while a worker holds it is processed once more after that worker is done, so no
key is ever processed by two workers at once and no change is lost. A failed key comes
back after an exponential backoff with jitter; a key that succeeds forgets its failures,
and comes back after the delay its reconcile returns, if any (a deadline). Delayed adds
are timers that `stop` cancels.

Workers run only while this replica leads: a standby keeps adding keys (its store stays
warm) without reconciling them; `start` and `stop` may alternate for the life of the
process, and `drain` lets the reconciles in flight finish before a clean shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from kadence import metrics
from kadence.kube import ApiError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 0.05
MAX_DELAY = 300.0


def backoff_delay(failures: int, *, base: float, cap: float, jitter: float) -> float:
    """The wait before retry number `failures` (1 = first retry): base doubled per earlier
    failure, at most `cap`, stretched by `jitter` (a fraction in [0, 1)) so that keys that
    failed together do not all come back together."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    raw = base * 2.0 ** min(failures - 1, 64)
    return min(raw, cap) * (1 + jitter)


class WorkQueue(Generic[K]):
    """Keys waiting for a reconcile, processed by a fixed number of workers."""

    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], Awaitable[float | None]],
        *,
        workers: int,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._last_error: dict[K, str] = {}
        self._running: list[asyncio.Task[None]] = []
        self._idle: set[asyncio.Task[None]] = set()
        self._draining = False
        metrics.WORKQUEUE_DEPTH.labels(kind=name).set_function(self._depth)

    def add(self, key: K) -> None:
        """Reconcile `key` soon; once, however often it is added before a worker takes it."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile `key` after `delay` seconds; an earlier pending add for it wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire_timer, key))

    def _fire_timer(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """Drop `key` entirely: its timer and its failure count (the object is gone)."""
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()
        self._failures.pop(key, None)
        self._last_error.pop(key, None)

    def _depth(self) -> int:
        """Keys waiting for a worker; none on a standby, whose keys wait for no one yet."""
        return len(self._dirty) if self._running else 0

    def __len__(self) -> int:
        return len(self._dirty)

    @property
    def alive(self) -> bool:
        """Whether no started worker has died (the liveness probe asks; a standby has
        none, and that is alive)."""
        return not any(worker.done() for worker in self._running)

    @property
    def working(self) -> bool:
        return bool(self._running)

    def start(self) -> None:
        self._draining = False
        self._running = [
            asyncio.create_task(self._work(), name=f"kadence-{self.name}-{n}")
            for n in range(self._workers)
        ]

    async def stop(self) -> None:
        """Stop the workers at once and cancel every pending timer; the keys stay, to be
        reconciled if the workers start again."""
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for worker in self._running:
            worker.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []
        self._idle.clear()

    async def drain(self, grace: float) -> None:
        """Take no new key, let the reconciles in flight finish (for at most `grace`
        seconds), then stop."""
        self._draining = True
        for worker in self._idle:
            worker.cancel()
        busy = [worker for worker in self._running if not worker.done()]
        if busy:
            await asyncio.wait(busy, timeout=grace)
        await self.stop()

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._draining:
            self._idle.add(me)
            try:
                key = await self._ready.get()
            finally:
                self._idle.discard(me)
            self._dirty.discard(key)
            self._processing.add(key)
            try:
                requeue_after = await self._reconcile(key)
            except asyncio.CancelledError:
                self._dirty.add(key)  # stopped mid-way: reconcile it again on the next start
                raise
            except Exception as error:  # one object must never stop the others
                self._failed(key, error)
            else:
                self._failures.pop(key, None)
                self._last_error.pop(key, None)
                if requeue_after is not None:
                    self.add_after(key, requeue_after)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._ready.put_nowait(key)

    def _failed(self, key: K, error: Exception) -> None:
        """Retry with backoff; log an error once per key until it changes or clears."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = backoff_delay(
            failures, base=self._base_delay, cap=self._max_delay, jitter=random.random() * 0.2
        )
        metrics.RECONCILE_ERRORS.labels(kind=self.name).inc()
        metrics.WORKQUEUE_RETRIES.labels(kind=self.name).inc()
        text = f"{type(error).__name__}: {error}"
        if self._last_error.get(key) != text:
            self._last_error[key] = text
            log.warning(
                "%s %s: %s; retrying with backoff (%.2fs)",
                self.name,
                "/".join(map(str, key)) if isinstance(key, tuple) else key,
                text,
                delay,
                exc_info=not isinstance(error, ApiError),
            )
        else:
            log.debug("%s %s: failed again (%d); retry in %.2fs", self.name, key, failures, delay)
        self.add_after(key, delay)
