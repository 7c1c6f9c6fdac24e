"""Runners of pull queues: claim a Task, renew the claim while working, report the outcome.

    from kadence.runner import Runner, Filter, ClaimLost

    runner = Runner(namespace="scan")
    while True:
        with runner.work("boefje", filters=[Filter("boefje.id", "eq", "dns")]) as task:
            assert task is not None  # without `wait`, work waits until it has a Task
            task.result = scan(task.data)

The operator stays the only one that grants a slot of a queue (that is how capacity
holds), so a claim is a request the runner writes and the operator grants
(docs/runners.md has the protocol). Every write is conditional on the Task's
resourceVersion: when two runners ask for the same Task, one gets 409 Conflict and asks
for the next one.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kadence import GROUP, VERSION
from kadence.naming import SCHEDULER_ID_LABEL
from kadence.resources import phase_of
from kadence.runner_plan import (
    MAX_MESSAGE_LENGTH,
    Body,
    Filter,
    Standing,
    candidates,
    claim_of,
    finish_patch,
    renew_interval,
    renew_patch,
    request_patch,
    result_text,
    standing,
    task_env,
    truncate,
    withdraw_patch,
)
from kadence.status import parse_time

__all__ = ["ClaimLost", "Claimed", "Filter", "Runner", "RunnerError"]

log = logging.getLogger(__name__)

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WRITE_ATTEMPTS = 8
"""Conflicts in a row a renew or report retries: each one means the Task moved on."""
WATCH_SECONDS = 300
"""How long one watch of a queue lasts; then the queue is listed again, which also mends
anything a broken watch missed."""
GONE_KEPT = 10_000
"""How many finished Tasks a queue's view remembers, for a runner whose request meets one."""
RELIST_PAUSE_SECONDS = 1.0
"""Pause before listing a queue again after its watch failed, so a broken one never spins."""


class RunnerError(Exception):
    """An API call the runner cannot work around: refused (403), invalid (422), unreachable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


class ClaimLost(Exception):
    """The claim is no longer this runner's: it expired, or the Task was cancelled or ended.
    Another runner may be working on the Task: stop, and report nothing."""


@dataclass
class Claimed:
    """A Task this runner holds. Set `result` (JSON-ready) inside `Runner.work`."""

    namespace: str
    name: str
    scheduler_id: str
    data: dict[str, Any]
    deadline_at: datetime | None
    lease_seconds: int
    holder: str
    task: Body
    """The Task as this runner last read or wrote it."""
    result: Any = None
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set by the background renewal in `Runner.work` when the claim was lost."""

    @property
    def env(self) -> dict[str, str]:
        """The KADENCE_* variables a Job of the Task would get."""
        return task_env(self.task)


def _error(error: ApiException) -> RunnerError:
    """The API server's own words for a refusal (admission says which rule)."""
    message = str(error.reason or "")
    try:
        body = json.loads(error.body or "")
        message = str(body.get("message") or message)
    except (TypeError, ValueError):
        pass
    return RunnerError(int(error.status or 0), message)


def _body(value: object) -> Body:
    """A response the client decoded from JSON (typed `object` by it) as the object it is."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object from the API, got {type(value).__name__}")
    return value


def api_client() -> client.ApiClient:
    """In-cluster credentials in a pod, else the current kubeconfig (as `kadence run`)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def default_namespace() -> str:
    """The pod's namespace in a cluster, else the kubeconfig context's, else `default`."""
    if IN_CLUSTER_NAMESPACE.exists():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    try:
        _, active = config.list_kube_config_contexts()
    except config.ConfigException:
        return "default"
    return str((active.get("context") or {}).get("namespace") or "default")


def default_holder() -> str:
    """`KADENCE_HOLDER`, else `hostname/pid`: unique per process, readable in `kubectl get`."""
    return os.environ.get("KADENCE_HOLDER") or f"{socket.gethostname()}/{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


class Runner:
    """Claims Tasks of pull queues in one namespace as one holder.

    The runner's user (its Kubernetes username, which the claim must name) is asked of
    the API server once, with a SelfSubjectReview: the same identity admission sees.
    """

    def __init__(
        self,
        namespace: str | None = None,
        holder: str | None = None,
        *,
        lease_seconds: int = 30,
        api: client.ApiClient | None = None,
    ) -> None:
        self.api = api or api_client()
        self.namespace = namespace or default_namespace()
        self.holder = holder or default_holder()
        self.lease_seconds = lease_seconds
        self._custom = client.CustomObjectsApi(self.api)
        self._user: str | None = None
        self._views: dict[str, _QueueView] = {}

    @property
    def user(self) -> str:
        if self._user is None:
            try:
                review = client.AuthenticationV1Api(self.api).create_self_subject_review(
                    client.V1SelfSubjectReview()
                )
            except ApiException as error:
                raise _error(error) from error
            info = review.status.user_info if review.status else None
            if info is None or not info.username:
                raise RunnerError(0, "the API server did not say who this runner is")
            self._user = str(info.username)
        return self._user

    # --- the API calls ------------------------------------------------------------------

    def _get(self, name: str) -> Body | None:
        try:
            found = _body(
                self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, "tasks", name
                )
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise _error(error) from error
        return found

    def _list(self, label_selector: str) -> tuple[list[Body], str]:
        try:
            listed = _body(self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "tasks", label_selector=label_selector,
            ))  # fmt: skip
        except ApiException as error:
            raise _error(error) from error
        return listed.get("items", []), str(listed["metadata"]["resourceVersion"])

    def _patch(self, name: str, patch: Body) -> Body:
        """A conditional status write; ApiException 409 is left to the caller."""
        try:
            patched = _body(
                self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, self.namespace, "tasks", name, patch
                )
            )
        except ApiException as error:
            if error.status == 409:
                raise
            raise _error(error) from error
        return patched

    def _watch(
        self, selector: dict[str, str], resource_version: str, seconds: float
    ) -> Iterator[tuple[str, Body]]:
        """(event type, Task) as Tasks change after `resource_version`, for at most
        `seconds`; ends early when the watch cannot go on (the caller lists again)."""
        stream = watch.Watch()
        try:
            for event in stream.stream(
                self._custom.list_namespaced_custom_object,
                GROUP, VERSION, self.namespace, "tasks",
                resource_version=resource_version,
                timeout_seconds=max(1, int(seconds)),
                _request_timeout=seconds + 5,
                allow_watch_bookmarks=False,
                **selector,
            ):  # fmt: skip
                if event["type"] == "ERROR":
                    return
                yield event["type"], event["object"]
        except (ApiException, HTTPError, OSError) as error:
            log.debug("watch ended: %s", error)
        finally:
            stream.stop()

    def _queue(self, scheduler_id: str) -> _QueueView:
        """The queue as this runner sees it, listed on first use and watched from then on."""
        view = self._views.get(scheduler_id)
        if view is None:
            view = self._views[scheduler_id] = _QueueView(self, scheduler_id)
        return view

    def close(self) -> None:
        """Stop watching queues (their threads end with their current watch)."""
        for view in self._views.values():
            view.stop()
        self._views.clear()

    # --- claiming -----------------------------------------------------------------------

    def claim(
        self, scheduler_id: str, filters: Sequence[Filter] = (), wait: float | None = 30.0
    ) -> Claimed | None:
        """The head of the queue among the Tasks whose data meets `filters`, granted to
        this runner; None when none was granted within `wait` seconds (None: wait on)."""
        until = None if wait is None else time.monotonic() + wait
        view = self._queue(scheduler_id)
        while True:
            seen = view.version
            conflicts: dict[str, str] = {}
            for task in candidates(view.tasks(), filters):
                requested = self._request(task)
                if requested is None:  # another runner asked first: the next one
                    conflicts[task["metadata"]["name"]] = task["metadata"]["resourceVersion"]
                    continue
                granted = self._await_grant(view, requested, until)
                if granted is not None:
                    return self._claimed(granted)
                break  # lost or withdrawn: look at the queue afresh
            else:
                left = WATCH_SECONDS if until is None else until - time.monotonic()
                if left <= 0:
                    return None
                if conflicts:  # the view was behind: until it has heard of one of them
                    view.wait_newer(conflicts, left)
                else:  # until the queue changes: maybe a candidate
                    view.wait_change(seen, left)
                continue
            if until is not None and time.monotonic() >= until:
                return None

    def _request(self, task: Body) -> Body | None:
        """Ask for the Task; None when another runner was first (409)."""
        name = task["metadata"]["name"]
        patch = request_patch(task, self.holder, self.user, self.lease_seconds, _now())
        try:
            return self._patch(name, patch)
        except ApiException:
            log.debug("%s: another runner asked first", name)
            return None

    def _await_grant(self, view: _QueueView, current: Body, until: float | None) -> Body | None:
        """The Task once the operator granted the request; None when it went to someone
        else, or when the request was withdrawn unanswered (before the operator would clear
        it, or when `until` passed)."""
        try:
            return self._follow_request(view, current, until)
        except BaseException:  # stopped while asking: leave no request to be granted to no one
            self._take_back(current)
            raise

    def _take_back(self, asked: Body) -> None:
        """Withdraw a request, or release the Task if it was granted meanwhile; best effort,
        on the way out of an interrupted claim."""
        try:
            granted = self._withdraw(asked)
            if granted is not None:
                self.release(self._claimed(granted))
        except (RunnerError, ClaimLost, HTTPError, OSError) as error:
            log.warning(
                "could not take back the request for %s: %s", asked["metadata"]["name"], error
            )

    def _follow_request(self, view: _QueueView, current: Body, until: float | None) -> Body | None:
        name = current["metadata"]["name"]
        give_up = time.monotonic() + self.lease_seconds * 0.8
        if until is not None:
            give_up = min(give_up, until)
        written = current["metadata"]["resourceVersion"]
        while True:
            now_standing = standing(current, self.holder, self.user)
            if now_standing is Standing.GRANTED:
                return current
            if now_standing is not Standing.REQUESTED:
                return None
            left = give_up - time.monotonic()
            if left <= 0:
                return self._withdraw(current)
            seen = view.version
            caught_up, newer = view.since(name, written)
            if caught_up and newer is None:
                return None  # finished or deleted while asked for
            if newer is not None and newer["metadata"]["resourceVersion"] != written:
                current = newer
                continue
            view.wait_change(seen, left)

    def _withdraw(self, task: Body) -> Body | None:
        """Take the request back; returns the Task if it was granted meanwhile."""
        name = task["metadata"]["name"]
        for _ in range(WRITE_ATTEMPTS):
            now_standing = standing(task, self.holder, self.user)
            if now_standing is Standing.GRANTED:
                return task
            if now_standing is not Standing.REQUESTED:
                return None
            try:
                self._patch(name, withdraw_patch(task))
                return None
            except ApiException:
                current = self._get(name)
                if current is None:
                    return None
                task = current
        return None

    def _claimed(self, task: Body) -> Claimed:
        spec = task.get("spec") or {}
        meta = task["metadata"]
        claim = claim_of(task) or {}
        return Claimed(
            namespace=meta["namespace"],
            name=meta["name"],
            scheduler_id=spec["schedulerId"],
            data=dict(spec.get("data") or {}),
            deadline_at=parse_time(spec.get("deadlineAt") or meta.get("creationTimestamp")),
            lease_seconds=int(claim.get("leaseSeconds") or self.lease_seconds),
            holder=self.holder,
            task=task,
        )

    # --- holding and reporting ------------------------------------------------------------

    def held(self, name: str) -> Claimed:
        """A Task this runner holds, by name (a shell runner's `renew`, `complete`, `fail`);
        ClaimLost when it does not hold it."""
        current = self._get(name)
        if current is None:
            raise ClaimLost(f"task {name} does not exist in namespace {self.namespace}")
        now_standing = standing(current, self.holder, self.user)
        if now_standing is not Standing.GRANTED:
            raise ClaimLost(_lost_reason(current, self.holder, now_standing))
        return self._claimed(current)

    def _write_held(self, task: Claimed, build: Callable[[Body], Body]) -> None:
        """Check the claim is still ours and write `build(task)`: first on the Task as this
        runner last wrote or read it, then, on a conflict, read again."""
        current: Body | None = task.task
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                current = self._get(task.name)
            if current is None:
                raise ClaimLost(f"task {task.name} was deleted")
            now_standing = standing(current, self.holder, self.user)
            if now_standing is not Standing.GRANTED:
                raise ClaimLost(_lost_reason(current, self.holder, now_standing))
            try:
                task.task = self._patch(task.name, build(current))
                return
            except ApiException:
                continue
        raise RunnerError(409, f"task {task.name} kept changing: {WRITE_ATTEMPTS} conflicts")

    def renew(self, task: Claimed) -> None:
        """Renew the lease (the first renewal marks the work started); ClaimLost if it is gone."""
        self._write_held(task, lambda current: renew_patch(current, _now()))

    def complete(self, task: Claimed, result: Any = None) -> None:
        """Report success, with an optional JSON-ready result (at most 4096 characters)."""
        text = None if result is None else result_text(result)
        self._write_held(task, lambda current: finish_patch(current, True, _now(), result=text))

    def fail(self, task: Claimed, message: str) -> None:
        """Report failure, saying why (cut to 1024 characters)."""
        self._write_held(
            task,
            lambda current: finish_patch(
                current, False, _now(), message=truncate(message, MAX_MESSAGE_LENGTH)
            ),
        )

    def release(self, task: Claimed) -> None:
        """Give the Task back unfinished (the runner is stopping): the operator puts it back
        in its queue at once, without counting the attempt."""
        self._write_held(task, withdraw_patch)

    @contextmanager
    def work(
        self, scheduler_id: str, filters: Sequence[Filter] = (), wait: float | None = None
    ) -> Iterator[Claimed | None]:
        """Claim a Task (None if none within `wait` seconds; None: wait on), renew it in a
        background thread while the block runs, then complete it with `task.result`, or
        fail it with the exception that left the block (which is raised on); an interrupt
        (KeyboardInterrupt, SystemExit) releases it instead. A claim lost meanwhile sets
        `task.lost` and raises ClaimLost at the end instead of reporting."""
        task = self.claim(scheduler_id, filters, wait)
        if task is None:
            yield None
            return
        self.renew(task)
        stop = threading.Event()
        renewing = threading.Thread(
            target=self._keep_renewing, args=(task, stop), name=f"renew {task.name}", daemon=True
        )
        renewing.start()
        try:
            yield task
        except BaseException as error:
            stop.set()
            renewing.join()
            if task.lost.is_set():
                raise
            if isinstance(error, Exception):
                self.fail(task, f"{type(error).__name__}: {error}")
            else:
                self.release(task)  # interrupted, not failed: let another runner do it
            raise
        stop.set()
        renewing.join()
        if task.lost.is_set():
            raise ClaimLost(f"the claim on task {task.name} was lost while working on it")
        self.complete(task, task.result)

    def _keep_renewing(self, task: Claimed, stop: threading.Event) -> None:
        while not stop.wait(renew_interval(task.lease_seconds)):
            try:
                self.renew(task)
            except ClaimLost as lost:
                log.warning("%s", lost)
                task.lost.set()
                return
            except (RunnerError, HTTPError, OSError) as error:
                log.warning("renewing %s failed, trying again: %s", task.name, error)


class _QueueView:
    """The unfinished Tasks of one queue as the API server last told this runner: listed
    once, then kept by a watch in a background thread (as an informer keeps its cache),
    so that asking for the next Task, or waiting for a grant, costs no request.

    It may be behind: a Task it shows as free may be asked for already. The conditional
    write finds out (409) and the runner takes the next one.
    """

    def __init__(self, runner: Runner, scheduler_id: str) -> None:
        self._runner = runner
        self._selector = {"label_selector": f"{SCHEDULER_ID_LABEL}={scheduler_id}"}
        self._tasks: dict[str, Body] = {}
        self._versions: dict[str, set[str]] = {}
        """The resourceVersions each Task has had since it was listed: a runner waiting on
        its own write knows which copy is at least as new."""
        self._gone: dict[str, None] = {}
        """Tasks seen finished or deleted lately (in order, at most GONE_KEPT)."""
        self._changed = threading.Condition()
        self.version = 0
        """Counts the changes seen, for `wait_change`."""
        self._stopped = threading.Event()
        listed = self._list()  # in the caller: a refusal (403) is the caller's to see
        threading.Thread(
            target=self._follow, args=(listed,), name=f"watch {scheduler_id}", daemon=True
        ).start()

    def _list(self) -> str:
        """List the queue: what is missing from the list is gone, the rest is as listed
        (the versions seen before stay known: a runner may be waiting on one)."""
        listed, resource_version = self._runner._list(self._selector["label_selector"])
        with self._changed:
            present = {task["metadata"]["name"] for task in listed}
            for name, task in list(self._tasks.items()):
                if name not in present:
                    self._apply("DELETED", task)
            for task in listed:
                self._apply("ADDED", task)
        return resource_version

    def _apply(self, kind: str, task: Body) -> None:
        name = task["metadata"]["name"]
        if kind == "DELETED" or phase_of(task).finished:
            self._tasks.pop(name, None)
            self._versions.pop(name, None)
            self._gone[name] = None
            if len(self._gone) > GONE_KEPT:
                del self._gone[next(iter(self._gone))]
        else:
            self._gone.pop(name, None)
            self._tasks[name] = task
            self._versions.setdefault(name, set()).add(task["metadata"]["resourceVersion"])
        self.version += 1
        self._changed.notify_all()

    def _follow(self, resource_version: str) -> None:
        while not self._stopped.is_set():
            for kind, task in self._runner._watch(self._selector, resource_version, WATCH_SECONDS):
                with self._changed:
                    self._apply(kind, task)
                resource_version = task["metadata"]["resourceVersion"]
                if self._stopped.is_set():
                    return
            try:
                resource_version = self._list()
            except (RunnerError, HTTPError, OSError) as error:
                log.warning("listing the queue again failed: %s", error)
                self._stopped.wait(RELIST_PAUSE_SECONDS)

    def tasks(self) -> list[Body]:
        with self._changed:
            return list(self._tasks.values())

    def since(self, name: str, resource_version: str) -> tuple[bool, Body | None]:
        """Whether the view has caught up with `resource_version` of a Task (or seen it
        go: finished or deleted), and the Task as seen then (None: gone)."""
        with self._changed:
            if name in self._gone:
                return True, None
            if resource_version not in self._versions.get(name, ()):
                return False, None
            return True, self._tasks.get(name)

    def wait_newer(self, tried: dict[str, str], seconds: float) -> None:
        """Until the view shows one of these Tasks changed from the resourceVersion tried
        (or gone), or `seconds` passed."""

        def newer() -> bool:
            return any(
                name in self._gone
                or self._tasks.get(name, {}).get("metadata", {}).get("resourceVersion") != version
                for name, version in tried.items()
            )

        with self._changed:
            self._changed.wait_for(newer, timeout=seconds)

    def wait_change(self, seen: int, seconds: float) -> None:
        """Until something changed after `seen` (a `version`), or `seconds` passed."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen, timeout=seconds)

    def stop(self) -> None:
        self._stopped.set()


def _lost_reason(task: Body, holder: str, now_standing: Standing) -> str:
    name = task["metadata"]["name"]
    claim = claim_of(task)
    phase = (task.get("status") or {}).get("phase")
    if now_standing is Standing.REPORTED:
        return f"task {name}: {holder} has already reported its outcome"
    if claim is None:
        return f"task {name} is {phase} and has no claim: {holder}'s claim expired or was cleared"
    if claim.get("holder") != holder:
        return f"task {name} is claimed by {claim.get('holder')} now, not {holder}"
    return f"task {name} is {phase}: {holder}'s claim ended"
