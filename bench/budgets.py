"""kadence's performance budgets, each measured next to a baseline in the same run.

One sub-command per budget of the issue (2 cores, local control plane):

    lag        P1 (and P4): lag from each deadline to its Task and Job, N Schedules spread
               over the minutes of the hour, against N CronJobs with the same crons
    burst      P2 (and P4): N deadlines in the same second, until every Job exists, against
               an ideal threaded client and the CronJob controller
    footprint  P3, P4 (idle), P5: memory and CPU with N Schedules and N Tasks, idle between
               deadlines; the API requests then; a restart until the first correct dispatch
    queue      P6: one queue of capacity 50, n manual Tasks at once: admission CPU per
               Task across sizes, and the dispatch rate against a raw client's Job rate

    .venv/bin/python bench/budgets.py SUB-COMMAND [options] [--kubeconfig PATH] [--keep-logs]

It prints figures, the baseline, their ratio, the budget and whether the figure is within
it; it never fails on a number. Without --kubeconfig it starts the local control plane
(tests/cluster) and stops it at the end; with it, it uses that cluster (which must run no
other kadence operator) and deletes its namespaces at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from deadlines import (
    CREATE_THREADS,
    GROUP,
    VERSION,
    Api,
    Cluster,
    Made,
    Metrics,
    Operator,
    ProcessSample,
    cluster,
    install_crds,
    job_template,
    log,
    next_minute,
    parse_time,
    percentile,
    ratio,
    scratch,
    sleep_until,
)
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

T = TypeVar("T")

TASK_LABEL = "kadence.dev/task"
SCHEDULER_LABEL = "kadence.dev/scheduler-id"
FINISHED = frozenset({"Completed", "Failed", "Cancelled"})
ADMITTED = frozenset({"Queued", "Dispatched", "Running"}) | FINISHED
DELETED = "(deleted)"
WATCH_SECONDS = 300  # one watch request; the tracker opens the next where it ended
QUIET_SECONDS = 6.0  # no operator write for this long: the writes of a phase are over
SCRAPE_EVERY = 2.0  # /metrics lists every Schedule: scraping it is not free
ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
MB = 1_000_000


# -- following objects -------------------------------------------------------------------


class Tracker:
    """Every object of one list and watch, followed in a thread: when each was first seen,
    when it first reached each state, and its state now. Sub-second (the watch event's
    arrival), unlike creationTimestamp; a watch that ends is opened again where it ended,
    so one tracker follows a run of any length."""

    def __init__(
        self,
        list_fn: Callable[..., Any],
        *args: Any,
        state: Callable[[dict[str, Any]], str | None],
        label_selector: str | None = None,
    ) -> None:
        self._list_fn = list_fn
        self._args = args
        self._state = state
        self._selector = {"label_selector": label_selector} if label_selector else {}
        self._lock = threading.Lock()
        self._version = ""
        self._stopped = threading.Event()
        self._response: Any = None
        self.seen: dict[str, float] = {}
        self.state: dict[str, str | None] = {}
        self.reached: dict[str, dict[str, float]] = {}
        self.uids: dict[str, set[str]] = {}
        self.error: str | None = None

    def start(self) -> Tracker:
        """List (what exists is known when this returns), then watch in a thread."""
        self._list()
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(Exception):
            if self._response is not None:
                self._response.close()

    def _list(self) -> None:
        raw = self._list_fn(*self._args, _preload_content=False, **self._selector)
        now = time.time()
        listing = json.loads(raw.data)
        names = set()
        for obj in listing["items"]:
            names.add(obj["metadata"]["name"])
            self._record(obj, now)
        with self._lock:  # deleted while no watch was open
            for name in self.state:
                if name not in names:
                    self.state[name] = DELETED
        self._version = listing["metadata"]["resourceVersion"]

    def _record(self, obj: dict[str, Any], now: float, *, deleted: bool = False) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        state = DELETED if deleted else self._state(obj)
        with self._lock:
            self.seen.setdefault(name, now)
            self.uids.setdefault(name, set()).add(meta.get("uid", ""))
            self.state[name] = state
            if state is not None:
                self.reached.setdefault(name, {}).setdefault(state, now)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._response = self._list_fn(
                    *self._args,
                    watch=True,
                    resource_version=self._version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                    **self._selector,
                )
                for line in iter_resp_lines(self._response):
                    now = time.time()  # before parsing: a burst must not delay later events
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:  # too old: list again, then watch on
                            self.error = "410 Gone: listed again (what it added is timed late)"
                            self._list()
                            break
                        raise RuntimeError(obj.get("message"))
                    self._version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._record(obj, now, deleted=event["type"] == "DELETED")
            except Exception as error:  # the next watch picks up where this one ended
                if self._stopped.is_set():
                    return
                self.error = repr(error)
                time.sleep(1)  # not a condition: a pause before asking the API server again

    def count(self, states: Iterable[str | None] | None = None) -> int:
        """Objects now in one of `states` (None: every object not deleted)."""
        with self._lock:
            if states is None:
                return sum(1 for s in self.state.values() if s != DELETED)
            wanted = set(states)
            return sum(1 for s in self.state.values() if s in wanted)

    def first_in(self, states: Iterable[str]) -> dict[str, float]:
        """When each object first reached one of `states` (those that did)."""
        wanted = set(states)
        with self._lock:
            return {
                name: min(t for s, t in reached.items() if s in wanted)
                for name, reached in self.reached.items()
                if any(s in wanted for s in reached)
            }

    def states(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self.state)

    def seen_copy(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seen)


def task_phase(task: dict[str, Any]) -> str | None:
    return (task.get("status") or {}).get("phase")


def job_state(job: dict[str, Any]) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return "Active"


def schedule_deadline(schedule: dict[str, Any]) -> str | None:
    """A Schedule's state: its status.deadlineAt, None until it has one (armed)."""
    return (schedule.get("status") or {}).get("deadlineAt")


# -- waiting -----------------------------------------------------------------------------


def wait_until(
    done: Callable[[], bool],
    what: str,
    timeout: float,
    check: Callable[[], None],
    *,
    progress: Callable[[], str] | None = None,
    poll: float = 0.2,
    every: float = 30.0,
) -> float:
    """Wait for `done`, calling `check` (processes alive) and logging `progress` now and
    then; returns time.time() when it held; raises after `timeout` seconds."""
    start = time.monotonic()
    end, said = start + timeout, start
    while not done():
        check()
        now = time.monotonic()
        if now > end:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        if progress is not None and now - said >= every:
            log(f"  {what}: {progress()} ({now - start:.0f}s)")
            said = now
        time.sleep(poll)
    return time.time()


def writes(metrics: Metrics) -> float:
    return sum(v for k, v in metrics.requests.items() if kind_of(k) == "write")


def settle(operator: Operator, check: Callable[[], None], until: float) -> tuple[Metrics, bool]:
    """Wait until the operator has written nothing for QUIET_SECONDS (its counters say so),
    at most until the instant `until` (time.time()); returns its metrics then and whether
    it was quiet."""
    metrics = operator.metrics()
    last, quiet_since = writes(metrics), time.monotonic()
    while time.time() < until:
        check()
        time.sleep(SCRAPE_EVERY)
        metrics = operator.metrics()
        now_writes = writes(metrics)
        if now_writes != last:
            last, quiet_since = now_writes, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return metrics, True
    return metrics, False


def create_many(create: Callable[[T], Any], items: list[T], threads: int) -> tuple[float, float]:
    """Run `create` on every item from `threads` threads: (time.time() of the first request,
    seconds until the last answer)."""
    started, clock = time.time(), time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(create, item) for item in items]:
            future.result()
    return started, time.monotonic() - clock


# -- the workload ------------------------------------------------------------------------


def schedule_body(
    name: str, scheduler_id: str, timing: dict[str, str], index: int
) -> dict[str, Any]:
    """A Schedule of the busybox Job (as deadlines.py), with `timing`: its `schedule`
    (and `timeZone`) or `interval`. Allow, as CronJob's default: a slow Job never makes a
    deadline skip."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {
            "schedulerId": scheduler_id,
            **timing,
            "concurrencyPolicy": "Allow",
            "data": {"index": index, "owner": "bench", "size": "small"},
            "jobTemplate": job_template(),
        },
    }


def task_body(name: str, scheduler_id: str, index: int) -> dict[str, Any]:
    """A manual Task (no deadline, no Schedule) of the same busybox Job."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {
            "schedulerId": scheduler_id,
            "data": {"index": index},
            "jobTemplate": job_template(),
        },
    }


def cronjob_body(name: str, cron: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": cron, "concurrencyPolicy": "Allow", "jobTemplate": job_template()},
    }


def job_of(task: dict[str, Any]) -> dict[str, Any]:
    """The Job the operator makes of a Task, as a raw client would: its name, the task
    label, the owner reference and the four KADENCE_* variables, on the Task's template."""
    meta, spec = task["metadata"], task["spec"]
    env = [
        {"name": "KADENCE_TASK_NAME", "value": meta["name"]},
        {"name": "KADENCE_SCHEDULER_ID", "value": spec["schedulerId"]},
        {"name": "KADENCE_DEADLINE_AT", "value": meta["creationTimestamp"]},
        {"name": "KADENCE_TASK_DATA", "value": json.dumps(spec["data"], separators=(",", ":"))},
    ]
    job_spec = json.loads(json.dumps(spec["jobTemplate"]["spec"]))
    for container in job_spec["template"]["spec"]["containers"]:
        container["env"] = env + (container.get("env") or [])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": meta["name"],
            "labels": {TASK_LABEL: meta["name"], SCHEDULER_LABEL: spec["schedulerId"]},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Task",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }


# -- a run -------------------------------------------------------------------------------


@dataclass
class Session:
    """One benchmark's cluster, client and operator (not started: each sub-command says
    when)."""

    target: Cluster
    api: Api
    operator: Operator
    namespaces: list[str]
    trackers: list[Tracker] = field(default_factory=list)

    def track_tasks(self, namespace: str) -> Tracker:
        fn = self.api.custom.list_namespaced_custom_object
        return self._track(Tracker(fn, GROUP, VERSION, namespace, "tasks", state=task_phase))

    def track_schedules(self, namespace: str) -> Tracker:
        fn = self.api.custom.list_namespaced_custom_object
        args = (GROUP, VERSION, namespace, "schedules")
        return self._track(Tracker(fn, *args, state=schedule_deadline))

    def track_jobs(self, namespace: str, label_selector: str | None = None) -> Tracker:
        fn = self.api.batch.list_namespaced_job
        return self._track(Tracker(fn, namespace, state=job_state, label_selector=label_selector))

    def _track(self, tracker: Tracker) -> Tracker:
        """Started now, stopped with the session (before the cluster it watches)."""
        self.trackers.append(tracker.start())
        return tracker

    def check(self) -> None:
        """Raise if the operator (once started) or a control-plane component died."""
        self.operator.check_alive()
        self.target.check_alive()

    def create(self, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.api.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body
        )
        return created


@contextlib.contextmanager
def session(
    kubeconfig: Path | None,
    workdir: Path,
    operator_config: str,
    namespaces: list[str],
    connections: int = CREATE_THREADS * 2,
) -> Iterator[Session]:
    """The cluster with the CRDs and admission policies, `namespaces` created, and an
    Operator with `operator_config`; the operator is stopped at the end, and on a given
    cluster the namespaces are deleted."""
    with cluster(kubeconfig, workdir) as target:
        api = Api(target.kubeconfig, connections)
        operator = Operator(target.kubeconfig, workdir, operator_config)
        s: Session | None = None
        try:
            install_crds(target)
            for namespace in namespaces:
                api.create_namespace(namespace)
            s = Session(target, api, operator, namespaces)
            yield s
        finally:
            for tracker in s.trackers if s else ():
                tracker.stop()
            operator.stop()
            if kubeconfig is not None:
                for namespace in namespaces:
                    with contextlib.suppress(client.ApiException):
                        api.core.delete_namespace(namespace)


@dataclass(frozen=True)
class Usage:
    """CPU of the operator and of each control-plane component at one instant."""

    operator: ProcessSample
    cluster: dict[str, float]
    at: float = field(default_factory=time.time)

    @classmethod
    def now(cls, s: Session) -> Usage:
        return cls(s.operator.sample(), s.target.cpu_seconds())


def cpu_line(begin: Usage, end: Usage) -> str:
    """CPU seconds of the operator and of each component between two samples."""
    used = {"operator": end.operator.cpu_seconds - begin.operator.cpu_seconds}
    used |= {k: v - begin.cluster.get(k, 0.0) for k, v in sorted(end.cluster.items())}
    return ", ".join(f"{k} {v:.1f}" for k, v in used.items())


# -- figures -----------------------------------------------------------------------------


def kind_of(key: str) -> str:
    """'lease' (leader election), 'write' (create, patch, update, delete of anything, and
    Events whatever the verb) or 'read' (get, list, dry runs) for a 'verb resource' key."""
    verb, _, resource = key.partition(" ")
    if resource == "leases":
        return "lease"
    changes = any(w in verb for w in ("create", "patch", "update", "delete", "replace"))
    if resource == "events" or (changes and not verb.startswith("dry_run")):
        return "write"
    return "read"


def requests_of(window: Metrics, *kinds: str) -> float:
    return sum(v for k, v in window.requests.items() if kind_of(k) in kinds)


def verdict(within: bool | None) -> str:
    if within is None:
        return "no figure"
    return "within budget" if within else "over budget"


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def mb(mib: float) -> float:
    """MiB (what /proc gives, in KiB) as MB, the budget's unit."""
    return mib * 2**20 / MB


def quantiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p99 (nearest rank) and max; None each when there is nothing."""
    if not values:
        return None, None, None
    return percentile(values, 0.5), percentile(values, 0.99), max(values)


def table(rows: list[list[str]]) -> None:
    """Rows of text as aligned columns: the first row is the header, the first column is
    left-aligned and the others right-aligned."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


@dataclass(frozen=True)
class Requests:
    """P4: the operator's API requests over a window, and the runs made in it."""

    window: Metrics
    runs: float
    span: str

    def report(self) -> None:
        print(f"\nP4, API requests of the operator {self.span}")
        leases = requests_of(self.window, "lease")
        if leases:
            print(f"  leader election (the Lease): {leases:.0f} in the window, not counted per run")
        if not self.runs:
            print("  no run in the window: nothing to divide by")
            return
        print(f"  runs: {self.runs:.0f} (kadence_tasks_created_total over the window)")
        print(
            "  the window goes on past the deadlines until every run is finished and the\n"
            f"  operator has written nothing for {QUIET_SECONDS:.0f}s, so each run's completion"
            " writes are in it"
        )
        rows = [["  kind", "verb resource", "in the window", "per run"]]
        for kind in ("write", "read"):
            found = {k: v for k, v in self.window.requests.items() if kind_of(k) == kind and v}
            for key, value in sorted(found.items(), key=lambda kv: -kv[1]):
                rows.append([f"  {kind}", key, f"{value:.0f}", f"{value / self.runs:.2f}"])
        table(rows)
        per_run = requests_of(self.window, "write") / self.runs
        print(
            f"  writes per run: {per_run:.2f}; budget <= 4: {verdict(per_run <= 4)}; "
            f"{per_run / 2:.2f}x the ideal 2 (one Task + one Job)"
        )


def p4_window_end(
    s: Session, tasks: Tracker, *, before: int, expected: int, bound: float
) -> tuple[Metrics, str]:
    """End P4's window once every run is finished and the operator has written nothing for
    QUIET_SECONDS, or at `bound` (time.time()); its metrics then, and which it was."""
    with contextlib.suppress(RuntimeError):
        wait_until(
            lambda: tasks.count() - before >= expected and tasks.count(FINISHED) >= tasks.count(),
            "the measured runs finished",
            bound - time.time(),
            s.check,
        )
    finished = tasks.count() - before >= expected and tasks.count(FINISHED) >= tasks.count()
    metrics, quiet = settle(s.operator, s.check, bound)
    if finished and quiet:
        return metrics, f"every run finished and no write for {QUIET_SECONDS:.0f}s"
    return metrics, "cut short: runs unfinished or writes still going on"


# -- lag (P1, P4) ------------------------------------------------------------------------


@dataclass(frozen=True)
class LagResult:
    count: int
    deadlines: list[datetime]
    expected: int
    lags: dict[str, list[float]]
    requests: Requests
    cpu: str
    before_window: int
    broken: list[str]


def lag(args: argparse.Namespace, workdir: Path) -> None:
    """N Schedules and N CronJobs, schedule i `{i % 60} * * * *`: N/60 deadlines in each
    minute, all at its second 0; M minutes measured on the benchmark's watches."""
    count = args.schedules
    suffix = uuid.uuid4().hex[:6]
    ns_kadence, ns_cronjob = f"bench-lag-{suffix}", f"bench-lag-cron-{suffix}"
    config = f"queues:\n  defaultCapacity: {max(count, 1000)}\nnamespaces: [{ns_kadence}]\n"
    with session(args.kubeconfig, workdir, config, [ns_kadence, ns_cronjob]) as s:
        s.operator.start()
        schedules = s.track_schedules(ns_kadence)
        trackers = {
            "kadence Task": s.track_tasks(ns_kadence),
            "kadence Job": s.track_jobs(ns_kadence, TASK_LABEL),
            "CronJob Job": s.track_jobs(ns_cronjob),
        }

        def create(index: int) -> None:
            cron, name = f"{index % 60} * * * *", f"minute-{index:05d}"
            body = schedule_body(name, "bench", {"schedule": cron}, index)
            s.create(ns_kadence, "schedules", body)
            s.api.batch.create_namespaced_cron_job(ns_cronjob, cronjob_body(name, cron))

        log(f"creating {count} Schedules and {count} CronJobs")
        _, took = create_many(create, list(range(count)), CREATE_THREADS)
        log(f"created in {took:.1f}s; waiting until every Schedule has status.deadlineAt")
        wait_armed(s, schedules, count)
        result = _lag_window(s, trackers, count, args.minutes)
        made = s.api.tasks(ns_kadence)
        cron_made = s.api.jobs(ns_cronjob)
    measured = set(result.deadlines)
    kadence = [m for m in made if m.deadline in measured]
    cron = [m for m in cron_made if m.deadline in measured]
    seen = {label: tracker.seen_copy() for label, tracker in trackers.items()}
    result.lags["kadence Task"] = _lags(kadence, seen["kadence Task"])
    result.lags["kadence Job"] = _lags(kadence, seen["kadence Job"])
    result.lags["CronJob Job"] = _lags(cron, seen["CronJob Job"])
    result.broken.extend(f"{k}: {t.error}" for k, t in trackers.items() if t.error)
    _lag_report(result)


def wait_armed(s: Session, schedules: Tracker, count: int) -> None:
    def armed() -> int:
        return schedules.count() - schedules.count([None])

    wait_until(
        lambda: armed() >= count,
        "every Schedule armed",
        600 + count * 0.1,
        s.check,
        progress=lambda: f"{armed()}/{count}",
    )


def _lag_window(s: Session, trackers: dict[str, Tracker], count: int, minutes: int) -> LagResult:
    """Measure the next `minutes` minute deadlines, and P4 from 10 s before the first until
    the runs' writes are over (5 s before the next deadline at the latest)."""
    tasks = trackers["kadence Task"]
    first = next_minute(datetime.now(UTC) + timedelta(seconds=12))
    deadlines = [first + timedelta(minutes=k) for k in range(minutes)]
    expected = sum(1 for i in range(count) if i % 60 in {d.minute for d in deadlines})
    log(f"measuring the deadlines {deadlines[0]:%H:%M} to {deadlines[-1]:%H:%M} UTC")
    sleep_until(first - timedelta(seconds=10), s.check)
    before = tasks.count()
    metrics_begin, usage_begin = s.operator.metrics(), Usage.now(s)
    sleep_until(deadlines[-1] + timedelta(seconds=5), s.check)
    bound = (deadlines[-1] + timedelta(seconds=55)).timestamp()
    metrics_end, how = p4_window_end(s, tasks, before=before, expected=expected, bound=bound)
    usage_end = Usage.now(s)
    after = usage_end.at - deadlines[-1].timestamp()
    window = metrics_end.since(metrics_begin)
    span = f"from 10s before the first deadline to {after:.0f}s after the last ({how}):"
    return LagResult(
        count,
        deadlines,
        expected,
        {},
        Requests(window, window.tasks_created, span),
        cpu_line(usage_begin, usage_end),
        before,
        [],
    )


def _lags(made: list[Made], seen: dict[str, float]) -> list[float]:
    return [seen[m.name] - m.deadline.timestamp() for m in made if m.name in seen]


def _lag_report(r: LagResult) -> None:
    first, last = r.deadlines[0], r.deadlines[-1]
    print(
        f"\nlag (P1): {r.count} Schedules and {r.count} CronJobs, schedule i `{{i % 60}} * * * *`,"
        f" concurrencyPolicy Allow;\n deadlines {first:%H:%M} to {last:%H:%M} UTC "
        f"({len(r.deadlines)} minutes): {r.expected} runs expected of each system"
    )
    print("seconds from the deadline to the object's first event on the benchmark's watch")
    rows = [["", "made", "p50", "p99", "max"]]
    for label, lags in r.lags.items():
        rows.append([label, f"{len(lags)}/{r.expected}", *(fmt(v) for v in quantiles(lags))])
    table(rows)
    budget = 0.25 if r.count <= 1000 else 1.0
    for label in ("kadence Task", "kadence Job"):
        p99 = quantiles(r.lags[label])[1]
        print(
            f"P1 {label} p99: {fmt(p99)} s; budget <= {budget} s at N = {r.count}: "
            f"{verdict(None if p99 is None else p99 <= budget)}"
        )
    mine, theirs = quantiles(r.lags["kadence Job"])[1], quantiles(r.lags["CronJob Job"])[1]
    lower = None if mine is None or theirs is None else mine < theirs
    print(
        f"P1 kadence / CronJob, p99 Job lag: {ratio(mine, theirs)}; budget < 1 (lower than "
        f"the CronJob controller's): {verdict(lower)}"
    )
    for broken in r.broken:
        print(f"  (a watch broke and was opened again: {broken})")
    if r.before_window:
        print(
            f"  ({r.before_window} Tasks were made before the window; "
            "writes of theirs may fall in it)"
        )
    r.requests.report()
    print(f"CPU seconds over the same window: {r.cpu}")


# -- burst (P2, P4) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One system's burst: from its start (first request, or the deadline) to the last
    object seen."""

    label: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def burst(args: argparse.Namespace, workdir: Path) -> None:
    """Three phases one after the other, each alone: an ideal threaded client making N Task
    and Job pairs; kadence's N Schedules due in the same second; N CronJobs due likewise."""
    count, threads = args.deadlines, args.threads
    suffix = uuid.uuid4().hex[:6]
    ns_ideal, ns_kadence, ns_cronjob = (
        f"bench-burst-{k}-{suffix}" for k in ("ideal", "kadence", "cron")
    )
    config = f"queues:\n  defaultCapacity: {max(count, 1000)}\nnamespaces: [{ns_kadence}]\n"
    namespaces = [ns_ideal, ns_kadence, ns_cronjob]
    with session(args.kubeconfig, workdir, config, namespaces, connections=threads * 2) as s:
        ideal = _burst_ideal(s, ns_ideal, count, threads)
        kadence, during, requests = _burst_kadence(s, ns_kadence, count)
        s.operator.stop()  # the CronJob controller's phase runs alone too
        cron = _burst_cronjob(s, ns_cronjob, count)
    print(f"\nburst (P2): {count} deadlines in the same second; three phases, one after the other")
    print("makespan: from the first request (ideal client) or the deadline to the last object")
    print(" seen on the benchmark's watch; rate = runs / makespan")
    table(
        [["", "makespan s", "runs/s"]]
        + [[p.label, f"{p.seconds:.2f}", f"{p.rate:.1f}"] for p in (ideal, *kadence, cron)]
    )
    for p in (ideal, *kadence, cron):
        if p.note:
            print(f"  {p.label.split(',')[0]}: {p.note}")
    job = kadence[-1]
    span_ratio, rate_ratio = job.seconds / cron.seconds, job.rate / ideal.rate
    print(
        f"P2 kadence / CronJob makespan: {span_ratio:.2f}; "
        f"budget <= 0.5: {verdict(span_ratio <= 0.5)}"
    )
    print(
        f"P2 kadence rate / ideal rate: {rate_ratio:.2f}; "
        f"budget >= 0.5: {verdict(rate_ratio >= 0.5)}"
    )
    print(f"CPU seconds during kadence's burst ({during}")
    requests.report()


def _burst_ideal(s: Session, namespace: str, count: int, threads: int) -> Phase:
    """(a) A raw client, `threads` threads: each creates a Task, then its Job."""
    jobs = s.track_jobs(namespace, TASK_LABEL)

    def pair(index: int) -> None:
        task = s.create(namespace, "tasks", task_body(f"ideal-{index:05d}", "ideal", index))
        s.api.batch.create_namespaced_job(namespace, job_of(task))

    log(f"(a) ideal client: {count} Task and Job pairs from {threads} threads")
    start, answered = create_many(pair, list(range(count)), threads)
    wait_until(lambda: jobs.count() >= count, "the ideal client's Jobs seen", 120, s.check)
    span = max(jobs.seen_copy().values()) - start
    _wait_jobs_done(s, jobs, count, "the ideal client's Jobs")
    return Phase(
        f"(a) ideal client, {threads} threads, to the last Job",
        count,
        span,
        f"its last create was answered {answered:.2f}s after its first request",
    )


def _burst_kadence(s: Session, namespace: str, count: int) -> tuple[list[Phase], str, Requests]:
    """(b) N Schedules due in the same minute: to the last Task and the last Job; the CPU
    spent meanwhile; the operator's requests until the burst's writes are over."""
    s.operator.start()
    schedules = s.track_schedules(namespace)
    tasks = s.track_tasks(namespace)
    jobs = s.track_jobs(namespace, TASK_LABEL)
    deadline = _first_minute(count)
    names = [f"burst-{i:05d}" for i in range(count)]
    log(f"(b) kadence: {count} Schedules due at {deadline:%H:%M} UTC")
    _, took = create_many(
        lambda i: s.create(
            namespace,
            "schedules",
            schedule_body(names[i], "bench", {"schedule": _daily(deadline)}, i),
        ),
        list(range(count)),
        CREATE_THREADS,
    )
    log(f"created in {took:.1f}s ({count / took:.0f}/s); waiting until all are armed for it")
    deadline = _armed_for(s, schedules, namespace, names, deadline)
    sleep_until(deadline - timedelta(seconds=10), s.check)
    metrics_begin = s.operator.metrics()
    sleep_until(deadline - timedelta(seconds=1), s.check)
    begin = Usage.now(s)
    wait_until(
        lambda: jobs.count() >= count,
        "every Job of the burst",
        600 + count * 0.5,
        s.check,
        progress=lambda: f"{tasks.count()} Tasks, {jobs.count()} Jobs",
        poll=0.05,
    )
    end = Usage.now(s)
    at = deadline.timestamp()
    phases = [
        Phase("(b) kadence, to the last Task", count, max(tasks.seen_copy().values()) - at),
        Phase("(b) kadence, to the last Job", count, max(jobs.seen_copy().values()) - at),
    ]
    during = f"deadline - 1s to the last Job, {end.at - begin.at:.1f}s): {cpu_line(begin, end)}"
    metrics_end, how = p4_window_end(
        s, tasks, before=0, expected=count, bound=time.time() + 600 + count * 0.5
    )
    window = metrics_end.since(metrics_begin)
    span = f"from 10s before the deadline until the burst's writes were over ({how}):"
    return phases, during, Requests(window, window.tasks_created, span)


def _burst_cronjob(s: Session, namespace: str, count: int) -> Phase:
    """(c) N CronJobs due in the same minute, at kube-controller-manager's defaults."""
    jobs = s.track_jobs(namespace)
    deadline = _first_minute(count)
    names = [f"burst-{i:05d}" for i in range(count)]
    log(f"(c) CronJob controller: {count} CronJobs due at {deadline:%H:%M} UTC")

    def create(name: str) -> None:
        s.api.batch.create_namespaced_cron_job(namespace, cronjob_body(name, _daily(deadline)))

    create_many(create, names, CREATE_THREADS)
    if datetime.now(UTC) > deadline - timedelta(seconds=30):
        deadline = _first_minute(count)
        log(f"  created too late for it: moving them to {deadline:%H:%M}")
        patch = {"spec": {"schedule": _daily(deadline)}}
        create_many(
            lambda name: s.api.batch.patch_namespaced_cron_job(name, namespace, patch),
            names,
            CREATE_THREADS,
        )
    sleep_until(deadline, s.check)
    wait_until(
        lambda: jobs.count() >= count,
        "every CronJob's Job",
        600 + count,
        s.check,
        progress=lambda: f"{jobs.count()}/{count}",
    )
    span = max(jobs.seen_copy().values()) - deadline.timestamp()
    return Phase("(c) CronJob controller, its defaults, to the last Job", count, span)


def _first_minute(count: int) -> datetime:
    """The first whole minute far enough ahead to create and arm `count` objects (at an
    assumed 25 a second) and still have 40 s to spare."""
    return next_minute(datetime.now(UTC) + timedelta(seconds=40 + count / 25))


def _daily(moment: datetime) -> str:
    return f"{moment.minute} {moment.hour} * * *"


def _armed_for(
    s: Session, schedules: Tracker, namespace: str, names: list[str], deadline: datetime
) -> datetime:
    """Wait until every Schedule's deadlineAt is `deadline`; if that is not so 20 s before
    it, move them all to a later minute and wait again. Returns the deadline they have."""
    for _ in range(3):
        if _all_armed_for(s, schedules, len(names), deadline):
            return deadline
        deadline = _first_minute(len(names))
        log(f"  not all armed 20s ahead: moving them to {deadline:%H:%M}")
        _reschedule(s, namespace, names, deadline)
    raise RuntimeError("the Schedules could not be armed ahead of their deadline")


def _reschedule(s: Session, namespace: str, names: list[str], deadline: datetime) -> None:
    patch = {"spec": {"schedule": _daily(deadline)}}
    create_many(
        lambda name: s.api.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "schedules", name, patch
        ),
        names,
        CREATE_THREADS,
    )


def _all_armed_for(s: Session, schedules: Tracker, count: int, deadline: datetime) -> bool:
    def armed() -> int:
        states = schedules.states().values()
        return sum(1 for v in states if v is not None and parse_time(v) == deadline)

    with contextlib.suppress(RuntimeError):
        wait_until(
            lambda: armed() >= count,
            f"every Schedule armed for {deadline:%H:%M}",
            (deadline - timedelta(seconds=20) - datetime.now(UTC)).total_seconds(),
            s.check,
            progress=lambda: f"{armed()}/{count}",
        )
    return armed() >= count


def _wait_jobs_done(s: Session, jobs: Tracker, count: int, what: str) -> None:
    """The next phase starts once kube-controller-manager is done with these Jobs (its
    Job controller makes their pods at its client's 20 requests a second)."""
    log(f"  waiting until {what} are done, so that the next phase runs alone")
    wait_until(
        lambda: jobs.count(["Complete", "Failed"]) >= count,
        f"{what} done",
        600 + count * 0.5,
        s.check,
        progress=lambda: f"{jobs.count(['Complete', 'Failed'])}/{count}",
    )


# -- footprint (P3, P4 idle, P5) ---------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    """One restart, in seconds from the new process's start."""

    stopped_in: float
    healthz: float
    leading: float | None
    job: float
    jobs_listed: int
    jobs_seen: int
    memory: ProcessSample


@dataclass(frozen=True)
class Idle:
    """The operator left alone for a while: CPU, memory and requests."""

    seconds: float
    begin: Usage
    end: Usage
    window: Metrics
    deadlines_near: int

    @property
    def cpu_percent(self) -> float:
        used = self.end.operator.cpu_seconds - self.begin.operator.cpu_seconds
        return 100 * used / self.seconds


class PySpy:
    """`py-spy record` of the operator during a phase, when a folder was given."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.binary = Path(found)
        if directory is not None:
            if not self.binary.exists():
                raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
            directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def record(self, pid: int, phase: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        output = self.directory / f"{phase}.json"
        with (self.directory / f"{phase}.log").open("wb") as out:
            process = subprocess.Popen(
                [
                    str(self.binary),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "50",
                    "--format",
                    "speedscope",
                    "-o",
                    str(output),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log(f"  py-spy: {output}" if output.exists() else f"  py-spy wrote nothing for {phase}")


@dataclass(frozen=True)
class Footprint:
    count: int
    created_per_second: float
    tasks: int
    base: Idle
    idle: Idle
    base_restart: Restart
    restart: Restart
    profiled: bool


def footprint(args: argparse.Namespace, workdir: Path) -> None:
    """The operator empty (the baseline), then with N Schedules and N Tasks: idle memory
    and CPU, its requests while idle, and a restart until the first correct dispatch."""
    count, window = args.schedules, args.seconds
    spy = PySpy(args.py_spy)
    namespace = f"bench-footprint-{uuid.uuid4().hex[:6]}"
    config = (
        "queues:\n  defaultCapacity: 200\n"
        f"  capacity:\n    fill: 500\n    probe: 1\nnamespaces: [{namespace}]\n"
    )
    with session(args.kubeconfig, workdir, config, [namespace]) as s:
        s.operator.start()
        schedules = s.track_schedules(namespace)
        tasks = s.track_tasks(namespace)
        jobs = s.track_jobs(namespace, TASK_LABEL)
        settle(s.operator, s.check, time.time() + 60)
        log(f"baseline: the operator on an empty cluster, idle for {min(window, 30):.0f}s")
        base = _idle(s, min(window, 30), [], spy, "idle-empty")
        log("baseline restart")
        base_restart = _restart(s, namespace, "probe-empty", jobs, spy=spy, phase="restart-empty")
        with spy.record(s.operator.pid, "population"):
            rate = _populate(s, namespace, count, schedules, tasks)
        deadlines = sorted(parse_time(v) for v in schedules.states().values() if v)
        log(f"idle window of {window:.0f}s between deadlines")
        idle = _idle(s, window, deadlines, spy, "idle")
        log("restart with the population")
        restart = _restart(s, namespace, "probe-full", jobs, spy=spy, phase="restart")
        profiled = args.py_spy is not None
        result = Footprint(count, rate, tasks.count(), base, idle, base_restart, restart, profiled)
    _footprint_report(result)


def _population(count: int) -> list[tuple[str, dict[str, str]]]:
    """(schedulerId, timing) of each Schedule: of every ten, six daily `H H(0-5) * * *` in
    one of five zones (in turn), two `H */6 * * *`, two `interval: 24h`."""
    found = []
    for i in range(count):
        kind = i % 10
        if kind < 6:
            zone = ZONES[(i // 10) % len(ZONES)]
            found.append(("daily", {"schedule": "H H(0-5) * * *", "timeZone": zone}))
        elif kind < 8:
            found.append(("six-hourly", {"schedule": "H */6 * * *"}))
        else:
            found.append(("interval", {"interval": "24h"}))
    return found


def _populate(s: Session, namespace: str, count: int, schedules: Tracker, tasks: Tracker) -> float:
    """N Schedules, their first runs (the interval ones run at once), manual Tasks up to
    N Tasks in all; until every Task is finished, every Schedule armed and the writes
    over. Returns the Schedules created per second."""
    timings = _population(count)

    def create(i: int) -> None:
        scheduler_id, timing = timings[i]
        s.create(namespace, "schedules", schedule_body(f"s-{i:05d}", scheduler_id, timing, i))

    intervals = sum(1 for scheduler_id, _ in timings if scheduler_id == "interval")
    existing = tasks.count()
    log(f"creating {count} Schedules")
    _, took = create_many(create, list(range(count)), CREATE_THREADS)
    log(f"created in {took:.1f}s ({count / took:.0f}/s)")
    wait_until(
        lambda: tasks.count() >= existing + intervals,
        "the interval Schedules' first runs",
        600 + count * 0.2,
        s.check,
        progress=lambda: f"{tasks.count() - existing}/{intervals}",
    )
    fill = max(0, count - tasks.count())
    log(f"creating {fill} manual Tasks, for {count} Tasks in all")
    create_many(
        lambda i: s.create(namespace, "tasks", task_body(f"fill-{i:05d}", "fill", i)),
        list(range(fill)),
        CREATE_THREADS,
    )

    def armed() -> int:
        return schedules.count() - schedules.count([None])

    wait_until(
        lambda: tasks.count(FINISHED) >= tasks.count() >= count and armed() >= count,
        "every Task finished and every Schedule armed",
        900 + count * 0.4,
        s.check,
        progress=lambda: (
            f"{tasks.count(FINISHED)}/{tasks.count()} Tasks finished, "
            f"{armed()}/{count} Schedules armed"
        ),
    )
    settle(s.operator, s.check, time.time() + 300)
    return count / took


def _idle(s: Session, seconds: float, deadlines: list[datetime], spy: PySpy, phase: str) -> Idle:
    """CPU, memory and requests over `seconds`, in a gap between deadlines if one comes
    within 15 minutes (a deadline's writes are given 30 s). /metrics is read before and
    after the CPU readings: a scrape costs the operator CPU."""
    begin_at = _gap(deadlines, seconds, margin=30, horizon=900)
    sleep_until(begin_at, s.check)
    metrics_begin = s.operator.metrics()
    begin = Usage.now(s)
    with spy.record(s.operator.pid, phase):
        sleep_until(datetime.fromtimestamp(begin.at + seconds, UTC), s.check)
        end = Usage.now(s)
    metrics_end = s.operator.metrics()
    near = sum(1 for d in deadlines if begin.at - 30 <= d.timestamp() <= end.at)
    return Idle(end.at - begin.at, begin, end, metrics_end.since(metrics_begin), near)


def _gap(deadlines: list[datetime], seconds: float, *, margin: float, horizon: float) -> datetime:
    """The first instant from 2 s ahead on that starts `seconds` with no deadline in them
    nor in the `margin` before them, if one comes within `horizon` seconds; else 2 s ahead."""
    now = datetime.now(UTC) + timedelta(seconds=2)
    after = [d + timedelta(seconds=margin) for d in deadlines]
    for start in sorted([now, *(a for a in after if a > now)]):
        if (start - now).total_seconds() > horizon:
            break
        low, high = start - timedelta(seconds=margin), start + timedelta(seconds=seconds)
        if not any(low < d <= high for d in deadlines):
            if start > now:
                log(f"  waiting for a gap between deadlines: from {start:%H:%M:%S}")
            return start
    log(f"  no {seconds:.0f}s gap between deadlines within {horizon / 60:.0f} minutes")
    return now


def _restart(
    s: Session, namespace: str, name: str, jobs: Tracker, *, spy: PySpy, phase: str
) -> Restart:
    """SIGTERM, start again, and a manual Task in a small queue right after the start:
    seconds from the start to /healthz, to /readyz leading, to the Task's Job seen."""
    stopping = time.monotonic()
    s.operator.stop()
    stopped_in = time.monotonic() - stopping
    launched = s.operator.launch()
    with spy.record(s.operator.pid, phase):
        s.create(namespace, "tasks", task_body(name, "probe", 0))
        healthz = s.operator.wait_healthy(timeout=300, poll=0.05) - launched
        leading = None
        with contextlib.suppress(RuntimeError):
            leading = _wait_leading(s, 300) - launched
        wait_until(lambda: name in jobs.seen, f"the Job of {name}", 300, s.check, poll=0.05)
        job = jobs.seen_copy()[name] - launched
        memory = s.operator.sample()
    listed = s.api.batch.list_namespaced_job(namespace, label_selector=f"{TASK_LABEL}={name}")
    seen = len(jobs.uids.get(name, ()))
    return Restart(stopped_in, healthz, leading, job, len(listed.items), seen, memory)


def _wait_leading(s: Session, timeout: float) -> float:
    def leading() -> bool:
        text = s.operator._get(s.operator.liveness_port, "/readyz")
        return bool(text and json.loads(text).get("leading"))

    return wait_until(leading, "/readyz leading", timeout, s.check, poll=0.05)


def _footprint_report(r: Footprint) -> None:
    base, idle, b, f = r.base, r.idle, r.base_restart, r.restart
    print(
        f"\nfootprint: {r.count} Schedules (of every ten: six `H H(0-5) * * *` in {len(ZONES)} "
        f"zones, two `H */6 * * *`,\n two `interval: 24h`), created at "
        f"{r.created_per_second:.0f}/s; "
        f"{r.tasks} Tasks in all (interval runs and manual ones)"
    )
    print("baseline: the operator on the empty cluster, in the same run")
    rss, base_rss = mb(idle.end.operator.rss_mib), mb(base.end.operator.rss_mib)
    peak, base_peak = mb(idle.end.operator.peak_rss_mib), mb(base.end.operator.peak_rss_mib)
    all_kinds, no_lease = ("write", "read", "lease"), ("write", "read")
    requests = requests_of(idle.window, *all_kinds)
    others = requests_of(idle.window, *no_lease)
    one_job = f.jobs_listed == f.jobs_seen == 1
    rows = [
        ["", "baseline", "populated", "ratio", "budget", ""],
        [
            "P3 RSS (VmRSS) at the window's end, MB",
            f"{base_rss:.1f}",
            f"{rss:.1f}",
            ratio(rss, base_rss),
            "<= 150",
            verdict(rss <= 150),
        ],
        ["   peak RSS (VmHWM), MB", f"{base_peak:.1f}", f"{peak:.1f}", ratio(peak, base_peak)],
        [
            "P3 CPU, % of a core",
            f"{base.cpu_percent:.2f}",
            f"{idle.cpu_percent:.2f}",
            ratio(idle.cpu_percent, base.cpu_percent),
            "<= 2",
            verdict(idle.cpu_percent <= 2),
        ],
        ["   window, s", f"{base.seconds:.0f}", f"{idle.seconds:.0f}"],
        ["   deadlines in it or 30s before", str(base.deadlines_near), str(idle.deadlines_near)],
        [
            "P4 API requests in the window",
            f"{requests_of(base.window, *all_kinds):.0f}",
            f"{requests:.0f}",
            "",
            "0",
            verdict(requests == 0),
        ],
        [
            "   without leader election's Lease",
            f"{requests_of(base.window, *no_lease):.0f}",
            f"{others:.0f}",
            "",
            "0",
            verdict(others == 0),
        ],
        ["P5 restart: SIGTERM to exit, s", f"{b.stopped_in:.2f}", f"{f.stopped_in:.2f}"],
        [
            "   start to /healthz, s",
            f"{b.healthz:.2f}",
            f"{f.healthz:.2f}",
            ratio(f.healthz, b.healthz),
        ],
        [
            "   start to /readyz leading, s",
            fmt(b.leading),
            fmt(f.leading),
            ratio(f.leading, b.leading),
        ],
        [
            "   start to the Task's Job seen, s",
            f"{b.job:.2f}",
            f"{f.job:.2f}",
            ratio(f.job, b.job),
            "<= 10",
            verdict(f.job <= 10),
        ],
        [
            "   Jobs of that Task, listed/watched",
            f"{b.jobs_listed}/{b.jobs_seen}",
            f"{f.jobs_listed}/{f.jobs_seen}",
            "",
            "1/1",
            "correct" if one_job else "NOT one Job",
        ],
        [
            "   RSS once it dispatched, MB",
            f"{mb(b.memory.rss_mib):.1f}",
            f"{mb(f.memory.rss_mib):.1f}",
        ],
    ]
    table(rows)
    detail = ", ".join(f"{k} {v:.0f}" for k, v in sorted(idle.window.requests.items()) if v > 0)
    print(f"requests in the populated window, by verb and resource: {detail or 'none'}")
    print("(watches are not counted: kadence_api_requests_total counts the operator's own calls)")
    if r.profiled:
        print("(py-spy recorded the operator during these windows: its sampling costs some CPU)")
    print(
        f"operator CPU seconds since its start, at the populated window's end: "
        f"{idle.end.operator.cpu_seconds:.1f}"
    )


# -- queue (P6) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """One size of the queue benchmark."""

    tasks: int
    created_in: float
    admitted_in: float
    cpu: float
    jobs_meanwhile: int
    dispatch_seconds: float
    dispatched: int
    finished: int

    @property
    def cpu_ms_per_task(self) -> float:
        return 1000 * self.cpu / self.tasks

    @property
    def dispatch_rate(self) -> float:
        return self.dispatched / self.dispatch_seconds if self.dispatch_seconds else math.nan


def queue(args: argparse.Namespace, workdir: Path) -> None:
    """For each size n, in a namespace of its own: n manual Tasks at once in one queue of
    capacity C. Then a raw client's Job creation rate in an unwatched namespace."""
    sizes = sorted({int(n) for n in args.tasks.split(",")})
    suffix = uuid.uuid4().hex[:6]
    spaces = {n: f"bench-queue-{n}-{suffix}" for n in sizes}
    ns_raw = f"bench-queue-raw-{suffix}"
    config = (
        f"queues:\n  capacity:\n    bench: {args.capacity}\n"
        f"namespaces: [{', '.join(spaces.values())}]\n"
    )
    results: list[Size] = []
    with session(args.kubeconfig, workdir, config, [*spaces.values(), ns_raw]) as s:
        s.operator.start()
        for n in sizes:
            log(f"{n} Tasks into one queue of capacity {args.capacity}")
            results.append(_one_size(s, spaces[n], n, args.seconds))
            log(f"  deleting {spaces[n]}, so that the next size starts alone")
            s.api.core.delete_namespace(spaces[n])
            wait_until(
                lambda ns=spaces[n]: not _namespace_exists(s, ns),
                "the namespace deleted",
                600 + n * 0.1,
                s.check,
                poll=1,
            )
            settle(s.operator, s.check, time.time() + 120)
        raw_count = sizes[0]
        log(f"baseline: a raw client creates {raw_count} Jobs from {CREATE_THREADS} threads")
        raw_rate = _raw_jobs(s, ns_raw, raw_count)
    _queue_report(results, args.capacity, raw_count, raw_rate)


def _one_size(s: Session, namespace: str, n: int, window: float) -> Size:
    tasks = s.track_tasks(namespace)
    jobs = s.track_jobs(namespace, TASK_LABEL)
    try:
        begin = s.operator.sample()
        start, created_in = create_many(
            lambda i: s.create(namespace, "tasks", task_body(f"t-{i:05d}", "bench", i)),
            list(range(n)),
            CREATE_THREADS,
        )
        wait_until(
            lambda: tasks.count(ADMITTED) >= n,
            "every Task admitted",
            600 + n * 0.2,
            s.check,
            progress=lambda: f"{tasks.count(ADMITTED)}/{n}",
        )
        end = s.operator.sample()
        admitted_at = max(tasks.first_in(ADMITTED).values())
        meanwhile = sum(1 for t in jobs.seen_copy().values() if t <= admitted_at)
        with contextlib.suppress(RuntimeError):  # the window ran out first: that is the figure
            wait_until(lambda: jobs.count() >= n, "every Job", window, s.check)
        stop = min(time.time(), admitted_at + window)
        dispatched = sum(1 for t in jobs.seen_copy().values() if admitted_at < t <= stop)
        return Size(
            n,
            created_in,
            admitted_at - start,
            end.cpu_seconds - begin.cpu_seconds,
            meanwhile,
            stop - admitted_at,
            dispatched,
            tasks.count(FINISHED),
        )
    finally:
        tasks.stop()
        jobs.stop()


def _raw_jobs(s: Session, namespace: str, count: int) -> float:
    """Jobs a second a threaded raw client creates: first request to the last Job seen."""
    jobs = s.track_jobs(namespace)

    def create(i: int) -> None:
        body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"raw-{i:05d}"}}
        s.api.batch.create_namespaced_job(namespace, body | job_template())

    start, _ = create_many(create, list(range(count)), CREATE_THREADS)
    wait_until(lambda: jobs.count() >= count, "the raw Jobs seen", 120, s.check)
    return count / (max(jobs.seen_copy().values()) - start)


def _namespace_exists(s: Session, namespace: str) -> bool:
    try:
        s.api.core.read_namespace(namespace)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _queue_report(results: list[Size], capacity: int, raw_count: int, raw_rate: float) -> None:
    print(f"\nqueue (P6): one queue of capacity {capacity}; n manual Tasks created at once")
    print("admitted: every Task Queued or later on the benchmark's watch, from the first create;")
    print(" CPU: the operator's from just before the first create until then; Jobs/s: Jobs seen")
    print(" after the last admission, over the window (or until the last Job)")
    rows = [
        [
            "n",
            "created/s",
            "admitted s",
            "CPU s",
            "ms/Task",
            "Jobs by then",
            "Jobs/s",
            "window s",
            "finished",
            "/ raw Jobs/s",
        ]
    ]
    for r in results:
        rows.append(
            [
                str(r.tasks),
                f"{r.tasks / r.created_in:.0f}",
                f"{r.admitted_in:.2f}",
                f"{r.cpu:.2f}",
                f"{r.cpu_ms_per_task:.2f}",
                str(r.jobs_meanwhile),
                fmt(r.dispatch_rate, 1),
                f"{r.dispatch_seconds:.0f}",
                str(r.finished),
                ratio(r.dispatch_rate, raw_rate),
            ]
        )
    table(rows)
    print(
        f"baseline, a raw client: {raw_count} Jobs from {CREATE_THREADS} threads in an "
        f"unwatched namespace, {raw_rate:.1f} Jobs/s"
    )
    print(f"(at capacity {capacity}, a Task leaves the queue when another's Job finishes: the rate")
    print(" after admission follows kube-controller-manager's Job controller and kwok)")
    if len(results) > 1:
        small, big = results[0], results[-1]
        measured = big.cpu_ms_per_task / small.cpu_ms_per_task
        logarithmic = math.log(big.tasks) / math.log(small.tasks)
        print(
            f"P6 CPU per admitted Task, n = {big.tasks} / n = {small.tasks}: {measured:.2f}; "
            f"O(log n) predicts {logarithmic:.2f}, O(n) {big.tasks / small.tasks:.1f}"
        )
        print(
            "P6 budget O(log n) per Task, read as at most 1.25 x what O(log n) predicts: "
            f"{verdict(measured <= 1.25 * logarithmic)}"
        )


# -- the command line --------------------------------------------------------------------


def main() -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--kubeconfig", type=Path, help="an existing cluster (default: start the local one)"
    )
    common.add_argument(
        "--keep-logs", action="store_true", help="keep the work folder (operator and cluster logs)"
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("lag", parents=[common], help="P1, P4: deadline to Task and Job")
    p.add_argument("--schedules", type=int, default=1000, help="N, and N CronJobs (default 1000)")
    p.add_argument("--minutes", type=int, default=3, help="M deadlines measured (default 3)")
    p = commands.add_parser("burst", parents=[common], help="P2, P4: N deadlines in one second")
    p.add_argument("--deadlines", type=int, default=1000, help="N (default 1000)")
    p.add_argument("--threads", type=int, default=32, help="T, the ideal client's (default 32)")
    p = commands.add_parser("footprint", parents=[common], help="P3, P4 idle, P5: memory, CPU")
    p.add_argument("--schedules", type=int, default=10000, help="N Schedules (default 10000)")
    p.add_argument("--seconds", type=float, default=60, help="W, the idle window (default 60)")
    p.add_argument("--py-spy", type=Path, metavar="DIR", help="record the operator into DIR")
    p = commands.add_parser("queue", parents=[common], help="P6: admission and dispatch")
    p.add_argument("--tasks", default="1000,10000", help="sizes n, comma-separated")
    p.add_argument("--capacity", type=int, default=50, help="the queue's capacity (default 50)")
    p.add_argument("--seconds", type=float, default=60, help="S, the dispatch window (default 60)")
    args = parser.parse_args()
    run = {"lag": lag, "burst": burst, "footprint": footprint, "queue": queue}[args.command]
    started = time.monotonic()
    with scratch(f"kadence-budgets-{args.command}-", keep=args.keep_logs) as workdir:
        run(args, workdir)
        print(f"\nwall time: {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
