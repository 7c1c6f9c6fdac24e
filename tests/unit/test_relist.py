"""After kopf lists a kind again, the store is checked against one full list, not one per
few seconds of a long listing."""

from __future__ import annotations

import asyncio

import pytest

from kadence import handlers
from kadence.config import OperatorConfig
from kadence.handlers import Runtime


def runtime() -> Runtime:
    config = OperatorConfig.model_validate(
        {"admission": {"requirePolicies": False}, "leaderElection": {"enabled": False}}
    )
    made = Runtime(config)
    made.started = True
    return made


async def listing(made: Runtime, objects: int, every: float) -> list[float]:
    """kopf hands `objects` listed objects on, one each `every` seconds; returns when each
    full list began, relative to the first listed object."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    lists: list[float] = []

    async def relist(*, refresh: bool = False) -> None:
        lists.append(loop.time() - began)

    made.relist = relist  # type: ignore[method-assign]
    for _ in range(objects):
        made.listed()
        await asyncio.sleep(every)
    await asyncio.sleep(handlers.RELIST_AFTER_LISTING * 2)
    return lists


def test_a_long_listing_is_followed_by_one_full_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "RELIST_AFTER_LISTING", 0.05)
    lists = asyncio.run(listing(runtime(), objects=40, every=0.01))
    assert len(lists) == 1
    assert lists[0] >= 0.4, "it waits for the listing to end"


def test_a_listing_that_never_ends_is_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "RELIST_AFTER_LISTING", 0.05)
    monkeypatch.setattr(handlers, "RELIST_LISTING_LONGEST", 0.2)
    lists = asyncio.run(listing(runtime(), objects=60, every=0.01))
    assert len(lists) >= 2
    assert 0.2 <= lists[0] < 0.4, "the first full list comes at the longest wait"
