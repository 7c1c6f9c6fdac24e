"""Deterministic names, labels and hashes shared by the operator and its users.

A task's name is its lock: a second attempt to create the same run (after a crash,
or from a second replica) is answered AlreadyExists instead of making a duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

SCHEDULER_ID_LABEL = "kadence.dev/scheduler-id"
SCHEDULE_LABEL = "kadence.dev/schedule"
TASK_LABEL = "kadence.dev/task"
RUN_REQUEST_ANNOTATION = "kadence.dev/run-requested-at"
BACKFILL_ANNOTATION = "kadence.dev/backfill"
BACKFILL_POLICY_ANNOTATION = "kadence.dev/backfill-policy"
RESUME_REQUEST_ANNOTATION = "kadence.dev/resume-requested-at"

TRIGGER_LABEL = "kadence.dev/trigger"
"""What made a Task: one of the three values below. A Task without it was made by hand."""
TRIGGER_SCHEDULE = "schedule"
TRIGGER_MANUAL = "manual"
TRIGGER_BACKFILL = "backfill"

TASK_SUFFIX_LENGTH = 11
"""`-` and 10 digits of unix seconds, or `-r` and 9 hex digits of a run request."""

MAX_SCHEDULE_NAME_LENGTH = 63 - TASK_SUFFIX_LENGTH
"""A Job is named after its task, and a Job name longer than 63 cannot label its pods."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SECONDS = 10**10


def _check_schedule_name(schedule_name: str) -> None:
    if len(schedule_name) > MAX_SCHEDULE_NAME_LENGTH:
        raise ValueError(
            f"schedule name {schedule_name!r} is {len(schedule_name)} characters long; "
            f"at most {MAX_SCHEDULE_NAME_LENGTH} leave room for the task suffix"
        )


def task_name_for_deadline(schedule_name: str, deadline: datetime) -> str:
    """The task for one deadline: `<schedule>-<unix seconds, 10 digits>`.

    Sub-second parts are dropped, so two deadlines in the same second share a name
    (and so a single run). Naive datetimes are refused: their instant depends on the
    machine's time zone, which would make the name differ between replicas.
    """
    _check_schedule_name(schedule_name)
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise ValueError(f"deadline {deadline.isoformat()} has no time zone")
    seconds = (deadline - _EPOCH) // timedelta(seconds=1)
    if not 0 <= seconds < _MAX_SECONDS:
        raise ValueError(f"deadline {deadline.isoformat()} is outside 1970 to 2286")
    return f"{schedule_name}-{seconds:010d}"


def task_name_for_run_request(schedule_name: str, request: str) -> str:
    """The task for one `kadence.dev/run-requested-at` value: `<schedule>-r<9 hex>`.

    The `r` keeps it apart from deadline names (which are all digits after the last
    hyphen), and the same request value always gives the same name.
    """
    _check_schedule_name(schedule_name)
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{schedule_name}-r{digest[: TASK_SUFFIX_LENGTH - 2]}"


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no spaces, so equal data always gives equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def default_hash(data: Mapping[str, Any], job_template: Mapping[str, Any] | None) -> str:
    """A task's default identity: the md5 hex digest of the canonical JSON of its `data`
    and `jobTemplate`, so that only tasks doing the same work are taken for duplicates.

    The template is read as `{"metadata": ..., "spec": ...}` with an absent metadata
    as `{}`, so a template written without metadata equals its copy on a Task. A Task of
    a pull queue may have no template: it is then `null`.
    """
    template = None
    if job_template is not None:
        metadata, spec = job_template.get("metadata") or {}, job_template.get("spec") or {}
        template = {"metadata": metadata, "spec": spec}
    encoded = canonical_json({"data": dict(data), "jobTemplate": template}).encode("utf-8")
    return hashlib.md5(encoded, usedforsecurity=False).hexdigest()
