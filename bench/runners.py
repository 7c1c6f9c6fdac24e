"""How fast runners claim Tasks of a pull queue, against the API server's own write rate,
and what a lost runner costs, in one run.

1. Baseline: P processes (1, then 10) make runner writes as fast as they can: a claim
   request and its withdrawal, alternately, each a conditional status patch by a
   ServiceAccount bound to kadence-runner, through the admission policy's CEL (with its
   authorizer check), on Tasks of their own in a namespace the operator does not watch.
2. Runners: R runner processes (1, then 10; `tests/support/pull_runner.py`, built on
   `kadence.runner`) drain N Tasks of a pull queue whose capacity is 10; claims per
   second from the first claim to the last report.
3. A runner holding a Task is SIGKILLed; another runner is waiting. How long from the
   kill, and from its last renewal, until the Task is granted again, for two leases.

It prints figures and ratios; it asserts nothing.

    .venv/bin/python bench/runners.py [--tasks N] [--seconds T] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from deadlines import GROUP, ROOT, VERSION, Api, Cluster, Operator, cluster, install_crds, log
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tests.support.chart import service_account_kubeconfig

from kadence.runner_plan import renew_interval

QUEUE = "bench"
CAPACITY = 10
LEASES = (5, 15)
OPERATOR_CONFIG = """\
queues:
  capacity:
    {queue}: {capacity}
  pull:
    {queue}: {{maxAttempts: 3}}
namespaces: [{namespace}]
"""


def task_body(name: str, queue: str = QUEUE) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"schedulerId": queue, "data": {"name": name}},
    }


def runner_kubeconfig(target: Cluster, namespace: str, workdir: Path) -> tuple[Path, str]:
    """A ServiceAccount bound to kadence-runner in `namespace`: its kubeconfig and user."""
    target.run_kubectl("apply", "-f", str(ROOT / "deploy" / "base" / "runner-role.yaml"))
    target.run_kubectl("create", "serviceaccount", "runner", f"--namespace={namespace}")
    target.run_kubectl(
        "create", "rolebinding", "runner", f"--namespace={namespace}",
        "--clusterrole=kadence-runner", f"--serviceaccount={namespace}:runner",
    )  # fmt: skip
    token = subprocess.run(
        [str(target.kubectl), f"--kubeconfig={target.kubeconfig}", "create", "token", "runner",
         f"--namespace={namespace}"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    user = f"system:serviceaccount:{namespace}:runner"
    path = workdir / f"runner-{namespace}.kubeconfig"
    path.write_text(yaml.safe_dump(service_account_kubeconfig(target.kubeconfig, token, user)))
    return path, user


def create_tasks(api: Api, namespace: str, names: list[str], queue: str = QUEUE) -> None:
    def create(name: str) -> None:
        api.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "tasks", task_body(name, queue)
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))


def phases(api: Api, namespace: str) -> dict[str, int]:
    listed = api.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    found: dict[str, int] = {}
    for task in listed["items"]:
        phase = (task.get("status") or {}).get("phase") or "(none)"
        found[phase] = found.get(phase, 0) + 1
    return found


def wait_until(check: Any, what: str, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


# -- 1. the API server's own rate of runner writes -----------------------------------------


def _write_loop(kubeconfig: str, namespace: str, name: str, user: str, seconds: float) -> int:
    """Request and withdraw a claim on one Task, alternately, for `seconds`: the writes made."""
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    task = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)
    version = task["metadata"]["resourceVersion"]
    claim = {"holder": f"bench/{os.getpid()}", "user": user, "leaseSeconds": 30,
             "requestedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    writes, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        patch = {"metadata": {"resourceVersion": version},
                 "status": {"claim": claim if writes % 2 == 0 else None}}  # fmt: skip
        written = api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "tasks", name, patch
        )
        version = written["metadata"]["resourceVersion"]
        writes += 1
    return writes


def write_rate(  # noqa: PLR0917
    api: Api, kubeconfig: Path, user: str, namespace: str, writers: int, seconds: float
) -> float:
    names = [f"raw-{writers}-{i}" for i in range(writers)]
    create_tasks(api, namespace, names, queue="unwatched")
    for name in names:  # Queued, as the operator would make them: a runner asks only then
        api.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "tasks", name, {"status": {"phase": "Queued"}}
        )
    with ProcessPoolExecutor(writers) as pool:
        counts = pool.map(
            _write_loop,
            *zip(*[(str(kubeconfig), namespace, n, user, seconds) for n in names], strict=True),
        )
        return sum(counts) / seconds


# -- 2. runners draining a queue -----------------------------------------------------------


def start_runner(
    kubeconfig: Path, namespace: str, log_file: Path, *, lease: int = 30, work: float = 0.0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.pull_runner", "--kubeconfig", str(kubeconfig),
         "--namespace", namespace, "--queue", QUEUE, "--log", str(log_file),
         "--lease", str(lease), "--work-seconds", str(work)],
        cwd=ROOT, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(timeout=30)


@dataclass(frozen=True)
class Drained:
    """Claims per second of one drain, and what each claim cost, in CPU and requests."""

    claims_per_second: float
    operator_cpu_ms: float
    operator_requests: float
    runners_cpu_ms: float
    cluster_cpu_ms: dict[str, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drain(
    api: Api,
    target: Cluster,
    operator: Operator,
    kubeconfig: Path,
    *,
    namespace: str,
    runners: int,
    count: int,
    workdir: Path,
) -> Drained:
    """`runners` processes over `count` Tasks (first claim to last report), with the CPU
    and API requests spent from their start to their end."""
    names = [f"r{runners}-{i:04d}" for i in range(count)]
    create_tasks(api, namespace, names)
    wait_until(lambda: phases(api, namespace).get("Queued", 0) == count, "the Tasks Queued")
    logs = [workdir / f"drain-{runners}-{i}.jsonl" for i in range(runners)]
    before = (operator.sample(), operator.metrics(), _children_cpu(), target.cpu_seconds())
    processes = [start_runner(kubeconfig, namespace, path) for path in logs]
    try:
        wait_until(
            lambda: phases(api, namespace).get("Completed", 0) >= count, "every Task Completed"
        )
    finally:
        stop(processes)
    after = (operator.sample(), operator.metrics(), _children_cpu(), target.cpu_seconds())
    for name in names:
        api.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)
    wait_until(lambda: not phases(api, namespace), "the Tasks deleted")
    events = [json.loads(line) for path in logs for line in path.read_text().splitlines()]
    first = min(e["at"] for e in events if e["event"] == "claimed")
    last = max(e["at"] for e in events if e["event"] == "reported")
    requests = sum(after[1].since(before[1]).requests.values())
    return Drained(
        claims_per_second=count / (last - first),
        operator_cpu_ms=1000 * (after[0].cpu_seconds - before[0].cpu_seconds) / count,
        operator_requests=requests / count,
        runners_cpu_ms=1000 * (after[2] - before[2]) / count,
        cluster_cpu_ms={k: 1000 * (v - before[3].get(k, 0.0)) / count for k, v in after[3].items()},
    )


# -- 3. a lost runner --------------------------------------------------------------------


def lost_runner(
    api: Api, kubeconfig: Path, namespace: str, lease: int, workdir: Path
) -> tuple[float, float]:
    """(seconds from the kill, seconds from the last renewal) until the Task is granted again."""
    name = f"lost-{lease}-{uuid.uuid4().hex[:4]}"
    create_tasks(api, namespace, [name])

    def task() -> dict[str, Any]:
        found: dict[str, Any] = api.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "tasks", name
        )
        return found

    def claim() -> dict[str, Any]:
        return (task().get("status") or {}).get("claim") or {}

    holder = start_runner(kubeconfig, namespace, workdir / f"{name}-a.jsonl", lease=lease, work=600)
    wait_until(lambda: (task().get("status") or {}).get("phase") == "Running", "Running")
    rescuer = start_runner(kubeconfig, namespace, workdir / f"{name}-b.jsonl", lease=lease)
    time.sleep(1)  # the rescuer lists the queue and waits on it
    try:
        renewed = claim().get("renewedAt")
        wait_until(lambda: claim().get("renewedAt") != renewed, "a renewal", lease * 2)
        time.sleep(renew_interval(lease) / 2)  # half way to the next renewal
        last_renewal = datetime.fromisoformat(claim()["renewedAt"])
        holder.send_signal(signal.SIGKILL)
        killed = datetime.now(UTC)
        first = claim()["holder"]
        wait_until(
            lambda: claim().get("holder") not in (None, first) and claim().get("claimedAt"),
            "the Task granted to the waiting runner",
            lease * 4,
        )
        regranted = datetime.fromisoformat(claim()["claimedAt"])
    finally:
        stop([holder, rescuer])
    return (regranted - killed).total_seconds(), (regranted - last_renewal).total_seconds()


def run(tasks: int, seconds: float, kubeconfig: Path | None, workdir: Path) -> None:
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    watched, unwatched = f"bench-runners-{suffix}", f"bench-raw-{suffix}"
    with cluster(kubeconfig, workdir) as target:
        api = Api(target.kubeconfig)
        operator = Operator(target.kubeconfig, workdir)
        operator.config.write_text(
            OPERATOR_CONFIG.format(queue=QUEUE, capacity=CAPACITY, namespace=watched)
        )
        raw: dict[int, float] = {}
        drained: dict[int, Drained] = {}
        lost: dict[int, tuple[float, float]] = {}
        try:
            install_crds(target)
            api.create_namespace(watched)
            api.create_namespace(unwatched)
            raw_config, raw_user = runner_kubeconfig(target, unwatched, workdir)
            config_path, _ = runner_kubeconfig(target, watched, workdir)
            operator.start()
            for writers in (1, 10):
                log(f"baseline: {writers} writer process(es) for {seconds:.0f}s")
                raw[writers] = write_rate(api, raw_config, raw_user, unwatched, writers, seconds)
            for runners, count in ((1, max(10, tasks // 4)), (10, tasks)):
                log(f"{runners} runner(s) over {count} Tasks")
                drained[runners] = drain(
                    api, target, operator, config_path,
                    namespace=watched, runners=runners, count=count, workdir=workdir,
                )  # fmt: skip
            for lease in LEASES:
                log(f"a runner with a {lease}s lease is killed")
                lost[lease] = lost_runner(api, config_path, watched, lease, workdir)
        except ApiException as error:
            raise RuntimeError(f"{error.status} {error.reason}: {error.body}") from error
        finally:
            operator.stop()
    report(raw, drained, lost)
    print(f"\nwall time: {time.monotonic() - started:.0f}s")


def report(
    raw: dict[int, float], drained: dict[int, Drained], lost: dict[int, tuple[float, float]]
) -> None:
    print()
    print("runner writes by the API server (request/withdraw a claim, conditional, through CEL):")
    for writers, rate in raw.items():
        print(f"  {writers:>2} writer process(es): {rate:8.1f} writes/s")
    print(f"claims by runners (pull queue of capacity {CAPACITY}; first claim to last report):")
    for runners, result in drained.items():
        claims = result.claims_per_second
        print(
            f"  {runners:>2} runner(s): {claims:8.1f} claims/s = {claims / raw[runners]:.3f} of "
            f"the writes/s of as many writers ({raw[runners] / claims:.1f} writes' time per claim)"
        )
    scaling = drained[10].claims_per_second / drained[1].claims_per_second
    print(f"  10 runners / 1 runner: {scaling:.1f}x")
    print("cost per claim (CPU ms; API requests of the operator):")
    for runners, result in drained.items():
        cluster_cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(result.cluster_cpu_ms.items()))
        print(
            f"  {runners:>2} runner(s): operator {result.operator_cpu_ms:.1f} ms and "
            f"{result.operator_requests:.1f} requests; runners {result.runners_cpu_ms:.1f} ms"
            + (f"; {cluster_cpu}" if cluster_cpu else "")
        )
    print("a lost runner (SIGKILL half way between renewals), until its Task is granted again:")
    for lease, (from_kill, from_renewal) in lost.items():
        print(
            f"  lease {lease:>3}s: {from_kill:5.1f}s after the kill, "
            f"{from_renewal:5.1f}s after its last renewal"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=400, help="N for 10 runners (default 400)")
    parser.add_argument("--seconds", type=float, default=10, help="T per baseline (default 10)")
    parser.add_argument("--kubeconfig", type=Path, help="an existing cluster instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kadence-runners-") as workdir:
        run(args.tasks, args.seconds, args.kubeconfig, Path(workdir))


if __name__ == "__main__":
    main()
