"""How long a standby takes to act after the leader stops (the takeover time), in one run.

Two `kadence run` processes compete for one Lease: one leads, the other waits warm. In
each round the benchmark stops the leader (SIGTERM, or SIGKILL: a crash), creates a
manual Task at the same instant, and measures how long after the signal the Task's Job
appeared; then it starts the stopped process again as the new standby. The baseline,
measured in the same run, is the same Task-to-Job time with a healthy leader. It prints
figures and ratios to the baseline, and how many Jobs each Task got; it asserts nothing.

    .venv/bin/python bench/takeover.py [--rounds R] [--kubeconfig PATH] [--keep-logs]

Without --kubeconfig it starts the local control plane (tests/cluster) and stops it at
the end; with it, it uses that cluster (which must run no other kadence operator) and
deletes its namespace at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deadlines import scratch
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.controlplane import (  # noqa: E402
    ControlPlane,
    ControlPlaneError,
    build_binaries,
    free_port,
)

from kadence.config import LeaderElectionConfig, parse_config  # noqa: E402
from kadence.deadlines import parse_interval  # noqa: E402
from kadence.leader import JITTER  # noqa: E402

GROUP, VERSION = "kadence.dev", "v1alpha1"
TASK_LABEL = "kadence.dev/task"
# leaseDuration, renewDeadline and retryPeriod left out: client-go's defaults.
OPERATOR_CONFIG = """\
queues:
  defaultCapacity: 1000
admission:
  requirePolicies: false
leaderElection:
  leaseNamespace: {namespace}
"""
SETUP_TIMEOUT = 60.0  # a leader and a warm standby, a process's probes
ROUND_TIMEOUT = 120.0  # a Task's Job
POLL = 0.05  # the new leader's /readyz


class SetupError(RuntimeError):
    """The benchmark could not set up or go on (not a figure); the message says why."""


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- the cluster -------------------------------------------------------------------------


@contextlib.contextmanager
def cluster(kubeconfig: Path | None, workdir: Path) -> Iterator[tuple[Path, Path]]:
    """(kubeconfig, kubectl) of the given cluster, or of the local control plane started
    for this run and stopped after."""
    if kubeconfig is not None:
        found = shutil.which("kubectl")
        yield kubeconfig, Path(found) if found else build_binaries() / "kubectl"
        return
    bin_dir = build_binaries()
    plane = ControlPlane(state_dir=workdir / "cluster", bin_dir=bin_dir)
    log("starting the local control plane")
    plane.start()
    try:
        yield plane.kubeconfig, bin_dir / "kubectl"
    finally:
        plane.stop()


def install_crds(kubeconfig: Path, kubectl: Path) -> None:
    """The CRDs only: no admission policies (the operators run with requirePolicies off)."""
    for args in (
        ["apply", "--server-side", "-f", str(ROOT / "crds")],
        ["wait", "--for=condition=Established", "--timeout=60s",
         "crd/schedules.kadence.dev", "crd/tasks.kadence.dev"],
    ):  # fmt: skip
        subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )


# -- the operators -----------------------------------------------------------------------


class Operator:
    """One replica: `python -m kadence run` as a subprocess that can be stopped and started
    again (a new process, a new identity in the Lease, the same log file)."""

    def __init__(self, name: str, kubeconfig: Path, config_file: Path, workdir: Path) -> None:
        self.name = name
        self.kubeconfig = kubeconfig
        self.config = config_file
        self.log = workdir / f"operator-{name}.log"
        self.liveness_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a process and wait until its /healthz answers."""
        self.liveness_port = free_port()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "kadence", "run", "--config", str(self.config),
                    "--liveness-port", str(self.liveness_port),
                    "--metrics-port", str(free_port()),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        end = time.monotonic() + SETUP_TIMEOUT
        while self._get("/healthz") is None:
            self.check_alive()
            if time.monotonic() > end:
                raise SetupError(f"operator {self.name}: /healthz did not answer; log: {self.log}")
            time.sleep(0.3)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise SetupError(f"operator {self.name} exited with {self.process.returncode}:\n{tail}")

    def readiness(self) -> dict[str, Any] | None:
        """What /readyz says, or None while it is not ready (503) or does not answer."""
        text = self._get("/readyz")
        return json.loads(text) if text is not None else None

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if self.wait_exit(30) is None:
                self.process.kill()
                self.process.wait()
        self.process = None

    def dispatches(self, namespace: str, task: str) -> int:
        """How many times this replica's log says it dispatched the Task."""
        line = f"task {namespace}/{task}: dispatched as Job"
        return self.log.read_text(errors="replace").count(line)

    def _get(self, path: str) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.liveness_port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            return None


def leader_and_standby(operators: list[Operator]) -> tuple[Operator, Operator]:
    """Wait until both are ready, exactly one leads, and the other has seen it in the Lease."""
    end = time.monotonic() + SETUP_TIMEOUT
    states: list[dict[str, Any] | None] = []
    while time.monotonic() < end:
        for operator in operators:
            operator.check_alive()
        states = [operator.readiness() for operator in operators]
        if all(states):
            leading = [o for o, s in zip(operators, states, strict=True) if s and s["leading"]]
            identity = {o.name: s["identity"] for o, s in zip(operators, states, strict=True) if s}
            if len(leading) == 1:
                leader = leading[0]
                standby = next(o for o in operators if o is not leader)
                standby_state = states[operators.index(standby)]
                if standby_state and standby_state["leader"] == identity[leader.name]:
                    return leader, standby
        time.sleep(0.2)
    raise SetupError(
        f"no leader with a warm standby within {SETUP_TIMEOUT:.0f}s; /readyz said "
        + "; ".join(f"{o.name}: {s}" for o, s in zip(operators, states, strict=True))
    )


class LeadingSince(threading.Thread):
    """When an operator's /readyz first says it leads (polled every POLL seconds)."""

    def __init__(self, operator: Operator) -> None:
        super().__init__(daemon=True)
        self.operator = operator
        self.at: float | None = None
        self._end = time.monotonic() + ROUND_TIMEOUT

    def run(self) -> None:
        while time.monotonic() < self._end:
            state = self.operator.readiness()
            if state and state["leading"]:
                self.at = time.monotonic()
                return
            time.sleep(POLL)


# -- the workload ------------------------------------------------------------------------


class Api:
    """The benchmark's own client calls (the Jobs are watched by `JobWatch`)."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace({"metadata": {"name": name}})
        for _ in range(300):
            accounts = self.core.list_namespaced_service_account(name).items
            if any(a.metadata.name == "default" for a in accounts):
                return
            time.sleep(0.1)
        raise SetupError(f"namespace {name} got no default ServiceAccount")

    def create_task(self, namespace: str, name: str) -> None:
        """A manual Task (no Schedule): a busybox Job, distinct data so no duplicate."""
        container = {"name": "work", "image": "busybox", "command": ["true"]}
        template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Task",
            "metadata": {"name": name},
            "spec": {
                "schedulerId": "bench",
                "data": {"task": name},
                "jobTemplate": {"spec": {"template": template}},
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", body)


class JobWatch(threading.Thread):
    """When the benchmark's watch first received each Task's Job (monotonic seconds), and
    every Job uid it saw for each Task."""

    def __init__(self, api: Api, namespace: str) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self.uids: dict[str, set[str]] = defaultdict(set)
        self.error: str | None = None
        self._changed = threading.Condition()
        listed = api.batch.list_namespaced_job(namespace, label_selector=TASK_LABEL, limit=1)
        self._version = listed.metadata.resource_version

    def run(self) -> None:
        try:
            while True:  # the server ends a watch after timeout_seconds: resume where it was
                response = self.api.batch.list_namespaced_job(
                    self.namespace, label_selector=TASK_LABEL, watch=True,
                    resource_version=self._version, allow_watch_bookmarks=True,
                    timeout_seconds=600, _preload_content=False,
                )  # fmt: skip
                for line in iter_resp_lines(response):
                    now = time.monotonic()
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        raise SetupError(f"the Job watch failed: {event['object'].get('message')}")
                    meta = event["object"]["metadata"]
                    self._version = meta["resourceVersion"]
                    task = (meta.get("labels") or {}).get(TASK_LABEL)
                    if event["type"] == "ADDED" and task:
                        with self._changed:
                            self.seen.setdefault(task, now)
                            self.uids[task].add(meta["uid"])
                            self._changed.notify_all()
        except Exception as error:  # the rounds that wait on it say so
            with self._changed:
                self.error = str(error) if isinstance(error, SetupError) else repr(error)
                self._changed.notify_all()

    def wait(self, task: str, until: float) -> float | None:
        """When the Task's Job was first seen, or None if not before `until`."""
        with self._changed:
            while task not in self.seen and self.error is None:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            if self.error is not None:
                raise SetupError(self.error)
            return self.seen[task]


# -- the rounds --------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    kind: str  # "baseline", "SIGTERM" or "SIGKILL"
    index: int
    job: float | None  # seconds from t0 to the Job on the watch; None: not within the timeout
    leading: float | None  # seconds from t0 to the new leader's /readyz saying so
    exited: float | None  # seconds from t0 to the old leader's exit
    exit_code: int | None
    jobs: int  # Jobs of the Task, listed once the round is over
    uids: int  # distinct Job uids the watch saw for it
    dispatched: str  # whose log says it made the Job


def _since(t0: float, instant: float | None) -> float | None:
    return None if instant is None else instant - t0


@dataclass(frozen=True)
class Rounds:
    """One namespace's manual Tasks and the watch on their Jobs."""

    api: Api
    namespace: str
    jobs: JobWatch

    def baseline(self, index: int, leader: Operator) -> Round:
        """Create a Task with a healthy leader, and wait for its Job."""
        name = f"baseline-{index}"
        t0 = time.monotonic()
        self.api.create_task(self.namespace, name)
        seen = self.jobs.wait(name, t0 + ROUND_TIMEOUT)
        time.sleep(1)  # a second Job, if any, would show by now
        by = "leader" if leader.dispatches(self.namespace, name) else "?"
        return Round("baseline", index, _since(t0, seen), None, None, None, *self._made(name), by)

    def takeover(
        self, sig: signal.Signals, index: int, leader: Operator, standby: Operator
    ) -> Round:
        """Stop the leader and create a Task at t0; wait for its Job; start the stopped
        replica again and wait until it is a warm standby (before counting the Jobs)."""
        name = f"{sig.name.lower()}-{index}"
        flip = LeadingSince(standby)
        flip.start()
        t0 = time.monotonic()
        leader.signal(sig)
        self.api.create_task(self.namespace, name)
        code = leader.wait_exit(ROUND_TIMEOUT)
        exited = time.monotonic() - t0
        if code is None:
            raise SetupError(f"operator {leader.name} still runs {ROUND_TIMEOUT:.0f}s after {sig}")
        seen = self.jobs.wait(name, t0 + ROUND_TIMEOUT)
        flip.join()
        leader.process = None
        leader.start()
        leader_and_standby([leader, standby])
        who = [
            role
            for role, operator in (("old leader", leader), ("new leader", standby))
            for _ in range(operator.dispatches(self.namespace, name))
        ]
        return Round(
            sig.name, index, _since(t0, seen), _since(t0, flip.at), exited, code,
            *self._made(name), " + ".join(who) or "?",
        )  # fmt: skip

    def _made(self, task: str) -> tuple[int, int]:
        """The Task's Jobs: how many exist, and how many distinct ones the watch saw."""
        listed = self.api.batch.list_namespaced_job(
            self.namespace, label_selector=f"{TASK_LABEL}={task}"
        )
        return len(listed.items), len(self.jobs.uids[task])


def run(rounds: int, kubeconfig: Path | None, workdir: Path) -> None:
    started = time.monotonic()
    namespace = f"bench-takeover-{uuid.uuid4().hex[:6]}"
    config_file = workdir / "operator.yaml"
    config_file.write_text(OPERATOR_CONFIG.format(namespace=namespace))
    election = parse_config(config_file.read_text(), str(config_file)).leader_election
    results: list[Round] = []
    with cluster(kubeconfig, workdir) as (kubeconfig_path, kubectl):
        api = Api(kubeconfig_path)
        operators = [Operator(n, kubeconfig_path, config_file, workdir) for n in ("a", "b")]
        try:
            install_crds(kubeconfig_path, kubectl)
            api.create_namespace(namespace)
            for operator in operators:
                operator.start()
            leader, standby = leader_and_standby(operators)
            log(f"operator {leader.name} leads, {standby.name} stands by")
            jobs = JobWatch(api, namespace)
            jobs.start()
            bench = Rounds(api, namespace, jobs)
            log(f"baseline: {rounds} Tasks with a healthy leader")
            for index in range(1, rounds + 1):
                results.append(bench.baseline(index, leader))
                log(_line(results[-1]))
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for index in range(1, rounds + 1):
                    log(f"{sig.name} {index}: stopping {leader.name}, {standby.name} stands by")
                    results.append(bench.takeover(sig, index, leader, standby))
                    log(_line(results[-1]))
                    leader, standby = leader_and_standby(operators)
        finally:
            for operator in operators:
                operator.stop()
            if kubeconfig is not None:
                with contextlib.suppress(client.ApiException):
                    api.core.delete_namespace(namespace)
    report(results, election, f"{namespace}/{election.lease_name}")
    print(f"\nwall time: {time.monotonic() - started:.0f}s")


# -- figures -----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _line(r: Round) -> str:
    code = "" if r.exit_code is None else r.exit_code
    return (
        f"{r.kind:<9}{r.index:>6}{seconds(r.job):>9}{seconds(r.leading):>9}"
        f"{seconds(r.exited):>8}{code:>6}{r.jobs:>6}{r.uids:>6}  {r.dispatched}"
    )


def report(results: list[Round], election: LeaderElectionConfig, lease: str) -> None:
    duration = parse_interval(election.lease_duration).total_seconds()
    retry = parse_interval(election.retry_period).total_seconds()
    longest = retry * (1 + JITTER)  # a standby's longest wait between two tries
    print(f"\ntwo `kadence run` replicas, one Lease {lease}")
    print(
        f"Lease: leaseDuration {election.lease_duration}, renewDeadline "
        f"{election.renew_deadline}, retryPeriod {election.retry_period} (client-go's defaults);"
        f" a standby tries every {retry:.1f}-{longest:.1f}s"
    )
    print("t0 = the signal to the old leader, the manual Task created right after it (baseline:")
    print(" the create request). Seconds after t0: 'Job' when the benchmark's watch received the")
    print(f" Task's Job; 'leading' when the new leader's /readyz said so (polled every {POLL}s);")
    print(" 'exited' when the old leader's process ended ('code': its exit status). 'Jobs' are")
    print(" listed once the stopped replica is a standby again; 'uids': distinct Jobs the watch")
    print(" saw; 'dispatched by': whose log says it made the Job.")
    header = (
        f"{'kind':<9}{'round':>6}{'Job':>9}{'leading':>9}{'exited':>8}{'code':>6}"
        f"{'Jobs':>6}{'uids':>6}  dispatched by"
    )
    print(header)
    print("-" * (len(header) + 12))
    for r in results:
        print(_line(r))

    kinds = ("baseline", "SIGTERM", "SIGKILL")
    by_kind = {kind: [r for r in results if r.kind == kind] for kind in kinds}
    base = [r.job for r in by_kind["baseline"] if r.job is not None]
    base_median = statistics.median(base) if base else None
    print("\nseconds from t0 to the Job")
    print(f"{'kind':<9}{'made':>7}{'min':>8}{'median':>8}{'max':>8}{'median/baseline':>17}"
          f"{'leading median':>16}")  # fmt: skip
    for kind, rows in by_kind.items():
        found = [r.job for r in rows if r.job is not None]
        flips = [r.leading for r in rows if r.leading is not None]
        median = statistics.median(found) if found else None
        ratio = f"{median / base_median:.1f}" if median is not None and base_median else "-"
        figures = (min(found), median, max(found)) if found else (None, None, None)
        flip = seconds(statistics.median(flips) if flips else None)
        cells = "".join(f"{seconds(v):>8}" for v in figures)
        print(f"{kind:<9}{len(found):>3}/{len(rows):<3}{cells}{ratio:>17}{flip:>16}")
    print(
        "\nexpected, SIGTERM: the old leader drains and releases the Lease; the standby, which"
        "\n watches the Lease, takes it at once (at its next try, within "
        f"{longest:.1f}s, if its\n watch is broken), lists everything again and acts."
    )
    print(
        f"expected, SIGKILL: about leaseDuration = {duration:.0f}s, the floor after a crash: the"
        f"\n standby counts it from when it last saw the Lease renewed (up to {longest:.1f}s"
        f" before\n the kill) and takes it at its next try after (up to {longest:.1f}s later): "
        f"{duration - longest:.1f}-{duration + longest:.1f}s,\n then lists and acts."
    )
    odd = [r for r in results if r.jobs != 1 or r.uids != 1]
    if odd:
        print("Tasks without exactly one Job: " + ", ".join(
            f"{r.kind} {r.index} ({r.jobs} listed, {r.uids} seen)" for r in odd))  # fmt: skip
    else:
        print(f"Each of the {len(results)} Tasks got exactly one Job (listed, and on the watch).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="R per kind (default 5)")
    parser.add_argument(
        "--kubeconfig", type=Path, help="an existing cluster (default: start the local one)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the work folder (operator and cluster logs)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with scratch("kadence-takeover-", keep=args.keep_logs) as workdir:
        try:
            run(args.rounds, args.kubeconfig, workdir)
        except (
            SetupError,
            ControlPlaneError,
            subprocess.CalledProcessError,
            config.ConfigException,
        ) as error:
            sys.exit(f"bench/takeover.py: setup failed: {error}")


if __name__ == "__main__":
    main()
