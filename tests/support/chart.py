"""The Helm chart and the kustomize manifests, rendered for tests.

`render_chart` and `render_kustomize` turn them into objects. `operator_kubeconfig`
installs the chart's RBAC for real and writes a kubeconfig that authenticates as
the chart's ServiceAccount, so that the end-to-end suite can run the operator
with exactly the rights that a real installation gives it:

    kubeconfig = operator_kubeconfig(cluster, "kadence-system")
    # run `kadence run` with KUBECONFIG=kubeconfig

The renderers take the binary-running function as an argument so that unit
tests (no cluster, just the helm and kubectl binaries) can use them too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kadence"
DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples"
RELEASE = "kadence"
NAMESPACE = "kadence-system"
# The Kubernetes version that `helm template` renders for, when no cluster says.
DEFAULT_KUBE_VERSION = "1.36.0"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Cluster(Protocol):
    """What these helpers use of the `cluster` fixture (tests/conftest.py)."""

    kubeconfig: Path
    bin_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...

    def helm(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


def find_binary(name: str) -> Path | None:
    """A helm or kubectl binary: $KADENCE_BIN_DIR, then build.sh's cache, then PATH."""
    cache = Path(os.environ.get("KADENCE_CACHE", Path.home() / ".cache" / "kadence"))
    for folder in (os.environ.get("KADENCE_BIN_DIR"), cache / "bin"):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    found = shutil.which(name)
    return Path(found) if found else None


def tool(name: str) -> Runner:
    """helm, kubectl or promtool from build.sh's cache; skipped when missing, except on CI."""
    binary = find_binary(name)
    if binary is None:
        message = f"{name} not found: run tests/cluster/build.sh (or set KADENCE_BIN_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary_runner(binary)


def binary_runner(binary: Path) -> Runner:
    """A function like `cluster.helm`: runs the binary, text in and out, with no cluster."""

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # No kubeconfig: rendering must not depend on any cluster's state.
        env = {**os.environ, "KUBECONFIG": os.devnull}
        return subprocess.run(
            [str(binary), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            env=env,
            timeout=120,
        )

    return run


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream, without empty documents."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def helm_template(
    helm: Runner,
    values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    kube_version: str = DEFAULT_KUBE_VERSION,
    include_crds: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `helm template` on the chart with these values (nested, as in values.yaml)."""
    with tempfile.TemporaryDirectory(prefix="kadence-values-") as tmp:
        values_file = Path(tmp) / "values.json"  # JSON is YAML, and exact about types
        values_file.write_text(json.dumps(values or {}))
        args = [
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            kube_version,
            "--values",
            str(values_file),
        ]
        if include_crds:
            args.append("--include-crds")
        return helm(*args, check=check)


def render_helm(helm: Runner, values: dict[str, Any] | None = None, **options: Any) -> list[dict]:
    """The chart's objects, as `helm template` renders them."""
    return parse_documents(helm_template(helm, values, **options).stdout)


def render_kustomize(kubectl: Runner, folder: Path) -> list[dict]:
    """The objects of a kustomization (kubectl's built-in kustomize)."""
    return parse_documents(kubectl("kustomize", str(folder)).stdout)


def server_version(cluster: Cluster) -> str:
    """The cluster's Kubernetes version, such as "1.36.3"."""
    info = json.loads(cluster.kubectl("version", "--output=json").stdout)
    return info["serverVersion"]["gitVersion"].lstrip("v").split("+")[0]


def render_chart(
    cluster: Cluster,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    include_crds: bool = False,
    **values: Any,
) -> list[dict]:
    """The chart rendered for this cluster's version; keyword arguments are values.

    render_chart(cluster, namespaces=["team-a"], queues={"defaultCapacity": 2})
    """
    return render_helm(
        cluster.helm,
        values,
        release=release,
        namespace=namespace,
        kube_version=server_version(cluster),
        include_crds=include_crds,
    )


def select(objects: Iterable[dict], *kinds: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] in kinds]


def the(objects: Iterable[dict], kind: str, name: str | None = None) -> dict:
    """The one object of this kind (and name); fails when there is not exactly one."""
    found = [o for o in select(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def ensure_namespace(cluster: Cluster, name: str, labels: dict[str, str] | None = None) -> None:
    """Create the namespace unless it exists (and set these labels on it)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        body["metadata"]["labels"] = labels
    cluster.kubectl("apply", "--filename=-", input=json.dumps(body))


def apply_objects(cluster: Cluster, objects: Iterable[dict], *extra: str) -> str:
    """`kubectl apply` the objects (as one List); extra arguments such as --dry-run=server."""
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    return cluster.kubectl("apply", "--filename=-", *extra, input=json.dumps(body)).stdout


def operator_kubeconfig(
    cluster: Cluster,
    namespace: str,
    *,
    release: str = RELEASE,
    duration: str = "2h",
    **values: Any,
) -> Path:
    """Install the chart's RBAC for real and return a kubeconfig that acts as its ServiceAccount.

    The ServiceAccount, ClusterRoles, Roles and bindings come from the chart rendered
    with `values` in `namespace` (created if missing, as are the watched namespaces
    that get Roles). The token comes from the TokenRequest API (`kubectl create
    token`), valid for `duration`; the server and its CA are those of
    `cluster.kubeconfig`. Nothing else is installed: no Deployment, no CRDs.
    """
    objects = select(
        render_chart(cluster, release=release, namespace=namespace, **values), *RBAC_KINDS
    )
    for ns in sorted({o["metadata"].get("namespace") for o in objects} - {None}):
        ensure_namespace(cluster, ns)
    apply_objects(cluster, objects)

    account = the(objects, "ServiceAccount")["metadata"]["name"]
    token = cluster.kubectl(
        "create", "token", account, f"--namespace={namespace}", f"--duration={duration}"
    ).stdout.strip()

    path = cluster.kubeconfig.parent / f"{release}-{namespace}-operator.kubeconfig"
    config = service_account_kubeconfig(
        cluster.kubeconfig, token, user=f"system:serviceaccount:{namespace}:{account}"
    )
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def service_account_kubeconfig(admin_kubeconfig: Path, token: str, user: str) -> dict:
    """A kubeconfig for the admin kubeconfig's current cluster, authenticated by the token."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in admin["contexts"]}
    context = contexts[admin.get("current-context") or next(iter(contexts))]
    clusters = {c["name"]: c["cluster"] for c in admin["clusters"]}
    server = dict(clusters[context["cluster"]])
    # A CA file given relative to the admin kubeconfig must stay findable.
    ca_file = server.get("certificate-authority")
    if ca_file and not Path(ca_file).is_absolute():
        server["certificate-authority"] = str((admin_kubeconfig.parent / ca_file).resolve())
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": server}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "cluster", "user": user}}],
        "current-context": "operator",
    }
