"""Pull queues end to end, the operator's half: no runner runs here, the test writes the
claims a runner would write (as a cluster administrator) and watches what the operator does.

The operator's test configuration makes `pulled` a pull queue of capacity 2 whose Tasks
fail after 2 claims that ran out. Conditions are waited for, never time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kadence import API_VERSION
from tests.e2e.conftest import Operator
from tests.support.kube import (
    GROUP,
    VERSION,
    Kube,
    condition,
    status,
    task_in_phase,
    wait_for,
)

pytestmark = pytest.mark.every_version

PULLED = "pulled"  # a pull queue of capacity 2, maxAttempts 2, in the operator's test configuration
Body = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pull_task(name: str, **spec: Any) -> Body:
    """A manual Task of the pull queue, without a jobTemplate."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"schedulerId": PULLED, "data": {"task": name}, **spec},
    }


def whoami(kube: Kube) -> str:
    """The username the API server sees for the test's credentials (a claim's `user`)."""
    review = client.AuthenticationV1Api(kube.core.api_client).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    return str(review.status.user_info.username)


def write_claim(
    kube: Kube, namespace: str, name: str, change: Callable[[Body | None], Body | None]
) -> Body:
    """Write status.claim as a runner does: conditional on the resourceVersion read, read
    again on a conflict (the operator wrote meanwhile)."""
    for _ in range(20):
        task = kube.get("tasks", namespace, name)
        assert task is not None
        patch = {
            "metadata": {"resourceVersion": task["metadata"]["resourceVersion"]},
            "status": {"claim": change(status(task).get("claim"))},
        }
        try:
            return kube.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, "tasks", name, patch
            )
        except ApiException as error:
            if error.status != 409:
                raise
    raise AssertionError(f"task {name}: the claim kept conflicting")


def ask(kube: Kube, namespace: str, name: str, holder: str, lease: int = 30) -> Body:
    user = whoami(kube)
    claim = {"holder": holder, "user": user, "leaseSeconds": lease, "requestedAt": now()}
    return write_claim(kube, namespace, name, lambda _: claim)


def report(kube: Kube, namespace: str, name: str, **fields: Any) -> Body:
    return write_claim(kube, namespace, name, lambda claim: {**(claim or {}), **fields})


def task_status(kube: Kube, namespace: str, name: str) -> Body:
    return status(kube.get("tasks", namespace, name))


def test_a_claimed_task_runs_without_a_job_and_ends_with_the_runners_result(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A Task of a pull queue waits Queued with no Job until a runner asks; the operator
    grants requests within the capacity, a freed slot to the head of the queue among those
    asked for, follows the runner's start and outcome, and copies its result."""
    tasks = {"busy-1": 0, "busy-2": 0, "low": 5, "mid": 0, "high": -5}
    for name, priority in tasks.items():
        kube.create("tasks", namespace, pull_task(name, priority=priority))
    for name in tasks:
        wait_for(task_in_phase(kube, namespace, name, "Queued"), 30, f"{name} Queued")
    assert kube.jobs(namespace) == []

    for name in ("busy-1", "busy-2"):
        ask(kube, namespace, name, holder=f"runner/{name}")
        wait_for(task_in_phase(kube, namespace, name, "Dispatched"), 30, f"{name} granted")
    granted = task_status(kube, namespace, "busy-1")
    assert granted["message"] == "claimed by runner/busy-1"
    assert granted["attempts"] == 1
    assert granted["claim"]["claimedAt"] == granted["claim"]["renewedAt"]
    for name in ("low", "mid", "high"):
        ask(kube, namespace, name, holder=f"runner/{name}")
    report(kube, namespace, "busy-1", startedAt=now(), renewedAt=now())
    running = status(
        wait_for(task_in_phase(kube, namespace, "busy-1", "Running"), 30, "busy-1 Running")
    )
    assert running["startedAt"]
    for name in ("low", "mid", "high"):
        waiting = task_status(kube, namespace, name)
        assert waiting["phase"] == "Queued", f"{name}: capacity 2, the request waits for a slot"
        assert "claimedAt" not in waiting["claim"]

    result = json.dumps({"found": 3})
    report(kube, namespace, "busy-1", outcome="Completed", result=result, finishedAt=now())
    done = status(
        wait_for(task_in_phase(kube, namespace, "busy-1", "Completed"), 30, "busy-1 Completed")
    )
    assert done["result"] == result
    assert condition(kube.get("tasks", namespace, "busy-1"), "Succeeded")["status"] == "True"
    wait_for(task_in_phase(kube, namespace, "high", "Dispatched"), 30, "the head granted the slot")
    assert [task_status(kube, namespace, name)["phase"] for name in ("mid", "low")] == [
        "Queued",
        "Queued",
    ]

    report(kube, namespace, "busy-2", outcome="Failed", message="exit 2", finishedAt=now())
    failed = status(
        wait_for(task_in_phase(kube, namespace, "busy-2", "Failed"), 30, "busy-2 Failed")
    )
    assert failed["message"] == "failed, claimed by runner/busy-2: exit 2"
    assert condition(kube.get("tasks", namespace, "busy-2"), "Failed")["reason"] == "RunnerFailed"
    wait_for(task_in_phase(kube, namespace, "mid", "Dispatched"), 30, "the next head granted")
    assert task_status(kube, namespace, "low")["phase"] == "Queued"
    assert kube.jobs(namespace) == []


def test_a_lease_that_runs_out_requeues_the_task_then_fails_it(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A granted claim nobody renews expires at renewedAt + leaseSeconds: the Task goes back
    to its queue with a ClaimExpired Warning, and fails once maxAttempts claims ran out. A
    request nobody grants is withdrawn once its lease is over."""
    kube.create("tasks", namespace, pull_task("flaky"))
    wait_for(task_in_phase(kube, namespace, "flaky", "Queued"), 30, "flaky Queued")
    ask(kube, namespace, "flaky", holder="runner/a", lease=5)
    wait_for(task_in_phase(kube, namespace, "flaky", "Dispatched"), 30, "flaky granted")

    requeued = wait_for(
        lambda: (
            (s := task_status(kube, namespace, "flaky")).get("phase") == "Queued"
            and "claim" not in s
            and s
        ),
        30,
        "the expired claim to send flaky back to its queue",
    )
    assert requeued["message"].startswith("claim of runner/a expired at ")
    assert requeued["message"].endswith("(attempt 1 of 2)")
    wait_for(
        lambda: any(e.reason == "ClaimExpired" for e in kube.events(namespace, "flaky")),
        30,
        "a ClaimExpired event",
    )

    ask(kube, namespace, "flaky", holder="runner/b", lease=5)
    failed = status(wait_for(task_in_phase(kube, namespace, "flaky", "Failed"), 40, "flaky Failed"))
    assert failed["attempts"] == 2
    assert failed["message"].endswith("(attempt 2 of 2): no attempts left")
    assert condition(kube.get("tasks", namespace, "flaky"), "Failed")["reason"] == "ClaimExpired"


def test_a_claim_given_back_requeues_the_task_without_counting_the_attempt(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A runner that stops removes its granted claim: the Task is Queued again at once,
    its attempt given back, with a Normal ClaimReleased Event."""
    kube.create("tasks", namespace, pull_task("handed-back"))
    wait_for(task_in_phase(kube, namespace, "handed-back", "Queued"), 30, "Queued")
    ask(kube, namespace, "handed-back", holder="runner/stopping")
    wait_for(task_in_phase(kube, namespace, "handed-back", "Dispatched"), 30, "granted")
    write_claim(kube, namespace, "handed-back", lambda _: None)
    back = status(
        wait_for(task_in_phase(kube, namespace, "handed-back", "Queued"), 30, "Queued again")
    )
    assert back["attempts"] == 0
    assert back["message"] == "its runner gave its claim back before it finished"
    wait_for(
        lambda: (
            [e.type for e in kube.events(namespace, "handed-back") if e.reason == "ClaimReleased"]
            == ["Normal"]
        ),
        30,
        "a ClaimReleased event",
    )


def test_a_schedule_feeds_a_pull_queue_and_records_runner_outcomes(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A Schedule without a jobTemplate is Ready in a pull queue and InvalidSpec in a queue
    of Jobs; its runs' outcomes and results land in its history and counts."""
    spec = {"interval": "1h", "data": {"target": "example.org"}}
    for name, queue in (("pulled", PULLED), ("jobs", "three-at-a-time")):
        body = {
            "apiVersion": API_VERSION,
            "kind": "Schedule",
            "metadata": {"name": name},
            "spec": {"schedulerId": queue, **spec},
        }
        kube.create("schedules", namespace, body)
    invalid = wait_for(
        lambda: (
            (c := condition(kube.get("schedules", namespace, "jobs"), "Ready")).get("reason")
            == "InvalidSpec"
            and c
        ),
        30,
        "the Schedule in a queue of Jobs to be InvalidSpec",
    )
    assert invalid["message"] == (
        "spec.jobTemplate is required: queue three-at-a-time is not a pull queue"
    )
    run = wait_for(
        lambda: status(kube.get("schedules", namespace, "pulled")).get("active"),
        30,
        "the pull Schedule's first Task",
    )[0]
    assert condition(kube.get("schedules", namespace, "pulled"), "Ready")["status"] == "True"
    wait_for(task_in_phase(kube, namespace, run, "Queued"), 30, "its Task Queued")
    ask(kube, namespace, run, holder="runner/s")
    wait_for(task_in_phase(kube, namespace, run, "Dispatched"), 30, "its Task granted")
    result = json.dumps({"found": 1})
    report(kube, namespace, run, startedAt=now(), outcome="Completed", result=result,
           finishedAt=now())  # fmt: skip
    history = wait_for(
        lambda: status(kube.get("schedules", namespace, "pulled")).get("history"),
        30,
        "the run in the Schedule's history",
    )
    assert (history[0]["task"], history[0]["phase"], history[0]["result"]) == (
        run,
        "Completed",
        result,
    )
    assert status(kube.get("schedules", namespace, "pulled"))["counts"]["completed"] == 1
    assert kube.jobs(namespace) == []


def test_the_operator_bounds_a_runners_times_by_its_own_clock(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    """A renewal dated a year ahead is written back as the operator's now, so it cannot
    hold the slot past one lease; a request that reports an outcome before any grant is
    withdrawn, never granted (or refused already, by the runners' admission policy)."""
    for name in ("ahead", "filler", "early"):
        kube.create("tasks", namespace, pull_task(name))
    for name in ("ahead", "filler", "early"):
        wait_for(task_in_phase(kube, namespace, name, "Queued"), 30, f"{name} Queued")
    for name in ("ahead", "filler"):
        ask(kube, namespace, name, holder=f"runner/{name}")
        wait_for(task_in_phase(kube, namespace, name, "Dispatched"), 30, f"{name} granted")

    this_year = datetime.now(UTC).year
    ahead = datetime.now(UTC).replace(year=this_year + 1).strftime("%Y-%m-%dT%H:%M:%SZ")
    report(kube, namespace, "ahead", renewedAt=ahead)
    pulled_back = wait_for(
        lambda: (
            (s := task_status(kube, namespace, "ahead"))["claim"]["renewedAt"].startswith(
                str(this_year)
            )
            and s
        ),
        30,
        "the renewal dated ahead written back as the operator's now",
    )
    assert pulled_back["phase"] == "Dispatched"

    ask(kube, namespace, "early", holder="runner/early")  # the queue is full: it waits
    try:
        report(kube, namespace, "early", outcome="Completed", result="{}")
    except ApiException as error:
        if error.status not in {403, 422}:
            raise
        return  # refused by the runners' admission policy: as good
    withdrawn = wait_for(
        lambda: "claim" not in (s := task_status(kube, namespace, "early")) and s,
        30,
        "the request that reported an outcome withdrawn",
    )
    assert withdrawn["phase"] == "Queued"
    assert "attempts" not in withdrawn, "never granted"
