"""What the end-to-end tests need to read and write the cluster, and to wait on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "kadence.dev", "v1alpha1"
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.2,
    check: Callable[[], None] | None = None,
) -> T:
    """Poll until `condition()` is truthy and return it; fail naming `what` on timeout."""
    end = time.monotonic() + timeout
    last: T | None = None
    while True:
        if check is not None:
            check()
        last = condition()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Kube:
    """Typed clients for one kubeconfig, and short-hands for kadence's resources."""

    def __init__(self, kubeconfig: Path) -> None:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, plural: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        result = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, label_selector=selector
        )
        return result["items"]

    def patch(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, patch
        )

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, propagation_policy="Background"
        )

    def jobs(self, namespace: str) -> list[Any]:
        return self.batch.list_namespaced_job(namespace).items

    def events(self, namespace: str, name: str) -> list[Any]:
        selector = f"involvedObject.name={name}"
        return self.core.list_namespaced_event(namespace, field_selector=selector).items


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    return next((c for c in status(obj).get("conditions", []) if c.get("type") == type_), {})


def task_phase(kube: Kube, namespace: str, name: str) -> str | None:
    """A Task's phase; None before it has one, or when it does not exist."""
    return status(kube.get("tasks", namespace, name)).get("phase")


def task_in_phase(
    kube: Kube, namespace: str, name: str, *phases: str
) -> Callable[[], dict[str, Any] | None]:
    """A condition for `wait_for`: the Task, once it is in one of `phases`."""

    def check() -> dict[str, Any] | None:
        task = kube.get("tasks", namespace, name)
        return task if status(task).get("phase") in phases else None

    return check
