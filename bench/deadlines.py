"""How late kadence makes each minute's Tasks, against the CronJob controller, in one run.

N Schedules `* * * * *` (kadence) and N CronJobs `* * * * *` (kube-controller-manager)
run side by side on one cluster; for two consecutive minute deadlines the benchmark
measures how long after each deadline its Task / Job was created, and how many of the
N were. It prints figures and kadence/CronJob ratios; it asserts nothing.

    .venv/bin/python bench/deadlines.py [--schedules N] [--kubeconfig PATH] [--keep-logs]

Without --kubeconfig it starts the local control plane (tests/cluster) and stops it at
the end; with it, it uses that cluster and deletes its two namespaces at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.controlplane import ControlPlane, build_binaries, free_port  # noqa: E402

GROUP, VERSION = "kadence.dev", "v1alpha1"
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
OPERATOR_CONFIG = "queues:\n  defaultCapacity: 1000\n"
CREATE_THREADS = 16
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sleep_until(instant: datetime, check: Callable[[], None]) -> None:
    while (left := (instant - datetime.now(UTC)).total_seconds()) > 0:
        check()
        time.sleep(min(left, 1.0))


# -- the cluster -------------------------------------------------------------------------


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl: Path
    plane: ControlPlane | None

    def run_kubectl(self, *args: str) -> None:
        subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def check_alive(self) -> None:
        if self.plane is not None:
            self.plane.check_alive()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by each component of the local control plane (none: external)."""
        if self.plane is None:
            return {}
        return {name: cpu_seconds(p.pid) for name, p in self.plane.processes.items()}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now), VmHWM (the peak of it) and the other Vm* lines of a live
    process, in KiB, from /proc."""
    found: dict[str, int] = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Vm"):
                key, value = line.split(":", 1)
                found[key] = int(value.split()[0])
    return found


@contextlib.contextmanager
def cluster(kubeconfig: Path | None, workdir: Path) -> Iterator[Cluster]:
    """The given cluster, or the local control plane started for this run and stopped after."""
    if kubeconfig is not None:
        found = shutil.which("kubectl")
        kubectl = Path(found) if found else build_binaries() / "kubectl"
        yield Cluster(kubeconfig, kubectl, None)
        return
    bin_dir = build_binaries()
    plane = ControlPlane(state_dir=workdir / "cluster", bin_dir=bin_dir)
    log("starting the local control plane")
    plane.start()
    try:
        yield Cluster(plane.kubeconfig, bin_dir / "kubectl", plane)
    finally:
        plane.stop()


@contextlib.contextmanager
def scratch(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A work folder for one run (operator and cluster logs), removed after it unless kept."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def install_crds(target: Cluster) -> None:
    """The CRDs and the admission policies, as in a real installation (the operator makes
    no Job without the policies, and their CEL runs on every write it makes)."""
    target.run_kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    target.run_kubectl("apply", "-f", str(ROOT / "deploy" / "base" / "admissionpolicy.yaml"))
    target.run_kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/schedules.kadence.dev", "crd/tasks.kadence.dev",
    )  # fmt: skip


# -- the operator ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    cpu_seconds: float
    peak_rss_mib: float
    rss_mib: float = 0.0  # VmRSS: what it holds now, where VmHWM is its peak so far


@dataclass(frozen=True)
class Snapshot:
    """Everything sampled at one instant: the operator's metrics and /proc, the cluster's CPU."""

    metrics: Metrics
    operator: ProcessSample
    cluster_cpu: dict[str, float]


class Operator:
    """`python -m kadence run` as a subprocess, with its /metrics and /proc figures."""

    def __init__(self, kubeconfig: Path, workdir: Path, config: str = OPERATOR_CONFIG) -> None:
        self.kubeconfig = kubeconfig
        self.config = workdir / "operator.yaml"
        self.config.write_text(config)
        self.log = workdir / "operator.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.launch()
        self.wait_healthy(timeout)

    def launch(self) -> float:
        """Start the process without waiting for it; returns when (time.time()) it was started,
        for a benchmark that times what happens from there."""
        launched = time.time()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "kadence", "run", "--config", str(self.config),
                    "--liveness-port", str(self.liveness_port),
                    "--metrics-port", str(self.metrics_port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            )  # fmt: skip
        return launched

    def wait_healthy(self, timeout: float = 60, poll: float = 0.3) -> float:
        """Wait until /healthz answers; returns when (time.time()) it first did."""
        end = time.monotonic() + timeout
        while not self._get(self.liveness_port, "/healthz"):
            self.check_alive()
            if time.monotonic() > end:
                raise RuntimeError(f"the operator's /healthz did not answer; log: {self.log}")
            time.sleep(poll)
        return time.time()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def metrics(self) -> Metrics:
        return Metrics.parse(self.metrics_text())

    def metrics_text(self) -> str:
        """The raw /metrics page, for figures `Metrics` does not parse."""
        text = self._get(self.metrics_port, "/metrics")
        if text is None:
            raise RuntimeError("the operator's /metrics did not answer")
        return text

    def sample(self) -> ProcessSample:
        assert self.process is not None
        pid = self.process.pid
        memory = memory_kib(pid)
        return ProcessSample(cpu_seconds(pid), memory["VmHWM"] / 1024, memory["VmRSS"] / 1024)

    def log_summary(self) -> Counter[str]:
        """WARNING/ERROR lines of the log, by their text with names and numbers left out."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            for level in ("WARNING", "ERROR"):
                if f" {level} " in line:
                    message = line.split(f" {level} ", 1)[1]
                    found[f"{level} {_shape(message)}"] += 1
        return found

    @staticmethod
    def _get(port: int, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return None


def _shape(message: str) -> str:
    words = ["#" if any(c.isdigit() for c in w) or "/" in w else w for w in message[:160].split()]
    return " ".join(words)[:120]


@dataclass(frozen=True)
class Metrics:
    """The counters and the lag histogram this benchmark reads, at one instant."""

    requests: dict[str, float]  # "verb resource" -> count
    tasks_created: float
    lag_buckets: dict[float, float]  # upper bound (inf included) -> cumulative count
    lag_sum: float

    @classmethod
    def parse(cls, text: str) -> Metrics:
        requests: dict[str, float] = {}
        tasks_created = 0.0
        buckets: dict[float, float] = {}
        lag_sum = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "kadence_api_requests_total":
                    key = f"{sample.labels['verb']} {sample.labels['resource']}"
                    requests[key] = requests.get(key, 0.0) + sample.value
                elif sample.name == "kadence_tasks_created_total":
                    tasks_created += sample.value
                elif sample.name == "kadence_task_creation_lag_seconds_bucket":
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
                elif sample.name == "kadence_task_creation_lag_seconds_sum":
                    lag_sum += sample.value
        return cls(requests, tasks_created, buckets, lag_sum)

    def since(self, earlier: Metrics) -> Metrics:
        return Metrics(
            {k: v - earlier.requests.get(k, 0.0) for k, v in self.requests.items()},
            self.tasks_created - earlier.tasks_created,
            {le: v - earlier.lag_buckets.get(le, 0.0) for le, v in self.lag_buckets.items()},
            self.lag_sum - earlier.lag_sum,
        )


# -- the workload ------------------------------------------------------------------------


def job_template() -> dict[str, Any]:
    container = {"name": "work", "image": "busybox", "command": ["true"]}
    return {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}


def schedule_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Schedule",
        "metadata": {"name": f"every-minute-{index:05d}"},
        "spec": {
            "schedulerId": "bench",
            "schedule": "* * * * *",
            # Allow, as CronJob's default: a slow Job never makes a deadline skip.
            "concurrencyPolicy": "Allow",
            "data": {"index": index},
            "jobTemplate": job_template(),
        },
    }


def cronjob_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": f"every-minute-{index:05d}"},
        "spec": {"schedule": "* * * * *", "jobTemplate": job_template()},
    }


class Api:
    """The Kubernetes client calls of the benchmark itself."""

    def __init__(self, kubeconfig: Path, connections: int = CREATE_THREADS * 2) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = connections
        self.client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.client)
        self.batch = client.BatchV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace({"metadata": {"name": name}})
        for _ in range(300):
            accounts = self.core.list_namespaced_service_account(name).items
            if any(a.metadata.name == "default" for a in accounts):
                return
            time.sleep(0.1)
        raise RuntimeError(f"namespace {name} got no default ServiceAccount")

    def create_all(self, ns_kadence: str, ns_cronjob: str, count: int) -> float:
        """Create `count` Schedules and `count` CronJobs at once; returns the seconds taken."""
        start = time.monotonic()

        def schedule(index: int) -> None:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns_kadence, "schedules", schedule_body(index)
            )

        def cronjob(index: int) -> None:
            self.batch.create_namespaced_cron_job(ns_cronjob, cronjob_body(index))

        with ThreadPoolExecutor(CREATE_THREADS) as pool:
            futures = [pool.submit(fn, i) for i in range(count) for fn in (schedule, cronjob)]
            for future in futures:
                future.result()
        return time.monotonic() - start

    def armed_schedules(self, namespace: str) -> int:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "schedules")
        return sum(1 for s in items["items"] if (s.get("status") or {}).get("deadlineAt"))

    def tasks(self, namespace: str) -> list[Made]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
        return [Made.of_task(t) for t in items["items"] if (t.get("spec") or {}).get("deadlineAt")]

    def task_phases(self, namespace: str) -> Counter[str]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
        return Counter((t.get("status") or {}).get("phase") or "(none)" for t in items["items"])

    def task_jobs(self, namespace: str, tasks: list[Made]) -> list[Made]:
        """kadence's Jobs, with the deadline of their Task (a Job has its task's name)."""
        deadline = {t.name: t.deadline for t in tasks}
        raw = self.batch.list_namespaced_job(namespace, _preload_content=False)
        return [
            Made(meta["name"], deadline[meta["name"]], parse_time(meta["creationTimestamp"]))
            for meta in (j["metadata"] for j in json.loads(raw.data)["items"])
            if meta["name"] in deadline
        ]

    def jobs(self, namespace: str) -> list[Made]:
        raw = self.batch.list_namespaced_job(namespace, _preload_content=False)
        made = (Made.of_job(j) for j in json.loads(raw.data)["items"])
        return [m for m in made if m is not None]

    def watch_tasks(self, namespace: str) -> Watcher:
        args = (GROUP, VERSION, namespace, "tasks")
        fn = self.custom.list_namespaced_custom_object
        return Watcher(fn, *args, resource_version=self.resource_version(fn, *args))

    def watch_jobs(self, namespace: str) -> Watcher:
        fn = self.batch.list_namespaced_job
        return Watcher(fn, namespace, resource_version=self.resource_version(fn, namespace))

    def resource_version(self, list_fn: Callable[..., Any], *args: Any) -> str:
        raw = list_fn(*args, limit=1, _preload_content=False)
        return json.loads(raw.data)["metadata"]["resourceVersion"]


@dataclass(frozen=True)
class Made:
    """One Task or Job: its name, the deadline it was made for, and its creation."""

    name: str
    deadline: datetime
    created: datetime

    @classmethod
    def of_task(cls, task: dict[str, Any]) -> Made:
        meta = task["metadata"]
        return cls(
            meta["name"],
            parse_time(task["spec"]["deadlineAt"]),
            parse_time(meta["creationTimestamp"]),
        )

    @classmethod
    def of_job(cls, job: dict[str, Any]) -> Made | None:
        meta = job["metadata"]
        scheduled = (meta.get("annotations") or {}).get(SCHEDULED_AT)
        if scheduled is None:  # before Kubernetes 1.28: the name ends in minutes since epoch
            suffix = meta["name"].rsplit("-", 1)[-1]
            if not suffix.isdigit():
                return None
            deadline = datetime.fromtimestamp(int(suffix) * 60, UTC)
        else:
            deadline = parse_time(scheduled)
        return cls(meta["name"], deadline, parse_time(meta["creationTimestamp"]))


class Watcher:
    """When each object was first seen on a watch: sub-second, unlike creationTimestamp."""

    def __init__(self, list_fn: Callable[..., Any], *args: Any, resource_version: str) -> None:
        self.seen: dict[str, float] = {}
        self._call = lambda: list_fn(
            *args, watch=True, resource_version=resource_version,
            timeout_seconds=1800, _preload_content=False,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in iter_resp_lines(self._call()):
                now = time.time()  # before parsing, so a burst does not delay later ones
                event = json.loads(line)
                if event.get("type") == "ADDED":
                    self.seen.setdefault(event["object"]["metadata"]["name"], now)
                elif event.get("type") == "ERROR":
                    self.error = str(event.get("object", {}).get("message"))
                    return
        except Exception as error:  # a broken watch only loses this column
            self.error = repr(error)


# -- figures -----------------------------------------------------------------------------


@dataclass
class Minute:
    """One system's objects for one deadline."""

    deadline: datetime
    made: list[Made] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)  # seconds after the deadline

    def lags(self) -> list[float]:
        return [(m.created - self.deadline).total_seconds() for m in self.made]


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    return percentile(values, 0.5), percentile(values, 0.95), max(values)


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """As Prometheus: linear within the bucket that holds the rank; +Inf gives its lower bound."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def histogram_max(buckets: dict[float, float]) -> str:
    """The upper bound of the highest bucket that holds anything."""
    previous = 0.0
    highest = "-"
    for bound in sorted(buckets):
        if buckets[bound] > previous:
            highest = (
                f">{max(b for b in buckets if b < bound)}" if math.isinf(bound) else f"<={bound:g}"
            )
        previous = buckets[bound]
    return highest


def seconds(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    if b == 0:
        return "n/a (baseline 0)" if a else "1.00"
    return f"{a / b:.2f}"


# -- the run -----------------------------------------------------------------------------


def next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def run(count: int, kubeconfig: Path | None, workdir: Path) -> None:
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    ns_kadence, ns_cronjob = f"bench-kadence-{suffix}", f"bench-cronjob-{suffix}"
    with cluster(kubeconfig, workdir) as target:
        api = Api(target.kubeconfig)
        operator = Operator(target.kubeconfig, workdir)
        try:
            install_crds(target)
            api.create_namespace(ns_kadence)
            api.create_namespace(ns_cronjob)
            operator.start()
            log(f"operator up; creating {count} Schedules and {count} CronJobs")
            took = api.create_all(ns_kadence, ns_cronjob, count)
            log(f"created in {took:.1f}s; waiting until every Schedule has a deadline")

            def check() -> None:
                operator.check_alive()
                target.check_alive()

            end = time.monotonic() + 600
            while (armed := api.armed_schedules(ns_kadence)) < count:
                check()
                if time.monotonic() > end:
                    raise RuntimeError(f"only {armed}/{count} Schedules got a deadline in 600s")
                time.sleep(2)
            armed_after = time.monotonic() - started

            watchers = {
                "kadence": api.watch_tasks(ns_kadence),
                "CronJob": api.watch_jobs(ns_cronjob),
            }
            for watcher in watchers.values():
                watcher.start()

            first = next_minute(datetime.now(UTC) + timedelta(seconds=5))
            deadlines = [first, first + timedelta(minutes=1)]
            log(f"measuring the deadlines {deadlines[0]:%H:%M} and {deadlines[1]:%H:%M}")
            marks = [*deadlines, deadlines[-1] + timedelta(minutes=1)]
            snapshots: list[Snapshot] = []
            for mark in marks:
                sleep_until(mark - timedelta(seconds=1), check)
                snapshots.append(
                    Snapshot(operator.metrics(), operator.sample(), target.cpu_seconds())
                )
            tasks, jobs = api.tasks(ns_kadence), api.jobs(ns_cronjob)
            task_jobs = api.task_jobs(ns_kadence, tasks)
            phases = api.task_phases(ns_kadence)
        finally:
            operator.stop()
            if kubeconfig is not None:
                for namespace in (ns_kadence, ns_cronjob):
                    with contextlib.suppress(client.ApiException):
                        api.core.delete_namespace(namespace)
        report(
            count=count,
            deadlines=deadlines,
            made={"kadence": tasks, "kadence Jobs": task_jobs, "CronJob": jobs},
            watchers=watchers,
            snapshots=snapshots,
            phases=phases,
            created_in=took,
            armed_after=armed_after,
        )
        problems = operator.log_summary()
        if problems:
            print("\noperator log, WARNING/ERROR lines by kind:")
            for line, times in problems.most_common(8):
                print(f"  {times:6d}  {line}")
    print(f"\nwall time: {time.monotonic() - started:.0f}s")


def report(
    *,
    count: int,
    deadlines: list[datetime],
    made: dict[str, list[Made]],
    watchers: dict[str, Watcher],
    snapshots: list[Snapshot],
    phases: Counter[str],
    created_in: float,
    armed_after: float,
) -> None:
    minutes: dict[str, dict[datetime, Minute]] = defaultdict(dict)
    for system, objects in made.items():
        for deadline in deadlines:
            minute = Minute(deadline, [m for m in objects if m.deadline == deadline])
            seen = watchers[system].seen if system in watchers else {}
            minute.seen = [
                seen[m.name] - deadline.timestamp() for m in minute.made if m.name in seen
            ]
            minutes[system][deadline] = minute

    print(
        f"\n{count} Schedules vs {count} CronJobs, `* * * * *`; created in {created_in:.0f}s, "
        f"all Schedules armed {armed_after:.0f}s after start"
    )
    print("lag = object creation - deadline, seconds; 'created' counts objects seen by")
    print(" the end (the third deadline - 1s). creationTimestamp has 1s resolution (floor);")
    print("'watch' is when the benchmark's watch saw the object (sub-second, + delivery).")
    header = (
        f"{'system':<18}{'deadline':>9}{'created':>12}"
        f"{'p50':>8}{'p95':>8}{'max':>8}  {'watch p50':>9}{'p95':>8}{'max':>8}"
    )
    print(header)
    print("-" * len(header))
    pooled: dict[str, Minute] = {}
    for system in ("kadence", "kadence Jobs", "CronJob"):
        everything = Minute(deadlines[0])
        for deadline in deadlines:
            minute = minutes[system][deadline]
            everything.made += minute.made
            everything.seen += minute.seen
            _row(system, f"{deadline:%H:%M}", len(minute.made), count, minute)
        lags = [lag for d in deadlines for lag in minutes[system][d].lags()]
        _row(system, "both", len(lags), count * len(deadlines), everything, lags=lags)
        pooled[system] = everything
        if system in watchers and watchers[system].error:
            print(f"  ({system} watch broke: {watchers[system].error})")

    for index, deadline in enumerate(deadlines):
        window = snapshots[index + 1].metrics.since(snapshots[index].metrics)
        buckets = window.lag_buckets
        observed = buckets.get(math.inf, 0.0)
        print(
            f"{'kadence histogram':<18}{f'{deadline:%H:%M}':>9}{observed:>7.0f}/{count:<4}"
            f"{seconds(histogram_quantile(buckets, 0.5)):>8}"
            f"{seconds(histogram_quantile(buckets, 0.95)):>8}{histogram_max(buckets):>8}"
            f"  mean {seconds(window.lag_sum / observed if observed else math.nan)}"
        )

    print("\nratios kadence / CronJob (both deadlines pooled; >1: kadence is later or makes more)")
    mine, theirs = (summary(pooled[s].lags()) for s in ("kadence", "CronJob"))
    mine_w, theirs_w = (summary(pooled[s].seen) for s in ("kadence", "CronJob"))
    for label, index in (("p50", 0), ("p95", 1), ("max", 2)):
        created = ratio(mine and mine[index], theirs and theirs[index])
        watched = ratio(mine_w and mine_w[index], theirs_w and theirs_w[index])
        print(f"  {label} lag:  creationTimestamp {created:>8}   watch {watched:>8}")
    print(f"  completeness: {_completeness(pooled['kadence'], pooled['CronJob'], count)}")
    jobs, theirs = summary(pooled["kadence Jobs"].lags()), summary(pooled["CronJob"].lags())
    print(
        "  kadence Jobs / CronJob Jobs (the work actually started): lag p50 "
        f"{ratio(jobs and jobs[0], theirs and theirs[0])}, p95 "
        f"{ratio(jobs and jobs[1], theirs and theirs[1])}, completeness "
        + _completeness(pooled["kadence Jobs"], pooled["CronJob"], count)
    )

    report_costs(snapshots, phases, span=len(deadlines) * 60)


def report_costs(snapshots: list[Snapshot], phases: Counter[str], *, span: int) -> None:
    """What the operator spent over the measured window, and the machine around it."""
    window = snapshots[-1].metrics.since(snapshots[0].metrics)
    begin, end = snapshots[0].operator, snapshots[-1].operator
    made_tasks = window.tasks_created
    total = sum(window.requests.values())
    print(f"\nkadence operator over the {span}s from deadline 1 - 1s to deadline 3 - 1s:")
    if made_tasks:
        parts = sorted(window.requests.items(), key=lambda kv: -kv[1])
        detail = ", ".join(f"{k} {v / made_tasks:.2f}" for k, v in parts if v > 0)
        print(f"  API requests per task made: {total / made_tasks:.2f} ({detail})")
    print(f"  tasks made {made_tasks:.0f}, API requests {total:.0f} ({total / span:.1f}/s)")
    cpu = end.cpu_seconds - begin.cpu_seconds
    print(
        f"  CPU {cpu:.1f}s ({100 * cpu / span:.0f}% of one core); "
        f"CPU since start {end.cpu_seconds:.1f}s; peak RSS (VmHWM) {end.peak_rss_mib:.0f} MiB"
    )
    print(
        "  its tasks by phase at the end: " + ", ".join(f"{p} {n}" for p, n in phases.most_common())
    )
    first, last = snapshots[0].cluster_cpu, snapshots[-1].cluster_cpu
    if last:
        used = {name: last[name] - first.get(name, 0.0) for name in last}
        used["kadence operator"] = cpu
        cores = os.cpu_count() or 1
        detail = ", ".join(f"{n} {v:.0f}s" for n, v in sorted(used.items(), key=lambda kv: -kv[1]))
        print(
            f"\nCPU over the same {span}s ({cores} cores = {cores * span}s): "
            f"{sum(used.values()):.0f}s; {detail}"
        )


def _completeness(mine: Minute, theirs: Minute, count: int) -> str:
    made, baseline = len(mine.made), len(theirs.made)
    return f"{ratio(made, baseline)} ({made} vs {baseline} of {count * 2})"


def _row(
    system: str,
    label: str,
    made: int,
    of: int,
    minute: Minute,
    *,
    lags: list[float] | None = None,
) -> None:
    created = summary(lags if lags is not None else minute.lags())
    seen = summary(minute.seen)
    p50, p95, top = created or (None, None, None)
    w50, w95, wtop = seen or (None, None, None)
    print(
        f"{system:<18}{label:>9}{made:>7}/{of:<4}"
        f"{seconds(p50):>8}{seconds(p95):>8}{seconds(top):>8}  "
        f"{seconds(w50):>9}{seconds(w95):>8}{seconds(wtop):>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000, help="N (default 1000)")
    parser.add_argument(
        "--kubeconfig", type=Path, help="an existing cluster (default: start the local one)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the work folder (operator and cluster logs)"
    )
    args = parser.parse_args()
    with scratch("kadence-bench-", keep=args.keep_logs) as workdir:
        run(args.schedules, args.kubeconfig, workdir)


if __name__ == "__main__":
    main()
