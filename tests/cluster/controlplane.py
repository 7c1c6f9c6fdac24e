"""A real Kubernetes control plane on 127.0.0.1, started as plain processes.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (nodes
whose pods run and finish on cue), from binaries that `build.sh` compiles once
per machine. Used by `make cluster-up` and by the end-to-end tests' fixture.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = HERE / "kwok-stages.yaml"
ADMIN_TOKEN = "kadence-admin-token"
NODE_NAME = "kwok-node-0"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("KADENCE_CACHE", Path.home() / ".cache" / "kadence"))


def build_binaries() -> Path:
    """Run build.sh (a no-op when the binaries are cached) and return the bin folder."""
    result = subprocess.run(
        ["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError("building the control plane failed; see the messages above")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Make the child receive SIGKILL when the process that started it dies."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ControlPlane:
    """One control plane in `state_dir`: its certificates, data, logs and pids."""

    state_dir: Path
    bin_dir: Path
    tie_to_parent: bool = True
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def start(self, timeout: float = 90) -> None:
        """Start every component and wait until the cluster can run a Job."""
        if self.running_pids():
            raise ControlPlaneError(
                f"a control plane is already running from {self.state_dir}; "
                "stop it first (make cluster-down) or use another folder"
            )
        missing = [c for c in COMPONENTS if not (self.bin_dir / c).exists()]
        if missing:
            raise ControlPlaneError(
                f"missing binaries in {self.bin_dir}: {', '.join(missing)}; "
                "run tests/cluster/build.sh"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver")}
        self._write_credentials()
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd()
            self._wait(self._etcd_healthy, "etcd to be healthy", deadline)
            self._start_apiserver()
            self._wait(lambda: self._get("/readyz") is not None, "kube-apiserver /readyz", deadline)
            self._start_controllers()
            self._create_node()
            self._wait(self._node_ready, f"node {NODE_NAME} to be Ready", deadline)
            self._wait(
                lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
                "the default ServiceAccount (kube-controller-manager at work)",
                deadline,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component this state folder knows of, gently then firmly."""
        pids = {name: p.pid for name, p in self.processes.items()} or self.running_pids()
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 3
        for pid in pids.values():
            while _alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        self.pid_file.unlink(missing_ok=True)

    def stop_component(self, name: str, grace: float = 10) -> None:
        """Stop one component (SIGTERM, then SIGKILL after `grace` seconds), as a crash or an
        upgrade would; the others go on and must reconnect by themselves once it is back."""
        process = self.processes.pop(name, None)
        if process is None:
            raise ControlPlaneError(f"{name} is not running from this process")
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        self._write_pids()

    def start_component(self, name: str, timeout: float = 60) -> None:
        """Start a stopped component again with the same flags, port and certificates, and
        wait until it is ready (kube-apiserver: /readyz; etcd: healthy)."""
        if name in self.processes:
            raise ControlPlaneError(f"{name} is already running")
        if not self.ports:
            raise ControlPlaneError("start the control plane before one of its components")
        deadline = time.monotonic() + timeout
        if name == "etcd":
            self._start_etcd()
            self._wait(self._etcd_healthy, "etcd to be healthy", deadline)
        elif name == "kube-apiserver":
            self._start_apiserver()
            self._wait(lambda: self._get("/readyz") is not None, "kube-apiserver /readyz", deadline)
        elif name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._start_controllers(only=name)
        else:
            raise ControlPlaneError(f"unknown component {name!r}; one of {', '.join(COMPONENTS)}")

    def restart_apiserver(self, down_for: float) -> None:
        """Stop kube-apiserver, keep it down for `down_for` seconds, and start it again on the
        same port (clients keep their kubeconfig); returns once it is ready."""
        self.stop_component("kube-apiserver")
        time.sleep(down_for)  # the outage itself
        self.start_component("kube-apiserver")

    def running_pids(self) -> dict[str, int]:
        """Pids recorded in the state folder whose processes are still alive."""
        try:
            recorded = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return {}
        return {name: pid for name, pid in recorded.items() if _alive(pid)}

    def check_alive(self) -> None:
        """Raise with the tail of its log if a component has died."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.log_dir / f"{name}.log"
                raise ControlPlaneError(
                    f"{name} exited with code {process.returncode}; "
                    f"last lines of {log}:\n{tail(log)}"
                )

    # -- components ---------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(self.bin_dir / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.state_dir,
            start_new_session=True,
            # Only prctl runs between fork and exec, which is safe even with threads.
            preexec_fn=_die_with_parent if self.tie_to_parent else None,  # noqa: PLW1509
        )
        log.close()
        self.processes[name] = process
        self._write_pids()

    def _write_pids(self) -> None:
        self.pid_file.write_text(json.dumps({n: p.pid for n, p in self.processes.items()}))

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._spawn(
            "etcd",
            [
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self) -> None:
        d = self.state_dir
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={d / 'apiserver.crt'}",
                f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--client-ca-file={d / 'ca.crt'}",
                f"--token-auth-file={d / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--watch-cache=true",
                "--v=1",
            ],
        )

    def _start_controllers(self, only: str | None = None) -> None:
        """kube-controller-manager, kube-scheduler and kwok (or `only` the one named)."""
        starts = {
            "kube-controller-manager": self._start_controller_manager,
            "kube-scheduler": self._start_scheduler,
            "kwok": self._start_kwok,
        }
        for name, start in starts.items():
            if only in (None, name):
                start()

    def _start_controller_manager(self) -> None:
        d = self.state_dir
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={d / 'sa.key'}",
                f"--root-ca-file={d / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--controllers=*",
                "--concurrent-job-syncs=10",
                # kwok's node heartbeats come every 20 to 45 s and it keeps no Lease: give
                # them room, so a slow machine never sees its only node marked NotReady.
                "--node-monitor-grace-period=5m",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        self._spawn(
            "kube-scheduler",
            [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0", "--v=1"],
        )

    def _start_kwok(self) -> None:
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={STAGES}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=10.244.0.1",
                "--cidr=10.244.0.0/16",
            ],
        )

    def _create_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": NODE_NAME, "type": "kwok"},
            },
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"}},
        }
        self._request("POST", "/api/v1/nodes", node)

    # -- credentials ---------------------------------------------------------------

    def _write_credentials(self) -> None:
        d = self.state_dir

        def openssl(*args: str) -> None:
            result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ControlPlaneError(f"openssl {' '.join(args[:2])} failed: {result.stderr}")

        if not (d / "ca.crt").exists():
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                    "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
                    "-subj", "/CN=kadence-local-ca")  # fmt: skip
            (d / "san.cnf").write_text(
                "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
                "DNS:kubernetes.default.svc.cluster.local\n"
            )
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "apiserver.key"),
                    "-out", str(d / "apiserver.csr"), "-subj", "/CN=kube-apiserver")  # fmt: skip
            openssl("x509", "-req", "-in", str(d / "apiserver.csr"), "-CA", str(d / "ca.crt"),
                    "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "3650",
                    "-extfile", str(d / "san.cnf"), "-out", str(d / "apiserver.crt"))  # fmt: skip
            openssl("genrsa", "-out", str(d / "sa.key"), "2048")
            openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))
        (d / "tokens.csv").write_text(f"{ADMIN_TOKEN},kadence-admin,kadence-admin,system:masters\n")
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "kadence-local",
                            "cluster": {
                                "server": self.server,
                                "certificate-authority": str(d / "ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
                    "contexts": [
                        {
                            "name": "kadence-local",
                            "context": {"cluster": "kadence-local", "user": "admin"},
                        }
                    ],
                    "current-context": "kadence-local",
                },
                indent=2,
            )
        )

    # -- talking to it -------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.state_dir / "ca.crt"))

    def _request(self, method: str, path: str, body: object | None = None) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self._ssl(), timeout=5) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            if error.code == 409:
                return {}
            raise ControlPlaneError(
                f"{method} {path}: {error.code} {error.read().decode()}"
            ) from error
        try:
            return json.loads(text)
        except ValueError:
            return {"text": text}

    def _get(self, path: str) -> dict | None:
        try:
            return self._request("GET", path)
        except (ControlPlaneError, OSError):
            return None

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports['etcd']}/health", timeout=2
            ) as response:
                return json.loads(response.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def _node_ready(self) -> bool:
        node = self._get(f"/api/v1/nodes/{NODE_NAME}") or {}
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _wait(self, ready: object, what: str, deadline: float) -> None:
        while True:
            self.check_alive()
            if ready():  # type: ignore[operator]
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out waiting for {what}; component logs are in {self.log_dir}"
                )
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def running(state_dir: Path) -> Iterator[ControlPlane]:
    """A control plane for the duration of a `with` block (the tests' fixture)."""
    plane = ControlPlane(state_dir=state_dir, bin_dir=build_binaries())
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
