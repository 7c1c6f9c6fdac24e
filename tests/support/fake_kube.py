"""An in-memory API server for the controller tests: the `KubeApi` protocol, recording calls.

It keeps objects, assigns uids, resourceVersions and creation times (from the test's
clock), refuses a second create (AlreadyExists), a stale conditional status patch
(Conflict) and a missing object (NotFound), and records every write as an action so a
test can assert the exact calls a reconcile made, in order.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kadence.kube import ApiError

Body = dict[str, Any]
Action = tuple[str, str, str]


def _merge(target: Body, patch: Body) -> Body:
    """An RFC 7386 merge patch."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeKube:
    """What the controllers see of a cluster, with every write recorded in `actions`."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self.objects: dict[tuple[str, str, str], Body] = {}
        self.actions: list[Action] = []
        self.events: list[tuple[str, str, str]] = []
        """(object name, type, reason)"""
        self.service_accounts: set[tuple[str, str]] = set()
        self.refuse: dict[tuple[str, str], ApiError] = {}
        """(verb, plural) -> the error such a call raises."""
        self._revision = 100
        self._uids = 0

    def put(self, plural: str, body: Body) -> Body:
        """Place an object as if someone had created it earlier (no action recorded)."""
        stored = self._stamp(copy.deepcopy(body))
        meta = stored["metadata"]
        self.objects[(plural, meta["namespace"], meta["name"])] = stored
        return copy.deepcopy(stored)

    def _stamp(self, body: Body) -> Body:
        meta = body.setdefault("metadata", {})
        self._revision += 1
        meta["resourceVersion"] = str(self._revision)
        if "uid" not in meta:
            self._uids += 1
            meta["uid"] = f"uid-{self._uids}"
        meta.setdefault("creationTimestamp", self._now().strftime("%Y-%m-%dT%H:%M:%SZ"))
        return body

    def _check(self, verb: str, plural: str) -> None:
        error = self.refuse.get((verb, plural))
        if error is not None:
            raise error

    def _existing(self, plural: str, namespace: str, name: str) -> Body:
        body = self.objects.get((plural, namespace, name))
        if body is None:
            raise ApiError(404, "NotFound", f"{plural} {name} not found")
        return body

    async def get(self, plural: str, namespace: str, name: str) -> Body:
        await asyncio.sleep(0)  # a real call gives other work its turn
        self._check("get", plural)
        return copy.deepcopy(self._existing(plural, namespace, name))

    async def create(self, plural: str, body: Body) -> Body:
        await asyncio.sleep(0)
        meta = body["metadata"]
        self.actions.append(("create", plural, meta["name"]))
        self._check("create", plural)
        if (plural, meta["namespace"], meta["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", f"{plural} {meta['name']} already exists")
        return self.put(plural, body)

    async def patch(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        self.actions.append(("patch", plural, name))
        self._check("patch", plural)
        merged = _merge(self._existing(plural, namespace, name), patch)
        return self.put(plural, merged)

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        await asyncio.sleep(0)
        self.actions.append(("patch_status", plural, name))
        self._check("patch_status", plural)
        current = self._existing(plural, namespace, name)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        merged = _merge(current, {"status": patch["status"]})
        return self.put(plural, merged)

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        self.actions.append(("delete", plural, name))
        self._check("delete", plural)
        self._existing(plural, namespace, name)
        del self.objects[(plural, namespace, name)]

    async def create_job(self, job: Body, dry_run: bool = False) -> Body:
        self.actions.append(("dry_run" if dry_run else "create", "jobs", job["metadata"]["name"]))
        self._check("dry_run" if dry_run else "create", "jobs")
        if dry_run:
            return copy.deepcopy(job)
        meta = job["metadata"]
        if ("jobs", meta["namespace"], meta["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", f"jobs {meta['name']} already exists")
        return self.put("jobs", job)

    async def get_job(self, namespace: str, name: str) -> Body:
        return await self.get("jobs", namespace, name)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self.delete("jobs", namespace, name)

    async def service_account_exists(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.service_accounts

    def event(self, obj: Body, type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason))


class FakeClock:
    """The time a test says it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
