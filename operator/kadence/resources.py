"""Schedules and Tasks as the operator reads them, and the Task each run becomes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kadence import API_VERSION
from kadence.deadlines import ScheduleTiming, timing_of
from kadence.jobs import DataTooLarge, build_job, task_data_json, template_problem
from kadence.models import (
    ConcurrencyPolicy,
    HistoryEntry,
    ScheduleRef,
    ScheduleSpec,
    TaskPhase,
    TaskSpec,
    TaskStatus,
)
from kadence.naming import (
    SCHEDULE_LABEL,
    SCHEDULER_ID_LABEL,
    TRIGGER_BACKFILL,
    TRIGGER_LABEL,
    TRIGGER_MANUAL,
    TRIGGER_SCHEDULE,
    default_hash,
    task_name_for_deadline,
)
from kadence.queue import QueueItem
from kadence.status import parse_time

Body = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return meta["namespace"], meta["name"]


def generation_of(body: Body) -> int | None:
    """The object's metadata.generation: what its status' observedGeneration answers to."""
    generation = body["metadata"].get("generation")
    return int(generation) if generation is not None else None


def scheduler_of(task: Body) -> str:
    """The queue a task joins."""
    return str((task.get("spec") or {}).get("schedulerId", ""))


def _controller(body: Body) -> dict[str, Any]:
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    return next((ref for ref in references if ref.get("controller") is True), {})


def controller_uid(body: Body) -> str | None:
    """The uid of the object that controls `body` (its controlling ownerReference), if any.

    Ownership, not names or labels, says whose run a Task is and whose Job a Job is.
    """
    uid = _controller(body).get("uid")
    return str(uid) if uid else None


def controller_kind(body: Body) -> str | None:
    """The kind of the object that controls `body`, if any."""
    kind = _controller(body).get("kind")
    return str(kind) if kind else None


def schedule_key_of(task: Body) -> Key | None:
    """The Schedule that controls a Task (whose reconcile a change to the Task concerns)."""
    controller = _controller(task)
    if controller.get("kind") != "Schedule" or not controller.get("name"):
        return None
    return task["metadata"]["namespace"], str(controller["name"])


@dataclass(frozen=True)
class ScheduleReading:
    """A Schedule as the operator understands it: usable, or the problem for its status."""

    spec: ScheduleSpec | None
    timing: ScheduleTiming | None
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None and self.spec is not None and self.timing is not None


def read_schedule(body: dict[str, Any], *, pull: bool | None = None) -> ScheduleReading:
    """Everything about a Schedule that the CRD schema cannot check: its cron, time zone,
    interval, the size of its data and whether its Job template can run. Never raises: a
    problem is returned, for a person.

    `pull` says whether its queue is a pull queue: then no template is read; else one is
    required. None (not known, as in a view) judges a template only when there is one.
    """
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
    template, problem = spec.job_template, None
    if template is not None and not pull:
        problem = template_problem(template.to_kube())
    elif template is None and pull is False:
        problem = template_missing(spec.scheduler_id)
    problem = problem or _suspension_problem(spec)
    if problem is not None:
        return ScheduleReading(spec, None, problem)
    return ScheduleReading(spec, timing, None)


def _suspension_problem(spec: ScheduleSpec) -> str | None:
    """The failures that suspend a schedule are counted in status.history, which keeps only
    historyLimit runs: a larger count could never be reached."""
    limit = spec.suspend_after_failures
    if limit is not None and limit > spec.history_limit:
        return (
            f"suspendAfterFailures ({limit}) is more than historyLimit ({spec.history_limit}): "
            "the failed runs are counted in status.history, which keeps only historyLimit runs"
        )
    return None


def task_for_run(
    schedule: dict[str, Any],
    spec: ScheduleSpec,
    name: str,
    deadline: datetime,
    *,
    trigger: str = TRIGGER_SCHEDULE,
) -> dict[str, Any]:
    """The Task for one run: the schedule's spec copied (so later edits never change it),
    labelled with its queue, its schedule and what triggered it, and owned by the schedule."""
    meta = schedule["metadata"]
    task_spec = TaskSpec(
        scheduler_id=spec.scheduler_id,
        priority=spec.priority,
        hash=spec.hash or schedule_hash(spec),
        data=spec.data,
        job_template=spec.job_template,
        concurrency_policy=spec.concurrency_policy,
        schedule_ref=ScheduleRef(name=meta["name"]),
        deadline_at=deadline,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                SCHEDULER_ID_LABEL: spec.scheduler_id,
                SCHEDULE_LABEL: meta["name"],
                TRIGGER_LABEL: trigger,
            },
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


def trigger_of(task: Body) -> str:
    """What made a task (its `kadence.dev/trigger` label). The operator labels every Task it
    makes, and one made by hand `manual` when it joins its queue; until then a missing label
    reads as manual too."""
    labels = task["metadata"].get("labels") or {}
    return str(labels.get(TRIGGER_LABEL) or TRIGGER_MANUAL)


def waiting_since(task: Body) -> datetime | None:
    """Where a task's lag is measured from: its deadline, or its creation for a manual task
    and for a backfilled one (its deadline passed long before anyone asked for it)."""
    meta = task["metadata"]
    deadline = (task.get("spec") or {}).get("deadlineAt")
    if trigger_of(task) == TRIGGER_BACKFILL or not deadline:
        return parse_time(meta.get("creationTimestamp"))
    return parse_time(deadline)


def phase_of(task: Body) -> TaskPhase:
    """A task's phase; one the operator has not admitted yet is Pending."""
    raw = (task.get("status") or {}).get("phase")
    return TaskPhase(raw) if raw else TaskPhase.PENDING


def work_hash(spec: Mapping[str, Any]) -> str:
    """The identity of the work a Schedule's or Task's spec describes: its `hash`, or the
    md5 of its data and Job template."""
    explicit = spec.get("hash")
    if explicit:
        return str(explicit)
    return default_hash(spec.get("data") or {}, spec.get("jobTemplate"))


def schedule_hash(spec: ScheduleSpec) -> str:
    """The default identity of the work a Schedule's tasks do (`default_hash`)."""
    template = spec.job_template
    return default_hash(spec.data, template.to_kube() if template is not None else None)


def task_hash(task: Body) -> str:
    """The identity of a task's work (`work_hash` of its spec)."""
    return work_hash(task.get("spec") or {})


SERIAL_POLICIES = frozenset(policy.value for policy in ConcurrencyPolicy if policy.serial)


def serial(task: Body) -> bool:
    """Whether the task runs one at a time with the work of its hash (it was made by a
    Schedule whose concurrencyPolicy is BufferOne or BufferAll)."""
    return (task.get("spec") or {}).get("concurrencyPolicy") in SERIAL_POLICIES


def queue_item(task: Body) -> QueueItem:
    """A task as its queue orders it; a manual task's deadline is its creation."""
    spec = task.get("spec") or {}
    meta = task["metadata"]
    deadline = parse_time(spec.get("deadlineAt") or meta.get("creationTimestamp"))
    return QueueItem(
        namespace=meta["namespace"],
        name=meta["name"],
        priority=int(spec.get("priority") or 0),
        deadline_at=deadline,  # type: ignore[arg-type]
        hash=task_hash(task),
        serial=serial(task),
    )


def task_problem(task: Body, *, pull: bool = False) -> str | None:
    """Why a task can never run (its spec cannot be read, its data is too large), or None.

    In a pull queue (`pull`) runners claim it, so its jobTemplate is not read; elsewhere it
    must make a Job.
    """
    spec = task.get("spec") or {}
    try:
        TaskSpec.model_validate(spec)
        if pull:
            task_data_json(spec.get("data") or {})
        elif not spec.get("jobTemplate"):
            return template_missing(scheduler_of(task))
        else:
            uid = task["metadata"].get("uid", "")
            build_job({**task, "metadata": {**task["metadata"], "uid": uid}})
    except DataTooLarge as error:
        return str(error)
    except ValueError as error:
        return f"spec cannot be used: {error}"
    return None


def template_missing(scheduler_id: str) -> str:
    """Why a Schedule or Task without a jobTemplate cannot run in a queue of Jobs."""
    return f"spec.jobTemplate is required: queue {scheduler_id} is not a pull queue"


def history_entry(task: Body, phase: TaskPhase, now: datetime) -> HistoryEntry:
    """The summary of a finished run that its schedule keeps in status.history."""
    status = TaskStatus.model_validate(task.get("status") or {})
    spec = task.get("spec") or {}
    return HistoryEntry(
        task=task["metadata"]["name"],
        deadline_at=parse_time(spec.get("deadlineAt") or task["metadata"].get("creationTimestamp")),
        phase=phase,
        started_at=status.started_at,
        finished_at=status.finished_at or now,
        result=status.result,
    )


def service_account_of(task: Body) -> str | None:
    """The ServiceAccount the task's pods run as, when its template names one."""
    template = ((task.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
    pod = (template.get("template") or {}).get("spec") or {}
    return pod.get("serviceAccountName") or pod.get("serviceAccount") or None


def deadline_of_run(schedule_name: str, task: Body) -> datetime | None:
    """The deadline a task was made for, if it is one of its schedule's deadline runs (not
    a run asked for by hand, whose name is not derived from a deadline)."""
    made_for = parse_time((task.get("spec") or {}).get("deadlineAt"))
    if made_for is None or task["metadata"]["name"] != task_name_for_deadline(
        schedule_name, made_for
    ):
        return None
    return made_for
