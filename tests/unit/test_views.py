"""What `kubectl kadence` shows (kadence.views), in tables of named cases: queue order and
slots as the operator decides them, next deadlines, history, statistics, the text forms;
and the plugin's command line and krew manifest, which need no cluster either."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kadence.config import OperatorConfig, QueueKey, parse_config
from kadence.cron import next_deadlines
from kadence.kubectl_plugin import parser
from kadence.models import TaskPhase
from kadence.queue import queue_order
from kadence.resources import queue_item
from kadence.views import (
    HistoryRow,
    Spread,
    choose_config,
    history_rows,
    human_duration,
    nearest_rank,
    next_note,
    next_view,
    queue_views,
    queues_document,
    render_history,
    render_next,
    render_queues,
    render_stats,
    run_request_value,
    short_seconds,
    spread,
    stats_document,
    table,
    task_stats,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
CONFIG = parse_config(
    """
queues:
  defaultCapacity: 10
  capacity: {one: 1, three: 3}
  shared:
    pool:
      namespaces: [team-a, team-b]
      capacity: 2
"""
)
Body = dict[str, Any]


def at(minutes: float) -> str:
    """NOW plus `minutes`, as the API writes it."""
    return (NOW + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def task(
    name: str,
    phase: str | None = "Queued",
    *,
    queue: str = "one",
    namespace: str = "ns",
    priority: int = 0,
    deadline: float | None = -10.0,
    created: float = -10.0,
    schedule: str | None = None,
    **status: Any,
) -> Body:
    """A Task; `deadline` and `created` in minutes from NOW (deadline None: a manual Task)."""
    spec: Body = {
        "schedulerId": queue,
        "priority": priority,
        "data": {"task": name},
        "jobTemplate": TEMPLATE,
    }
    if deadline is not None:
        spec["deadlineAt"] = at(deadline)
    labels = {"kadence.dev/scheduler-id": queue}
    if schedule:
        labels["kadence.dev/schedule"] = schedule
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{namespace}-{name}",
            "creationTimestamp": at(created),
            "resourceVersion": "1",
            "labels": labels,
        },
        "spec": spec,
        "status": {"phase": phase, **status} if phase else {},
    }


def job(task_name: str, *, namespace: str = "ns", queue: str = "one", done: bool = False) -> Body:
    """The Job of a Task (`uid-<namespace>-<task>` controls it)."""
    status: Body = {"active": 0 if done else 1}
    if done:
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    return {
        "metadata": {
            "namespace": namespace,
            "name": task_name,
            "resourceVersion": "1",
            "labels": {"kadence.dev/task": task_name, "kadence.dev/scheduler-id": queue},
            "ownerReferences": [
                {
                    "kind": "Task",
                    "name": task_name,
                    "uid": f"uid-{namespace}-{task_name}",
                    "controller": True,
                }
            ],
        },
        "status": status,
    }


# -- text forms ---------------------------------------------------------------------------

DURATIONS = [
    ("a moment in the past is now", -0.5, "0s"),
    ("far in the past is invalid", -5, "<invalid>"),
    ("seconds up to two minutes", 119, "119s"),
    ("two minutes", 120, "2m"),
    ("minutes and seconds below ten minutes", 130, "2m10s"),
    ("whole minutes below three hours", 179 * 60 + 59, "179m"),
    ("hours and minutes below eight hours", 3 * 3600 + 5 * 60, "3h5m"),
    ("whole hours below two days", 47 * 3600, "47h"),
    ("days and hours below eight days", 3 * 86400 + 4 * 3600, "3d4h"),
    ("whole days below two years", 400 * 86400, "400d"),
    ("years and days below eight years", 731 * 86400, "2y1d"),
    ("whole years beyond", 9 * 365 * 86400, "9y"),
]


@pytest.mark.parametrize(
    ("seconds", "text"), [c[1:] for c in DURATIONS], ids=[c[0] for c in DURATIONS]
)
def test_durations_read_like_kubectl_ages(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


SHORT = [
    ("a lag below ten seconds, to the hundredth", 0.214, "0.21s"),
    ("below a minute, to the tenth", 38.25, "38.2s"),
    ("a minute and more, as an age", 310, "5m10s"),
    ("whole seconds without decimals", 5.0, "5s"),
]


@pytest.mark.parametrize(("seconds", "text"), [c[1:] for c in SHORT], ids=[c[0] for c in SHORT])
def test_short_durations_keep_the_precision_that_matters(seconds: float, text: str) -> None:
    assert short_seconds(seconds) == text


def test_a_table_pads_each_column_to_its_widest_cell_plus_three() -> None:
    lines = table(["A", "LONGER", "LAST"], [["x", "y", "z"], ["wider-cell", "", "end"]])
    assert lines.splitlines() == [
        "A            LONGER   LAST",
        "x            y        z",
        "wider-cell            end",
    ]


RANKS = [
    ("the median of 1..100", list(range(1, 101)), 0.5, 50),
    ("p95 of 1..100", list(range(1, 101)), 0.95, 95),
    ("p99 of 1..100", list(range(1, 101)), 0.99, 99),
    ("p99 of four values is the largest", [4.0, 1.0, 3.0, 2.0], 0.99, 4.0),
    ("the median of four is the second", [4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
    ("one value is every percentile", [7.5], 0.95, 7.5),
]


@pytest.mark.parametrize(
    ("values", "fraction", "expected"), [c[1:] for c in RANKS], ids=[c[0] for c in RANKS]
)
def test_nearest_rank_percentiles(values: list[float], fraction: float, expected: float) -> None:
    assert nearest_rank(values, fraction) == expected


def test_a_spread_of_nothing_is_none() -> None:
    assert spread([]) is None
    assert spread([3.0, 1.0]) == Spread(count=2, p50=1.0, p95=3.0, p99=3.0)


# -- queues -------------------------------------------------------------------------------


@dataclass
class QueueCase:
    id: str
    tasks: list[Body]
    jobs: list[Body] = field(default_factory=list)
    config: OperatorConfig | None = field(default_factory=lambda: CONFIG)
    capacity: int | None = None
    scheduler_id: str | None = None
    namespaces: list[str] | None = None
    expected: dict[str, tuple[list[str], int, int | None]] = field(default_factory=dict)
    """Queue name -> (waiting Tasks as namespace/name in order, slots in use, capacity)."""


QUEUE_CASES = [
    QueueCase(
        "capacity full: lower priority first, then earlier deadline, then name",
        [
            task("busy", "Running"),
            task("relaxed", priority=5, deadline=-30),
            task("urgent", priority=-10, deadline=-1),
            task("b-normal", deadline=-5),
            task("a-normal", deadline=-5),
            task("early-normal", deadline=-20),
        ],
        jobs=[job("busy")],
        expected={
            "ns/one": (
                ["ns/urgent", "ns/early-normal", "ns/a-normal", "ns/b-normal", "ns/relaxed"],
                1,
                1,
            )
        },
    ),
    QueueCase(
        "a manual Task waits by its creation time",
        [task("manual", deadline=None, created=-7), task("scheduled", deadline=-5)],
        expected={"ns/one": (["ns/manual", "ns/scheduled"], 0, 1)},
    ),
    QueueCase(
        "a Queued Task whose Job exists holds a slot and waits no more",
        [task("half-dispatched"), task("next")],
        jobs=[job("half-dispatched")],
        expected={"ns/one": (["ns/next"], 1, 1)},
    ),
    QueueCase(
        "the unfinished Job of a deleted Task holds a slot; a finished one does not",
        [task("waiting")],
        jobs=[job("deleted"), job("deleted-and-done", done=True)],
        expected={"ns/one": (["ns/waiting"], 1, 1)},
    ),
    QueueCase(
        "a Job labelled with a Task it does not belong to holds nothing",
        [task("waiting"), task("other", "Dispatched", queue="three")],
        jobs=[
            {**job("waiting"), "metadata": {**job("waiting")["metadata"], "ownerReferences": []}}
        ],
        expected={"ns/one": (["ns/waiting"], 0, 1), "ns/three": ([], 1, 3)},
    ),
    QueueCase(
        "finished and Pending Tasks are not waiting; Pending ones are counted apart",
        [task("done", "Completed"), task("new", None), task("waiting")],
        expected={"ns/one": (["ns/waiting"], 0, 1)},
    ),
    QueueCase(
        "each namespace has its own queue of a schedulerId, with the capacity of its name",
        [task("x", namespace="a"), task("y", namespace="b"), task("z", queue="other")],
        expected={
            "a/one": (["a/x"], 0, 1),
            "b/one": (["b/y"], 0, 1),
            "ns/other": (["ns/z"], 0, 10),
        },
    ),
    QueueCase(
        "a shared queue: at equal priority the namespace holding fewer slots goes next",
        [
            task("a-running", "Running", queue="pool", namespace="team-a"),
            task("a1", queue="pool", namespace="team-a", deadline=-30),
            task("a2", queue="pool", namespace="team-a", deadline=-29),
            task("b1", queue="pool", namespace="team-b", deadline=-5),
            task("b2", queue="pool", namespace="team-b", deadline=-4),
            task("b-urgent", queue="pool", namespace="team-b", priority=-1, deadline=-1),
        ],
        expected={
            "*/pool": (
                ["team-b/b-urgent", "team-a/a1", "team-b/b1", "team-a/a2", "team-b/b2"],
                1,
                2,
            )
        },
    ),
    QueueCase(
        "a namespace sees the shared queue it is part of, and not the queues of the others",
        [
            task("a1", queue="pool", namespace="team-a"),
            task("b1", queue="pool", namespace="team-b"),
            task("b-own", queue="one", namespace="team-b"),
        ],
        namespaces=["team-a"],
        expected={"*/pool": (["team-a/a1", "team-b/b1"], 0, 2)},
    ),
    QueueCase(
        "a namespace outside the share keeps its own queue of that schedulerId",
        [task("c1", queue="pool", namespace="team-c")],
        expected={"team-c/pool": (["team-c/c1"], 0, 10)},
    ),
    QueueCase(
        "without the configuration: capacity unknown, and no queue is shared",
        [
            task("a1", queue="pool", namespace="team-a"),
            task("b1", queue="pool", namespace="team-b"),
        ],
        config=None,
        expected={
            "team-a/pool": (["team-a/a1"], 0, None),
            "team-b/pool": (["team-b/b1"], 0, None),
        },
    ),
    QueueCase(
        "a capacity given overrides the configuration's",
        [task("x")],
        capacity=4,
        expected={"ns/one": (["ns/x"], 0, 4)},
    ),
    QueueCase(
        "one schedulerId asked for: shown even when empty, others left out",
        [task("z", queue="other")],
        scheduler_id="three",
        namespaces=["ns"],
        expected={"ns/three": ([], 0, 3)},
    ),
]


@pytest.mark.parametrize("case", QUEUE_CASES, ids=[c.id for c in QUEUE_CASES])
def test_queue_views(case: QueueCase) -> None:
    views = queue_views(
        case.tasks,
        case.jobs,
        case.config,
        capacity=case.capacity,
        scheduler_id=case.scheduler_id,
        namespaces=case.namespaces,
    )
    found = {
        str(view.queue): (
            [f"{item.namespace}/{item.name}" for item in view.waiting],
            view.in_use,
            view.capacity,
        )
        for view in views
    }
    assert found == case.expected
    for view in views:
        assert [item.position for item in view.waiting] == list(range(1, len(view.waiting) + 1))


def test_a_namespace_queue_is_in_the_order_of_the_operators_queue_order() -> None:
    tasks = [
        task(f"t{i}", priority=(i * 7) % 5 - 2, deadline=-((i * 13) % 11), created=-i)
        for i in range(30)
    ]
    (view,) = queue_views(tasks, [], CONFIG)
    expected = queue_order(queue_item(t) for t in tasks)
    assert [item.name for item in view.waiting] == [item.name for item in expected]


def test_pending_tasks_are_counted_as_not_admitted_and_named_in_the_title() -> None:
    (view,) = queue_views([task("new", None), task("newer", None), task("w")], [], CONFIG)
    assert view.pending == 2
    assert "1 waiting, 2 not admitted yet" in render_queues([view], NOW)


def test_a_queue_as_a_table_and_as_json() -> None:
    tasks = [
        task("busy", "Running", schedule="nightly"),
        task("relaxed", priority=5, deadline=-3, queuedAt=at(-3)),
        task("urgent", priority=-10, deadline=-1, queuedAt=at(-1), schedule="nightly"),
    ]
    views = queue_views(tasks, [job("busy")], CONFIG)
    assert render_queues(views, NOW) == (
        "Queue ns/one: 1/1 in use, 2 waiting\n"
        "POSITION   TASK      PRIORITY   DEADLINE               WAITING\n"
        "1          urgent    -10        2026-06-01T09:59:00Z   60s\n"
        "2          relaxed   5          2026-06-01T09:57:00Z   3m"
    )
    wide = render_queues(views, NOW, wide=True).splitlines()
    assert wide[1] == "Holding slots: busy"
    assert wide[2].split() == [
        "POSITION", "TASK", "PRIORITY", "DEADLINE", "WAITING", "QUEUED", "SCHEDULE", "WAITS", "FOR"
    ]  # fmt: skip
    assert wide[3].split()[-2:] == ["nightly", "-"]
    (document,) = queues_document(views, NOW)["queues"]
    assert document["capacity"] == 1
    assert document["inUse"] == 1
    assert document["holders"] == ["busy"]
    assert document["waiting"][0] == {
        "position": 1,
        "namespace": "ns",
        "task": "urgent",
        "priority": -10,
        "deadlineAt": "2026-06-01T09:59:00Z",
        "queuedAt": "2026-06-01T09:59:00Z",
        "waitingSeconds": 60.0,
        "schedule": "nightly",
        "waitsFor": None,
        "requestedBy": None,
    }


def test_a_shared_queue_names_its_namespaces_and_each_tasks() -> None:
    tasks = [
        task("a1", queue="pool", namespace="team-a"),
        task("b1", queue="pool", namespace="team-b"),
    ]
    text = render_queues(queue_views(tasks, [], CONFIG), NOW).splitlines()
    assert text[0] == "Queue pool (shared by team-a, team-b): 0/2 in use, 2 waiting"
    assert text[1].split()[:3] == ["POSITION", "NAMESPACE", "TASK"]


def test_an_unknown_capacity_says_so() -> None:
    text = render_queues(queue_views([task("x")], [], None), NOW)
    assert text.startswith("Queue ns/one: 0/unknown in use, 1 waiting")


# -- the operator's configuration ---------------------------------------------------------

CONFIGMAPS = [
    ("none", [], None),
    ("one without the file", [{"metadata": {"name": "a"}, "data": {"other": "x"}}], None),
    (
        "the newest of kustomize's hash-named ones",
        [
            {"metadata": {"name": "kadence-config-old", "creationTimestamp": at(-60)},
             "data": {"config.yaml": "{}"}},
            {"metadata": {"name": "kadence-config-new", "creationTimestamp": at(-1)},
             "data": {"config.yaml": "{}"}},
            {"metadata": {"name": "kadence-config-newest-empty", "creationTimestamp": at(0)},
             "data": {}},
        ],
        "kadence-config-new",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("configmaps", "expected"), [c[1:] for c in CONFIGMAPS], ids=[c[0] for c in CONFIGMAPS]
)
def test_choose_the_operators_configmap(configmaps: list[Body], expected: str | None) -> None:
    chosen = choose_config(configmaps)
    assert (chosen["metadata"]["name"] if chosen else None) == expected


# -- next deadlines -----------------------------------------------------------------------


def schedule(
    *,
    name: str = "nightly",
    status: Body | None = None,
    created: float = -60 * 24,
    generation: int = 1,
    **spec: Any,
) -> Body:
    spec.setdefault("schedulerId", "one")
    spec.setdefault("jobTemplate", TEMPLATE)
    if "interval" not in spec:
        spec.setdefault("schedule", "30 2 * * *")
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": "uid-schedule",
            "generation": generation,
            "creationTimestamp": at(created),
        },
        "spec": spec,
        "status": status or {},
    }


def run(
    name: str, phase: str, *, finished: float | None = None, owner: str = "uid-schedule"
) -> Body:
    """A Task of the schedule `nightly` (controlled by `owner`)."""
    body = task(name, phase, schedule="nightly", deadline=None)
    body["metadata"]["ownerReferences"] = [
        {"kind": "Schedule", "name": "nightly", "uid": owner, "controller": True}
    ]
    if finished is not None:
        body["status"]["finishedAt"] = at(finished)
    return body


AMSTERDAM = "30 2 * * * in Europe/Amsterdam"


def rejected(generation: int) -> Body:
    """The Ready condition of a Job template the API server refused in a dry run."""
    return {
        "type": "Ready",
        "status": "False",
        "reason": "TemplateRejected",
        "message": "Job.batch is invalid",
        "observedGeneration": generation,
    }


STORED = {"deadlineAt": "2026-06-02T00:30:00Z", "observedTiming": AMSTERDAM}


@dataclass
class NextCase:
    id: str
    schedule: Body
    tasks: list[Body] = field(default_factory=list)
    count: int = 3
    deadlines: list[str] = field(default_factory=list)
    note: str | None = None


NEXT_CASES = [
    NextCase(
        "a cron: the deadline the operator stored, then the cron's next ones",
        schedule(timeZone="Europe/Amsterdam", status=STORED),
        deadlines=["2026-06-02T00:30:00Z", "2026-06-03T00:30:00Z", "2026-06-04T00:30:00Z"],
    ),
    NextCase(
        "a cron the operator has not seen: computed from now",
        schedule(schedule="0 * * * *"),
        deadlines=["2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z"],
    ),
    NextCase(
        "a cron whose timing was edited since: computed from now, not the stored deadline",
        schedule(schedule="0 * * * *", status=STORED),
        count=1,
        deadlines=["2026-06-01T11:00:00Z"],
    ),
    NextCase(
        "a stored deadline that passed is due (the operator acts on it now)",
        schedule(
            schedule="0 * * * *",
            status={"deadlineAt": at(-1), "observedTiming": "0 * * * * in UTC"},
        ),
        count=2,
        deadlines=[at(-1), "2026-06-01T10:00:00Z"],
    ),
    NextCase(
        "an interval that never ran: its creation",
        schedule(interval="15m", created=-2),
        deadlines=[at(-2)],
        note="then 15m after each run finishes",
    ),
    NextCase(
        "an interval: the interval after the last finished run",
        schedule(interval="15m", status={"deadlineAt": at(-100), "observedTiming": "every 15m"}),
        tasks=[run("nightly-1", "Completed", finished=-5)],
        deadlines=[at(10)],
        note="then 15m after each run finishes",
    ),
    NextCase(
        "an interval with a run active: no deadline until it finishes",
        schedule(interval="1h", status={"observedTiming": "every 1h"}),
        tasks=[run("nightly-1", "Running")],
        note="nightly-1 still running: the next deadline is 60m after it finishes",
    ),
    NextCase(
        "a Task another object controls is not the schedule's run",
        schedule(interval="15m", status={"deadlineAt": at(-100), "observedTiming": "every 15m"}),
        tasks=[run("nightly-1", "Completed", finished=-5), run("x", "Running", owner="uid-other")],
        deadlines=[at(10)],
        note="then 15m after each run finishes",
    ),
    NextCase(
        "disabled, with a reason: no deadline fires",
        schedule(enabled=False, suspendReason="warehouse move", status=STORED),
        note="schedule ns/nightly is disabled (warehouse move): no deadline fires until it is "
        "resumed",
    ),
    NextCase(
        "a cron the operator cannot read",
        schedule(schedule="61 * * * *"),
        note="schedule ns/nightly cannot fire: invalid cron '61 * * * *'",
    ),
    NextCase(
        "a Job template the API server refused, for this generation",
        schedule(
            generation=2,
            status={"conditions": [rejected(generation=2)]},
        ),
        note="schedule ns/nightly cannot fire: Job.batch is invalid",
    ),
    NextCase(
        "a refusal of an older generation is not this one's",
        schedule(
            schedule="0 * * * *",
            generation=3,
            status={"conditions": [rejected(generation=2)]},
        ),
        count=1,
        deadlines=["2026-06-01T11:00:00Z"],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", NEXT_CASES, ids=[c.id for c in NEXT_CASES])
def test_next_view(case: NextCase) -> None:
    view = next_view(case.schedule, case.tasks, NOW, case.count)
    assert [d.strftime("%Y-%m-%dT%H:%M:%SZ") for d in view.deadlines] == case.deadlines
    note = next_note(view)
    if case.note is None:
        assert note is None
    else:
        assert note is not None
        assert note.startswith(case.note)


def test_h_is_hashed_from_the_namespace_and_name_as_kadence_next_does() -> None:
    body = schedule(name="hashed", schedule="H H * * *", timeZone="Asia/Kolkata")
    view = next_view(body, [], NOW, 4)
    assert list(view.deadlines) == next_deadlines("H H * * *", "Asia/Kolkata", NOW, 4, "ns/hashed")


def test_next_as_a_table_shows_the_schedules_zone_and_how_long_until() -> None:
    view = next_view(schedule(timeZone="Europe/Amsterdam", status=STORED), [], NOW, 2)
    assert render_next(view, NOW) == (
        "DEADLINE               LOCAL (Europe/Amsterdam)   IN\n"
        "2026-06-02T00:30:00Z   2026-06-02 02:30 CEST      14h\n"
        "2026-06-03T00:30:00Z   2026-06-03 02:30 CEST      38h"
    )


# -- history ------------------------------------------------------------------------------


def test_history_rows_newest_first_with_durations() -> None:
    body = schedule(
        status={
            "history": [
                {"task": "nightly-2", "phase": "Failed", "deadlineAt": at(-10),
                 "startedAt": at(-9.5), "finishedAt": at(-8)},
                {"task": "nightly-1", "phase": "Cancelled", "deadlineAt": at(-20),
                 "finishedAt": at(-19)},
            ]
        }
    )  # fmt: skip
    rows = history_rows(body)
    assert rows[0] == HistoryRow(
        task="nightly-2",
        outcome="Failed",
        deadline_at=NOW - timedelta(minutes=10),
        started_at=NOW - timedelta(minutes=9.5),
        finished_at=NOW - timedelta(minutes=8),
    )
    assert rows[0].duration == timedelta(seconds=90)
    assert rows[1].duration is None
    assert render_history(rows).splitlines() == [
        "TASK        OUTCOME     DEADLINE               STARTED                FINISHED"
        "               DURATION",
        "nightly-2   Failed      2026-06-01T09:50:00Z   2026-06-01T09:50:30Z   2026-06-01T09:52:00Z"
        "   90s",
        "nightly-1   Cancelled   2026-06-01T09:40:00Z   -                      2026-06-01T09:41:00Z"
        "   -",
    ]
    assert render_history(rows, wide=True).splitlines()[1].endswith("30s")


# -- statistics ---------------------------------------------------------------------------


def finished(name: str, phase: str, times: tuple[float, float, float, float, float]) -> Body:
    """A finished Task; `times`: its deadline, queued, dispatched, started and finished, in
    minutes from NOW."""
    deadline, queued, dispatched, started, ended = times
    return task(
        name, phase, deadline=deadline, queuedAt=at(queued), dispatchedAt=at(dispatched),
        startedAt=at(started), finishedAt=at(ended),
    )  # fmt: skip


@dataclass
class StatsCase:
    id: str
    tasks: list[Body]
    config: OperatorConfig | None = field(default_factory=lambda: CONFIG)
    scheduler_id: str | None = None
    namespaces: list[str] | None = None
    phases: dict[str, dict[str, int]] = field(default_factory=dict)
    """Queue -> the phases with a count above 0."""
    spreads: dict[str, tuple[Spread | None, Spread | None, Spread | None]] = field(
        default_factory=dict
    )
    """Queue -> (deadline to dispatch, queued to dispatch, run duration), in seconds."""


STATS_CASES = [
    StatsCase(
        "counts by phase, and each measure over the Tasks that have it",
        [
            finished("a", "Completed", (-10, -10, -9, -9, -7)),
            finished("b", "Failed", (-10, -10, -8, -8, -7.5)),
            task("c", "Running", deadline=-5, queuedAt=at(-5), dispatchedAt=at(-4),
                 startedAt=at(-4)),
            task("d", "Queued", deadline=-1, queuedAt=at(-1)),
            task("e", "Cancelled"),
            task("f", None),
        ],
        phases={"ns/one": {"Completed": 1, "Failed": 1, "Running": 1, "Queued": 1,
                           "Cancelled": 1, "Pending": 1}},
        spreads={"ns/one": (Spread(3, 60, 120, 120), Spread(3, 60, 120, 120),
                            Spread(2, 30, 120, 120))},
    ),
    StatsCase(
        "a manual Task's lag counts from its creation; a dispatch before the deadline is 0",
        [
            task("manual", "Dispatched", deadline=None, created=-3, dispatchedAt=at(-1)),
            task("early", "Dispatched", deadline=5, dispatchedAt=at(-1)),
        ],
        phases={"ns/one": {"Dispatched": 2}},
        spreads={"ns/one": (Spread(2, 0, 120, 120), None, None)},
    ),
    StatsCase(
        "grouped by queue: per namespace, and the shared one across its namespaces",
        [
            task("a", "Queued", queue="pool", namespace="team-a"),
            task("b", "Completed", queue="pool", namespace="team-b"),
            task("x", "Queued", namespace="team-a"),
        ],
        phases={"*/pool": {"Queued": 1, "Completed": 1}, "team-a/one": {"Queued": 1}},
        spreads={"*/pool": (None, None, None), "team-a/one": (None, None, None)},
    ),
    StatsCase(
        "one schedulerId, in the namespaces asked for",
        [
            task("a", "Queued", queue="pool", namespace="team-a"),
            task("x", "Queued", namespace="team-a"),
            task("y", "Queued", namespace="elsewhere"),
        ],
        scheduler_id="one",
        namespaces=["team-a"],
        phases={"team-a/one": {"Queued": 1}},
        spreads={"team-a/one": (None, None, None)},
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", STATS_CASES, ids=[c.id for c in STATS_CASES])
def test_task_stats(case: StatsCase) -> None:
    stats = task_stats(
        case.tasks, case.config, scheduler_id=case.scheduler_id, namespaces=case.namespaces
    )
    assert {
        str(s.queue): {str(phase): n for phase, n in s.phases.items() if n} for s in stats
    } == case.phases
    assert {
        str(s.queue): (s.deadline_to_dispatch, s.queued_to_dispatch, s.run_duration) for s in stats
    } == case.spreads


def test_stats_as_tables_and_json() -> None:
    stats = task_stats(STATS_CASES[0].tasks, CONFIG)
    counts, lags = render_stats(stats).split("\n\n")
    assert counts.splitlines() == [
        "QUEUE    PENDING   QUEUED   DISPATCHED   RUNNING   COMPLETED   FAILED   CANCELLED",
        "ns/one   1         1        0            1         1           1        1",
    ]
    assert lags.splitlines()[0].split() == ["QUEUE", "MEASURE", "TASKS", "P50", "P95", "P99"]
    assert lags.splitlines()[1].split() == ["ns/one", "deadline", "to", "dispatch", "3", "60s",
                                            "2m", "2m"]  # fmt: skip
    (document,) = stats_document(stats)["queues"]
    assert document["phases"]["Queued"] == 1
    assert document["runDuration"] == {"count": 2, "p50": 30.0, "p95": 120.0, "p99": 120.0}


def test_every_phase_has_a_column() -> None:
    header = render_stats(task_stats([task("x")], CONFIG)).splitlines()[0].split()
    assert header[1:] == [str(phase).upper() for phase in TaskPhase]


# -- run requests -------------------------------------------------------------------------

RUN_VALUES = [
    ("the time to the second", (None, None), "2026-06-01T10:00:00Z"),
    ("to the microsecond when that second was used", ("2026-06-01T10:00:00Z", None),
     "2026-06-01T10:00:00.250000Z"),
    ("also when the operator handled it", (None, "2026-06-01T10:00:00Z"),
     "2026-06-01T10:00:00.250000Z"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("used", "value"), [c[1:] for c in RUN_VALUES], ids=[c[0] for c in RUN_VALUES]
)
def test_a_run_request_value_is_new(used: tuple[str | None, str | None], value: str) -> None:
    assert run_request_value(NOW + timedelta(microseconds=250000), used) == value


# -- the command line ---------------------------------------------------------------------

FLAGS = [
    ("kubectl's flags after the verb", ["queue", "-n", "ns", "--context", "c", "-o", "wide"],
     {"namespace": "ns", "context": "c", "output": "wide", "verb": "queue"}),
    ("before the verb", ["-n", "ns", "--kubeconfig", "k", "-A", "stats"],
     {"namespace": "ns", "kubeconfig": "k", "all_namespaces": True, "verb": "stats"}),
    ("after the verb wins", ["-n", "first", "history", "s", "-n", "second"],
     {"namespace": "second", "schedule": "s"}),
    ("not given: the defaults", ["next", "s"],
     {"namespace": None, "all_namespaces": False, "output": None, "count": 5,
      "request_timeout": "0"}),
    ("impersonation", ["suspend", "s", "--as", "bob", "--as-group", "team", "--reason", "why"],
     {"as_user": "bob", "as_group": ["team"], "reason": "why"}),
    ("a run's wait and timeout", ["run", "s", "--wait", "--timeout", "90s"],
     {"wait": True, "timeout": timedelta(seconds=90)}),
    ("a queue's capacity and configuration namespace",
     ["queue", "q", "--capacity", "3", "--config-namespace", "ops"],
     {"scheduler_id": "q", "capacity": 3, "config_namespace": "ops"}),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in FLAGS], ids=[c[0] for c in FLAGS])
def test_the_command_line(argv: list[str], expected: dict[str, Any]) -> None:
    args = vars(parser().parse_args(argv))
    assert {key: args[key] for key in expected} == expected


BAD_FLAGS = [
    ("an output kubectl has but the plugin does not", ["queue", "-o", "name"]),
    ("a count of nothing", ["next", "s", "--count", "0"]),
    ("a timeout that is no duration", ["run", "s", "--timeout", "soon"]),
    ("a verb with no schedule", ["history"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in BAD_FLAGS], ids=[c[0] for c in BAD_FLAGS])
def test_bad_flags_exit_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_no_kubeconfig_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kadence.kubectl_plugin import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert main(["queue"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: no cluster: no kubeconfig at {tmp_path / 'missing'} " + (
        "(give --kubeconfig or set $KUBECONFIG)\n"
    )


def test_all_namespaces_is_refused_for_one_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    from kadence.kubectl_plugin import main

    assert main(["history", "s", "-A"]) == 1
    assert "-A does not apply to history" in capsys.readouterr().err


# -- the krew manifest --------------------------------------------------------------------


def test_the_krew_manifest_passes_krews_validation() -> None:
    """The rules of krew's internal/index/validation (ValidatePlugin, validatePlatform)."""
    path = ROOT / "deploy" / "krew" / "kadence.yaml"
    plugin = yaml.safe_load(path.read_text())
    assert plugin["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert plugin["kind"] == "Plugin"
    assert plugin["metadata"]["name"] == path.stem
    assert re.fullmatch(r"[\w-]+", plugin["metadata"]["name"])
    spec = plugin["spec"]
    assert spec["shortDescription"]
    assert "\n" not in spec["shortDescription"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", spec["version"])
    version = yaml.safe_load((ROOT / "charts" / "kadence" / "Chart.yaml").read_text())["appVersion"]
    assert spec["version"] == f"v{version}"
    assert spec["platforms"]
    seen = set()
    for platform in spec["platforms"]:
        assert platform["uri"].startswith("https://")
        assert spec["version"] in platform["uri"]
        assert re.fullmatch(r"[a-f0-9]{64}", platform["sha256"])
        assert platform["bin"] == "kubectl-kadence"
        for operation in platform.get("files", [{"from": "x", "to": "y"}]):
            assert operation["from"]
            assert operation["to"]
        labels = platform["selector"]["matchLabels"]
        assert labels
        assert set(labels) <= {"os", "arch"}
        seen.add((labels["os"], labels["arch"]))
    assert len(seen) == len(spec["platforms"])


def test_the_plugin_is_installed_as_kubectl_kadence() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'kubectl-kadence = "kadence.kubectl_plugin:main"' in text


def test_queue_keys_print_as_the_operator_names_them() -> None:
    assert str(QueueKey("ns", "one")) == "ns/one"
    assert str(QueueKey(None, "pool")) == "*/pool"
