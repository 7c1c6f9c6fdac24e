"""Status writes: coalesced per object, conditional, retried on conflict, never lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kadence.kube import ApiError
from kadence.models import ScheduleStatus
from kadence.status_writer import StatusWriter, status_patch
from kadence.store import Body, Store


class FakeApi:
    """Holds one Schedule; a patch whose resourceVersion is stale gets 409 Conflict."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.body: Body = {
            "metadata": {"namespace": "ns", "name": "s", "resourceVersion": "1"},
            "status": status,
        }
        self.patches: list[dict[str, Any]] = []
        self.gets = 0

    def bump(self, **status: Any) -> None:
        """Someone else writes the status."""
        version = int(self.body["metadata"]["resourceVersion"]) + 1
        self.body = {
            "metadata": {**self.body["metadata"], "resourceVersion": str(version)},
            "status": {**self.body["status"], **status},
        }

    async def get(self, plural: str, namespace: str, name: str) -> Body:
        self.gets += 1
        return self.body

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        self.patches.append(patch)
        if patch["metadata"]["resourceVersion"] != self.body["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        merged = {
            k: v for k, v in {**self.body["status"], **patch["status"]}.items() if v is not None
        }
        self.bump()
        self.body["status"] = merged
        return self.body


def writer(api: FakeApi, store: Store) -> StatusWriter[ScheduleStatus]:
    return StatusWriter(api, "schedules", ScheduleStatus, store.schedules.get, store.put_schedule)  # type: ignore[arg-type]


def add_active(name: str):  # type: ignore[no-untyped-def]
    def mutate(status: ScheduleStatus, _: Body) -> ScheduleStatus | None:
        if name in status.active:
            return None
        return status.model_copy(update={"active": [*status.active, name]})

    return mutate


def test_mutations_made_together_become_one_write() -> None:
    api, store = FakeApi({}), Store()
    store.put_schedule(api.body)

    async def scenario() -> None:
        w = writer(api, store)
        await asyncio.gather(*(w.update(("ns", "s"), add_active(f"t{i}")) for i in range(5)))

    asyncio.run(scenario())
    assert len(api.patches) == 1
    assert api.body["status"]["active"] == ["t0", "t1", "t2", "t3", "t4"]


def test_a_conflict_rereads_and_reapplies_without_losing_the_other_write() -> None:
    api, store = FakeApi({"active": ["theirs"]}), Store()
    store.put_schedule(api.body)
    api.bump(lastHandledRunRequest="x")  # the store's copy is now stale

    asyncio.run(writer(api, store).update(("ns", "s"), add_active("ours")))
    assert [p["metadata"]["resourceVersion"] for p in api.patches] == ["1", "2"]
    assert api.body["status"]["active"] == ["theirs", "ours"]
    assert api.body["status"]["lastHandledRunRequest"] == "x"
    assert store.schedules[("ns", "s")]["status"]["active"] == ["theirs", "ours"]


def test_no_change_means_no_write() -> None:
    api, store = FakeApi({"active": ["t"]}), Store()
    store.put_schedule(api.body)
    asyncio.run(writer(api, store).update(("ns", "s"), add_active("t")))
    assert api.patches == []


def test_a_vanished_object_returns_none() -> None:
    class Gone(FakeApi):
        async def get(self, plural: str, namespace: str, name: str) -> Body:
            raise ApiError(404, "NotFound", "gone")

    api = Gone({})
    assert asyncio.run(writer(api, Store()).update(("ns", "s"), add_active("t"))) is None


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": None}),
        ({}, {"a": 1}, {"a": 1}),
        ({"a": [1]}, {"a": []}, {"a": []}),
    ],
    ids=["dropped-field-is-nulled", "added-field", "emptied-list-is-kept"],
)
def test_status_patch(old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]) -> None:
    assert status_patch(old, new) == patch
