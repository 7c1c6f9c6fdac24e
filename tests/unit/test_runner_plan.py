"""What a runner decides from plain data: filters on a Task's data, which Tasks it asks for
and in what order, the claim documents it writes, and whether a claim is still its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kadence.runner_plan import (
    MAX_RESULT_LENGTH,
    Filter,
    Standing,
    candidates,
    finish_patch,
    lease_left,
    matches,
    renew_interval,
    renew_patch,
    request_patch,
    result_text,
    standing,
    task_env,
    withdraw_patch,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLDER, USER = "runner-a/7", "system:serviceaccount:scan:runner"
DATA = {
    "boefje": {"id": "dns", "version": 3},
    "size": 12,
    "ratio": 0.5,
    "urgent": True,
    "tags": ["web", "tls"],
    "url": "https://example.org/login",
}


def task(
    name: str,
    *,
    priority: int = 0,
    minute: int = 0,
    phase: str | None = "Queued",
    claim: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if claim is not None:
        status["claim"] = claim
    return {
        "metadata": {
            "name": name,
            "namespace": "scan",
            "resourceVersion": f"rv-{name}",
            "creationTimestamp": "2026-03-01T11:00:00Z",
        },
        "spec": {
            "schedulerId": "boefje",
            "priority": priority,
            "deadlineAt": (T0 + timedelta(minutes=minute)).isoformat(),
            "data": DATA if data is None else data,
        },
        "status": status,
    }


def claim(holder: str = HOLDER, user: str = USER, **fields: Any) -> dict[str, Any]:
    return {
        "holder": holder,
        "user": user,
        "leaseSeconds": 30,
        "requestedAt": "2026-03-01T12:00:00Z",
        **fields,
    }


GRANTED = {"claimedAt": "2026-03-01T12:00:01Z", "renewedAt": "2026-03-01T12:00:01Z"}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Filter("boefje.id", "eq", "dns"), True),
        (Filter("boefje.id", "eq", "nmap"), False),
        (Filter("boefje.id", "ne", "nmap"), True),
        (Filter("boefje.missing", "ne", "nmap"), False),
        (Filter("nothing.here", "eq", None), False),
        (Filter("size", "eq", 12.0), True),
        (Filter("urgent", "eq", 1), False),
        (Filter("urgent", "eq", True), True),
        (Filter("size", "lt", 13), True),
        (Filter("size", "le", 12), True),
        (Filter("size", "gt", 12), False),
        (Filter("size", "ge", 12), True),
        (Filter("ratio", "lt", 1), True),
        (Filter("size", "gt", "10"), False),
        (Filter("urgent", "gt", 0), False),
        (Filter("boefje.id", "lt", "e"), True),
        (Filter("boefje.version", "in", [1, 2, 3]), True),
        (Filter("boefje.id", "in", ["nmap", "whois"]), False),
        (Filter("tags", "contains", "tls"), True),
        (Filter("tags", "contains", "ssh"), False),
        (Filter("url", "contains", "/login"), True),
        (Filter("size", "contains", 1), False),
        (Filter("boefje", "eq", {"id": "dns", "version": 3}), True),
        (Filter("size.inner", "eq", 12), False),
    ],
    ids=[
        "nested-field-equal",
        "nested-field-differs",
        "not-equal",
        "absent-field-matches-not-even-ne",
        "absent-parent-matches-nothing",
        "int-equals-float",
        "bool-is-not-a-number",
        "bool-equals-bool",
        "less-than",
        "less-or-equal-at-the-edge",
        "greater-than-at-the-edge",
        "greater-or-equal-at-the-edge",
        "float-against-int",
        "number-against-string-never-orders",
        "bool-never-orders",
        "strings-order-as-text",
        "in-a-list",
        "not-in-the-list",
        "list-contains",
        "list-lacks",
        "string-contains",
        "number-contains-nothing",
        "object-equality",
        "path-through-a-number",
    ],
)
def test_filter_on_data(condition: Filter, expected: bool) -> None:
    assert condition.matches(DATA) is expected


@pytest.mark.parametrize(
    ("field", "op", "value", "message"),
    [
        ("size", "like", 1, "unknown filter operator"),
        ("", "eq", 1, "dotted path"),
        ("a..b", "eq", 1, "dotted path"),
        ("size", "in", 12, "needs a list"),
    ],
    ids=["unknown-operator", "empty-field", "empty-path-part", "in-without-a-list"],
)
def test_filter_refuses_what_it_cannot_mean(field: str, op: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Filter(field, op, value)


def test_all_filters_must_hold() -> None:
    assert matches(DATA, [])
    assert matches(DATA, [Filter("boefje.id", "eq", "dns"), Filter("size", "gt", 10)])
    assert not matches(DATA, [Filter("boefje.id", "eq", "dns"), Filter("size", "gt", 20)])


@pytest.mark.parametrize(
    ("tasks", "filters", "expected"),
    [
        (
            [task("c", priority=5), task("a", priority=1), task("b", priority=3)],
            [],
            ["a", "b", "c"],
        ),
        (
            [task("late", minute=9), task("early", minute=1), task("same-b"), task("same-a")],
            [],
            ["same-a", "same-b", "early", "late"],
        ),
        (
            [
                task("pending", phase=None),
                task("dispatched", phase="Dispatched", claim=claim(**GRANTED)),
                task("done", phase="Completed"),
                task("open"),
            ],
            [],
            ["open"],
        ),
        ([task("asked", claim=claim()), task("open")], [], ["open"]),
        (
            [task("dns"), task("nmap", priority=-1, data={"boefje": {"id": "nmap"}})],
            [Filter("boefje.id", "eq", "dns")],
            ["dns"],
        ),
        ([task("other", data={})], [Filter("boefje.id", "ne", "dns")], []),
        ([], [], []),
    ],
    ids=[
        "lower-priority-first",
        "then-deadline-then-name",
        "only-queued-tasks",
        "not-one-already-asked-for",
        "filtered-by-data-though-it-is-the-head",
        "data-without-the-field",
        "empty-queue",
    ],
)
def test_candidates_in_queue_order(
    tasks: list[dict[str, Any]], filters: list[Filter], expected: list[str]
) -> None:
    assert [t["metadata"]["name"] for t in candidates(tasks, filters)] == expected


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (task("t", claim=claim()), Standing.REQUESTED),
        (task("t", phase="Dispatched", claim=claim(**GRANTED)), Standing.GRANTED),
        (task("t", phase="Running", claim=claim(**GRANTED, startedAt="x")), Standing.GRANTED),
        (
            task("t", phase="Running", claim=claim(**GRANTED, outcome="Completed")),
            Standing.REPORTED,
        ),
        (task("t", phase="Completed", claim=claim(**GRANTED, outcome="Failed")), Standing.REPORTED),
        (task("t"), Standing.LOST),
        (task("t", claim=claim(holder="runner-b/1")), Standing.LOST),
        (task("t", claim=claim(user="system:serviceaccount:scan:other")), Standing.LOST),
        (task("t", phase="Cancelled", claim=claim(**GRANTED)), Standing.LOST),
        (task("t", phase="Cancelled", claim=claim()), Standing.LOST),
        (task("t", phase="Queued", claim=claim(**GRANTED)), Standing.LOST),
    ],
    ids=[
        "asked-and-waiting",
        "granted",
        "working",
        "reported-not-yet-finished",
        "reported-and-finished",
        "expired-claim-removed",
        "another-holder-now",
        "same-holder-name-other-user",
        "cancelled-while-held",
        "cancelled-while-asked",
        "requeued-with-a-stale-grant",
    ],
)
def test_standing_of_a_claim(seen: dict[str, Any], expected: Standing) -> None:
    assert standing(seen, HOLDER, USER) is expected


def test_request_is_conditional_and_carries_no_grant_fields() -> None:
    patch = request_patch(task("t"), HOLDER, USER, 30, T0)
    assert patch == {
        "metadata": {"resourceVersion": "rv-t"},
        "status": {
            "claim": {
                "holder": HOLDER,
                "user": USER,
                "leaseSeconds": 30,
                "requestedAt": "2026-03-01T12:00:00Z",
            }
        },
    }


@pytest.mark.parametrize(
    ("holder", "lease", "message"),
    [
        ("", 30, "holder must be"),
        ("x" * 254, 30, "holder must be"),
        (HOLDER, 4, "leaseSeconds must be 5 to 3600"),
        (HOLDER, 3601, "leaseSeconds must be 5 to 3600"),
    ],
    ids=["empty-holder", "holder-too-long", "lease-too-short", "lease-too-long"],
)
def test_request_refuses_what_the_crd_would(holder: str, lease: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_patch(task("t"), holder, USER, lease, T0)


def test_first_renewal_says_the_work_started_later_ones_only_renew() -> None:
    first = renew_patch(task("t", phase="Dispatched", claim=claim(**GRANTED)), T0)
    assert first["status"]["claim"] == {
        "renewedAt": "2026-03-01T12:00:00Z",
        "startedAt": "2026-03-01T12:00:00Z",
    }
    started = claim(**GRANTED, startedAt="2026-03-01T11:59:00Z")
    later = renew_patch(task("t", phase="Running", claim=started), T0 + timedelta(seconds=10))
    assert later["status"]["claim"] == {"renewedAt": "2026-03-01T12:00:10Z"}
    assert later["metadata"] == {"resourceVersion": "rv-t"}


@pytest.mark.parametrize(
    ("completed", "message", "result", "expected"),
    [
        (
            True,
            "",
            '{"found":3}',
            {"outcome": "Completed", "message": "", "result": '{"found":3}'},
        ),
        (False, "exit code 2", None, {"outcome": "Failed", "message": "exit code 2"}),
        (False, "x" * 2000, None, {"outcome": "Failed", "message": "x" * 1023 + "…"}),
    ],
    ids=["completed-with-result", "failed-with-reason", "long-reason-cut"],
)
def test_finish_reports_the_outcome(
    completed: bool, message: str, result: str | None, expected: dict[str, Any]
) -> None:
    patch = finish_patch(
        task("t", phase="Running", claim=claim(**GRANTED)),
        completed,
        T0,
        message=message,
        result=result,
    )
    assert patch["status"]["claim"] == {**expected, "finishedAt": "2026-03-01T12:00:00Z"}


def test_withdraw_removes_the_claim_conditionally() -> None:
    assert withdraw_patch(task("t", claim=claim())) == {
        "metadata": {"resourceVersion": "rv-t"},
        "status": {"claim": None},
    }


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"found": 3}, '{"found":3}'),
        ('{"found": 3}', '{"found": 3}'),
        ([1, 2], "[1,2]"),
        ("null", "null"),
    ],
    ids=["object-as-compact-json", "json-text-kept", "list", "json-null-text"],
)
def test_result_is_json_text(result: Any, expected: str) -> None:
    assert result_text(result) == expected


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("found 3", "not JSON"),
        ({"big": "x" * MAX_RESULT_LENGTH}, "at most 4096"),
        ({"when": object()}, "not JSON"),
        ("[" * 3000 + "]" * 3000, "nested too deep"),
    ],
    ids=["text-that-is-not-json", "too-large", "not-json-ready", "nested-too-deep"],
)
def test_result_refused(result: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        result_text(result)


@pytest.mark.parametrize(
    ("fields", "seconds_later", "left"),
    [
        ({}, 10, 20.0),
        ({"renewedAt": "2026-03-01T12:00:20Z"}, 30, 20.0),
        ({}, 45, 0.0),
    ],
    ids=["request-ages", "renewal-restarts-the-lease", "run-out"],
)
def test_lease_left(fields: dict[str, Any], seconds_later: int, left: float) -> None:
    held = task("t", claim=claim(**fields))
    assert lease_left(held, T0 + timedelta(seconds=seconds_later)) == left


@pytest.mark.parametrize(
    ("lease", "interval"), [(5, 1.0), (30, 10.0), (3600, 1200.0)], ids=["short", "usual", "long"]
)
def test_renewal_interval_is_a_third_of_the_lease(lease: int, interval: float) -> None:
    assert renew_interval(lease) == interval


def test_command_gets_the_variables_a_job_gets() -> None:
    env = task_env(task("scan-1", data={"host": "$(HOME)", "n": 1}))
    assert env == {
        "KADENCE_TASK_NAME": "scan-1",
        "KADENCE_SCHEDULER_ID": "boefje",
        "KADENCE_DEADLINE_AT": "2026-03-01T12:00:00Z",
        "KADENCE_TASK_DATA": json.dumps({"host": "$(HOME)", "n": 1}, separators=(",", ":")),
    }
