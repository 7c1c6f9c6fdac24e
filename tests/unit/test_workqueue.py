"""The work queue: keys de-duplicated, never two workers on one key, backoff on failure."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

from kadence.workqueue import WorkQueue, backoff_delay


@pytest.mark.parametrize(
    ("failures", "jitter", "delay"),
    [
        (1, 0.0, 0.05),
        (2, 0.0, 0.1),
        (5, 0.0, 0.8),
        (5, 0.1, 0.88),
        (30, 0.0, 300.0),
        (9999, 0.2, 360.0),
    ],
    ids=["first", "second", "fifth", "jittered", "capped", "huge-count-capped"],
)
def test_backoff_delay(failures: int, jitter: float, delay: float) -> None:
    assert backoff_delay(failures, base=0.05, cap=300.0, jitter=jitter) == pytest.approx(delay)


def test_backoff_counts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=1, cap=1, jitter=0)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` on the event loop (the scenario's own timeout bounds the wait)."""
    while not condition():  # noqa: ASYNC110 - a plain condition, no event to wait on
        await asyncio.sleep(0.001)


def recorder() -> tuple[list[str], Callable[[str], Awaitable[None]]]:
    """A reconcile that only records the keys it was given."""
    calls: list[str] = []

    async def reconcile(key: str) -> None:
        calls.append(key)

    return calls, reconcile


async def past(delay: float) -> None:
    """Until the event loop has run every timer due within `delay` seconds from now: a
    timer of its own, due after them, has fired (timers fire in order)."""
    passed = asyncio.Event()
    asyncio.get_running_loop().call_later(delay, passed.set)
    await passed.wait()


def test_a_key_added_many_times_while_waiting_is_reconciled_once() -> None:
    seen, reconcile = recorder()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        for _ in range(5):
            queue.add("a")
        queue.add("b")
        queue.add("last")  # keys leave in order: once it is seen, no copy of `a` waits
        queue.start()
        await until(lambda: "last" in seen)
        await queue.stop()
        assert seen == ["a", "b", "last"]

    run(scenario)


def test_a_key_added_while_held_runs_again_after_never_alongside() -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    calls: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        calls.append(key)
        if len(calls) == 1:
            await release.wait()
        running.discard(key)

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=4)
        queue.start()
        queue.add("a")
        await until(lambda: calls == ["a"])
        queue.add("a")
        queue.add("a")
        queue.add("other")  # a free worker takes it: it would have taken a second `a` first
        await until(lambda: "other" in calls)
        assert calls == ["a", "other"], "a second worker must not take a held key"
        release.set()
        await until(lambda: calls.count("a") == 2)
        await queue.stop()
        assert (calls, overlaps) == (["a", "other", "a"], [])

    run(scenario)


def test_a_failing_key_comes_back_with_growing_backoff_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    times: list[float] = []

    async def reconcile(key: str) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) < 4:
            raise RuntimeError("boom")

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1, base_delay=0.02)
        queue.start()
        queue.add("a")
        await until(lambda: len(times) == 4)
        await queue.stop()
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert [gap >= least for gap, least in zip(gaps, (0.02, 0.04, 0.08), strict=True)] == [
            True,
            True,
            True,
        ], gaps

    with caplog.at_level("WARNING", logger="kadence.workqueue"):
        run(scenario)
    assert len([r for r in caplog.records if "boom" in r.getMessage()]) == 1


def test_the_delay_a_reconcile_returns_brings_the_key_back() -> None:
    calls: list[float] = []

    async def reconcile(key: str) -> float | None:
        calls.append(asyncio.get_running_loop().time())
        return 0.05 if len(calls) == 1 else None

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add("a")
        await until(lambda: len(calls) == 2)
        await queue.stop()
        assert calls[1] - calls[0] >= 0.05

    run(scenario)


def test_an_earlier_delayed_add_wins_and_stop_cancels_timers() -> None:
    calls, reconcile = recorder()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add_after("a", 60)
        queue.add_after("a", 0.01)
        queue.add_after("a", 30)
        await until(lambda: calls == ["a"])
        queue.add_after("b", 0.05)
        await queue.stop()
        await past(0.1)
        assert calls == ["a"], "a stopped queue's timers never fire"

    run(scenario)


def test_forget_drops_a_pending_timer() -> None:
    calls, reconcile = recorder()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add_after("gone", 0.02)
        queue.add_after("kept", 0.04)
        queue.forget("gone")
        await until(lambda: calls == ["kept"])
        await queue.stop()
        assert calls == ["kept"], "the forgotten key's earlier timer never fired"

    run(scenario)


def test_liveness_notices_a_dead_worker() -> None:
    async def reconcile(key: str) -> None:
        return None

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=2)
        assert queue.alive, "a standby has no workers and is alive"
        assert not queue.working
        queue.start()
        assert queue.alive
        assert queue.working
        queue._running[0].cancel()
        await asyncio.sleep(0)
        assert not queue.alive
        await queue.stop()
        assert queue.alive
        assert not queue.working

    run(scenario)


def test_a_standby_keeps_keys_until_its_workers_start() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> None:
        calls.append(key)

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=2)
        queue.add("a")
        queue.add("b")
        queue.add("a")
        await asyncio.sleep(0.05)
        assert calls == [], "no worker runs before start"
        queue.start()
        await until(lambda: sorted(calls) == ["a", "b"])
        await queue.stop()

    run(scenario)


def test_a_key_stopped_mid_reconcile_is_reconciled_again_after_a_restart() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        calls.append(key)
        await release.wait()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add("a")
        await until(lambda: calls == ["a"])
        await queue.stop()
        release.set()
        queue.start()
        await until(lambda: calls == ["a", "a"])
        await queue.stop()

    run(scenario)


def test_drain_lets_the_reconcile_in_flight_finish_and_takes_no_new_key() -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        await release.wait()
        finished.append(key)

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add("in-flight")
        await asyncio.sleep(0.01)
        queue.add("waiting")
        asyncio.get_running_loop().call_later(0.05, release.set)
        await queue.drain(5)
        assert finished == ["in-flight"]
        assert not queue.working

    run(scenario)
