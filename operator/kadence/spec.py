"""Reading a Schedule's spec, and the Task each of its runs becomes. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kadence import API_VERSION
from kadence.deadlines import ScheduleTiming, timing_of
from kadence.jobs import DataTooLarge, task_data_json
from kadence.models import ScheduleRef, ScheduleSpec, TaskSpec
from kadence.naming import SCHEDULE_LABEL, SCHEDULER_ID_LABEL, default_hash


@dataclass(frozen=True)
class ScheduleReading:
    """A Schedule as the operator understands it: usable, or the problem for its status."""

    spec: ScheduleSpec | None
    timing: ScheduleTiming | None
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None and self.spec is not None and self.timing is not None


def read_schedule(body: dict[str, Any]) -> ScheduleReading:
    """Everything about a Schedule that the CRD schema cannot check: its cron, time zone,
    interval and the size of its data. Never raises: a problem is returned, for a person."""
    meta = body.get("metadata") or {}
    try:
        spec = ScheduleSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return ScheduleReading(None, None, f"spec does not match the schema: {error}")
    try:
        timing = timing_of(spec, f"{meta.get('namespace', '')}/{meta.get('name', '')}")
        task_data_json(spec.data)
    except (ValueError, DataTooLarge) as error:
        return ScheduleReading(spec, None, str(error))
    return ScheduleReading(spec, timing, None)


def task_for_run(
    schedule: dict[str, Any], spec: ScheduleSpec, name: str, deadline: datetime
) -> dict[str, Any]:
    """The Task for one run: the schedule's spec copied (so later edits never change it),
    labelled with its queue and schedule, and owned by the schedule."""
    meta = schedule["metadata"]
    task_spec = TaskSpec(
        scheduler_id=spec.scheduler_id,
        priority=spec.priority,
        hash=spec.hash or default_hash(spec.data),
        data=spec.data,
        job_template=spec.job_template,
        schedule_ref=ScheduleRef(name=meta["name"]),
        deadline_at=deadline,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {SCHEDULER_ID_LABEL: spec.scheduler_id, SCHEDULE_LABEL: meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Schedule",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": task_spec.to_kube(),
    }
