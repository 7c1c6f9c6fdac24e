"""The operator under test: `kadence run` as a real process against the cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import free_port
from tests.conftest import ROOT, Cluster
from tests.support.kube import Kube, wait_for

RELEASE = "kadence-e2e"
SHARED_NAMESPACES = ("kadence-shared-a", "kadence-shared-b")
"""Namespaces that share the queue `shared` (the configuration names them up front)."""

CONFIG = f"""\
queues:
  defaultCapacity: 10
  capacity:
    one-at-a-time: 1
    three-at-a-time: 3
    impatient: 1
    pulled: 2
    runners-race: 8
  startTimeout:
    impatient: 5s
  shared:
    shared:
      namespaces: [{", ".join(SHARED_NAMESPACES)}]
      capacity: 2
      priority: {{min: -10, max: 10}}
  pull:
    pulled: {{maxAttempts: 2}}
    runners: {{maxAttempts: 2}}
    runners-race: {{}}
admission:
  requirePolicies: true
  policies: [{RELEASE}-require-job-create, {RELEASE}-operator-only, {RELEASE}-operator-jobs]
leaderElection:
  leaseName: {RELEASE}
  leaseNamespace: {RELEASE}
  leaseDuration: 10s
  renewDeadline: 6s
  retryPeriod: 1s
"""
LEASE = (RELEASE, RELEASE)
"""The Lease every operator of the suite competes for (namespace, name): at most one acts."""


class Operator:
    """A `kadence run` process that a test can stop, kill, freeze and start again.

    Every Operator of the suite competes for the same Lease, so a second one is a standby
    until the first stops leading. `env` adds variables (e.g. KADENCE_FAULTS)."""

    def __init__(
        self,
        cluster: Cluster,
        kubeconfig: Path,
        workdir: Path,
        *,
        config: str = CONFIG,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.config = workdir / "config.yaml"
        self.config.write_text(config)
        self.env = dict(env or {})
        self.log = workdir / "operator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.liveness_port = 0
        self.metrics_port = 0

    def start(self, *, lead: bool = True) -> None:
        """Start, and wait until it is alive and ready (it has listed everything, and could
        take over) and, with `lead`, until it leads."""
        self.liveness_port, self.metrics_port = free_port(), free_port()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "kadence", "run",
                    "--config", str(self.config),
                    "--liveness-port", str(self.liveness_port),
                    "--metrics-port", str(self.metrics_port),
                    "--log-level", "debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ, **self.env,
                    "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1",
                },
            )  # fmt: skip
        try:
            wait_for(
                self._healthy, timeout=60, what="the operator's /healthz", check=self.check_alive
            )
            wait_for(self.readiness, timeout=60, what="/readyz", check=self.check_alive)
            if lead:
                wait_for(
                    self.leading, timeout=60, what="the operator to lead", check=self.check_alive
                )
        except BaseException:
            if self.process is not None:  # never leave a replica behind to take the Lease
                self.stop(signal.SIGKILL)
            raise

    def readiness(self) -> dict[str, Any] | None:
        """What /readyz says (who leads, whether this one does), or None until it is ready
        (503) or if it does not answer."""
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except OSError:
            return None

    def leading(self) -> bool:
        ready = self.readiness()
        return bool(ready and ready.get("leading"))

    def _healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"the operator exited with {self.process.returncode}; log: {self.log}\n"
                + "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
            )
        self.cluster.check_alive()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (SIGKILL: a crash); returns its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/schedules.kadence.dev", "crd/tasks.kadence.dev",
    )  # fmt: skip


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster.kubeconfig)


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: Cluster, crds: None) -> Path:
    """Credentials of the chart's ServiceAccount, bound to exactly the chart's RBAC."""
    from tests.support.chart import operator_kubeconfig

    return operator_kubeconfig(cluster, RELEASE, release=RELEASE)


@pytest.fixture(scope="session")
def admission_policies(cluster: Cluster, crds: None) -> list[dict[str, Any]]:
    """The chart's admission policies for the suite's operator, in force for the session, as
    in a real installation (the operator makes no Job without them)."""
    from tests.support.chart import apply_objects, render_chart, select

    policies = select(
        render_chart(cluster, release=RELEASE, namespace=RELEASE),
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )
    apply_objects(cluster, policies)
    return policies


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster,
    crds: None,
    operator_kubeconfig: Path,
    admission_policies: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    running = Operator(cluster, operator_kubeconfig, tmp_path_factory.mktemp("operator"))
    running.start()
    try:
        yield running
    finally:
        if running.process is not None:
            running.stop()


@pytest.fixture
def namespace(cluster: Cluster, kube: Kube) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: _has_default_service_account(kube, name), timeout=30, what="default ServiceAccount"
    )
    yield name
    kube.core.delete_namespace(name)


def _has_default_service_account(kube: Kube, namespace: str) -> bool:
    return any(
        sa.metadata.name == "default"
        for sa in kube.core.list_namespaced_service_account(namespace).items
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)
