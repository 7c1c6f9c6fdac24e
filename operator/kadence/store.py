"""An in-memory mirror of Schedules, Tasks and their Jobs, fed by watch events.

It only speeds reads up: every decision can be rebuilt from the API server, which is
what happens at start-up (a full list before any controller runs). The indexes answer
the questions the controllers ask: which Tasks a Schedule controls (by its uid), what a
name in a namespace holds, which Tasks of a queue are unfinished, which Job a Task
controls, and which unfinished Jobs a queue has.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Container, Mapping
from typing import Any

from kadence.models import FINISHED_PHASES
from kadence.naming import SCHEDULER_ID_LABEL
from kadence.queue import QueueItem
from kadence.resources import (
    Body,
    Key,
    controller_kind,
    controller_uid,
    key_of,
    queue_item,
    scheduler_of,
)
from kadence.status import observe_job

__all__ = ["Body", "Key", "Store", "key_of"]


def _newer(old: Body | None, new: Body) -> bool:
    """Whether `new` is more recent than `old` (resourceVersions are etcd revisions). The
    same version is the same object: kept, not copied again (a full list taken on
    takeover, and the watch event of the store's own write, bring thousands of them)."""
    if old is None:
        return True
    try:
        return int(new["metadata"]["resourceVersion"]) > int(old["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


SHARED_TEXT = 64
"""Strings up to this length are shared between bodies (`compact`): keys, phases, reasons,
timestamps and names repeat across thousands of objects; long free text rarely does."""


def compact(value: Any) -> Any:
    """A copy of decoded JSON whose keys and short strings are interned, so that every body
    in the store shares one copy of each. Each watch event is decoded on its own, with new
    strings for every key: 10,000 Schedules take about half the memory this way."""
    if isinstance(value, dict):
        return {sys.intern(key): compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    if isinstance(value, str) and len(value) <= SHARED_TEXT:
        return sys.intern(value)
    return value


def slim(body: Body, *, keep_spec: bool = True) -> Body:
    """The body without what the operator never reads: managedFields, kubectl's copy of
    the last applied object, and (for a Job) its spec; compacted. Memory is then bounded by
    what users write into the fields kadence uses, not by every client's bookkeeping."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    slimmed = {k: v for k, v in body.items() if k != "spec" or keep_spec}
    slimmed["metadata"] = meta
    compacted: Body = compact(slimmed)
    return compacted


def _finished(task: Body) -> bool:
    return (task.get("status") or {}).get("phase") in FINISHED_PHASES


def _queue_of_job(job: Body) -> Key:
    labels = job["metadata"].get("labels") or {}
    return job["metadata"]["namespace"], str(labels.get(SCHEDULER_ID_LABEL, ""))


def stale(
    stored: Mapping[Key, Body], present: Container[Key], list_version: str, namespace: str | None
) -> list[Body]:
    """What the store holds (of one namespace, if given) that a full list no longer has.

    A watch that was broken and resumed with a new list never says what was deleted in
    between, so such objects would linger as ghosts. Only objects the list must have seen
    count: one the store got after the list was read (a newer resourceVersion) stays.
    """
    try:
        seen_up_to = int(list_version)
    except ValueError:
        return []
    gone = []
    for key, body in stored.items():
        if key in present or (namespace is not None and key[0] != namespace):
            continue
        try:
            version = int(body["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            continue
        if version <= seen_up_to:
            gone.append(body)
    return gone


class Store:
    """Latest known bodies by (namespace, name), with the indexes the controllers query."""

    def __init__(self) -> None:
        self.schedules: dict[Key, Body] = {}
        self.tasks: dict[Key, Body] = {}
        self.jobs: dict[Key, Body] = {}
        self._by_namespace: dict[str, dict[str, Body]] = defaultdict(dict)
        self._owned: dict[str, set[Key]] = defaultdict(set)
        self._task_uids: dict[str, Key] = {}
        self._items: dict[Key, QueueItem] = {}
        self._open: dict[Key, set[Key]] = defaultdict(set)
        self._job_of: dict[str, Body] = {}
        self._queue_jobs: dict[Key, set[Key]] = defaultdict(set)

    # -- schedules -------------------------------------------------------------------

    def put_schedule(self, body: Body) -> bool:
        key = key_of(body)
        if not _newer(self.schedules.get(key), body):
            return False
        self.schedules[key] = slim(body)
        return True

    def drop_schedule(self, key: Key) -> None:
        self.schedules.pop(key, None)

    # -- tasks -----------------------------------------------------------------------

    def put_task(self, body: Body) -> bool:
        key = key_of(body)
        old = self.tasks.get(key)
        if not _newer(old, body):
            return False
        if old is not None:
            self._unindex_task(key, old)
        body = slim(body)
        self.tasks[key] = body
        self._by_namespace[key[0]][key[1]] = body
        uid = body["metadata"].get("uid")
        if uid:
            self._task_uids[uid] = key
        owner = controller_uid(body)
        if owner is not None:
            self._owned[owner].add(key)
        if not _finished(body):
            self._open[(key[0], scheduler_of(body))].add(key)
            self._items[key] = queue_item(body)
        return True

    def drop_task(self, key: Key) -> Body | None:
        body = self.tasks.pop(key, None)
        if body is not None:
            self._unindex_task(key, body)
        return body

    def _unindex_task(self, key: Key, body: Body) -> None:
        names = self._by_namespace.get(key[0])
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self._by_namespace[key[0]]
        self._task_uids.pop(body["metadata"].get("uid", ""), None)
        owner = controller_uid(body)
        if owner is not None:
            self._owned[owner].discard(key)
            if not self._owned[owner]:
                del self._owned[owner]
        self._items.pop(key, None)
        queue = (key[0], scheduler_of(body))
        self._open[queue].discard(key)
        if not self._open[queue]:
            del self._open[queue]

    def owned_tasks(self, owner_uid: str) -> list[Body]:
        """The Tasks whose controlling ownerReference carries `owner_uid`."""
        return [self.tasks[key] for key in self._owned.get(owner_uid, ())]

    def namespace_tasks(self, namespace: str) -> Mapping[str, Body]:
        """Every Task of a namespace by name (read-only use)."""
        return self._by_namespace.get(namespace, {})

    def unfinished(self, namespace: str, scheduler_id: str) -> list[Body]:
        """The unfinished Tasks of one namespace with this schedulerId."""
        return [self.tasks[k] for k in self._open.get((namespace, scheduler_id), ())]

    def queue_item(self, task: Body) -> QueueItem:
        """`queue_item` of a Task, read once per version: a pass over a queue reads every
        Task in it, and reading each again (its work's hash above all) cost most of a pass."""
        key = key_of(task)
        if self.tasks.get(key) is task and key in self._items:
            return self._items[key]
        return queue_item(task)

    def queues(self) -> list[Key]:
        """(namespace, schedulerId) pairs that have unfinished Tasks."""
        return list(self._open)

    @property
    def task_uids(self) -> Mapping[str, Key]:
        return self._task_uids

    # -- jobs ------------------------------------------------------------------------

    def put_job(self, body: Body) -> bool:
        """Keep a Job controlled by a Task; any other Job is not the operator's concern."""
        key = key_of(body)
        if controller_kind(body) != "Task":
            return False
        old = self.jobs.get(key)
        if not _newer(old, body):
            return False
        if old is not None:
            self._unindex_job(key, old)
        body = slim(body, keep_spec=False)
        self.jobs[key] = body
        self._job_of[controller_uid(body) or ""] = body
        if not observe_job(body).phase.finished:
            self._queue_jobs[_queue_of_job(body)].add(key)
        return True

    def drop_job(self, key: Key) -> Body | None:
        body = self.jobs.pop(key, None)
        if body is not None:
            self._unindex_job(key, body)
        return body

    def _unindex_job(self, key: Key, body: Body) -> None:
        owner = controller_uid(body) or ""
        if self._job_of.get(owner) is body:
            del self._job_of[owner]
        queue = _queue_of_job(body)
        unfinished = self._queue_jobs.get(queue)
        if unfinished is not None:
            unfinished.discard(key)
            if not unfinished:
                del self._queue_jobs[queue]

    def job_of(self, task: Body) -> Body | None:
        """The Job the task controls, if there is one."""
        return self._job_of.get(task["metadata"].get("uid", ""))

    @property
    def jobs_by_owner(self) -> Mapping[str, Body]:
        return self._job_of

    def unfinished_jobs(self, namespace: str, scheduler_id: str) -> list[Body]:
        """The unfinished Jobs of a namespace labelled with this schedulerId (those of
        deleted Tasks hold their queue's slots). Finished ones are left out here, so that a
        pass over a queue costs what is running, not every Job its history kept."""
        return [self.jobs[k] for k in self._queue_jobs.get((namespace, scheduler_id), ())]
