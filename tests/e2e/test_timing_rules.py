"""When deadlines fall, end to end: several crons in one Schedule, an end, a run limit.

The Schedules are made together, a little before the same minute boundary (`Timeline`), so
that the whole file waits for about two cron minutes. Where a test shows that something does
NOT happen, it first waits for a positive sign that the operator had the occasion to do it:
the two-cron Schedule acting on the later minute, which the others would have fired at too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kadence.naming import task_name_for_deadline, task_name_for_run_request
from tests.conftest import Cluster
from tests.e2e.conftest import Operator
from tests.e2e.test_schedules import (
    RUN_REQUEST,
    deadline_of,
    events_of,
    queue_of,
    ready_is,
    schedule_body,
    schedule_status,
    task_names,
    wait_for_fire,
    wait_for_task,
    wait_for_wall_clock,
)
from tests.support.kube import Kube, wait_for

MINUTE = timedelta(minutes=1)
LEAD = timedelta(seconds=15)
"""At least this long between making the Schedules and their first deadline."""


def rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Timeline:
    """The namespace of this file's Schedules and the two minutes they fire at."""

    namespace: str
    first: datetime
    """The first whole minute at least `LEAD` after the Schedules were made."""
    upcoming: dict[str, list[str]]
    """Each Schedule's first status.nextDeadlines, read before `first`."""

    @property
    def second(self) -> datetime:
        return self.first + MINUTE


@pytest.fixture(scope="module")
def timeline(kube: Kube, operator: Operator) -> Iterator[Timeline]:
    """Make every Schedule of this file at once, in a namespace of its own."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    wait_for(
        lambda: kube.core.list_namespaced_service_account(namespace).items,
        30,
        "the default ServiceAccount",
    )
    first = (datetime.now(UTC) + LEAD + MINUTE).replace(second=0, microsecond=0)
    second = first + MINUTE
    queue = queue_of(namespace)
    # Each its own data (so its own hash: Forbid never holds one back for another's run);
    # the every-minute crons start at `first`, as the two-cron one does.
    bodies = [
        schedule_body(
            "two-crons",
            queue,
            schedules=[f"{first.minute} * * * *", f"{second.minute} * * * *"],
            data={"schedule": "two-crons"},
        ),
        schedule_body(
            "ends",
            queue,
            schedule="* * * * *",
            startAt=rfc(first),
            endAt=rfc(first + timedelta(seconds=30)),
            data={"schedule": "ends"},
        ),
        schedule_body(
            "limited",
            queue,
            schedule="* * * * *",
            startAt=rfc(first),
            runLimit=1,
            data={"schedule": "limited"},
        ),
    ]
    bodies[2]["metadata"]["annotations"] = {RUN_REQUEST: "at-creation"}
    for body in bodies:
        kube.create("schedules", namespace, body)
    upcoming = {
        body["metadata"]["name"]: wait_for(
            lambda name=body["metadata"]["name"]: schedule_status(kube, namespace, name).get(
                "nextDeadlines"
            ),
            15,
            f"the next deadlines of {body['metadata']['name']}",
        )
        for body in bodies
    }
    assert datetime.now(UTC) < first, "too slow to read the deadlines before they fell"
    try:
        yield Timeline(namespace, first, upcoming)
    finally:
        kube.core.delete_namespace(namespace)


def test_a_schedule_with_two_crons_fires_at_the_deadlines_of_both(
    cluster: Cluster, kube: Kube, timeline: Timeline
) -> None:
    """`schedules` lists two crons; each one's minute makes a Task, the status lists the
    merged deadlines and the expressions it read, and `kubectl get` shows them."""
    ns, first, second = timeline.namespace, timeline.first, timeline.second
    hour = timedelta(hours=1)
    assert timeline.upcoming["two-crons"] == [
        rfc(t) for t in (first, second, first + hour, second + hour, first + 2 * hour)
    ]
    observed = schedule_status(kube, ns, "two-crons")["observedTiming"]
    assert observed == f"{first.minute} * * * *, {second.minute} * * * * in UTC"
    table = cluster.kubectl("get", "schedule", "two-crons", "-n", ns, "-o", "wide").stdout
    assert f'["{first.minute} * * * *","{second.minute} * * * *"]' in table, table
    assert observed in table, table

    wait_for_task(kube, ns, task_name_for_deadline("two-crons", first), 90, "the first cron's task")
    wait_for_task(kube, ns, task_name_for_deadline("two-crons", second), 90, "the second's task")
    wait_for_fire(kube, ns, ["two-crons"], second, 30)
    assert deadline_of(kube, ns, "two-crons") == first + hour
    assert task_names(kube, ns, "two-crons") == sorted(
        task_name_for_deadline("two-crons", t) for t in (first, second)
    )


def test_a_schedule_past_its_end_reports_ended_and_makes_no_more_tasks(
    kube: Kube, timeline: Timeline
) -> None:
    """An every-minute cron with `startAt` on a deadline and `endAt` half a minute after it
    runs once, at `startAt`, then reports Ended; the next minute makes no Task."""
    ns, first, second = timeline.namespace, timeline.first, timeline.second
    assert timeline.upcoming["ends"] == [rfc(first)]
    run = task_name_for_deadline("ends", first)
    wait_for_task(kube, ns, run, 90, "the one task before endAt")
    ended = wait_for(ready_is(kube, ns, "ends", "False", "Ended"), 30, "Ready False, Ended")
    assert "endAt" in ended["message"]
    st = schedule_status(kube, ns, "ends")
    assert "deadlineAt" not in st
    assert st.get("nextDeadlines", []) == []
    assert "Stalled" not in {c["type"] for c in st["conditions"]}
    wait_for(lambda: events_of(kube, ns, "ends", "Ended"), 15, "an Ended event")

    wait_for_wall_clock(second, "the minute after endAt")
    wait_for_fire(kube, ns, ["two-crons"], second, 30)
    assert task_names(kube, ns, "ends") == [run]


def test_a_run_limit_ends_the_schedule_and_run_now_does_not_count(
    kube: Kube, timeline: Timeline
) -> None:
    """`runLimit: 1` with a run asked for at creation: that run and one deadline run are
    made, then the schedule reports RunLimitReached and the next minute makes no Task."""
    ns, first, second = timeline.namespace, timeline.first, timeline.second
    asked = task_name_for_run_request("limited", "at-creation")
    wait_for_task(kube, ns, asked, 15, "the run asked for at creation")
    assert timeline.upcoming["limited"] == [rfc(first)]

    run = task_name_for_deadline("limited", first)
    wait_for_task(kube, ns, run, 90, "the one deadline run the limit allows")
    wait_for(
        ready_is(kube, ns, "limited", "False", "RunLimitReached"),
        30,
        "Ready False, RunLimitReached",
    )
    counts = schedule_status(kube, ns, "limited")["counts"]
    assert (counts["created"], counts["scheduled"]) == (2, 1)

    wait_for_wall_clock(second, "the minute after the limit was reached")
    wait_for_fire(kube, ns, ["two-crons"], second, 30)
    assert task_names(kube, ns, "limited") == sorted([asked, run])


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        pytest.param(
            {"schedule": "* * * * *", "schedules": ["0 * * * *"]},
            "exactly one of schedule",
            id="schedule and schedules",
        ),
        pytest.param({"schedules": []}, "schedules", id="empty schedules"),
        pytest.param(
            {
                "schedule": "* * * * *",
                "startAt": "2030-01-02T00:00:00Z",
                "endAt": "2030-01-01T00:00:00Z",
            },
            "startAt must not be after endAt",
            id="startAt after endAt",
        ),
        pytest.param({"schedule": "* * * * *", "runLimit": 0}, "runLimit", id="runLimit 0"),
        pytest.param(
            {"schedule": "* * * * *", "suspendAfterFailures": 11},
            "suspendAfterFailures must be at most historyLimit",
            id="suspendAfterFailures over the default historyLimit",
        ),
        pytest.param(
            {"schedule": "* * * * *", "suspendAfterFailures": 4, "historyLimit": 3},
            "suspendAfterFailures must be at most historyLimit",
            id="suspendAfterFailures over historyLimit",
        ),
    ],
)
def test_the_schema_rejects_bad_timing(
    kube: Kube, timeline: Timeline, spec: dict[str, Any], said: str
) -> None:
    with pytest.raises(ApiException) as refused:
        kube.create("schedules", timeline.namespace, schedule_body("bad", "q", **spec))
    assert refused.value.status == 422
    assert said in str(refused.value.body)
