"""Status writes that are never lost and cost as few requests as they can.

Every change to a status is a pure function of the current status (a mutation).
Mutations for one object are applied in order and coalesced into one conditional
merge patch (the resourceVersion is a precondition); on a conflict the object is
read again and the same mutations are re-applied, so nothing is written on top of
a status the writer has not seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from kadence.background import spawn
from kadence.kube import ApiError, KubeApi
from kadence.store import Body, Key

log = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)
Mutation = Callable[[S, Body], S | None]

MAX_ATTEMPTS = 8


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning status `old` into `new`: fields that disappear are set to null."""
    patch: dict[str, Any] = {name: None for name in old if name not in new}
    patch.update(new)
    return patch


async def write_status(kube: KubeApi, plural: str, body: Body, new: dict[str, Any]) -> Body | None:
    """Write `new` as the status of `body` as it was read; nothing when they are equal.

    Conditional on the resourceVersion read, so a status this writer has not seen is never
    overwritten: a conflict raises, and the reconcile runs again on what is current.
    Returns the written object, or None when nothing was written or the object is gone.
    """
    old = body.get("status") or {}
    if new == old:
        return None
    meta = body["metadata"]
    patch = {
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "status": status_patch(old, new),
    }
    try:
        written: Body = await kube.patch_status(plural, meta["namespace"], meta["name"], patch)
    except ApiError as error:
        if error.not_found:
            return None
        raise
    return written


class StatusWriter(Generic[S]):
    """Coalescing, conflict-retrying writer for the status of one kind of resource."""

    def __init__(
        self,
        kube: KubeApi,
        plural: str,
        model: type[S],
        lookup: Callable[[Key], Body | None],
        remember: Callable[[Body], Any],
        *,
        written: Callable[[Body, Body], None] = lambda old, new: None,
    ) -> None:
        self._kube = kube
        self._plural = plural
        self._model = model
        self._lookup = lookup
        self._remember = remember
        self._written = written
        self._pending: dict[Key, list[tuple[Mutation[S], asyncio.Future[Body | None]]]] = (
            defaultdict(list)
        )
        self._flushing: set[Key] = set()

    async def update(self, key: Key, mutation: Mutation[S]) -> Body | None:
        """Apply `mutation` to the object's status; returns the written body (None: gone)."""
        future: asyncio.Future[Body | None] = asyncio.get_running_loop().create_future()
        self._pending[key].append((mutation, future))
        if key not in self._flushing:
            self._flushing.add(key)
            spawn(self._flush(key))
        return await future

    async def _flush(self, key: Key) -> None:
        try:
            while self._pending.get(key):
                batch = self._pending.pop(key)
                try:
                    result = await self._write(key, [m for m, _ in batch])
                except Exception as error:  # every waiter must hear of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(result)
        finally:
            self._flushing.discard(key)
            if not self._pending.get(key):
                self._pending.pop(key, None)

    async def _write(self, key: Key, mutations: list[Mutation[S]]) -> Body | None:
        namespace, name = key
        body = self._lookup(key)
        for _ in range(MAX_ATTEMPTS):
            if body is None:
                try:
                    body = await self._kube.get(self._plural, namespace, name)
                except ApiError as error:
                    if error.not_found:
                        return None
                    raise
                self._remember(body)
            old_raw = body.get("status") or {}
            status = self._model.model_validate(old_raw)
            changed = False
            for mutation in mutations:
                new = mutation(status, body)
                if new is not None:
                    status, changed = new, True
            new_raw = status.to_kube()  # type: ignore[attr-defined]
            if not changed or new_raw == old_raw:
                return body
            patch = {
                "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                "status": status_patch(old_raw, new_raw),
            }
            try:
                written = await self._kube.patch_status(self._plural, namespace, name, patch)
            except ApiError as error:
                if error.conflict:
                    body = None
                    continue
                if error.not_found:
                    return None
                raise
            self._remember(written)
            self._written(body, written)
            return written
        raise ApiError(409, "Conflict", f"{self._plural} {namespace}/{name}: status kept changing")
