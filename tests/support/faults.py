"""What the fault tests measure: every Task and Job as it came and went, and the checks that
a fault lost nothing and doubled nothing.

`Sampler` watches Tasks and kadence's Jobs (list, then watch, then list again after any
break), so it sees every state each object passed through, including Jobs that lived only
a moment: per queue, the most Tasks Dispatched or Running at once and the most unfinished
Jobs at once, and for every name every uid it ever had. `assert_exactly_once` then holds
each cron Schedule to its deadlines: one Task per deadline that should run (none for one
its missedRunPolicy drops), one Job per Task, every run finished, and `status.counts`
agreeing with what really happened.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines
from urllib3.response import HTTPResponse

from kadence.cron import next_deadlines
from kadence.naming import SCHEDULE_LABEL, SCHEDULER_ID_LABEL, TASK_LABEL, task_name_for_deadline
from tests.support.kube import GROUP, VERSION, Kube, status

Body = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name) of an object."""
QueueKey = tuple[str, str]
"""(namespace, schedulerId): one queue, unless the configuration shares it."""

ACTIVE = ("Dispatched", "Running")
FINISHED = ("Completed", "Failed", "Cancelled")
JOB_DONE = ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget")
WATCH_SECONDS = 60
"""How long one watch request lasts before the sampler opens the next (from where it was)."""
DEADLINE_NAME = re.compile(r"-[0-9]{10}$")


def phase_of(task: Body | None) -> str | None:
    return status(task).get("phase")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def job_done(job: Body) -> bool:
    """Whether the Job controller has decided the Job's outcome."""
    conditions = status(job).get("conditions") or []
    return any(c.get("type") in JOB_DONE and c.get("status") == "True" for c in conditions)


def _key(body: Body) -> Key:
    return body["metadata"].get("namespace", ""), body["metadata"]["name"]


def _version(body: Body) -> int:
    """An object's resourceVersion as a number (etcd's revision), to keep the newest state."""
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass
class Seen:
    """One object name as the sampler saw it: every uid it had (a second one means it was
    made twice), its newest state, and whether it was deleted last."""

    uids: list[str] = field(default_factory=list)
    last: Body = field(default_factory=dict)
    deleted: bool = False

    def record(self, body: Body, deleted: bool) -> None:
        uid = body["metadata"].get("uid", "")
        if uid not in self.uids:
            self.uids.append(uid)
            self.last, self.deleted = body, deleted
        elif uid == self.uids[-1] and _version(body) >= _version(self.last):
            self.last, self.deleted = body, deleted


@dataclass(frozen=True)
class _Api:
    custom: client.CustomObjectsApi
    batch: client.BatchV1Api


def _client(kubeconfig: Path) -> _Api:
    """API clients that do not retry by themselves: the sampler counts a failure as a gap
    and lists again, instead of the client logging a warning per retry."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = False
    api = client.ApiClient(configuration)
    return _Api(client.CustomObjectsApi(api), client.BatchV1Api(api))


class _Kind:
    """The sampler's view of one kind: what exists now, and everything ever seen."""

    def __init__(self, plural: str) -> None:
        self.plural = plural
        self.now: dict[Key, Body] = {}
        self.seen: dict[Key, Seen] = {}
        self.listed = threading.Event()
        self.down_since: float | None = None


class Sampler:
    """Watches Tasks and kadence's Jobs in `namespaces` from a thread per kind while tasks
    flow, and keeps per queue (namespace, schedulerId) the most Tasks Dispatched or Running
    at once and the most unfinished Jobs at once, the order in which Jobs first appeared,
    and for every Task and Job name every uid it had.

    A broken watch (the API server gone, a 410) is listed again; the time without a watch
    is kept in `gaps`, and errors in `errors`. Entering waits for the first listing of
    both kinds, so nothing made after it is missed.
    """

    def __init__(self, kubeconfig: Path, *namespaces: str, interval: float | None = None) -> None:
        del interval  # the polling sampler's period: a watch has none
        self._kubeconfig = kubeconfig
        self._namespaces = frozenset(namespaces)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tasks = _Kind("tasks")
        self._jobs = _Kind("jobs")
        self._responses: dict[str, HTTPResponse] = {}
        self._threads = [
            threading.Thread(
                target=self._watch, args=(kind,), daemon=True, name=f"sampler-{kind.plural}"
            )
            for kind in (self._tasks, self._jobs)
        ]
        self.peak_tasks: dict[QueueKey, int] = defaultdict(int)
        self.peak_jobs: dict[QueueKey, int] = defaultdict(int)
        self._counts: dict[tuple[str, QueueKey], int] = defaultdict(int)
        self.job_order: list[str] = []
        """Job names in the order the Jobs first appeared."""
        self.events = 0
        self.errors: list[str] = []
        self.gaps: list[float] = []
        """Seconds without a watch, one entry per break (the first listing is not one)."""

    # -- running -------------------------------------------------------------------------

    def __enter__(self) -> Sampler:
        for thread in self._threads:
            thread.start()
        for kind in (self._tasks, self._jobs):
            if not kind.listed.wait(timeout=30):
                self.__exit__(None, None, None)
                raise AssertionError(
                    f"the sampler could not list {kind.plural}: {self.errors[-3:]}"
                )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        for response in list(self._responses.values()):
            with contextlib.suppress(Exception):  # closed already: its thread is leaving
                response.shutdown()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)

    def _watch(self, kind: _Kind) -> None:
        kube = _client(self._kubeconfig)  # a client of its own: it lives in this thread
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list(kube, kind)
                version = self._follow(kube, kind, version)
            except Exception as error:  # a break: list again once the server answers
                if self._stop.is_set():
                    return
                self.errors.append(f"{kind.plural}: {error!r}"[:300])
                with self._lock:
                    if kind.down_since is None:
                        kind.down_since = time.monotonic()
                version = None
                self._stop.wait(0.5)

    def _call(self, kube: _Api, kind: _Kind, **params: Any) -> HTTPResponse:
        if kind is self._tasks:
            response = kube.custom.list_cluster_custom_object(
                GROUP, VERSION, "tasks", _preload_content=False, **params
            )
        else:
            response = kube.batch.list_job_for_all_namespaces(
                label_selector=TASK_LABEL, _preload_content=False, **params
            )
        assert isinstance(response, HTTPResponse)
        return response

    def _list(self, kube: _Api, kind: _Kind) -> str:
        """List, take the listing as the truth (what is missing from it was deleted), and
        return its resourceVersion."""
        listing = json.loads(self._call(kube, kind, _request_timeout=30).data)
        items = [i for i in listing["items"] if self._mine(i)]
        with self._lock:
            listed = {_key(i) for i in items}
            for key in [k for k in kind.now if k not in listed]:
                self._apply(kind, "DELETED", kind.now[key])
            for item in items:
                self._apply(kind, "MODIFIED", item)
            if kind.down_since is not None:
                self.gaps.append(time.monotonic() - kind.down_since)
                kind.down_since = None
        kind.listed.set()
        return str(listing["metadata"]["resourceVersion"])

    def _follow(self, kube: _Api, kind: _Kind, version: str) -> str | None:
        """Watch from `version` until the request ends; the version to go on from, or None
        when only a new listing can go on (410 Gone)."""
        response = self._call(
            kube, kind, watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS, _request_timeout=(10, WATCH_SECONDS + 30),
        )  # fmt: skip
        self._responses[kind.plural] = response
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return version
                event = json.loads(line)
                body = event["object"]
                if event["type"] == "ERROR":
                    if body.get("code") == 410:
                        return None
                    raise RuntimeError(f"watch error: {body}")
                version = body["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK" or not self._mine(body):
                    continue
                with self._lock:
                    self._apply(kind, event["type"], body)
        finally:
            self._responses.pop(kind.plural, None)
            response.release_conn()
        return version

    def _mine(self, body: Body) -> bool:
        return body["metadata"].get("namespace") in self._namespaces

    def _apply(self, kind: _Kind, type_: str, body: Body) -> None:
        """One event (under the lock): the state now, the record, and the queue's peak."""
        key = _key(body)
        before = kind.now.pop(key, None)
        if before is not None and self._busy(kind, before):
            self._counts[kind.plural, self._queue_of(kind, before)] -= 1
        deleted = type_ == "DELETED"
        if not deleted:
            kind.now[key] = body
            if self._busy(kind, body):
                queue = self._queue_of(kind, body)
                self._counts[kind.plural, queue] += 1
                peaks = self.peak_tasks if kind is self._tasks else self.peak_jobs
                peaks[queue] = max(peaks[queue], self._counts[kind.plural, queue])
        if key not in kind.seen:
            kind.seen[key] = Seen()
            if kind is self._jobs:
                self.job_order.append(key[1])
        kind.seen[key].record(body, deleted)
        self.events += 1

    def _busy(self, kind: _Kind, body: Body) -> bool:
        """Whether the object holds a slot: a Task Dispatched or Running, an unfinished Job."""
        return phase_of(body) in ACTIVE if kind is self._tasks else not job_done(body)

    def _queue_of(self, kind: _Kind, body: Body) -> QueueKey:
        namespace = body["metadata"].get("namespace", "")
        if kind is self._tasks:
            return namespace, str((body.get("spec") or {}).get("schedulerId", "?"))
        labels = body["metadata"].get("labels") or {}
        if SCHEDULER_ID_LABEL in labels:
            return namespace, labels[SCHEDULER_ID_LABEL]
        task = self._tasks.seen.get((namespace, labels.get(TASK_LABEL, "")))
        return self._queue_of(self._tasks, task.last) if task else (namespace, "?")

    # -- reading -------------------------------------------------------------------------

    def sync(self, timeout: float = 30) -> None:
        """Wait until the watches have caught up with a fresh listing of both kinds (same
        objects, same resourceVersions), so that what is read next is not behind."""
        kube = _client(self._kubeconfig)
        end = time.monotonic() + timeout
        while True:
            behind = []
            for kind in (self._tasks, self._jobs):
                listing = json.loads(self._call(kube, kind, _request_timeout=30).data)
                listed = {
                    _key(i): i["metadata"]["resourceVersion"]
                    for i in listing["items"]
                    if self._mine(i)
                }
                with self._lock:
                    watched = {k: b["metadata"]["resourceVersion"] for k, b in kind.now.items()}
                if listed != watched:
                    behind.append(kind.plural)
            if not behind:
                return
            if time.monotonic() > end:
                raise AssertionError(f"the sampler's watches of {behind} did not catch up")
            time.sleep(0.1)

    def tasks(self, namespace: str | None = None) -> dict[Key, Seen]:
        """Every Task seen (in `namespace`), deleted ones too."""
        with self._lock:
            return {k: v for k, v in self._tasks.seen.items() if namespace in (None, k[0])}

    def jobs(self, namespace: str | None = None) -> dict[Key, Seen]:
        """Every Job seen (in `namespace`), deleted ones too."""
        with self._lock:
            return {k: v for k, v in self._jobs.seen.items() if namespace in (None, k[0])}

    def tasks_of_schedule(self, namespace: str, schedule: str) -> dict[str, Seen]:
        """Every Task seen that the Schedule made (by its label), by name."""
        return {
            name: seen
            for (ns, name), seen in self.tasks(namespace).items()
            if ns == namespace
            and (seen.last["metadata"].get("labels") or {}).get(SCHEDULE_LABEL) == schedule
        }

    @property
    def job_uids(self) -> dict[Key, set[str]]:
        """Every uid each Job name had: two mean the Job was made twice."""
        return {key: set(seen.uids) for key, seen in self.jobs().items()}

    @property
    def max_active_tasks(self) -> dict[str, int]:
        """Per schedulerId, the most Tasks Dispatched or Running at once in one namespace."""
        return self._by_scheduler(self.peak_tasks)

    @property
    def max_running_jobs(self) -> dict[str, int]:
        """Per schedulerId, the most unfinished Jobs at once in one namespace."""
        return self._by_scheduler(self.peak_jobs)

    def _by_scheduler(self, peaks: Mapping[QueueKey, int]) -> dict[str, int]:
        with self._lock:
            most: dict[str, int] = defaultdict(int)
            for (_, scheduler_id), count in peaks.items():
                most[scheduler_id] = max(most[scheduler_id], count)
            return most

    def doubled(self) -> dict[str, list[str]]:
        """Tasks or Jobs that had more than one uid under one name."""
        return {
            f"{plural} {ns}/{name}": seen.uids
            for plural, records in (("task", self.tasks()), ("job", self.jobs()))
            for (ns, name), seen in records.items()
            if len(seen.uids) > 1
        }

    def assert_within(
        self, scheduler_id: str, capacity: int, *, namespace: str | None = None, max_gap: float = 5
    ) -> None:
        """Capacity was never exceeded in any sampled namespace's queue `scheduler_id` (or in
        `namespace`'s), and the sampler really watched: no break longer than `max_gap`."""
        assert self._tasks.listed.is_set(), self.errors[:3]
        assert self._jobs.listed.is_set(), self.errors[:3]
        long_gaps = [round(gap, 1) for gap in self.gaps if gap > max_gap]
        assert not long_gaps, f"the sampler was blind for {long_gaps} s: {self.errors[:5]}"
        with self._lock:
            for peaks, what in ((self.peak_tasks, "Tasks Dispatched/Running"),
                                (self.peak_jobs, "unfinished Jobs")):  # fmt: skip
                for (ns, sid), most in peaks.items():
                    if sid == scheduler_id and namespace in (None, ns):
                        assert most <= capacity, (
                            f"{most} {what} of queue {ns}/{sid} at once; capacity is {capacity}"
                        )


# -- exactly once -----------------------------------------------------------------------


def deadlines_in(
    expression: str, time_zone: str, name: str, window: tuple[datetime, datetime]
) -> list[datetime]:
    """The deadlines of a cron in the window, both ends included, as the operator computes
    them (`name` is namespace/name, which `H` hashes)."""
    start, end = window
    if end < start:
        return []
    count = int((end - start) / timedelta(minutes=1)) + 2  # a cron fires at most once a minute
    after = start - timedelta(microseconds=1)
    return [d for d in next_deadlines(expression, time_zone, after, count, name) if d <= end]


def settle(check: Callable[[], list[str]], timeout: float, what: str) -> None:
    """Poll `check` (which lists what is still wrong) until it lists nothing; fail with the
    last list on timeout."""
    end = time.monotonic() + timeout
    while True:
        problems = check()
        if not problems:
            return
        if time.monotonic() > end:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}:\n  " + "\n  ".join(problems)
            )
        time.sleep(0.5)


def run_problems(
    schedule: Body, runs: Mapping[str, Seen], jobs: Mapping[Key, Seen], *, missed: int | None
) -> list[str]:
    """What is wrong with a Schedule's runs as a whole: a run not finished, a Task or a Job
    made twice, a finished run without its Job, `status.counts` not what the Tasks show
    (a Task deleted before it finished counts as cancelled), a run still listed active.
    `missed`: the expected `counts.missed` (None: not checked)."""
    namespace, name = _key(schedule)
    problems = []
    expected = {"created": 0, "completed": 0, "failed": 0, "cancelled": 0, "skipped": 0}
    for task_name, seen in sorted(runs.items()):
        phase = phase_of(seen.last)
        expected["created"] += 1  # counted by name: a run made twice counts once
        if len(seen.uids) > 1:
            problems.append(f"{name}: Task {task_name} was made {len(seen.uids)} times")
        job_uids = jobs.get((namespace, task_name), Seen()).uids
        if len(job_uids) > 1:
            problems.append(f"{name}: Task {task_name}'s Job was made {len(job_uids)} times")
        if phase == "Completed" and not job_uids:
            problems.append(f"{name}: Task {task_name} Completed without a Job")
        if seen.deleted and phase not in FINISHED:
            expected["cancelled"] += 1
        elif phase in FINISHED:
            expected[str(phase).lower()] += 1
        else:
            problems.append(f"{name}: Task {task_name} is still {phase or 'Pending'}")
    got = status(schedule)
    counts = got.get("counts") or {}
    for what, value in expected.items():
        if counts.get(what, 0) != value:
            problems.append(
                f"{name}: counts.{what} is {counts.get(what, 0)}, the Tasks say {value}"
            )
    if missed is not None and counts.get("missed", 0) != missed:
        problems.append(f"{name}: counts.missed is {counts.get('missed', 0)}, expected {missed}")
    if not problems and got.get("active"):
        problems.append(f"{name}: status.active still lists {got['active']}")
    return problems


def assert_exactly_once(
    kube: Kube,
    namespace: str,
    schedules: Iterable[str],
    window: tuple[datetime, datetime],
    sampler: Sampler,
    *,
    runs: Mapping[str, Collection[datetime]] | None = None,
    timeout: float = 90,
) -> dict[str, Body]:
    """Every deadline in `window` (both ends included) of each cron Schedule had exactly one
    Task, named for it and made for it (`spec.deadlineAt`), with exactly one Job, that
    Completed; no Task for a deadline that is not to run; and nothing lost overall: every
    run the Schedule made finished, none was made twice, and `status.counts` agree with the
    Tasks (`missed`: the window's deadlines that are not to run).

    `runs`: per Schedule, the deadlines that are to run (by its missedRunPolicy); a Schedule
    not named runs every deadline of the window. The sampler must have watched since before
    the Schedules were made. Waits (up to `timeout`) until each Schedule has acted on the
    window's last deadline and its runs have finished; returns the Schedules."""
    names = list(schedules)
    wanted = dict(runs or {})
    timing: dict[str, list[datetime]] = {}
    for name in names:
        body = kube.get("schedules", namespace, name)
        assert body is not None, f"schedule {namespace}/{name} does not exist"
        spec = body["spec"]
        timing[name] = deadlines_in(
            spec["schedule"], spec.get("timeZone", "UTC"), f"{namespace}/{name}", window
        )
        unknown = set(wanted.get(name, ())) - set(timing[name])
        assert not unknown, f"{name}: {sorted(unknown)} are not deadlines in the window"
    found: dict[str, Body] = {}

    def problems() -> list[str]:
        try:
            sampler.sync(timeout=10)
        except AssertionError as behind:  # a busy moment: look again
            return [str(behind)]
        jobs = sampler.jobs(namespace)
        wrong: list[str] = []
        for name in names:
            body = kube.get("schedules", namespace, name)
            if body is None:
                wrong.append(f"{name}: gone")
                continue
            found[name] = body
            deadline_at = status(body).get("deadlineAt")
            if deadline_at is None or parse_time(deadline_at) <= window[1]:
                wrong.append(
                    f"{name}: has not acted on {window[1].isoformat()} (deadlineAt {deadline_at})"
                )
                continue
            made = sampler.tasks_of_schedule(namespace, name)
            should = set(wanted.get(name, timing[name]))
            wrong += _deadline_problems(
                name, deadlines=timing[name], should=should, made=made, jobs=jobs, window=window
            )
            missed = len(timing[name]) - len(should)
            wrong += run_problems(body, made, jobs, missed=missed)
        return wrong

    settle(problems, timeout, f"{', '.join(names)} to run each deadline once")
    return found


def _deadline_problems(
    name: str,
    *,
    deadlines: list[datetime],
    should: set[datetime],
    made: Mapping[str, Seen],
    jobs: Mapping[Key, Seen],
    window: tuple[datetime, datetime],
) -> list[str]:
    wrong = []
    by_deadline: dict[datetime, list[str]] = defaultdict(list)
    for task_name, seen in made.items():
        if DEADLINE_NAME.search(task_name):
            by_deadline[parse_time(seen.last["spec"]["deadlineAt"])].append(task_name)
    for deadline in deadlines:
        tasks = by_deadline.pop(deadline, [])
        expected = task_name_for_deadline(name, deadline)
        if deadline not in should:
            if tasks:
                wrong.append(f"{name}: {deadline.isoformat()} was not to run, yet made {tasks}")
            continue
        if tasks != [expected]:
            wrong.append(f"{name}: {deadline.isoformat()} made {tasks}, expected [{expected}]")
            continue
        seen = made[expected]
        job = jobs.get((seen.last["metadata"]["namespace"], expected), Seen())
        if len(job.uids) != 1:
            wrong.append(f"{name}: Task {expected} had {len(job.uids)} Jobs")
        if phase_of(seen.last) != "Completed":
            wrong.append(f"{name}: Task {expected} is {phase_of(seen.last)}, not Completed")
    stray = {d: t for d, t in by_deadline.items() if window[0] <= d <= window[1]}
    if stray:
        wrong.append(f"{name}: Tasks for instants that are not deadlines: {stray}")
    return wrong


def new_lines(log: Path, offset: int) -> Iterator[str]:
    """The lines of `log` written after `offset` bytes."""
    with log.open("rb") as handle:
        handle.seek(offset)
        yield from handle.read().decode(errors="replace").splitlines()
