"""The few Kubernetes API calls the operator makes, with errors sorted for its decisions.

The official client is synchronous; calls run in a thread pool sized for bursts
(thousands of deadlines falling due at once) so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kadence import GROUP, VERSION, metrics
from kadence.background import spawn

log = logging.getLogger(__name__)

API_THREADS = 32
LIST_PAGE = 500
"""Objects per page of a list (`Kube.pages`; kopf's lists use the same)."""
LEASE_TIMEOUT = 5.0
"""Seconds a Lease request may take: a renewal stuck longer than this is a failed one."""
LEASE_WATCH_SECONDS = 300
LEASE_WATCH_RETRY = 2.0

T = TypeVar("T")


class ApiError(Exception):
    """A refused API call; `status` is the HTTP code (0 when the server was not reached)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def user_error(self) -> bool:
        """The request itself is wrong (invalid, forbidden, namespace gone): retrying won't help."""
        return self.status in (400, 403, 404, 409, 413, 422)


class NotLeading(Exception):
    """A write was stopped before it left: this replica does not lead."""


IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _api_error(error: ApiException) -> ApiError:
    reason, message = error.reason or "", str(error.body or "")
    try:
        body = json.loads(error.body or "")
        reason, message = body.get("reason", reason), body.get("message", message)
    except (TypeError, ValueError):
        pass
    return ApiError(error.status or 0, reason, message)


def _json_object(value: object) -> dict[str, Any]:
    """A response the client decoded from JSON (typed `object` by it) as the object it is."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object from the API, got {type(value).__name__}")
    return value


def _decoded(response: Any) -> dict[str, Any]:
    """A raw response's JSON. Jobs are read this way: the client's typed models cost
    milliseconds per Job to build and to turn back into the JSON the controllers read,
    which a burst of thousands of Jobs, or the list at start-up, pays for each."""
    return _json_object(json.loads(response.data))


def load_client_config() -> None:
    """In-cluster credentials when running in a pod, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    # A connection for each API thread and one for the Lease's watch, which holds its own:
    # with one fewer, a burst opened and discarded connections, a TLS handshake each.
    configuration.connection_pool_maxsize = API_THREADS + 1
    client.Configuration.set_default(configuration)


def served_resources(group_versions: list[str]) -> dict[str, frozenset[str]]:
    """What discovery lists for each group version (`group/version`, never the core
    group); an empty set for one the cluster does not serve.

    Asked once at start-up, before anything else, so it is a plain blocking call."""
    discovery = client.CustomObjectsApi()
    served: dict[str, frozenset[str]] = {}
    for group_version in group_versions:
        group, version = group_version.split("/")
        try:
            found = discovery.get_api_resources(group, version)
        except ApiException as error:
            if error.status == 404:
                served[group_version] = frozenset()
                continue
            raise _api_error(error) from error
        served[group_version] = frozenset(r.name for r in found.resources or [])
    return served


@dataclass(frozen=True)
class Listing:
    """The objects a list returned, and the resourceVersion it was read at."""

    items: list[dict[str, Any]]
    resource_version: str


class KubeApi(Protocol):
    """The API calls the controllers make: `Kube` against a cluster, or a fake in tests."""

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]: ...

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def patch(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def delete(self, plural: str, namespace: str, name: str) -> None: ...

    async def create_job(self, job: dict[str, Any], dry_run: bool = False) -> dict[str, Any]: ...

    async def get_job(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def delete_job(self, namespace: str, name: str) -> None: ...

    async def service_account_exists(self, namespace: str, name: str) -> bool: ...

    async def get_cluster_object(
        self, group: str, version: str, plural: str, name: str
    ) -> dict[str, Any] | None: ...

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


class LeaseApi(Protocol):
    """The calls leader election makes on its Lease; never fenced (they are the fence)."""

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def write_lease(self, lease: dict[str, Any], *, create: bool) -> dict[str, Any]: ...

    def watch_lease(
        self, namespace: str, name: str, changed: Callable[[dict[str, Any]], None]
    ) -> None: ...

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


WRITES = frozenset({"create", "patch", "patch_status", "delete"})
"""Verbs that change the cluster: only a replica that leads may send them."""

LEASES = ("coordination.k8s.io", "v1", "leases")


def default_namespace() -> str:
    """The namespace the operator runs in: the pod's (downward API, or its ServiceAccount's
    mount), else the current kubeconfig context's, else `default`."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        pass
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, OSError, TypeError):
        return "default"
    return str((context or {}).get("context", {}).get("namespace") or "default")


class Kube:
    """Async wrappers over the calls kadence makes; each counts as one API request.

    `may_write` is asked right before each write leaves for the API server (in the
    thread that sends it): a replica that does not lead, or no longer knows that it does,
    sends none.
    """

    def __init__(self, may_write: Callable[[], bool] = lambda: True) -> None:
        self._executor = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube")
        api = client.ApiClient()
        self._custom = client.CustomObjectsApi(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._instance = socket.gethostname()
        self.may_write = may_write

    async def _call(
        self, verb: str, resource: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        loop = asyncio.get_running_loop()

        def send() -> T:
            """Runs in the thread that sends the request, and counts it there: a request the
            fence stopped was never sent, and one whose caller was cancelled meanwhile (a
            replica that stopped leading) is counted only if it really went out."""
            if verb in WRITES and not self.may_write():
                raise NotLeading
            code = ""
            try:
                answer = fn(*args, **kwargs)
                code = "2xx"
                return answer
            except ApiException as error:
                code = str(error.status or 0)
                raise
            except (OSError, HTTPError):
                code = "0"
                raise
            finally:
                if code:
                    metrics.API_REQUESTS.labels(verb=verb, resource=resource, code=code).inc()

        try:
            return await loop.run_in_executor(self._executor, send)
        except NotLeading:
            raise ApiError(
                0, "NotLeading", f"{verb} {resource}: this replica does not lead"
            ) from None
        except ApiException as error:
            raise _api_error(error) from None
        except (OSError, HTTPError) as error:
            raise ApiError(0, "Unreachable", str(error)) from None

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        obj = await self._call(
            "get", plural, self._custom.get_namespaced_custom_object,
            GROUP, VERSION, namespace, plural, name,
        )  # fmt: skip
        return _json_object(obj)

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body["metadata"]["namespace"]
        created = await self._call(
            "create", plural, self._custom.create_namespaced_custom_object,
            GROUP, VERSION, namespace, plural, body,
        )  # fmt: skip
        return _json_object(created)

    async def patch(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch an object's metadata or spec."""
        patched = await self._call(
            "patch", plural, self._custom.patch_namespaced_custom_object,
            GROUP, VERSION, namespace, plural, name, patch,
        )  # fmt: skip
        return _json_object(patched)

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch status; a `metadata.resourceVersion` in the patch makes it conditional."""
        patched = await self._call(
            "patch_status", plural, self._custom.patch_namespaced_custom_object_status,
            GROUP, VERSION, namespace, plural, name, patch,
        )  # fmt: skip
        return _json_object(patched)

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        await self._call(
            "delete", plural, self._custom.delete_namespaced_custom_object,
            GROUP, VERSION, namespace, plural, name,
            body=client.V1DeleteOptions(propagation_policy="Background"),
        )  # fmt: skip

    async def create_job(self, job: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create a Job; with `dry_run` the API server only validates and admits it."""
        created = await self._call(
            "dry_run_create" if dry_run else "create",
            "jobs",
            self._batch.create_namespaced_job,
            job["metadata"]["namespace"],
            job,
            _preload_content=False,
            **({"dry_run": "All"} if dry_run else {}),
        )
        return _decoded(created)

    async def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        job = await self._call(
            "get", "jobs", self._batch.read_namespaced_job, name, namespace,
            _preload_content=False,
        )  # fmt: skip
        return _decoded(job)

    async def pages(
        self, plural: str, namespace: str | None = None, label_selector: str = ""
    ) -> AsyncIterator[Listing]:
        """Every object of a kind, a page at a time (`LIST_PAGE` objects): only one page is
        decoded at once, so listing 10,000 Schedules (28 MB of JSON, ten times that as
        Python objects) costs the memory of a page. Each page carries the resourceVersion
        of the whole list."""
        if plural == "jobs" and namespace:
            fn: Callable[..., Any] = self._batch.list_namespaced_job
            args: tuple[Any, ...] = (namespace,)
        elif plural == "jobs":
            fn, args = self._batch.list_job_for_all_namespaces, ()
        elif namespace:
            fn = self._custom.list_namespaced_custom_object
            args = (GROUP, VERSION, namespace, plural)
        else:
            fn, args = self._custom.list_cluster_custom_object, (GROUP, VERSION, plural)
        selector = {"label_selector": label_selector} if label_selector else {}
        token = ""
        while True:
            paging: dict[str, Any] = {"limit": LIST_PAGE, "_preload_content": False}
            if token:
                paging["_continue"] = token
            page = _decoded(await self._call("list", plural, fn, *args, **selector, **paging))
            meta = page.get("metadata") or {}
            yield Listing(page.get("items") or [], str(meta.get("resourceVersion")))
            token = meta.get("continue") or ""
            if not token:
                return

    async def service_account_exists(self, namespace: str, name: str) -> bool:
        try:
            await self._call(
                "get",
                "serviceaccounts",
                self._core.read_namespaced_service_account,
                name,
                namespace,
            )
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def get_cluster_object(
        self, group: str, version: str, plural: str, name: str
    ) -> dict[str, Any] | None:
        """A cluster-scoped object of any API group by name; None when it does not exist."""
        try:
            found = await self._call(
                "get", plural, self._custom.get_cluster_custom_object, group, version, plural, name
            )
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return _json_object(found)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an Event on `obj` in the background; a lost Event never stops the work."""
        meta = obj["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", ""),
                "kind": obj.get("kind", ""),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "kadence"},
            "reportingComponent": "kadence.dev/operator",
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        spawn(self._post_event(body))

    async def _post_event(self, body: dict[str, Any]) -> None:
        try:
            await self._call(
                "create", "events", self._core.create_namespaced_event,
                body["metadata"]["namespace"], body,
            )  # fmt: skip
        except ApiError as error:
            log.debug("could not record event %s: %s", body["reason"], error)

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = await self._call(
                "get", "leases", self._custom.get_namespaced_custom_object,
                *LEASES[:2], namespace, LEASES[2], name, _request_timeout=LEASE_TIMEOUT,
            )  # fmt: skip
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return _json_object(found)

    async def write_lease(self, lease: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Create the Lease, or replace it on the resourceVersion it was read at (so that of
        two replicas writing at once, one is refused)."""
        meta = lease["metadata"]
        if create:
            written = await self._call(
                "lease_create", "leases", self._custom.create_namespaced_custom_object,
                *LEASES[:2], meta["namespace"], LEASES[2], lease, _request_timeout=LEASE_TIMEOUT,
            )  # fmt: skip
        else:
            written = await self._call(
                "lease_update", "leases", self._custom.replace_namespaced_custom_object,
                *LEASES[:2], meta["namespace"], LEASES[2], meta["name"], lease,
                _request_timeout=LEASE_TIMEOUT,
            )  # fmt: skip
        return _json_object(written)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._call(
            "delete", "jobs", self._batch.delete_namespaced_job, name, namespace,
            body=client.V1DeleteOptions(propagation_policy="Background"),
        )  # fmt: skip

    def watch_lease(
        self, namespace: str, name: str, changed: Callable[[dict[str, Any]], None]
    ) -> None:
        """Call `changed` with the Lease whenever it changes, for the life of the process
        (blocking: run it in a thread of its own); a broken watch is opened again."""
        selector = f"metadata.name={name}"
        said = ""
        while True:
            try:
                for event in watch.Watch().stream(
                    self._custom.list_namespaced_custom_object, *LEASES[:2], namespace, LEASES[2],
                    field_selector=selector, timeout_seconds=LEASE_WATCH_SECONDS,
                ):  # fmt: skip
                    changed(_json_object(event["object"]))
            except (ApiException, OSError, HTTPError, ValueError) as error:
                text = str(_api_error(error) if isinstance(error, ApiException) else error)
                level = logging.DEBUG if text == said else logging.WARNING
                log.log(level, "watch of the Lease %s/%s: %s (hand-overs wait for the next "
                        "try until it works)", namespace, name, text)  # fmt: skip
                said = text
                time.sleep(LEASE_WATCH_RETRY)
