from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.models import Condition, TaskPhase, TaskStatus
from kadence.status import (
    FinishedTask,
    JobObservation,
    advance_task,
    disabled_condition,
    held_condition,
    observe_job,
    parse_time,
    run_conditions,
    schedule_conditions,
    scheduled_condition,
    set_condition,
    stalled_condition,
    tasks_to_prune,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
T3 = T0 + timedelta(minutes=3)

P = TaskPhase


def condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


# --- observe_job ---------------------------------------------------------------


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "status": status}


def true(type_: str, **extra: str) -> dict[str, str]:
    return {"type": type_, "status": "True", "lastTransitionTime": "2024-01-01T00:03:00Z", **extra}


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"metadata": {"name": "j"}}, JobObservation(P.DISPATCHED, None, None, "")),
        (job(startTime="2024-01-01T00:01:00Z"), JobObservation(P.DISPATCHED, T1, None, "")),
        (
            job(startTime="2024-01-01T00:01:00Z", active=1),
            JobObservation(P.DISPATCHED, T1, None, "not ready"),
        ),
        (job(active=0, ready=1), JobObservation(P.RUNNING, None, None, "")),
        (
            job(
                startTime="2024-01-01T00:01:00Z",
                completionTime="2024-01-01T00:02:00Z",
                conditions=[true("Complete")],
            ),
            JobObservation(P.COMPLETED, T1, T2, ""),
        ),
        (
            job(active=1, conditions=[true("SuccessCriteriaMet")]),
            JobObservation(P.COMPLETED, None, T3, ""),
        ),
        (
            job(
                active=1,
                conditions=[
                    true("Failed", reason="BackoffLimitExceeded", message="too many tries")
                ],
            ),
            JobObservation(P.FAILED, None, T3, "BackoffLimitExceeded: too many tries"),
        ),
        (
            job(conditions=[true("FailureTarget", reason="DeadlineExceeded")]),
            JobObservation(P.FAILED, None, T3, "DeadlineExceeded"),
        ),
        (
            job(active=1, ready=1, conditions=[{"type": "Failed", "status": "False"}]),
            JobObservation(P.RUNNING, None, None, ""),
        ),
        (
            job(conditions=[{"type": "Suspended", "status": "True"}]),
            JobObservation(P.DISPATCHED, None, None, ""),
        ),
    ],
    ids=[
        "no-status",
        "started-no-pods",
        "pod-created-not-ready",
        "ready-pod",
        "complete",
        "success-criteria-met-before-pods-end",
        "failed-with-reason-and-message",
        "failure-target",
        "false-condition-ignored",
        "suspended",
    ],
)
def test_observe_job(manifest: dict[str, Any], expected: JobObservation) -> None:
    seen = observe_job(manifest)
    assert (seen.phase, seen.started_at, seen.finished_at) == (
        expected.phase,
        expected.started_at,
        expected.finished_at,
    )
    assert expected.message in seen.message
    assert seen.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2024-01-01T00:01:00Z", T1),
        ("2024-01-01T01:01:00+01:00", T1),
        ("2024-01-01T00:01:00", T1),
        (T1, T1),
    ],
    ids=["none", "empty", "zulu", "offset", "naive-read-as-utc", "datetime"],
)
def test_parse_time(value: Any, expected: datetime | None) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


# --- set_condition ---------------------------------------------------------------


def test_set_condition_adds_a_new_type_stamped_now() -> None:
    result = set_condition([], Condition(type="Ready", status="True"), T1)
    assert result == [Condition(type="Ready", status="True", last_transition_time=T1)]


@pytest.mark.parametrize(
    ("new_status", "expected_time"),
    [("True", T0), ("False", T1)],
    ids=["same-status-keeps-transition-time", "changed-status-moves-it"],
)
def test_set_condition_replaces_by_type(new_status: str, expected_time: datetime) -> None:
    other = Condition(type="Healthy", status="True", last_transition_time=T0)
    old = Condition(type="Ready", status="True", reason="A", last_transition_time=T0)
    result = set_condition([old, other], Condition(type="Ready", status=new_status, reason="B"), T1)
    assert [c.type for c in result] == ["Ready", "Healthy"]
    assert result[0].reason == "B"
    assert result[0].last_transition_time == expected_time
    assert result[1] is other
    assert old.reason == "A"


# --- advance_task -----------------------------------------------------------------


def task_status(phase: TaskPhase | None, **fields: Any) -> TaskStatus:
    return TaskStatus(phase=phase, **fields)


GENERATION = 3


def advance(
    status: TaskStatus, phase: TaskPhase, now: datetime, **kwargs: Any
) -> TaskStatus | None:
    return advance_task(status, phase, now, generation=GENERATION, **kwargs)


@pytest.mark.parametrize(
    ("current", "target", "moves"),
    [
        (None, P.PENDING, True),
        (None, P.QUEUED, True),
        (P.PENDING, P.QUEUED, True),
        (P.QUEUED, P.DISPATCHED, True),
        (P.DISPATCHED, P.RUNNING, True),
        (P.RUNNING, P.COMPLETED, True),
        (P.RUNNING, P.FAILED, True),
        (P.QUEUED, P.RUNNING, True),
        (P.DISPATCHED, P.COMPLETED, True),
        (P.PENDING, P.CANCELLED, True),
        (P.QUEUED, P.CANCELLED, True),
        (P.RUNNING, P.CANCELLED, True),
        (P.QUEUED, P.PENDING, False),
        (P.RUNNING, P.DISPATCHED, False),
        (P.RUNNING, P.QUEUED, False),
        (P.COMPLETED, P.FAILED, False),
        (P.FAILED, P.COMPLETED, False),
        (P.COMPLETED, P.CANCELLED, False),
        (P.CANCELLED, P.RUNNING, False),
        (P.CANCELLED, P.CANCELLED, False),
    ],
    ids=str,
)
def test_phases_only_move_forward(
    current: TaskPhase | None, target: TaskPhase, moves: bool
) -> None:
    result = advance(task_status(current), target, T1)
    if moves:
        assert result is not None
        assert result.phase is target
    else:
        assert result is None


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (P.QUEUED, "queued_at"),
        (P.DISPATCHED, "dispatched_at"),
        (P.RUNNING, "started_at"),
        (P.COMPLETED, "finished_at"),
        (P.FAILED, "finished_at"),
        (P.CANCELLED, "finished_at"),
    ],
    ids=["queued", "dispatched", "running", "completed", "failed", "cancelled"],
)
def test_entering_a_phase_stamps_its_time(target: TaskPhase, field: str) -> None:
    result = advance(task_status(P.PENDING), target, T2)
    assert result is not None
    assert getattr(result, field) == T2


def test_entering_running_keeps_the_jobs_start_time_and_never_overwrites() -> None:
    result = advance(task_status(P.DISPATCHED), P.RUNNING, T3, started_at=T1)
    assert result is not None
    assert result.started_at == T1
    later = advance(result, P.COMPLETED, T3, started_at=T2, finished_at=T2)
    assert later is not None
    assert (later.started_at, later.finished_at) == (T1, T2)


def test_queued_time_is_not_overwritten_by_a_later_phase() -> None:
    queued = advance(task_status(P.PENDING), P.QUEUED, T1)
    assert queued is not None
    dispatched = advance(queued, P.DISPATCHED, T2, job_name="j")
    assert dispatched is not None
    assert (dispatched.queued_at, dispatched.dispatched_at, dispatched.job_name) == (T1, T2, "j")


@pytest.mark.parametrize(
    ("target", "succeeded", "failed"),
    [
        (P.COMPLETED, "True", "False"),
        (P.FAILED, "False", "True"),
        (P.CANCELLED, "False", "True"),
    ],
    ids=["completed", "failed", "cancelled"],
)
def test_finishing_sets_conditions_for_kubectl_wait(
    target: TaskPhase, succeeded: str, failed: str
) -> None:
    result = advance(task_status(P.RUNNING), target, T2, message="why")
    assert result is not None
    ok, bad = condition(result.conditions, "Succeeded"), condition(result.conditions, "Failed")
    assert ok is not None
    assert bad is not None
    assert (ok.status, bad.status) == (succeeded, failed)
    assert ok.reason == bad.reason == target.value
    assert ok.message == "why"
    assert ok.last_transition_time == T2


def summary(conditions: list[Condition]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conditions}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (P.PENDING, {"Ready": ("True", "Pending"), "Reconciling": ("True", "Pending")}),
        (P.QUEUED, {"Ready": ("True", "Queued"), "Reconciling": ("True", "Queued")}),
        (P.DISPATCHED, {"Ready": ("True", "Dispatched"), "Reconciling": ("True", "Dispatched")}),
        (P.RUNNING, {"Ready": ("True", "Running"), "Reconciling": ("True", "Running")}),
        (
            P.COMPLETED,
            {
                "Ready": ("True", "Completed"),
                "Succeeded": ("True", "Completed"),
                "Failed": ("False", "Completed"),
            },
        ),
        (
            P.FAILED,
            {
                "Ready": ("False", "Failed"),
                "Stalled": ("True", "Failed"),
                "Succeeded": ("False", "Failed"),
                "Failed": ("True", "Failed"),
            },
        ),
        (
            P.CANCELLED,
            {
                "Ready": ("False", "Cancelled"),
                "Stalled": ("True", "Cancelled"),
                "Succeeded": ("False", "Cancelled"),
                "Failed": ("True", "Cancelled"),
            },
        ),
    ],
    ids=str,
)
def test_task_conditions_follow_the_kstatus_conventions(
    target: TaskPhase, expected: dict[str, tuple[str, str]]
) -> None:
    """Reconciling only while unfinished, Stalled only once it will not run: both absent
    otherwise, as kstatus reads them; every condition names the generation it is for."""
    before = advance(task_status(None), P.PENDING, T0)
    assert before is not None
    result = advance(before, target, T1) if target is not P.PENDING else before
    assert result is not None
    assert summary(result.conditions) == expected
    assert {c.observed_generation for c in result.conditions} == {GENERATION}
    assert result.observed_generation == GENERATION


def test_a_finished_task_drops_reconciling() -> None:
    running = advance(task_status(None), P.RUNNING, T1)
    assert running is not None
    done = advance(running, P.COMPLETED, T2)
    assert done is not None
    assert condition(done.conditions, "Reconciling") is None
    ready = condition(done.conditions, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T1


def test_a_newer_generation_is_written_even_without_a_phase_change() -> None:
    queued = advance_task(task_status(None), P.QUEUED, T1, generation=1)
    assert queued is not None
    again = advance_task(queued, P.QUEUED, T2, generation=2)
    assert again is not None
    assert again.observed_generation == 2
    assert {c.observed_generation for c in again.conditions} == {2}
    assert advance_task(again, P.QUEUED, T3, generation=2) is None


@pytest.mark.parametrize(
    ("status", "kwargs", "expected_message"),
    [
        (task_status(P.QUEUED, message="waiting"), {}, None),
        (task_status(P.QUEUED, message="waiting"), {"message": "sent"}, "sent"),
    ],
    ids=["new-phase-clears-stale-message", "new-phase-takes-given-message"],
)
def test_message_on_phase_change(
    status: TaskStatus, kwargs: dict[str, Any], expected_message: str | None
) -> None:
    result = advance(status, P.DISPATCHED, T1, **kwargs)
    assert result is not None
    assert result.message == expected_message


@pytest.mark.parametrize(
    ("status", "kwargs", "changes"),
    [
        (task_status(P.RUNNING, started_at=T1), {}, False),
        (task_status(P.RUNNING, started_at=T1, message="m"), {"message": "m"}, False),
        (task_status(P.RUNNING, started_at=T1, message="m"), {"message": "n"}, True),
        (task_status(P.RUNNING, started_at=T1, job_name="j"), {"job_name": "j"}, False),
        (task_status(P.RUNNING, started_at=T1), {"started_at": T0}, False),
        (task_status(P.DISPATCHED, dispatched_at=T1), {"started_at": T0}, True),
    ],
    ids=[
        "same-phase-nothing-new",
        "same-message",
        "new-message",
        "same-job-name",
        "start-time-not-overwritten",
        "start-time-filled-in",
    ],
)
def test_staying_in_a_phase(status: TaskStatus, kwargs: dict[str, Any], changes: bool) -> None:
    assert status.phase is not None
    written = advance(status, status.phase, T0)  # as the operator wrote it: with conditions
    assert written is not None
    result = advance(written, status.phase, T3, **kwargs)
    assert (result is not None) is changes


def test_advance_task_does_not_modify_its_input() -> None:
    status = task_status(P.RUNNING, started_at=T1)
    before = status.model_copy(deep=True)
    advance(status, P.FAILED, T2, message="boom")
    assert status == before


# --- schedule status ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "status", "reason", "message"),
    [
        (scheduled_condition(), "True", "Scheduled", "deadline"),
        (disabled_condition(None), "False", "Disabled", "spec.enabled is false: no new tasks"),
        (disabled_condition("migration until Monday"), "False", "Disabled", "until Monday"),
        (stalled_condition("InvalidSpec", "bad cron: 61"), "False", "InvalidSpec", "bad cron"),
        (held_condition("policy x missing"), "False", "AdmissionPolicyMissing", "x missing"),
    ],
    ids=["scheduled", "disabled", "disabled-with-reason", "invalid-with-message", "held"],
)
def test_ready_conditions(made: Condition, status: str, reason: str, message: str) -> None:
    assert (made.type, made.status, made.reason) == ("Ready", status, reason)
    assert message in made.message
    assert made.last_transition_time is None


@pytest.mark.parametrize(
    ("ready", "cancelling", "expected"),
    [
        (scheduled_condition(), 0, {"Ready": ("True", "Scheduled")}),
        (
            disabled_condition(None),
            2,
            {"Ready": ("False", "Disabled"), "Reconciling": ("True", "Cancelling")},
        ),
        (disabled_condition(None), 0, {"Ready": ("False", "Disabled")}),
        (
            stalled_condition("InvalidSpec", "bad"),
            0,
            {"Ready": ("False", "InvalidSpec"), "Stalled": ("True", "InvalidSpec")},
        ),
        (
            stalled_condition("TemplateRejected", "bad"),
            0,
            {"Ready": ("False", "TemplateRejected"), "Stalled": ("True", "TemplateRejected")},
        ),
        (
            held_condition("gone"),
            0,
            {
                "Ready": ("False", "AdmissionPolicyMissing"),
                "Stalled": ("True", "AdmissionPolicyMissing"),
            },
        ),
    ],
    ids=["armed", "disabled-cancelling", "disabled", "invalid", "template-rejected", "held"],
)
def test_schedule_conditions(
    ready: Condition, cancelling: int, expected: dict[str, tuple[str, str]]
) -> None:
    result = schedule_conditions([], ready, cancelling=cancelling, generation=7, now=T1)
    assert summary(result) == expected
    assert {c.observed_generation for c in result} == {7}


def test_stalled_and_reconciling_disappear_once_fixed() -> None:
    stalled = schedule_conditions(
        [], stalled_condition("InvalidSpec", "bad"), cancelling=3, generation=1, now=T1
    )
    fixed = schedule_conditions(stalled, scheduled_condition(), cancelling=0, generation=2, now=T2)
    assert summary(fixed) == {"Ready": ("True", "Scheduled")}


def test_ready_condition_keeps_its_transition_time_while_its_reason_changes() -> None:
    disabled = set_condition([], disabled_condition(None), T1)
    invalid = set_condition(disabled, stalled_condition("InvalidSpec", "bad"), T2)
    scheduled = set_condition(invalid, scheduled_condition(), T3)
    assert invalid[0].last_transition_time == T1
    assert scheduled[0].last_transition_time == T3


@pytest.mark.parametrize(
    ("last_run", "missed", "expected"),
    [
        (None, 0, {}),
        (
            ("r1", P.COMPLETED),
            0,
            {"LastRunSucceeded": ("True", "Completed"), "Healthy": ("True", "LastRunSucceeded")},
        ),
        (
            ("r1", P.FAILED),
            0,
            {"LastRunSucceeded": ("False", "Failed"), "Healthy": ("False", "LastRunFailed")},
        ),
        (
            ("r1", P.COMPLETED),
            2,
            {"LastRunSucceeded": ("True", "Completed"), "Healthy": ("False", "DeadlineMissed")},
        ),
        (None, 1, {"Healthy": ("False", "DeadlineMissed")}),
    ],
    ids=["never-ran", "last-succeeded", "last-failed", "missed-after-success", "missed-first"],
)
def test_run_conditions_keep_the_fires_and_the_outcome_apart(
    last_run: tuple[str, TaskPhase] | None, missed: int, expected: dict[str, tuple[str, str]]
) -> None:
    result = run_conditions([], last_run, missed, T1)
    assert summary(result) == expected


def test_missed_deadlines_are_counted_in_the_healthy_message() -> None:
    result = run_conditions([], None, 3, T1)
    healthy = condition(result, "Healthy")
    assert healthy is not None
    assert healthy.message.startswith("3 deadlines passed without a task")


# --- pruning ------------------------------------------------------------------------


def finished(name: str, phase: TaskPhase, minute: int) -> FinishedTask:
    return FinishedTask(name=name, phase=phase, finished_at=T0 + timedelta(minutes=minute))


@pytest.mark.parametrize(
    ("tasks", "successful", "failed", "expected"),
    [
        ([], 3, 1, []),
        ([finished(f"ok{i}", P.COMPLETED, i) for i in range(5)], 3, 1, ["ok0", "ok1"]),
        ([finished(f"ok{i}", P.COMPLETED, i) for i in (4, 0, 2, 1, 3)], 3, 1, ["ok0", "ok1"]),
        (
            [
                finished("f1", P.FAILED, 1),
                finished("c2", P.CANCELLED, 2),
                finished("f3", P.FAILED, 3),
            ],
            3,
            1,
            ["f1", "c2"],
        ),
        (
            [finished("ok", P.COMPLETED, 1), finished("bad", P.FAILED, 2)],
            0,
            0,
            ["ok", "bad"],
        ),
        (
            [
                finished("ok1", P.COMPLETED, 1),
                finished("ok2", P.COMPLETED, 2),
                finished("bad", P.FAILED, 0),
            ],
            1,
            1,
            ["ok1"],
        ),
        ([finished("run", P.RUNNING, 0), finished("q", P.QUEUED, 0)], 0, 0, []),
        ([finished("b", P.COMPLETED, 1), finished("a", P.COMPLETED, 1)], 1, 1, ["a"]),
    ],
    ids=[
        "nothing",
        "oldest-successes-beyond-limit",
        "input-order-does-not-matter",
        "cancelled-counts-against-failed",
        "limits-zero-prune-all",
        "kinds-limited-separately",
        "unfinished-never-pruned",
        "same-time-tie-by-name",
    ],
)
def test_tasks_to_prune(
    tasks: list[FinishedTask], successful: int, failed: int, expected: list[str]
) -> None:
    assert tasks_to_prune(tasks, successful, failed) == expected
