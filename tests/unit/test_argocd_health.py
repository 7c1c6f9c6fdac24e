"""The Argo CD health checks in deploy/argocd: every state of a Schedule and a Task, read as
Argo CD reads it.

Argo CD runs a health check with gopher-lua (Lua 5.1) and, for a check set in argocd-cm,
without the Lua standard libraries: the base functions and the table library only, and
no string methods. `health` runs the scripts the same way (Lua 5.1 through lupa, in an
environment with just those), so a script that leans on `string` or `math` fails here as
it would there.

The objects are JSON fixtures in tests/fixtures/argocd, captured from the operator by
tests/e2e/test_argocd_health.py (KADENCE_CAPTURE_ARGOCD_FIXTURES=DIR), except three
states the end-to-end run does not reach, written from captured ones with the conditions
the operator writes for them: schedule-admission-policy-missing (the policies removed),
schedule-ended (a schedule past its end) and task-pending (a Task before admission). A case
changes one thing where it needs a state no fixture holds.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa.lua51  # type: ignore[import-untyped]
import pytest
import yaml

from tests.support.argocd import ARGOCD, GROUP, ROOT, SCRIPTS, Health, health, lua

FIXTURES = ROOT / "tests" / "fixtures" / "argocd"
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended"}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


# -- changes that make a state out of a fixture -------------------------------------------


Change = Callable[[dict[str, Any]], None]


def conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = obj["status"]["conditions"]
    return found


def set_condition(type_: str, **fields: Any) -> Change:
    """Replace (or add) the condition of `type_`, at the object's generation unless told."""

    def change(obj: dict[str, Any]) -> None:
        rest = [c for c in conditions(obj) if c["type"] != type_]
        new = {"type": type_, "observedGeneration": obj["metadata"]["generation"], **fields}
        obj["status"]["conditions"] = [*rest, new]

    return change


def drop_condition(type_: str) -> Change:
    def change(obj: dict[str, Any]) -> None:
        obj["status"]["conditions"] = [c for c in conditions(obj) if c["type"] != type_]

    return change


def set_field(path: str, value: Any) -> Change:
    """Set a dotted path; None removes it."""

    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value

    return change


def condition_generation(type_: str, generation: int | None) -> Change:
    def change(obj: dict[str, Any]) -> None:
        for c in conditions(obj):
            if c["type"] == type_:
                if generation is None:
                    c.pop("observedGeneration", None)
                else:
                    c["observedGeneration"] = generation

    return change


def bump_generation(obj: dict[str, Any]) -> None:
    """An edit the operator has seen, written at the new generation, with no condition
    rewritten yet."""
    obj["metadata"]["generation"] += 1
    obj["status"]["observedGeneration"] = obj["metadata"]["generation"]


# -- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    fixture: str
    changes: tuple[Change, ...]
    status: str
    message: str


def case(name: str, fixture: str, status: str, message: str, *changes: Change) -> Any:
    return pytest.param(Case(name, fixture, changes, status, message), id=name)


WARM = "2026-12-31T23:00:00Z"  # schedule-scheduled's next deadline (New Year, Amsterdam)
HOURLY = "2026-12-04T13:06:55Z"  # the interval schedules' next deadline after their run
DISABLED = "spec.enabled is false: no new tasks: paused while the warehouse moves"
ZONE = "unknown time zone 'Mars/Olympus_Mons': use an IANA name such as 'Europe/Amsterdam' or 'UTC'"
REJECTED = (
    'jobTemplate is rejected by the API server: Job.batch "dry-run-probe" is invalid: '
    "spec.template.spec.containers[0].image: Required value"
)
POLICY = (
    "tasks wait in their queues; no Job is made until the admission policies are in place: "
    "ValidatingAdmissionPolicy kadence-operator-only is missing"
)
MISSED = (
    "1 deadline passed without a task since a run last finished (missed, or skipped by the "
    "concurrency policy)"
)
SCHEDULED = {"status": "True", "reason": "Scheduled", "message": "tasks are made at each deadline"}
FAILED_RUN = {
    "status": "False",
    "reason": "LastRunFailed",
    "message": "task fails-1796386013 failed",
}

SCHEDULE_CASES = [
    # (1) the operator has not seen this spec yet
    case("new", "schedule-new", "Progressing", "waiting for the operator to observe generation 1"),
    case("edited", "schedule-edited", "Progressing",
         "waiting for the operator to observe generation 2"),
    case("edited-then-observed", "schedule-edited-observed", "Healthy", f"next deadline {WARM}"),
    case("invalid-spec-fixed-not-yet-observed", "schedule-invalid-spec-fixed", "Progressing",
         "waiting for the operator to observe generation 2"),
    case("status-without-observed-generation", "schedule-scheduled", "Progressing",
         "waiting for the operator to observe generation 1",
         set_field("status.observedGeneration", None)),
    # (2) Stalled: a person must change something
    case("invalid-spec", "schedule-invalid-spec", "Degraded", ZONE),
    case("template-rejected", "schedule-template-rejected", "Degraded", REJECTED),
    case("admission-policy-missing", "schedule-admission-policy-missing", "Degraded", POLICY),
    case("stalled-over-disabled", "schedule-disabled", "Degraded", "bad cron",
         set_condition("Stalled", status="True", reason="InvalidSpec", message="bad cron")),
    case("stalled-without-message-says-its-reason", "schedule-invalid-spec", "Degraded",
         "InvalidSpec", set_condition("Stalled", status="True", reason="InvalidSpec")),
    # (3) disabled
    case("disabled", "schedule-disabled", "Suspended", DISABLED),
    case("disabled-while-cancelling", "schedule-disabled-cancelling", "Suspended",
         "spec.enabled is false: no new tasks: the warehouse moves"),
    case("disabled-after-a-failed-run", "schedule-disabled", "Suspended", DISABLED,
         set_condition("Healthy", **FAILED_RUN)),
    # (4) ended
    case("ended", "schedule-ended", "Healthy",
         "the schedule ended at its endAt, 2026-12-31T00:00:00Z: no new tasks"),
    case("run-limit-reached", "schedule-ended", "Healthy", "runLimit reached: 3 runs made",
         set_condition("Ready", status="False", reason="RunLimitReached",
                       message="runLimit reached: 3 runs made")),
    # (5) Ready False for any other reason
    case("not-ready-other-reason", "schedule-scheduled", "Degraded", "something new",
         set_condition("Ready", status="False", reason="SomethingNew", message="something new")),
    case("not-ready-invalid-without-stalled", "schedule-invalid-spec", "Degraded", ZONE,
         drop_condition("Stalled")),
    # (6) reconciling
    case("cancelling", "schedule-cancelling", "Progressing", "cancelling 1 queued task"),
    case("cancelling-after-a-failed-run", "schedule-cancelling", "Progressing",
         "cancelling 1 queued task", set_condition("Healthy", **FAILED_RUN)),
    # (7) its runs go badly
    case("last-run-failed", "schedule-last-run-failed", "Degraded",
         "task fails-1796386013 failed"),
    case("deadline-missed", "schedule-deadline-missed", "Degraded", MISSED),
    case("healthy-false-other-reason", "schedule-last-run-succeeded", "Degraded",
         "1 deadline skipped",
         set_condition("Healthy", status="False", reason="DeadlineSkipped",
                       message="1 deadline skipped")),
    case("healthy-false-without-message-says-its-reason", "schedule-last-run-failed",
         "Degraded", "LastRunFailed",
         set_condition("Healthy", status="False", reason="LastRunFailed")),
    # (8) ready
    case("scheduled-never-ran", "schedule-scheduled", "Healthy", f"next deadline {WARM}"),
    case("last-run-succeeded", "schedule-last-run-succeeded", "Healthy",
         f"next deadline {HOURLY}; task completes-1796386013 completed"),
    case("interval-while-a-run-is-active", "schedule-last-run-succeeded", "Healthy",
         "next deadline after task completes-1796389615 finishes; "
         "task completes-1796386013 completed",
         set_field("status.deadlineAt", None),
         set_field("status.active", ["completes-1796389615"])),
    case("ready-without-a-deadline", "schedule-scheduled", "Healthy",
         "tasks are made at each deadline", set_field("status.deadlineAt", None)),
    # else
    case("ready-unknown", "schedule-scheduled", "Progressing", "checking",
         set_condition("Ready", status="Unknown", reason="Checking", message="checking")),
    case("no-ready-yet", "schedule-scheduled", "Progressing",
         "waiting for the operator to set Ready", drop_condition("Ready")),
    # conditions about an older generation are no answer yet
    case("ready-about-an-older-generation", "schedule-scheduled", "Progressing",
         "waiting for the operator to observe generation 2", bump_generation),
    case("stalled-about-an-older-generation", "schedule-invalid-spec", "Progressing",
         "waiting for the operator to observe generation 2", bump_generation),
    case("older-stalled-ignored", "schedule-invalid-spec", "Healthy",
         "tasks are made at each deadline", bump_generation,
         set_condition("Ready", **SCHEDULED)),
    case("older-healthy-false-ignored", "schedule-last-run-failed", "Healthy",
         f"next deadline {HOURLY}", bump_generation, set_condition("Ready", **SCHEDULED)),
    case("older-disabled-ignored", "schedule-disabled", "Progressing",
         "waiting for the operator to observe generation 2", bump_generation),
    case("condition-without-observed-generation-counts", "schedule-scheduled", "Healthy",
         f"next deadline {WARM}", condition_generation("Ready", None)),
]  # fmt: skip

START_TIMEOUT = (
    "Failed: Job stuck had no ready pod 0:00:05 after it was made (Job created, its pod is not "
    "ready yet); it is deleted and its slot freed"
)
TASK_CASES = [
    case("new", "task-new", "Progressing", "waiting for the operator to observe generation 1"),
    case("status-without-observed-generation", "task-completed", "Progressing",
         "waiting for the operator to observe generation 1",
         set_field("status.observedGeneration", None)),
    case("edited-not-yet-observed", "task-queued", "Progressing",
         "waiting for the operator to observe generation 2",
         set_field("metadata.generation", 2)),
    case("no-phase", "task-pending", "Progressing", "Pending", set_field("status.phase", None)),
    case("pending", "task-pending", "Progressing", "Pending"),
    case("queued", "task-queued", "Progressing", "Queued: waiting in queue one-at-a-time"),
    case("dispatched", "task-dispatched", "Progressing",
         "Dispatched: Job created, its pod is not ready yet"),
    case("running", "task-running", "Progressing", "Running: Job running"),
    case("completed", "task-completed", "Healthy", "Completed: Job completed"),
    case("failed", "task-failed", "Degraded",
         "Failed: Job failed: BackoffLimitExceeded: Job has reached the specified backoff "
         "limit"),
    case("failed-at-its-start-timeout", "task-start-timeout", "Degraded", START_TIMEOUT),
    case("cancelled", "task-cancelled", "Degraded",
         "Cancelled: duplicate of task long, already in queue"),
    case("cancelled-without-message", "task-cancelled", "Degraded", "Cancelled",
         set_field("status.message", None)),
    case("unknown-phase", "task-running", "Progressing", "Paused: later operator",
         set_field("status.phase", "Paused"), set_field("status.message", "later operator")),
]  # fmt: skip


def _run(c: Case) -> Health:
    obj = copy.deepcopy(fixture(c.fixture))
    for change in c.changes:
        change(obj)
    return health(obj)


@pytest.mark.parametrize("c", SCHEDULE_CASES)
def test_schedule_health(c: Case) -> None:
    assert fixture(c.fixture)["kind"] == "Schedule"
    assert _run(c) == Health(c.status, c.message)


@pytest.mark.parametrize("c", TASK_CASES)
def test_task_health(c: Case) -> None:
    assert fixture(c.fixture)["kind"] == "Task"
    assert _run(c) == Health(c.status, c.message)


def test_every_fixture_is_a_case() -> None:
    used = {p.values[0].fixture for p in [*SCHEDULE_CASES, *TASK_CASES]}
    assert {p.stem for p in FIXTURES.glob("*.json")} == used


def test_fixtures_are_objects_as_the_api_server_returns_them() -> None:
    for path in FIXTURES.glob("*.json"):
        obj = json.loads(path.read_text())
        assert obj["apiVersion"] == f"{GROUP}/v1alpha1", path
        assert obj["kind"] in SCRIPTS, path
        assert {"name", "namespace", "generation", "uid"} <= obj["metadata"].keys(), path
        assert "managedFields" not in obj["metadata"], path


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_scripts_need_no_standard_library(kind: str) -> None:
    """argocd-cm runs its scripts without `string`, `math`, `os` or `io` unless told to
    (resource.customizations.useOpenLibs); the cases above run them that way too, and this
    also covers lines no case reaches."""
    source = SCRIPTS[kind].read_text()
    code = "\n".join(line.split("--")[0] for line in source.splitlines())
    assert not re.search(r"\b(string|math|os|io|debug|coroutine)\s*\.", code)
    assert not re.search(r"[\w\)\]\"']:\w+\(", code), "a method call on a string"


def test_a_script_using_the_string_library_fails_here_as_in_argo_cd(tmp_path: Path) -> None:
    script = tmp_path / "health.lua"
    script.write_text('local hs = {}\nhs.status = string.upper("healthy")\nreturn hs\n')
    with pytest.raises(lupa.lua51.LuaError, match="string"):
        lua().health(script, fixture("task-new"))


def test_argocd_cm_carries_the_scripts() -> None:
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert (config["apiVersion"], config["kind"]) == ("v1", "ConfigMap")
    assert config["metadata"]["name"] == "argocd-cm"
    assert config["data"] == {
        f"resource.customizations.health.{GROUP}_{kind}": script.read_text()
        for kind, script in SCRIPTS.items()
    }


def test_argocd_cm_is_what_generate_sh_writes(tmp_path: Path) -> None:
    out = tmp_path / "argocd-cm.yaml"
    subprocess.run(["bash", str(ARGOCD / "generate.sh"), str(out)], check=True)
    assert out.read_text() == (ARGOCD / "argocd-cm.yaml").read_text(), (
        "deploy/argocd/argocd-cm.yaml is stale: run deploy/argocd/generate.sh"
    )
