"""The shipped manifests on a real API server: accepted, restricted, least privilege, trusted.

- The chart's and the kustomize manifests, and every example, pass
  `kubectl apply --dry-run=server` (the CRDs are applied for real first).
- A pod built from the chart's Deployment is admitted where Pod Security
  "restricted" is enforced.
- The chart's ServiceAccount can do what the operator needs and no more
  (`kubectl auth can-i`, and for real with a TokenRequest token).
- The chart's kadence-view and kadence-edit reach whoever holds the built-in view,
  edit and admin, without the status subresources.
- The ValidatingAdmissionPolicy refuses Schedules and Tasks from users who may
  not create Jobs in the namespace, and lets the operator's own Tasks through.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.chart import (
    CHART,
    DEPLOY,
    EXAMPLES,
    NAMESPACE,
    RELEASE,
    REPO,
    apply_objects,
    ensure_namespace,
    operator_kubeconfig,
    parse_documents,
    render_chart,
    select,
    the,
)
from tests.support.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.every_version]

WATCHED = ["team-a", "team-b"]  # as in deploy/overlays/namespaced
OPERATOR = f"system:serviceaccount:{NAMESPACE}:{RELEASE}"


@pytest.fixture(scope="module")
def scratch_namespaces(cluster) -> Iterator[Callable[..., str]]:
    """Make namespaces for this module; they are deleted (without waiting) at its end."""
    made: list[str] = []

    def make(name: str, labels: dict[str, str] | None = None) -> str:
        ensure_namespace(cluster, name, labels)
        made.append(name)
        return name

    yield make
    for name in made:
        cluster.kubectl(
            "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False
        )


@pytest.fixture(scope="module")
def crds(cluster) -> None:
    """The CRDs, applied for real: the resources must exist for the rest to be checked."""
    cluster.kubectl("apply", "--server-side", f"--filename={REPO / 'crds'}")
    names = [
        doc["metadata"]["name"]
        for path in sorted((REPO / "crds").glob("*.yaml"))
        for doc in parse_documents(path.read_text())
    ]
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *[f"customresourcedefinition/{name}" for name in names],
    )


@pytest.fixture(scope="module")
def operator_namespaces(cluster) -> None:
    """The chart's release namespace and the overlay's watched namespaces (kept: shared)."""
    for name in [NAMESPACE, *WATCHED]:
        ensure_namespace(cluster, name)


def dry_run_applied(output: str, objects: list[dict]) -> None:
    """Every object shows up in kubectl's dry-run report."""
    assert "(server dry run)" in output
    for obj in objects:
        name = obj["metadata"]["name"]
        assert f"/{name} " in output, f"{obj['kind']} {name} not applied"


# --- Accepted by the API server -----------------------------------------------------------


@pytest.mark.parametrize(
    "values", [{}, {"namespaces": WATCHED}], ids=["cluster-wide", "namespaced"]
)
def test_chart_is_accepted_by_the_api_server(cluster, crds, operator_namespaces, values):
    objects = render_chart(cluster, **values)
    assert select(objects, "Deployment")
    output = apply_objects(cluster, objects, "--dry-run=server")
    dry_run_applied(output, objects)


def test_helm_install_is_accepted_and_says_what_to_do_next(cluster, crds, operator_namespaces):
    result = cluster.helm(
        "install",
        RELEASE,
        str(CHART),
        f"--namespace={NAMESPACE}",
        "--dry-run=server",
        "--skip-crds",
    )
    assert "NOTES:" in result.stdout
    assert "kubectl get kadence" in result.stdout
    assert "kind: Schedule" in result.stdout


@pytest.mark.parametrize("folder", ["base", "overlays/namespaced"])
def test_kustomize_manifests_are_accepted_by_the_api_server(
    cluster, crds, operator_namespaces, folder
):
    output = cluster.kubectl(
        "apply", "--kustomize", str(DEPLOY / folder), "--dry-run=server"
    ).stdout
    assert "deployment.apps/kadence" in output
    assert (
        "validatingadmissionpolicy.admissionregistration.k8s.io/kadence-require-job-create"
        in output
    )


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "kustomization.yaml"),
)
def test_example_is_accepted_by_the_api_server(cluster, crds, scratch_namespaces, example):
    namespace = scratch_namespaces("kadence-examples")
    output = cluster.kubectl(
        "apply", f"--filename={EXAMPLES / example}", f"--namespace={namespace}", "--dry-run=server"
    ).stdout
    dry_run_applied(output, parse_documents((EXAMPLES / example).read_text()))


def test_runner_example_is_accepted_where_restricted_is_enforced(cluster, crds, scratch_namespaces):
    """examples/runner (a ServiceAccount, its RoleBinding, the runner Deployment and the
    Schedules of its pull queue), and a pod of its Deployment under Pod Security
    "restricted"."""
    namespace = scratch_namespaces(
        "kadence-runner-example",
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    )
    objects = parse_documents(cluster.kubectl("kustomize", str(EXAMPLES / "runner")).stdout)
    result = cluster.kubectl(
        "apply", "--kustomize", str(EXAMPLES / "runner"), f"--namespace={namespace}",
        "--dry-run=server", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr
    dry_run_applied(result.stdout, objects)
    apply_objects(cluster, select(objects, "ServiceAccount"), f"--namespace={namespace}")
    pod = pod_from_deployment(the(objects, "Deployment"), "runner-restricted-check")
    result = cluster.kubectl(
        "apply", "--filename=-", f"--namespace={namespace}", "--dry-run=server",
        input=json.dumps(pod), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr


# --- Pod Security "restricted" ------------------------------------------------------------


def pod_from_deployment(deployment: dict, name: str) -> dict:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"].get("labels", {})},
        "spec": template["spec"],
    }


def test_deployment_passes_restricted_pod_security(cluster, scratch_namespaces):
    namespace = scratch_namespaces(
        "kadence-restricted",
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            # Deployments are only warned about (enforce applies to Pods).
            "pod-security.kubernetes.io/warn": "restricted",
        },
    )
    objects = render_chart(cluster, namespace=namespace)
    deployment = the(objects, "Deployment")
    # The pod names the chart's ServiceAccount, which must exist to be admitted.
    apply_objects(cluster, select(objects, "ServiceAccount"))

    def dry_run(obj: dict) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "apply",
            "--filename=-",
            f"--namespace={namespace}",
            "--dry-run=server",
            input=json.dumps(obj),
            check=False,
        )

    result = dry_run(pod_from_deployment(deployment, "kadence-restricted-check"))
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr

    result = dry_run(deployment)
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr  # no "would violate" warning

    # The control: the namespace really enforces, so the passes above mean something.
    loose = pod_from_deployment(deployment, "kadence-loose-check")
    loose["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    result = dry_run(loose)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr


# --- RBAC: enough, and no more ------------------------------------------------------------


def can_i(cluster, user: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


# Exactly the verbs the operator's code uses (tests/unit/test_packaging.py WORKLOAD).
NEEDS = [
    ("get", "schedules.kadence.dev"),
    ("list", "schedules.kadence.dev"),
    ("watch", "schedules.kadence.dev"),
    ("get", "tasks.kadence.dev"),
    ("list", "tasks.kadence.dev"),
    ("watch", "tasks.kadence.dev"),
    ("create", "tasks.kadence.dev"),
    ("patch", "tasks.kadence.dev"),
    ("delete", "tasks.kadence.dev"),
    ("patch", "schedules.kadence.dev", "--subresource=status"),
    ("patch", "tasks.kadence.dev", "--subresource=status"),
    ("update", "tasks.kadence.dev", "--subresource=finalizers"),
    ("get", "jobs.batch"),
    ("list", "jobs.batch"),
    ("watch", "jobs.batch"),
    ("create", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("get", "serviceaccounts"),
    ("create", "events"),
    ("create", "events.events.k8s.io"),
]
MUST_NOT = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "pods"),
    ("create", "pods", "--subresource=exec"),
    # What users write is theirs: the operator only reads Schedules.
    ("create", "schedules.kadence.dev"),
    ("update", "schedules.kadence.dev"),
    ("patch", "schedules.kadence.dev"),
    ("delete", "schedules.kadence.dev"),
    ("update", "tasks.kadence.dev"),
    ("update", "schedules.kadence.dev", "--subresource=status"),
    ("update", "tasks.kadence.dev", "--subresource=status"),
    ("update", "schedules.kadence.dev", "--subresource=finalizers"),
    ("update", "jobs.batch"),
    ("patch", "jobs.batch"),
    ("patch", "events"),
    ("create", "deployments.apps"),
    ("create", "serviceaccounts", "--subresource=token"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("impersonate", "serviceaccounts"),
    ("*", "*"),
]
# Cluster-scoped, asked without a namespace.
POLICIES = "validatingadmissionpolicies.admissionregistration.k8s.io"
POLICY_BINDINGS = "validatingadmissionpolicybindings.admissionregistration.k8s.io"
MUST_NOT_CLUSTER = [
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    ("list", POLICIES),
    ("get", f"{POLICIES}/someone-elses-policy"),
    ("update", f"{POLICIES}/{RELEASE}-require-job-create"),
    ("delete", f"{POLICY_BINDINGS}/{RELEASE}-require-job-create"),
]


def own_policies(release: str) -> list[tuple[str, str]]:
    """Reading its own admission policies and bindings, by name: allowed in every mode."""
    return [
        ("get", f"{kind}/{release}-{policy}")
        for kind in (POLICIES, POLICY_BINDINGS)
        for policy in ("require-job-create", "operator-only", "operator-jobs")
    ]


@pytest.fixture(scope="module")
def operator_config(cluster, crds, operator_namespaces) -> Path:
    """The chart's RBAC installed for real, and a kubeconfig acting as its ServiceAccount."""
    return operator_kubeconfig(cluster, NAMESPACE)


@pytest.mark.parametrize("namespace", ["default", "team-a"])
def test_service_account_can_do_its_work_everywhere(cluster, operator_config, namespace):
    missing = [
        need for need in NEEDS if not can_i(cluster, OPERATOR, *need, f"--namespace={namespace}")
    ]
    assert not missing
    assert can_i(cluster, OPERATOR, "list", "schedules.kadence.dev", "--all-namespaces")
    assert can_i(cluster, OPERATOR, "watch", "tasks.kadence.dev", "--all-namespaces")
    assert can_i(cluster, OPERATOR, "watch", "jobs.batch", "--all-namespaces")
    assert all(can_i(cluster, OPERATOR, *own) for own in own_policies(RELEASE))


@pytest.mark.parametrize("namespace", ["default", NAMESPACE])
def test_service_account_cannot_read_secrets_or_make_pods(cluster, operator_config, namespace):
    granted = [
        bad for bad in MUST_NOT if can_i(cluster, OPERATOR, *bad, f"--namespace={namespace}")
    ]
    assert not granted
    assert not can_i(cluster, OPERATOR, "list", "secrets", "--all-namespaces")
    # kopf needs no CRDs (API discovery finds the resources) and no namespaces.
    granted = [bad for bad in MUST_NOT_CLUSTER if can_i(cluster, OPERATOR, *bad)]
    assert not granted


def test_service_account_may_hold_only_its_own_lease(cluster, operator_config):
    """Leader election needs its one Lease, by name, in the operator's namespace; no other
    Lease (kube-scheduler's, say) and none elsewhere."""
    lease = f"leases.coordination.k8s.io/{RELEASE}"
    here = f"--namespace={NAMESPACE}"
    assert can_i(cluster, OPERATOR, "get", lease, here)
    assert can_i(cluster, OPERATOR, "update", lease, here)
    assert can_i(cluster, OPERATOR, "watch", lease, here)
    assert can_i(cluster, OPERATOR, "create", "leases.coordination.k8s.io", here)
    assert can_i(cluster, OPERATOR, "create", "events", here)
    other = "leases.coordination.k8s.io/kube-scheduler"
    assert not can_i(cluster, OPERATOR, "update", other, here)
    assert not can_i(cluster, OPERATOR, "update", other, "--namespace=kube-system")
    assert not can_i(cluster, OPERATOR, "delete", lease, here)
    assert not can_i(cluster, OPERATOR, "list", "leases.coordination.k8s.io", here)
    assert not can_i(cluster, OPERATOR, "update", lease, "--namespace=default")


def test_token_kubeconfig_acts_as_the_service_account(cluster, operator_config):
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={operator_config}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    whoami = kubectl("auth", "whoami", "--output=json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == OPERATOR
    assert (
        kubectl("get", "schedules.kadence.dev,tasks.kadence.dev", "--all-namespaces").returncode
        == 0
    )
    forbidden = kubectl("get", "secrets", f"--namespace={NAMESPACE}")
    assert forbidden.returncode != 0
    assert "forbidden" in forbidden.stderr.lower()


def test_namespaced_install_grants_nothing_elsewhere(cluster, crds, operator_namespaces):
    release = "kadence-scoped"
    account = f"system:serviceaccount:{release}:{release}"
    operator_kubeconfig(cluster, release, release=release, namespaces=WATCHED)
    try:
        for namespace in WATCHED:
            missing = [
                n for n in NEEDS if not can_i(cluster, account, *n, f"--namespace={namespace}")
            ]
            assert not missing, namespace
        assert not can_i(cluster, account, "create", "jobs.batch", "--namespace=default")
        assert not can_i(cluster, account, "list", "schedules.kadence.dev", "--all-namespaces")
        # The watched namespaces are exact names: kopf need not list namespaces.
        assert not can_i(cluster, account, "watch", "namespaces")
        assert not can_i(
            cluster, account, "watch", "customresourcedefinitions.apiextensions.k8s.io"
        )
        assert all(can_i(cluster, account, *own) for own in own_policies(release))
    finally:
        rbac = select(
            render_chart(cluster, release=release, namespace=release, namespaces=WATCHED),
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        )
        cluster.kubectl(
            "delete",
            "--filename=-",
            "--ignore-not-found",
            "--wait=false",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}),
            check=False,
        )
        cluster.kubectl("delete", "namespace", release, "--wait=false", check=False)


# --- Roles for people: aggregated into view, edit and admin ------------------------------

PEOPLE_READ = ("get", "list", "watch")
PEOPLE_WRITE = ("create", "update", "patch", "delete", "deletecollection")


def test_people_roles_reach_the_default_roles(cluster, operator_config, scratch_namespaces):
    """The chart's kadence-view and kadence-edit (installed with its RBAC by operator_config)
    give whoever holds the built-in view, edit or admin the matching rights; status
    stays the operator's."""
    namespace = scratch_namespaces("kadence-people")
    people = {}
    for builtin in ("view", "edit", "admin"):
        name = f"holds-{builtin}"
        apply_objects(
            cluster,
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace},
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": builtin,
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
                },
            ],
        )
        people[builtin] = f"system:serviceaccount:{namespace}:{name}"

    def can(who: str, *args: str) -> bool:
        return can_i(cluster, people[who], *args, f"--namespace={namespace}")

    # The aggregation controller copies the rules a moment after the ClusterRoles exist.
    wait_for(
        lambda: (
            can("view", "list", "schedules.kadence.dev")
            and can("edit", "create", "schedules.kadence.dev")
            and can("admin", "deletecollection", "tasks.kadence.dev")
        ),
        30,
        "kadence-view and kadence-edit to be aggregated into view, edit and admin",
    )
    for resource in ("schedules.kadence.dev", "tasks.kadence.dev"):
        for verb in PEOPLE_READ:
            assert all(can(who, verb, resource) for who in people), (verb, resource)
        for verb in PEOPLE_WRITE:
            assert not can("view", verb, resource), (verb, resource)
            assert can("edit", verb, resource), (verb, resource)
            assert can("admin", verb, resource), (verb, resource)
        for who in people:
            assert not can(who, "patch", resource, "--subresource=status"), (who, resource)
            assert not can(who, "update", resource, "--subresource=status"), (who, resource)
    assert not can("edit", "list", "schedules.kadence.dev", "--all-namespaces")


# --- Trust: only those who may create Jobs may create Schedules ---------------------------


@pytest.fixture
def admission_policy(cluster, crds) -> Iterator[None]:
    """The chart's require-job-create policy and its binding, for real, removed afterwards
    (the chart's other admission policies are not what these tests are about)."""
    policy = [
        obj
        for obj in select(
            render_chart(cluster), "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"
        )
        if obj["metadata"]["name"] == f"{RELEASE}-require-job-create"
    ]
    assert len(policy) == 2
    apply_objects(cluster, policy)
    yield
    cluster.kubectl(
        "delete",
        "--filename=-",
        "--ignore-not-found",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": policy}),
        check=False,
    )


def role(namespace: str, name: str, rules: list[dict], subject: str) -> list[dict]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": namespace}],
        },
    ]


def test_schedules_need_the_right_to_create_jobs(
    cluster, admission_policy, operator_config, scratch_namespaces
):
    namespace = scratch_namespaces("kadence-trust")
    writer = f"system:serviceaccount:{namespace}:writer"
    apply_objects(
        cluster,
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "writer", "namespace": namespace},
            },
            *role(
                namespace,
                "kadence-writer",
                [
                    {
                        "apiGroups": ["kadence.dev"],
                        "resources": ["schedules", "tasks"],
                        "verbs": ["get", "list", "create", "patch"],
                    }
                ],
                "writer",
            ),
        ],
    )
    (schedule,) = parse_documents((EXAMPLES / "cron-timezone.yaml").read_text())
    (task,) = parse_documents((EXAMPLES / "manual-task.yaml").read_text())

    def create_as(user: str, obj: dict) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "create",
            "--filename=-",
            f"--namespace={namespace}",
            "--dry-run=server",
            f"--as={user}",
            input=yaml.safe_dump(obj),
            check=False,
        )

    def refused(user: str, obj: dict) -> bool:
        result = create_as(user, obj)
        return result.returncode != 0 and "may not create Jobs" in result.stderr

    # RBAC alone would let the writer in; the policy keeps it out.
    # Admission policies take effect a moment after they are created.
    wait_for(lambda: refused(writer, schedule), 30, "the policy to refuse the writer's Schedule")
    assert refused(writer, task)

    # The operator may create Jobs here, so the Tasks it makes pass.
    result = create_as(OPERATOR, task)
    assert result.returncode == 0, result.stderr

    apply_objects(
        cluster,
        role(
            namespace,
            "job-creator",
            [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}],
            "writer",
        ),
    )
    wait_for(
        lambda: create_as(writer, schedule).returncode == 0,
        30,
        "the writer's Schedule to pass once it may create Jobs",
    )
    assert create_as(writer, task).returncode == 0
