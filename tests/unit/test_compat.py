"""The start-up check: the operator runs on a cluster that serves every API it uses, and
otherwise stops at once with a message that names each missing one."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest

from kadence import compat, kube
from kadence.cli import main

EVERYTHING: dict[str, frozenset[str]] = {
    "batch/v1": frozenset({"jobs", "cronjobs"}),
    "coordination.k8s.io/v1": frozenset({"leases"}),
    "kadence.dev/v1alpha1": frozenset({"schedules", "schedules/status", "tasks", "tasks/status"}),
    "admissionregistration.k8s.io/v1": frozenset(
        {"validatingadmissionpolicies", "validatingadmissionpolicybindings"}
    ),
}


def without(group_version: str, *resources: str) -> dict[str, frozenset[str]]:
    served = dict(EVERYTHING)
    served[group_version] = served[group_version] - set(resources)
    return served


@pytest.mark.parametrize(
    ("served", "require_policies", "missing"),
    [
        (EVERYTHING, True, []),
        # 1.29 serves the policies as v1beta1 only, when its feature gate is on
        (
            {k: v for k, v in EVERYTHING.items() if k != "admissionregistration.k8s.io/v1"},
            True,
            ["validatingadmissionpolicies (admissionregistration.k8s.io/v1)"],
        ),
        (
            {k: v for k, v in EVERYTHING.items() if k != "admissionregistration.k8s.io/v1"},
            False,
            [],
        ),
        (
            without("admissionregistration.k8s.io/v1", "validatingadmissionpolicies"),
            True,
            ["validatingadmissionpolicies (admissionregistration.k8s.io/v1)"],
        ),
        (
            {k: v for k, v in EVERYTHING.items() if k != "kadence.dev/v1alpha1"},
            True,
            ["schedules (kadence.dev/v1alpha1)", "tasks (kadence.dev/v1alpha1)"],
        ),
        (without("kadence.dev/v1alpha1", "tasks"), False, ["tasks (kadence.dev/v1alpha1)"]),
        ({}, False, ["jobs", "leases", "schedules", "tasks"]),
    ],
    ids=[
        "every-api-served",
        "policies-not-served-at-v1",
        "policies-not-served-but-not-required",
        "policy-resource-absent",
        "crds-not-installed",
        "one-crd-missing",
        "nothing-served",
    ],
)
def test_missing_apis(
    served: Mapping[str, Collection[str]], require_policies: bool, missing: list[str]
) -> None:
    lines = compat.missing_apis(served, compat.needs(require_policies))
    assert len(lines) == len(missing)
    for line, expected in zip(lines, missing, strict=True):
        assert line.startswith(expected)


def test_the_policies_message_names_the_version_and_the_way_out() -> None:
    (line,) = compat.missing_apis(
        without("admissionregistration.k8s.io/v1", "validatingadmissionpolicies"),
        [compat.POLICIES],
    )
    assert "Kubernetes 1.30 or newer" in line
    assert "requirePolicies: false" in line


def test_discovery_asks_each_group_version_once() -> None:
    assert compat.group_versions(compat.needs(True)) == [
        "admissionregistration.k8s.io/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "kadence.dev/v1alpha1",
    ]


def test_run_stops_before_watching_when_an_api_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[list[str]] = []

    def discovery(group_versions: list[str]) -> dict[str, frozenset[str]]:
        asked.append(group_versions)
        return without("kadence.dev/v1alpha1", "tasks")

    monkeypatch.setattr(kube, "load_client_config", lambda: None)
    monkeypatch.setattr(kube, "served_resources", discovery)
    assert main(["run", "--metrics-port", "0", "--liveness-port", "0"]) == 2
    assert asked == [compat.group_versions(compat.needs(True))]
    err = capsys.readouterr().err
    assert "lacks what kadence needs" in err
    assert "tasks (kadence.dev/v1alpha1) is not served: install the CRDs" in err
