"""Fixtures for the end-to-end tests: a real control plane, the CRDs, the operator.

By default the control plane is started on 127.0.0.1 (tests/cluster). With
KADENCE_TEST_KUBECONFIG set, the same tests run against that cluster instead and
nothing is started.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane, build_binaries

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    """A cluster the tests may use, and the command-line tools to reach it."""

    kubeconfig: Path
    bin_dir: Path
    log_dir: Path | None
    plane: ControlPlane | None = None

    def _tool(
        self, tool: str, args: tuple[str, ...], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._tool("kubectl", args, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._tool("helm", args, input, check, timeout)

    def check_alive(self) -> None:
        if self.plane is not None:
            self.plane.check_alive()


def pytest_report_header() -> str:
    """Say which cluster the end-to-end tests run against."""
    given = os.environ.get("KADENCE_TEST_KUBECONFIG")
    if given:
        return f"cluster: {given} (KADENCE_TEST_KUBECONFIG)"
    version = os.environ.get("KADENCE_K8S_VERSION") or "the newest supported"
    return f"cluster: the local control plane at Kubernetes {version} (KADENCE_K8S_VERSION)"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The control plane for the whole session (or the cluster the environment names)."""
    given = os.environ.get("KADENCE_TEST_KUBECONFIG")
    bin_dir = build_binaries()
    if given:
        yield Cluster(kubeconfig=Path(given), bin_dir=bin_dir, log_dir=None)
        return
    plane = ControlPlane(state_dir=tmp_path_factory.mktemp("control-plane"), bin_dir=bin_dir)
    plane.start()
    try:
        yield Cluster(
            kubeconfig=plane.kubeconfig, bin_dir=bin_dir, log_dir=plane.log_dir, plane=plane
        )
    finally:
        plane.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Point a failing end-to-end test at the component logs."""
    report = yield
    if report.failed and "cluster" in getattr(item, "fixturenames", ()):
        cluster = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
        if cluster is not None and cluster.log_dir is not None:
            report.sections.append(("control plane logs", str(cluster.log_dir)))
    return report
