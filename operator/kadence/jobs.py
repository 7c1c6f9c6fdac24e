"""The batch/v1 Job that runs a task, built from the task alone.

The Job copies the task's template and adds only what identifies the run: a label,
an owner reference and four environment variables. It never adds privileges, a
service account or a namespace other than the task's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kadence import API_VERSION
from kadence.naming import SCHEDULER_ID_LABEL, TASK_LABEL, canonical_json
from kadence.status import parse_time

TASK_NAME_ENV = "KADENCE_TASK_NAME"
SCHEDULER_ID_ENV = "KADENCE_SCHEDULER_ID"
DEADLINE_AT_ENV = "KADENCE_DEADLINE_AT"
TASK_DATA_ENV = "KADENCE_TASK_DATA"

MAX_DATA_BYTES = 100 * 1024
"""Linux refuses to start a program (E2BIG) when one environment string exceeds 128 KiB."""


class DataTooLarge(ValueError):
    """The task's data, as JSON, is too large for one environment variable."""

    def __init__(self, size: int, limit: int = MAX_DATA_BYTES) -> None:
        super().__init__(
            f"data is {size} bytes as JSON, more than the {limit} bytes that fit in "
            f"{TASK_DATA_ENV}; pass large inputs by reference instead"
        )
        self.size = size
        self.limit = limit


def task_data_json(data: Mapping[str, Any]) -> str:
    """The value of KADENCE_TASK_DATA; raises DataTooLarge rather than a Job that cannot start."""
    text = canonical_json(_plain(data))
    size = len(text.encode("utf-8"))
    if size > MAX_DATA_BYTES:
        raise DataTooLarge(size)
    return text


def escape_expansion(value: str) -> str:
    """`value` as an env value that Kubernetes' `$(VAR)` expansion turns back into `value`.

    The kubelet replaces `$(NAME)` by another variable's value and `$$` by `$`; with every
    `$` doubled, no reference is left and each `$$` becomes the `$` it was.
    """
    return value.replace("$", "$$")


def rfc3339(moment: datetime) -> str:
    """An instant as RFC 3339 in UTC with `Z`, with fractions only when there are any."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


RESERVED_ENV = (TASK_NAME_ENV, SCHEDULER_ID_ENV, DEADLINE_AT_ENV, TASK_DATA_ENV)


def template_problem(job_template: Mapping[str, Any]) -> str | None:
    """Why a Job template can never make a Job that runs, or None.

    What the API server accepts in a Schedule or Task but kadence cannot run: no
    containers (the Job would be refused), a variable named like one of kadence's (it
    would be silently lost), or `suspend: true` (the Job would never start, and its Task
    would hold a slot of its queue for ever).
    """
    job_spec = job_template.get("spec") or {}
    if not isinstance(job_spec, Mapping):
        return "jobTemplate.spec must be an object"
    if job_spec.get("suspend") is True:
        return "jobTemplate.spec.suspend is true: the Job would never start"
    pod_spec = (job_spec.get("template") or {}).get("spec") or {}
    if not isinstance(pod_spec, Mapping) or not pod_spec.get("containers"):
        return "jobTemplate.spec.template.spec.containers is empty: a Job needs a container"
    for kind in ("initContainers", "containers"):
        for container in pod_spec.get(kind) or []:
            for var in (container.get("env") or []) if isinstance(container, Mapping) else []:
                if isinstance(var, Mapping) and var.get("name") in RESERVED_ENV:
                    return (
                        f"{kind} {container.get('name', '?')} sets {var['name']}, which kadence "
                        f"sets itself ({', '.join(RESERVED_ENV)}); rename the variable"
                    )
    return None


def build_job(task: Mapping[str, Any]) -> dict[str, Any]:
    """The Job manifest for a task object as read from the API server.

    The Job has the task's name and namespace, so a second create is AlreadyExists.
    The task's variables come first in each container's `env`, so that the user's
    variables can refer to them as `$(KADENCE_TASK_NAME)`; a template that names one of
    them itself is refused (`template_problem`). The input is not modified.
    """
    metadata = task["metadata"]
    spec = task["spec"]
    name = metadata["name"]
    if not spec.get("jobTemplate"):
        raise ValueError(f"task {name} has no spec.jobTemplate: it cannot run as a Job")
    template = _plain(spec["jobTemplate"])
    template_metadata = template.get("metadata") or {}

    problem = template_problem(template)
    if problem is not None:
        raise ValueError(problem)
    deadline = parse_time(spec.get("deadlineAt")) or parse_time(metadata.get("creationTimestamp"))
    if deadline is None:
        raise ValueError(f"task {name} has neither spec.deadlineAt nor a creationTimestamp")
    env = [
        {"name": TASK_NAME_ENV, "value": name},
        {"name": SCHEDULER_ID_ENV, "value": spec["schedulerId"]},
        {"name": DEADLINE_AT_ENV, "value": rfc3339(deadline)},
        {"name": TASK_DATA_ENV, "value": escape_expansion(task_data_json(spec.get("data") or {}))},
    ]

    job_spec = template.get("spec") or {}
    pod_spec = (job_spec.get("template") or {}).get("spec") or {}
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            container["env"] = _with_env(container.get("env") or [], env)

    job_metadata: dict[str, Any] = {
        "name": name,
        "namespace": metadata["namespace"],
        "labels": {
            **(template_metadata.get("labels") or {}),
            TASK_LABEL: name,
            SCHEDULER_ID_LABEL: spec["schedulerId"],
        },
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": "Task",
                "name": name,
                "uid": metadata["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if template_metadata.get("annotations"):
        job_metadata["annotations"] = template_metadata["annotations"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_metadata, "spec": job_spec}


def _with_env(existing: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(var) for var in ours] + existing


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists, whatever mapping or sequence types came in."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
