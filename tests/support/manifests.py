"""Manifests the end-to-end tests create: Schedules, manual Tasks and their Job template,
whose kwok pods run for a while and succeed."""

from __future__ import annotations

from typing import Any

from kadence.naming import RUN_REQUEST_ANNOTATION

Body = dict[str, Any]

EVERY_MINUTE = "* * * * *"
RUN_FOR = "2s"


def job_template(run_for: str = RUN_FOR) -> Body:
    """A Job whose kwok pod runs for `run_for`, then succeeds."""
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"kwok.kadence.dev/run-for": run_for}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
        }
    }


def schedule_manifest(
    name: str, scheduler_id: str, *, run_now: bool = False, run_for: str = RUN_FOR, **spec: Any
) -> Body:
    """An every-minute cron Schedule (unless `spec` says otherwise) whose data names it, so
    that no two Schedules share a hash. Every finished Task is kept, so that each run can
    be read back; `run_now` asks for one run at once."""
    metadata: Body = {"name": name}
    if run_now:
        metadata["annotations"] = {RUN_REQUEST_ANNOTATION: "at-creation"}
    if "interval" not in spec:
        spec.setdefault("schedule", EVERY_MINUTE)
    spec = {
        "schedulerId": scheduler_id,
        "data": {"schedule": name},
        "successfulTasksHistoryLimit": 50,
        "failedTasksHistoryLimit": 50,
        "historyLimit": 50,
        "jobTemplate": job_template(run_for),
        **spec,
    }
    return {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": metadata,
        "spec": spec,
    }


def task_manifest(name: str, scheduler_id: str, run_for: str = RUN_FOR) -> Body:
    """A manual Task (no Schedule) whose data names it."""
    return {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {
            "schedulerId": scheduler_id,
            "data": {"task": name},
            "jobTemplate": job_template(run_for),
        },
    }
