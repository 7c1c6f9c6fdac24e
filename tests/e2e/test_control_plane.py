"""The local control plane is a real one: Jobs run and fail, CronJobs fire, GC works."""

from __future__ import annotations

import signal
import uuid

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.support.kube import Kube, wait_for

pytestmark = pytest.mark.every_version


def job(name: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
        },
    }


def job_condition(kube: Kube, namespace: str, name: str) -> str | None:
    status = kube.batch.read_namespaced_job_status(name, namespace).status
    for condition in status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


def test_a_job_completes(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, job("ok"))
    assert wait_for(lambda: job_condition(kube, namespace, "ok"), 60, "Job ok") == "Complete"


def test_a_marked_job_fails(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, job("bad", {"kwok.kadence.dev/fail": "true"}))
    assert wait_for(lambda: job_condition(kube, namespace, "bad"), 60, "Job bad") == "Failed"


def test_a_cronjob_creates_a_job(kube: Kube, namespace: str) -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "every-minute"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job("x")["spec"]}},
    }
    kube.batch.create_namespaced_cron_job(namespace, cronjob)
    jobs = wait_for(lambda: kube.jobs(namespace), 75, "the CronJob's first Job")
    assert jobs[0].metadata.owner_references[0].kind == "CronJob"


def test_deleting_the_owner_garbage_collects_the_job(kube: Kube, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": f"owner-{uuid.uuid4().hex[:6]}"}}
    )
    owned = job("owned")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": owner.metadata.name,
            "uid": owner.metadata.uid,
        }
    ]
    kube.batch.create_namespaced_job(namespace, owned)
    wait_for(lambda: kube.jobs(namespace), 30, "the owned Job")
    kube.core.delete_namespaced_config_map(owner.metadata.name, namespace)
    wait_for(lambda: not kube.jobs(namespace), 60, "the garbage collector to delete the Job")


def test_the_operator_connects_and_shuts_down_cleanly(
    cluster: Cluster, operator_kubeconfig, tmp_path
) -> None:
    """Whether it leads or stands by (the suite's operator may hold the Lease), it starts,
    serves its probes, and exits 0 on SIGTERM."""
    process = Operator(cluster, operator_kubeconfig, tmp_path)
    try:
        process.start(lead=False)
    finally:
        code = process.stop(signal.SIGTERM) if process.process is not None else None
    assert code == 0
    log = process.log.read_text()
    assert "Traceback" not in log, log
