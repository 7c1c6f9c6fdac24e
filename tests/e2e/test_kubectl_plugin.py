"""`kubectl kadence` end to end: the installed `kubectl-kadence`, run directly and as
`kubectl kadence` (kubectl finds it on PATH and passes every flag through), against the
control plane with the operator running.

Each verb is run both ways and both must say the same. What the plugin prints is checked
against what the operator does: the queue's first Task is the one the operator dispatches
when the slot frees, the next deadlines are `kadence next`'s, a run it asks for ends as it
reports. The operator's configuration is the suite's (`tests/e2e/conftest.py`), put in a
ConfigMap labelled as the chart labels it, in a namespace of this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from kadence.naming import RUN_REQUEST_ANNOTATION, task_name_for_run_request
from tests.conftest import Cluster
from tests.e2e.conftest import CONFIG, Operator
from tests.e2e.test_queue import job_template as kwok_job
from tests.e2e.test_queue import make_task, wait_all, wait_phase
from tests.e2e.test_schedules import queue_of, ready_is, schedule_body
from tests.support.kube import Kube, condition, status, wait_for

pytestmark = pytest.mark.every_version

BIN = Path(sys.executable).parent
"""The virtualenv's bin folder, where `pip install` put `kubectl-kadence`."""
PLUGIN = BIN / "kubectl-kadence"
ONE = "one-at-a-time"  # capacity 1 in the suite's configuration
WAYS = ("kubectl-kadence", "kubectl kadence")
Body = dict[str, Any]


class Plugin:
    """Runs the plugin one way or the other, as a user would."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def __call__(
        self, *args: str, way: str = WAYS[0], kubeconfig: Path | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        command = (
            [str(self.cluster.bin_dir / "kubectl"), "kadence"]
            if way == "kubectl kadence"
            else [str(PLUGIN)]
        )
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.cluster.kubeconfig),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, env=env, timeout=timeout,
            check=False,
        )  # fmt: skip

    def both(self, *args: str, **kwargs: Any) -> list[subprocess.CompletedProcess[str]]:
        return [self(*args, way=way, **kwargs) for way in WAYS]

    def ok(self, *args: str, **kwargs: Any) -> list[str]:
        """Both ways succeed; their outputs."""
        outputs = []
        for way, done in zip(WAYS, self.both(*args, **kwargs), strict=True):
            assert done.returncode == 0, f"{way} {' '.join(args)}: {done.stderr}"
            outputs.append(done.stdout)
        return outputs

    def json(self, *args: str, **kwargs: Any) -> Body:
        """Both ways' `-o json`, which must agree; one of them."""
        first, second = (json.loads(out) for out in self.ok(*args, "-o", "json", **kwargs))
        assert _steady(first) == _steady(second)
        return first


def _steady(document: Any) -> Any:
    """A document without what moves from one second to the next (how long a Task waited)."""
    if isinstance(document, dict):
        return {k: _steady(v) for k, v in document.items() if k != "waitingSeconds"}
    if isinstance(document, list):
        return [_steady(item) for item in document]
    return document


@pytest.fixture(scope="module")
def plugin(cluster: Cluster) -> Plugin:
    return Plugin(cluster)


@pytest.fixture(scope="module")
def config_namespace(kube: Kube) -> Iterator[str]:
    """A namespace holding the operator's configuration in a ConfigMap labelled as the chart's."""
    name = f"kadence-config-{uuid.uuid4().hex[:6]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    kube.core.create_namespaced_config_map(
        name,
        {
            "metadata": {
                "name": "kadence-e2e-config",
                "labels": {
                    "app.kubernetes.io/part-of": "kadence",
                    "app.kubernetes.io/component": "operator",
                },
            },
            "data": {"config.yaml": CONFIG},
        },
    )
    yield name
    kube.core.delete_namespace(name)


def names(queue: Body) -> list[str]:
    return [item["task"] for item in queue["waiting"]]


def test_kubectl_finds_the_plugin_on_path(plugin: Plugin, cluster: Cluster) -> None:
    listed = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "plugin", "list"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert str(PLUGIN) in listed.stdout, listed.stdout + listed.stderr
    for done in plugin.both("-h"):
        assert done.returncode == 0
        assert done.stdout.startswith("usage: kubectl kadence")


def test_queue_shows_the_order_the_operator_dispatches_in(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator, config_namespace: str
) -> None:
    """A full capacity-1 queue with Tasks of different priorities: the plugin's order is the
    operator's, and its first Task is the one dispatched when the slot frees."""
    make_task(kube, namespace, "busy", ONE, run_for="5m")
    wait_phase(kube, namespace, "busy", ["Running"])
    for name, priority in (("relaxed", 5), ("urgent", -10), ("normal", 0), ("normal-later", 0)):
        make_task(kube, namespace, name, ONE, priority, run_for="5m")
        wait_phase(kube, namespace, name, ["Queued"])  # one by one: their deadlines differ
    where = ("-n", namespace, "--config-namespace", config_namespace)

    (queue,) = plugin.json("queue", ONE, *where)["queues"]
    assert names(queue) == ["urgent", "normal", "normal-later", "relaxed"]
    assert [item["priority"] for item in queue["waiting"]] == [-10, 0, 0, 5]
    assert (queue["queue"], queue["inUse"], queue["capacity"]) == (f"{namespace}/{ONE}", 1, 1)
    assert queue["holders"] == ["busy"]
    assert all(item["waitingSeconds"] >= 0 for item in queue["waiting"])

    for text in plugin.ok("queue", *where):
        title, header, *rows = text.splitlines()
        assert title == f"Queue {namespace}/{ONE}: 1/1 in use, 4 waiting"
        assert header.split() == ["POSITION", "TASK", "PRIORITY", "DEADLINE", "WAITING"]
        assert [row.split()[:3] for row in rows] == [
            ["1", "urgent", "-10"], ["2", "normal", "0"], ["3", "normal-later", "0"],
            ["4", "relaxed", "5"],
        ]  # fmt: skip
    for text in plugin.ok("queue", *where, "-o", "wide"):
        assert "Holding slots: busy" in text.splitlines()
    everywhere = plugin.json("queue", "-A", "--config-namespace", config_namespace)["queues"]
    mine = [q for q in everywhere if q["queue"] == f"{namespace}/{ONE}"]
    assert [names(q) for q in mine] == [names(queue)]

    overridden = plugin("queue", ONE, "-n", namespace, "--capacity", "3")
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.startswith(f"Queue {namespace}/{ONE}: 1/3 in use, 4 waiting")
    unknown = plugin("queue", ONE, "-n", namespace, "--config-namespace", namespace)
    assert unknown.returncode == 0, unknown.stderr
    assert unknown.stdout.startswith(f"Queue {namespace}/{ONE}: 1/unknown in use, 4 waiting")
    assert f"no kadence ConfigMap in namespace {namespace}" in unknown.stderr

    kube.delete("tasks", namespace, "busy")
    wait_phase(kube, namespace, "urgent", ["Dispatched", "Running"])
    (after,) = plugin.json("queue", ONE, *where)["queues"]
    assert after["holders"] == ["urgent"]
    assert names(after) == ["normal", "normal-later", "relaxed"]
    assert all(
        status(kube.get("tasks", namespace, name)).get("phase") == "Queued" for name in names(after)
    )


def test_next_gives_the_deadlines_kadence_next_gives(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator
) -> None:
    """The same cron, zone and name (H is hashed from namespace/name) give the same
    deadlines; the first is the one the operator stored, and the timing shown (the
    Schedule's observedTiming) names the minute and hour H chose."""
    cron, zone = "H H * * *", "Europe/Amsterdam"
    created = kube.create(
        "schedules", namespace,
        schedule_body("hashed", queue_of(namespace), schedule=cron, timeZone=zone),
    )  # fmt: skip
    stored = wait_for(
        lambda: status(kube.get("schedules", namespace, "hashed")).get("deadlineAt"),
        30,
        "the operator's deadline",
    )
    expected = subprocess.run(
        [str(BIN / "kadence"), "next", cron, "--time-zone", zone, "--count", "4",
         "--name", f"{namespace}/hashed", "--after", created["metadata"]["creationTimestamp"]],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip

    shown = plugin.json("next", "hashed", "-n", namespace, "--count", "4")
    assert shown["deadlines"] == expected
    assert shown["deadlines"][0] == stored
    first_local = datetime.fromisoformat(expected[0]).astimezone(ZoneInfo(zone))
    assert (shown["enabled"], shown["timing"], shown["timeZone"]) == (
        True,
        f"{first_local.minute} {first_local.hour} * * * in {zone}",  # the values H chose
        zone,
    )
    assert shown["timing"] == status(kube.get("schedules", namespace, "hashed"))["observedTiming"]
    for text in plugin.ok("next", "hashed", "-n", namespace, "--count", "4"):
        header, *rows = text.splitlines()
        assert header.split() == ["DEADLINE", "LOCAL", f"({zone})", "IN"]
        assert [row.split()[0] for row in rows] == expected

    kube.create("schedules", namespace, schedule_body("every", queue_of(namespace), interval="1h"))
    wait_for(
        lambda: status(kube.get("schedules", namespace, "every")).get("history"),
        60,
        "the interval schedule's first run to finish",
    )
    interval = plugin.json("next", "every", "-n", namespace)
    last = status(kube.get("schedules", namespace, "every"))
    assert interval["deadlines"] == [last["deadlineAt"]]
    assert interval["note"] == "then 60m after each run finishes"


def test_run_waits_for_the_outcome_and_history_lists_it(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator
) -> None:
    queue = queue_of(namespace)
    kube.create("schedules", namespace, schedule_body("yearly", queue, schedule="0 0 1 1 *"))
    kube.create(
        "schedules", namespace,
        schedule_body("failing", queue, schedule="0 0 1 1 *", jobTemplate=kwok_job(fail=True),
                      data={"s": "failing"}),
    )  # fmt: skip

    for way in WAYS:
        done = plugin("run", "yearly", "-n", namespace, "--wait", "--timeout", "2m", way=way)
        assert done.returncode == 0, f"{way}: {done.stderr}"
        value = kube.get("schedules", namespace, "yearly")["metadata"]["annotations"][
            RUN_REQUEST_ANNOTATION
        ]
        task = task_name_for_run_request("yearly", value)
        requested, outcome = done.stdout.splitlines()
        assert requested == f"task.kadence.dev/{task} requested"
        assert outcome.startswith(f"task.kadence.dev/{task} Completed")
        assert status(kube.get("tasks", namespace, task))["phase"] == "Completed"
        wait_for(
            lambda task=task: task in {
                entry["task"] for entry in status(kube.get("schedules", namespace, "yearly"))
                .get("history", [])
            },
            30,
            f"{task} in the schedule's history",
        )  # fmt: skip

    runs = {e["task"] for e in status(kube.get("schedules", namespace, "yearly"))["history"]}
    shown = plugin.json("history", "yearly", "-n", namespace)["history"]
    assert {entry["task"] for entry in shown} == set(runs)
    assert all(entry["outcome"] == "Completed" for entry in shown)
    assert all(entry["durationSeconds"] is not None for entry in shown)
    for text in plugin.ok("history", "yearly", "-n", namespace):
        header, *rows = text.splitlines()
        assert header.split() == ["TASK", "OUTCOME", "DEADLINE", "STARTED", "FINISHED", "DURATION"]
        assert sorted(row.split()[0] for row in rows) == sorted(runs)
        assert {row.split()[1] for row in rows} == {"Completed"}

    failed = plugin("run", "failing", "-n", namespace, "--wait", way="kubectl kadence")
    assert failed.returncode == 1, failed.stderr
    value = kube.get("schedules", namespace, "failing")["metadata"]["annotations"][
        RUN_REQUEST_ANNOTATION
    ]
    ended = f"task.kadence.dev/{task_name_for_run_request('failing', value)} Failed"
    assert failed.stdout.splitlines()[-1].startswith(ended), failed.stdout

    asked = plugin("run", "yearly", "-n", namespace, "-o", "json")
    assert asked.returncode == 0, asked.stderr
    request = json.loads(asked.stdout)
    assert request["task"] == task_name_for_run_request("yearly", request["runRequestedAt"])
    wait_phase(kube, namespace, request["task"], ["Completed"])


def test_suspend_and_resume(plugin: Plugin, kube: Kube, namespace: str, operator: Operator) -> None:
    body = schedule_body("nightly", queue_of(namespace), schedule="30 2 * * *")
    kube.create("schedules", namespace, body)
    wait_for(ready_is(kube, namespace, "nightly", "True", "Scheduled"), 30, "Ready")
    reason = "warehouse move until Monday"

    done = plugin("suspend", "nightly", "-n", namespace, "--reason", reason, way="kubectl kadence")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schedule.kadence.dev/nightly suspended ({reason})"
    spec = kube.get("schedules", namespace, "nightly")["spec"]
    assert (spec["enabled"], spec["suspendReason"]) == (False, reason)
    disabled = wait_for(ready_is(kube, namespace, "nightly", "False", "Disabled"), 30, "Disabled")
    assert reason in disabled["message"]
    for text in plugin.ok("next", "nightly", "-n", namespace):
        assert text.strip() == (
            f"schedule {namespace}/nightly is disabled ({reason}): no deadline fires until it "
            "is resumed"
        )

    done = plugin("resume", "nightly", "-n", namespace)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "schedule.kadence.dev/nightly resumed"
    spec = kube.get("schedules", namespace, "nightly")["spec"]
    assert spec["enabled"] is True
    assert "suspendReason" not in spec
    wait_for(ready_is(kube, namespace, "nightly", "True", "Scheduled"), 30, "Ready again")
    assert len(plugin.json("next", "nightly", "-n", namespace)["deadlines"]) == 5

    as_json = plugin("suspend", "nightly", "-n", namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    patched = json.loads(as_json.stdout)
    assert patched["spec"]["enabled"] is False
    assert "suspendReason" not in patched["spec"]  # no reason given: none left behind


def test_stats_count_tasks_by_phase_with_their_lags(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator, config_namespace: str
) -> None:
    queue = queue_of(namespace)
    for name in ("ok-1", "ok-2", "ok-3"):
        make_task(kube, namespace, name, queue)
    make_task(kube, namespace, "bad", queue, template=kwok_job(fail=True))
    wait_all(kube, namespace, ["ok-1", "ok-2", "ok-3", "bad"], ["Completed", "Failed"])

    shown = plugin.json("stats", queue, "-n", namespace, "--config-namespace", config_namespace)
    (stats,) = shown["queues"]
    assert stats["queue"] == f"{namespace}/{queue}"
    assert {phase: n for phase, n in stats["phases"].items() if n} == {"Completed": 3, "Failed": 1}
    for measure in ("deadlineToDispatch", "queuedToDispatch", "runDuration"):
        assert stats[measure]["count"] == 4, measure
        assert 0 <= stats[measure]["p50"] <= stats[measure]["p95"] <= stats[measure]["p99"]
    for text in plugin.ok("stats", "-n", namespace, "--config-namespace", config_namespace):
        counts, lags = text.split("\n\n")
        row = counts.splitlines()[1].split()
        assert row == [f"{namespace}/{queue}", "0", "0", "0", "0", "3", "1", "0"]
        assert [row.split()[-4] for row in lags.splitlines()[1:]] == ["4", "4", "4"]


def test_errors_are_one_line_and_non_zero(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator, tmp_path: Path
) -> None:
    kube.create("schedules", namespace, schedule_body("mine", queue_of(namespace), interval="1h"))

    def fails(message: str, *args: str, **kwargs: Any) -> None:
        for way, done in zip(WAYS, plugin.both(*args, **kwargs), strict=True):
            assert done.returncode == 1, f"{way}: {done.stdout}{done.stderr}"
            lines = done.stderr.splitlines()
            assert len(lines) == 1, f"{way}: {done.stderr}"
            assert lines[0].startswith("error: "), lines
            assert message in lines[0], lines

    fails(
        f'schedule "nope" not found in namespace "{namespace}"', "history", "nope", "-n", namespace
    )
    fails(f'schedule "nope" not found in namespace "{namespace}"', "run", "nope", "-n", namespace)
    fails(
        'User "nobody" cannot get resource "schedules"',
        "next", "mine", "-n", namespace, "--as", "nobody",
    )  # fmt: skip
    fails("-A does not apply to suspend", "suspend", "mine", "-A")

    # A kubeconfig of the test's own: the suite's credentials in a context whose namespace is
    # this test's, and a ServiceAccount that may do nothing.
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = wait_for(
        lambda: _token(kube, namespace, "nobody"), 30, "a token for the ServiceAccount nobody"
    )
    admin = yaml.safe_load(plugin.cluster.kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster_name = current["context"]["cluster"]
    own = {
        **admin,
        "users": [*admin["users"], {"name": "nobody", "user": {"token": token}}],
        "contexts": [
            {"name": "here", "context": {**current["context"], "namespace": namespace}},
            {"name": "nobody", "context": {"cluster": cluster_name, "user": "nobody",
                                           "namespace": namespace}},
        ],
        "current-context": "here",
    }  # fmt: skip
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(own))

    shown = plugin.json("history", "mine", "--kubeconfig", str(kubeconfig))
    assert shown["namespace"] == namespace  # the context's, with no -n
    fails(
        f'system:serviceaccount:{namespace}:nobody" cannot get resource "schedules"',
        "history", "mine", "--kubeconfig", str(kubeconfig), "--context", "nobody",
    )  # fmt: skip
    fails(
        'cannot list resource "tasks"',
        "queue", "--kubeconfig", str(kubeconfig), "--context", "nobody",
    )  # fmt: skip
    fails('context "elsewhere" is not in the kubeconfig', "queue", "--context", "elsewhere",
          kubeconfig=kubeconfig)  # fmt: skip

    dead = {**admin, "clusters": [{**c, "cluster": {**c["cluster"], "server": "https://127.0.0.1:1"}}
                                  for c in admin["clusters"]]}  # fmt: skip
    (tmp_path / "dead").write_text(yaml.safe_dump(dead))
    fails("cannot reach the cluster at https://127.0.0.1:1", "queue", kubeconfig=tmp_path / "dead")
    fails("no kubeconfig at", "queue", kubeconfig=tmp_path / "missing")


def _token(kube: Kube, namespace: str, account: str) -> str | None:
    request = {"spec": {"expirationSeconds": 600}}
    created = kube.core.create_namespaced_service_account_token(account, namespace, request)
    return created.status.token if created.status else None


def test_a_run_of_an_invalid_schedule_says_why_instead_of_waiting(
    plugin: Plugin, kube: Kube, namespace: str, operator: Operator
) -> None:
    body = schedule_body("broken", queue_of(namespace), schedule="61 * * * *")
    kube.create("schedules", namespace, body)
    wait_for(ready_is(kube, namespace, "broken", "False", "InvalidSpec"), 30, "InvalidSpec")
    done = plugin("run", "broken", "-n", namespace, "--wait", "--timeout", "1m")
    assert done.returncode == 1
    assert "makes no run while its spec is invalid" in done.stderr
    assert condition(kube.get("schedules", namespace, "broken"), "Ready")["status"] == "False"
