"""What the operator needs of the cluster's API, checked against discovery. Pure.

kadence supports the Kubernetes versions that serve every API below (1.30 and newer).
It finds out by asking the cluster what it serves, not by reading a version string: a
distribution may back-port an API or turn one off, and discovery is what the API server
will actually answer. A missing API stops the operator at start-up with a message that
names it, instead of a loop of 404s later.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiNeed:
    """One resource the operator uses, and what to do when the cluster lacks it."""

    group_version: str
    resource: str
    remedy: str


NEEDS = (
    ApiNeed("batch/v1", "jobs", "every Kubernetes serves it; the API server is misconfigured"),
    ApiNeed("coordination.k8s.io/v1", "leases", "leader election needs it (Kubernetes 1.14+)"),
    ApiNeed("kadence.dev/v1alpha1", "schedules", "install the CRDs: make install, or the chart"),
    ApiNeed("kadence.dev/v1alpha1", "tasks", "install the CRDs: make install, or the chart"),
)
POLICIES = ApiNeed(
    "admissionregistration.k8s.io/v1",
    "validatingadmissionpolicies",
    "the admission policies that keep tenants from creating Jobs through kadence need "
    "Kubernetes 1.30 or newer; on a single-tenant cluster set "
    "admission.requirePolicies: false (docs/security.md)",
)


def needs(require_policies: bool) -> tuple[ApiNeed, ...]:
    """The APIs this configuration uses: the admission policies only when it requires them."""
    return (*NEEDS, POLICIES) if require_policies else NEEDS


def group_versions(wanted: Collection[ApiNeed]) -> list[str]:
    """The group versions to ask discovery about, each once, in a stable order."""
    return sorted({need.group_version for need in wanted})


def missing_apis(served: Mapping[str, Collection[str]], wanted: Collection[ApiNeed]) -> list[str]:
    """One line per needed resource that the cluster does not serve; empty when all are.

    `served` maps a group version to the resources discovery listed for it; a group
    version the cluster does not serve at all is absent or empty.
    """
    return [
        f"{need.resource} ({need.group_version}) is not served: {need.remedy}"
        for need in wanted
        if need.resource not in served.get(need.group_version, ())
    ]
