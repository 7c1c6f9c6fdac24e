"""An in-memory mirror of Schedules, Tasks and their Jobs, fed by watch events.

It only speeds decisions up: every decision can be rebuilt from the API server,
which is what happens at start-up (a full list before the loops start).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from kadence.models import FINISHED_PHASES
from kadence.naming import TASK_LABEL

Key = tuple[str, str]
Body = dict[str, Any]


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return meta["namespace"], meta["name"]


def _newer(old: Body | None, new: Body) -> bool:
    """Whether `new` is at least as recent as `old` (resourceVersions are etcd revisions)."""
    if old is None:
        return True
    try:
        return int(new["metadata"]["resourceVersion"]) >= int(old["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


class Store:
    """Latest known bodies by (namespace, name), with unfinished tasks grouped per queue."""

    def __init__(self) -> None:
        self.schedules: dict[Key, Body] = {}
        self.tasks: dict[Key, Body] = {}
        self.jobs: dict[Key, Body] = {}
        self._open: dict[str, set[Key]] = defaultdict(set)
        self._schedule_tasks: dict[Key, set[Key]] = defaultdict(set)

    def put_schedule(self, body: Body) -> bool:
        key = key_of(body)
        if not _newer(self.schedules.get(key), body):
            return False
        self.schedules[key] = body
        return True

    def drop_schedule(self, key: Key) -> None:
        self.schedules.pop(key, None)

    def put_task(self, body: Body) -> bool:
        key = key_of(body)
        old = self.tasks.get(key)
        if not _newer(old, body):
            return False
        if old is not None:
            self._unindex_task(key, old)
        self.tasks[key] = body
        if not _finished(body):
            self._open[scheduler_of(body)].add(key)
        ref = schedule_of(body)
        if ref is not None:
            self._schedule_tasks[ref].add(key)
        return True

    def drop_task(self, key: Key) -> Body | None:
        body = self.tasks.pop(key, None)
        if body is not None:
            self._unindex_task(key, body)
        return body

    def _unindex_task(self, key: Key, body: Body) -> None:
        self._open[scheduler_of(body)].discard(key)
        ref = schedule_of(body)
        if ref is not None:
            self._schedule_tasks[ref].discard(key)

    def put_job(self, body: Body) -> bool:
        key = key_of(body)
        if not _newer(self.jobs.get(key), body):
            return False
        self.jobs[key] = body
        return True

    def drop_job(self, key: Key) -> None:
        self.jobs.pop(key, None)

    def unfinished(self, scheduler_id: str) -> Iterator[Body]:
        """The tasks of one scheduler that have not finished: its queue and its running work."""
        for key in list(self._open.get(scheduler_id, ())):
            body = self.tasks.get(key)
            if body is not None:
                yield body

    def scheduler_ids(self) -> list[str]:
        """Schedulers with unfinished tasks."""
        return [sid for sid, keys in self._open.items() if keys]

    def tasks_of_schedule(self, key: Key) -> list[Body]:
        return [self.tasks[k] for k in list(self._schedule_tasks.get(key, ())) if k in self.tasks]

    def job_for(self, task: Body) -> Body | None:
        """The task's Job, if one with its name carries its label."""
        job = self.jobs.get(key_of(task))
        if job is None:
            return None
        labels = job["metadata"].get("labels") or {}
        return job if labels.get(TASK_LABEL) == task["metadata"]["name"] else None


def _finished(task: Body) -> bool:
    return (task.get("status") or {}).get("phase") in FINISHED_PHASES


def scheduler_of(task: Body) -> str:
    return task.get("spec", {}).get("schedulerId", "")


def schedule_of(task: Body) -> Key | None:
    ref = (task.get("spec") or {}).get("scheduleRef") or {}
    name = ref.get("name")
    return (task["metadata"]["namespace"], name) if name else None
