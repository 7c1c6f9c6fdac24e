"""One tenant's burst against another tenant's schedules, in one run.

S Schedules `* * * * *` run in one namespace. After a quiet minute (the baseline), a
second namespace creates B manual Tasks at once in a queue of its own. The benchmark
measures, for the quiet minute and the minute of the burst: how late the Schedules'
Tasks were made (their creation against their deadline), and how long the operator took
to admit the whole burst; it samples the operator's peak memory (VmHWM) and CPU. It
prints figures and the burst/quiet ratios; it asserts nothing.

    .venv/bin/python bench/burst.py [--schedules S] [--burst B] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deadlines import (
    CREATE_THREADS,
    GROUP,
    VERSION,
    Api,
    Operator,
    ProcessSample,
    cluster,
    install_crds,
    job_template,
    log,
    next_minute,
    parse_time,
    percentile,
    sleep_until,
)

OPERATOR_CONFIG = "queues:\n  defaultCapacity: 10\n"
MEMORY_LIMIT_MIB = 1024  # the chart's default limit


def schedule(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Schedule",
        "metadata": {"name": f"steady-{index:03d}"},
        "spec": {
            "schedulerId": "steady",
            "schedule": "* * * * *",
            "data": {"index": index},
            "jobTemplate": job_template(),
        },
    }


def manual_task(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": f"burst-{index:05d}"},
        "spec": {"schedulerId": "burst", "data": {"index": index}, "jobTemplate": job_template()},
    }


def create_many(api: Api, namespace: str, plural: str, bodies: list[dict[str, Any]]) -> float:
    start = time.monotonic()

    def create(body: dict[str, Any]) -> None:
        api.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)

    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        for future in [pool.submit(create, body) for body in bodies]:
            future.result()
    return time.monotonic() - start


def lags(api: Api, namespace: str, deadline: datetime) -> list[float]:
    """Seconds from `deadline` to the creation of each Schedule's Task for it."""
    items = api.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")["items"]
    return [
        (parse_time(t["metadata"]["creationTimestamp"]) - deadline).total_seconds()
        for t in items
        if parse_time(t["spec"]["deadlineAt"]) == deadline
    ]


def phases(api: Api, namespace: str) -> Counter[str]:
    items = api.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")["items"]
    return Counter((t.get("status") or {}).get("phase") or "(none)" for t in items)


def run(schedules: int, burst: int, kubeconfig: Path | None, workdir: Path) -> None:
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    steady, noisy = f"bench-steady-{suffix}", f"bench-burst-{suffix}"
    with cluster(kubeconfig, workdir) as target:
        api = Api(target.kubeconfig)
        operator = Operator(target.kubeconfig, workdir)
        operator.config.write_text(OPERATOR_CONFIG)

        def check() -> None:
            operator.check_alive()
            target.check_alive()

        try:
            install_crds(target)
            api.create_namespace(steady)
            api.create_namespace(noisy)
            operator.start()
            create_many(api, steady, "schedules", [schedule(i) for i in range(schedules)])
            while api.armed_schedules(steady) < schedules:
                check()
                time.sleep(1)
            quiet = next_minute(datetime.now(UTC) + timedelta(seconds=5))
            loud = quiet + timedelta(minutes=1)
            log(f"quiet minute {quiet:%H:%M}; the burst of {burst} Tasks starts after it")
            sleep_until(quiet + timedelta(seconds=5), check)
            before, metrics_before = operator.sample(), operator.metrics()
            burst_started = time.monotonic()
            created_in = create_many(api, noisy, "tasks", [manual_task(i) for i in range(burst)])
            log(f"{burst} Tasks created in {created_in:.1f}s; measuring the minute {loud:%H:%M}")
            admitted_in = None
            while admitted_in is None or datetime.now(UTC) < loud + timedelta(seconds=20):
                check()
                if admitted_in is None and phases(api, noisy).get("(none)", 0) == 0:
                    admitted_in = time.monotonic() - burst_started
                if time.monotonic() - burst_started > 600:
                    break
                time.sleep(1)
            after = operator.sample()
            quiet_lags, loud_lags = lags(api, steady, quiet), lags(api, steady, loud)
            burst_phases = phases(api, noisy)
            requests = operator.metrics().since(metrics_before).requests
        finally:
            operator.stop()
    report(
        Result(schedules, burst, quiet_lags, loud_lags, created_in, admitted_in,
               burst_phases, before, after, sum(requests.values())),
    )  # fmt: skip
    print(f"\nwall time: {time.monotonic() - started:.0f}s")


@dataclass(frozen=True)
class Result:
    schedules: int
    burst: int
    quiet_lags: list[float]
    loud_lags: list[float]
    created_in: float
    admitted_in: float | None
    burst_phases: Counter[str]
    before: ProcessSample
    after: ProcessSample
    requests: float


def report(r: Result) -> None:
    print()
    print(f"{r.schedules} Schedules `* * * * *` in one namespace; {r.burst} Tasks in another")
    print("lag = Task creation - deadline, seconds (creationTimestamp: 1s resolution, floor)")
    print(f"{'minute':<22}{'made':>10}{'p50':>8}{'p95':>8}{'max':>8}")
    for label, found in (("quiet", r.quiet_lags), ("during the burst", r.loud_lags)):
        row = (percentile(found, 0.5), percentile(found, 0.95), max(found)) if found else ()
        print(f"{label:<22}{len(found):>5}/{r.schedules:<4}" + "".join(f"{v:8.2f}" for v in row))
    if r.quiet_lags and r.loud_lags:
        ratio = (percentile(r.loud_lags, 0.95) + 1) / (percentile(r.quiet_lags, 0.95) + 1)
        print(f"ratio burst/quiet of (p95 lag + 1s): {ratio:.2f}")
    admitted = f"{r.admitted_in:.1f}s" if r.admitted_in is not None else "not within 600s"
    print(f"burst: created by the client in {r.created_in:.1f}s; all admitted after {admitted}")
    print(f"burst tasks by phase at the end: {dict(r.burst_phases)}")
    print(
        f"operator peak RSS (VmHWM): {r.before.peak_rss_mib:.0f} MiB before the burst, "
        f"{r.after.peak_rss_mib:.0f} MiB after; {r.after.peak_rss_mib / MEMORY_LIMIT_MIB:.0%} "
        f"of the chart's {MEMORY_LIMIT_MIB} MiB limit"
    )
    print(f"operator CPU from the burst on: {r.after.cpu_seconds - r.before.cpu_seconds:.1f}s")
    print(f"operator API requests from the burst on: {r.requests:.0f} "
          f"({r.requests / r.burst:.2f} per burst Task)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=20, help="S (default 20)")
    parser.add_argument("--burst", type=int, default=5000, help="B (default 5000)")
    parser.add_argument("--kubeconfig", type=Path, help="an existing cluster instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kadence-burst-") as workdir:
        run(args.schedules, args.burst, args.kubeconfig, Path(workdir))


if __name__ == "__main__":
    main()
