"""The operator's /metrics endpoint, scraped for real after its Schedules have run.

The series that the chart's alerts and dashboard read (docs/monitoring.md) are checked on
the text the running operator serves: `promtool check metrics` finds no problem in it,
and the per-Schedule and per-queue series are there with exactly the labels and values
that the Schedules' and Tasks' status give.

With KADENCE_CAPTURE_METRICS_SCRAPE=FILE the scrape is also written to FILE: the
fixture tests/fixtures/metrics/scrape.txt, the shape of a real scrape that the unit tests
of the alerts and the dashboard hold their input series and metric names to. Otherwise
the test checks that the fixture still has that shape.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import V1Namespace, V1ObjectMeta
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import job_template, schedule_body, task_body
from tests.support.chart import find_binary
from tests.support.kube import Kube, status, wait_for
from tests.support.promql import SCRAPE

pytestmark = pytest.mark.every_version

CAPTURE = os.environ.get("KADENCE_CAPTURE_METRICS_SCRAPE")
THREE = "three-at-a-time"  # named in the operator's test configuration, capacity 3
ONE = "one-at-a-time"  # named, capacity 1
FAIL = {"kwok.kadence.dev/fail": "true"}

Labels = frozenset[tuple[str, str]]
Series = dict[tuple[str, Labels], float]
Body = dict[str, Any]

SCHEDULE_SERIES = (
    "kadence_schedule_active_tasks",
    "kadence_schedule_consecutive_failures",
    "kadence_schedule_enabled",
    "kadence_schedule_ready",
    "kadence_schedule_deadlines_missed_total",
    "kadence_schedule_deadlines_skipped_total",
    "kadence_schedule_next_deadline_timestamp_seconds",
    "kadence_schedule_last_scheduled_timestamp_seconds",
)


def parse(text: str) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def signatures(text: str) -> set[tuple[str, frozenset[str]]]:
    """Each series' name and label names: what a scrape looks like, whatever its values."""
    return {(name, frozenset(k for k, _ in found)) for name, found in parse(text)}


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Scrape:
    text: str
    series: Series

    def of(self, name: str) -> dict[Labels, float]:
        return {found: value for (n, found), value in self.series.items() if n == name}


@dataclass
class World:
    """What the test made, as the API server shows it once the runs are over."""

    namespace: str
    good: Body
    bad: Body
    waiting: Body

    def schedule(self, name: str, **more: str) -> Labels:
        return labels(namespace=self.namespace, schedule=name, scheduler_id=THREE, **more)

    def queue(self, scheduler_id: str) -> Labels:
        return labels(namespace=self.namespace, scheduler_id=scheduler_id)


def finished(kube: Kube, namespace: str, name: str, field: str) -> Body | None:
    """The Schedule once its status has `field` (a run's outcome), no active run and its next
    deadline."""
    found = kube.get("schedules", namespace, name)
    st = status(found)
    return found if st.get(field) and not st.get("active") and st.get("deadlineAt") else None


def make_runs(kube: Kube, namespace: str) -> World:
    """Two interval Schedules of a named queue, one run completed and one failed; and a queue
    of capacity 1 held by a long run, with a Task waiting behind it."""
    # Their own data, so their own work hash: neither holds the other back.
    kube.create(
        "schedules", namespace, schedule_body("good", THREE, interval="1h", data={"who": "good"})
    )
    failing = job_template(labels=FAIL)
    kube.create(
        "schedules",
        namespace,
        schedule_body("bad", THREE, interval="1h", data={"who": "bad"}, jobTemplate=failing),
    )
    busy = job_template(annotations={"kwok.kadence.dev/run-for": "300s"})
    kube.create("tasks", namespace, task_body("holder", ONE, jobTemplate=busy))
    wait_for(
        lambda: status(kube.get("tasks", namespace, "holder")).get("phase") == "Running",
        60,
        "the holder task to run",
    )
    kube.create("tasks", namespace, task_body("waiting", ONE))

    def queued() -> Body | None:
        task = kube.get("tasks", namespace, "waiting")
        return task if status(task).get("queuedAt") else None

    waiting = wait_for(queued, 30, "the waiting task to be queued")
    good = wait_for(
        lambda: finished(kube, namespace, "good", "lastSuccessfulAt"), 60, "good's run to complete"
    )
    bad = wait_for(
        lambda: finished(kube, namespace, "bad", "lastFailedAt"), 60, "bad's run to fail"
    )
    assert waiting is not None
    assert good is not None
    assert bad is not None
    return World(namespace, good, bad, waiting)


def scrape_after(operator: Operator, world: World) -> Scrape:
    """The first scrape that shows both outcomes and the waiting task: the store has caught
    up with what the API server showed."""

    def caught_up() -> Scrape | None:
        text = operator.metrics()
        scrape = Scrape(text, parse(text))
        runs = scrape.of("kadence_schedule_runs_total")
        done = runs.get(world.schedule("good", outcome="completed")) == 1
        failed = runs.get(world.schedule("bad", outcome="failed")) == 1
        waiting = world.queue(ONE) in scrape.of("kadence_queue_oldest_pending_timestamp_seconds")
        return scrape if done and failed and waiting else None

    scrape = wait_for(caught_up, 30, "a scrape with both runs and the waiting task")
    assert scrape is not None
    return scrape


@pytest.fixture(scope="module")
def ran(operator: Operator, kube: Kube) -> Iterator[tuple[World, Scrape]]:
    """The runs, made once for this module in a namespace of its own, and the scrape."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
    wait_for(
        lambda: any(
            account.metadata is not None and account.metadata.name == "default"
            for account in kube.core.list_namespaced_service_account(namespace).items
        ),
        30,
        "the default ServiceAccount",
    )
    world = make_runs(kube, namespace)
    yield world, scrape_after(operator, world)
    kube.core.delete_namespace(namespace)


def test_promtool_finds_no_problem_in_a_scrape(ran: tuple[World, Scrape]) -> None:
    promtool = find_binary("promtool")
    assert promtool is not None, "promtool not found: run tests/cluster/build.sh"
    _, scrape = ran
    if CAPTURE:
        Path(CAPTURE).write_text(scrape.text)
    check = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=scrape.text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "", check.stdout
    assert check.stderr.strip() == "", check.stderr

    # The committed fixture still looks like a real scrape: no series in it that the
    # operator no longer serves, nor with other labels.
    if not CAPTURE:
        stale = signatures(SCRAPE.read_text()) - signatures(scrape.text)
        assert not stale, f"{SCRAPE} differs from a real scrape: {sorted(stale, key=str)}"


def test_each_schedule_has_its_series_with_its_labels_and_status(
    ran: tuple[World, Scrape],
) -> None:
    world, scrape = ran

    for name in ("good", "bad"):
        for series in SCHEDULE_SERIES:
            assert world.schedule(name) in scrape.of(series), (series, name)
    # Nothing else of this namespace, and exactly these labels.
    ours = {
        found
        for (name, found) in scrape.series
        if name.startswith("kadence_schedule_") and ("namespace", world.namespace) in found
    }
    assert {dict(found)["schedule"] for found in ours} == {"good", "bad"}
    for found in ours:
        assert {k for k, _ in found} - {"outcome"} == {"namespace", "schedule", "scheduler_id"}

    for body, outcome in ((world.good, "completed"), (world.bad, "failed")):
        name, st = body["metadata"]["name"], status(body)
        at = world.schedule(name)
        runs = scrape.of("kadence_schedule_runs_total")
        assert {o: runs[world.schedule(name, outcome=o)] for o in ("completed", "failed")} == {
            "completed": 0,
            "failed": 0,
            outcome: 1,
        }
        assert runs[world.schedule(name, outcome="cancelled")] == 0
        next_deadline = scrape.of("kadence_schedule_next_deadline_timestamp_seconds")[at]
        assert next_deadline == timestamp(st["deadlineAt"])
        last = scrape.of("kadence_schedule_last_scheduled_timestamp_seconds")[at]
        assert last == timestamp(st["lastScheduledAt"])
        assert scrape.of("kadence_schedule_enabled")[at] == 1
        assert scrape.of("kadence_schedule_ready")[at] == 1
        assert scrape.of("kadence_schedule_active_tasks")[at] == 0
        assert scrape.of("kadence_schedule_deadlines_missed_total")[at] == 0
        assert scrape.of("kadence_schedule_deadlines_skipped_total")[at] == 0

    good, bad = world.schedule("good"), world.schedule("bad")
    successes = scrape.of("kadence_schedule_last_successful_timestamp_seconds")
    failures = scrape.of("kadence_schedule_last_failed_timestamp_seconds")
    assert successes[good] == timestamp(status(world.good)["lastSuccessfulAt"])
    assert bad not in successes
    assert failures[bad] == timestamp(status(world.bad)["lastFailedAt"])
    assert good not in failures
    assert scrape.of("kadence_schedule_consecutive_failures")[good] == 0
    assert scrape.of("kadence_schedule_consecutive_failures")[bad] == 1


def test_each_queue_has_its_depth_capacity_and_oldest_wait(ran: tuple[World, Scrape]) -> None:
    world, scrape = ran

    three, one = world.queue(THREE), world.queue(ONE)
    assert scrape.of("kadence_queue_capacity")[three] == 3
    assert scrape.of("kadence_queue_pending_tasks")[three] == 0
    assert scrape.of("kadence_queue_active_tasks")[three] == 0
    assert three not in scrape.of("kadence_queue_oldest_pending_timestamp_seconds")
    assert scrape.of("kadence_queue_capacity")[one] == 1
    assert scrape.of("kadence_queue_active_tasks")[one] == 1
    assert scrape.of("kadence_queue_pending_tasks")[one] == 1
    oldest = scrape.of("kadence_queue_oldest_pending_timestamp_seconds")[one]
    assert oldest == timestamp(status(world.waiting)["queuedAt"])

    # The histograms observed these queues' runs under their own scheduler_id (named in
    # the configuration).
    for histogram in ("kadence_task_creation_lag_seconds", "kadence_job_creation_lag_seconds"):
        assert scrape.of(f"{histogram}_count").get(labels(scheduler_id=THREE), 0) >= 2, histogram
    assert scrape.of("kadence_task_wait_seconds_count").get(labels(scheduler_id=ONE), 0) >= 1
