import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kadence.jobs import (
    MAX_DATA_BYTES,
    DataTooLarge,
    build_job,
    rfc3339,
    task_data_json,
    template_problem,
)
from kadence.resources import controller_uid
from tests.support.expansion import expand

KADENCE_ENV = [
    "KADENCE_TASK_NAME",
    "KADENCE_SCHEDULER_ID",
    "KADENCE_DEADLINE_AT",
    "KADENCE_TASK_DATA",
]


def make_task(**spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedulerId": "boefje-org0",
        "priority": 2,
        "hash": "abc",
        "data": {"target": "example.org", "port": 443},
        "deadlineAt": "2024-01-01T02:00:00+02:00",
        "scheduleRef": {"name": "nightly"},
        "jobTemplate": {
            "metadata": {
                "labels": {"team": "red", "kadence.dev/task": "spoofed"},
                "annotations": {"note": "kept"},
            },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "initContainers": [{"name": "init", "image": "busybox"}],
                        "containers": [
                            {
                                "name": "main",
                                "image": "busybox",
                                "env": [{"name": "MINE", "value": "$(KADENCE_TASK_NAME)"}],
                            },
                            {"name": "sidecar", "image": "busybox", "env": []},
                        ],
                    }
                },
            },
        },
    }
    spec.update(spec_changes)
    return {
        "apiVersion": "kadence.dev/v1alpha1",
        "kind": "Task",
        "metadata": {
            "name": "nightly-1704067200",
            "namespace": "scans",
            "uid": "uid-1",
            "creationTimestamp": "2024-03-04T05:06:07Z",
            "labels": {"kadence.dev/scheduler-id": "boefje-org0"},
        },
        "spec": spec,
    }


def env_of(container: dict[str, Any]) -> dict[str, str]:
    names = [var["name"] for var in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {var["name"]: var.get("value") for var in container["env"]}


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def test_job_identity_and_owner() -> None:
    job = build_job(make_task())
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "nightly-1704067200"
    assert job["metadata"]["namespace"] == "scans"
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kadence.dev/v1alpha1",
            "kind": "Task",
            "name": "nightly-1704067200",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_job_labels_and_annotations_come_from_the_template_with_the_task_label_winning() -> None:
    metadata = build_job(make_task())["metadata"]
    assert metadata["labels"] == {
        "team": "red",
        "kadence.dev/task": "nightly-1704067200",
        "kadence.dev/scheduler-id": "boefje-org0",
    }
    assert metadata["annotations"] == {"note": "kept"}


def test_template_without_metadata() -> None:
    task = make_task()
    del task["spec"]["jobTemplate"]["metadata"]
    metadata = build_job(task)["metadata"]
    assert metadata["labels"] == {
        "kadence.dev/task": "nightly-1704067200",
        "kadence.dev/scheduler-id": "boefje-org0",
    }
    assert "annotations" not in metadata


@pytest.mark.parametrize(
    ("kind", "index"),
    [("containers", 0), ("containers", 1), ("initContainers", 0)],
    ids=["main-container", "container-with-empty-env", "init-container"],
)
def test_every_container_gets_the_four_variables(kind: str, index: int) -> None:
    env = env_of(pod_spec(build_job(make_task()))[kind][index])
    assert env["KADENCE_TASK_NAME"] == "nightly-1704067200"
    assert env["KADENCE_SCHEDULER_ID"] == "boefje-org0"
    assert env["KADENCE_DEADLINE_AT"] == "2024-01-01T00:00:00Z"
    assert json.loads(env["KADENCE_TASK_DATA"]) == {"target": "example.org", "port": 443}


def test_the_users_variables_come_after_kadences_and_may_refer_to_them() -> None:
    container = pod_spec(build_job(make_task()))["containers"][0]
    names = [var["name"] for var in container["env"]]
    assert names == [*KADENCE_ENV, "MINE"]
    assert env_of(container)["MINE"] == "$(KADENCE_TASK_NAME)"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda pod, job: pod["containers"][0]["env"].append(
            {"name": "KADENCE_TASK_DATA", "value": "mine"}),
         "containers main sets KADENCE_TASK_DATA"),
        (lambda pod, job: pod["initContainers"][0].update(
            env=[{"name": "KADENCE_TASK_NAME", "value": "x"}]),
         "initContainers init sets KADENCE_TASK_NAME"),
        (lambda pod, job: job.update(suspend=True), "suspend is true"),
        (lambda pod, job: pod.update(containers=[]), "containers is empty"),
        (lambda pod, job: pod.pop("containers"), "containers is empty"),
    ],
    ids=["own-variable-named-like-kadences", "in-an-init-container", "suspended", "no-containers",
         "containers-missing"],
)  # fmt: skip
def test_a_template_that_cannot_run_is_refused_with_the_reason(change: Any, problem: str) -> None:
    task = make_task()
    job_spec = task["spec"]["jobTemplate"]["spec"]
    change(job_spec["template"]["spec"], job_spec)
    assert problem in (template_problem(task["spec"]["jobTemplate"]) or "")
    with pytest.raises(ValueError, match=problem):
        build_job(task)


def test_building_from_its_own_output_is_refused_not_doubled() -> None:
    task = make_task()
    task["spec"]["jobTemplate"]["spec"] = build_job(task)["spec"]
    with pytest.raises(ValueError, match="sets KADENCE_TASK_NAME"):
        build_job(task)


def test_nothing_else_is_added_to_the_spec() -> None:
    task = make_task()
    job_spec = build_job(task)["spec"]
    for kind in ("containers", "initContainers"):
        for container in job_spec["template"]["spec"][kind]:
            container.pop("env")
    expected = copy.deepcopy(task["spec"]["jobTemplate"]["spec"])
    for kind in ("containers", "initContainers"):
        for container in expected["template"]["spec"][kind]:
            container.pop("env", None)
    assert job_spec == expected


def test_input_is_not_modified_and_output_shares_nothing_with_it() -> None:
    task = make_task()
    before = copy.deepcopy(task)
    job = build_job(task)
    assert task == before
    pod_spec(job)["containers"][0]["image"] = "changed"
    job["metadata"]["labels"]["team"] = "blue"
    job["metadata"]["annotations"]["note"] = "changed"
    assert task == before


@pytest.mark.parametrize(
    ("spec_changes", "expected"),
    [
        ({"deadlineAt": "2024-01-01T00:00:00Z"}, "2024-01-01T00:00:00Z"),
        ({"deadlineAt": "2024-06-30T23:30:00-01:00"}, "2024-07-01T00:30:00Z"),
        ({"deadlineAt": "2024-01-01T00:00:00.250000Z"}, "2024-01-01T00:00:00.250000Z"),
        ({"deadlineAt": None}, "2024-03-04T05:06:07Z"),
    ],
    ids=["utc", "offset-converted-to-utc", "fraction-kept", "manual-task-uses-creation-time"],
)
def test_deadline_variable(spec_changes: dict[str, Any], expected: str) -> None:
    container = pod_spec(build_job(make_task(**spec_changes)))["containers"][0]
    assert env_of(container)["KADENCE_DEADLINE_AT"] == expected


def test_task_without_any_time_is_refused() -> None:
    task = make_task(deadlineAt=None)
    del task["metadata"]["creationTimestamp"]
    with pytest.raises(ValueError, match="deadlineAt"):
        build_job(task)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "{}"),
        ({"b": 1, "a": "é"}, '{"a":"é","b":1}'),
        ({"x": "y" * (MAX_DATA_BYTES - 8)}, '{"x":"' + "y" * (MAX_DATA_BYTES - 8) + '"}'),
    ],
    ids=["empty", "sorted-compact-utf8", "exactly-at-the-limit"],
)
def test_task_data_json(data: dict[str, Any], expected: str) -> None:
    assert task_data_json(data) == expected


@pytest.mark.parametrize(
    ("data", "size"),
    [
        ({"x": "y" * (MAX_DATA_BYTES - 7)}, MAX_DATA_BYTES + 1),
        ({"x": "é" * (MAX_DATA_BYTES // 2)}, MAX_DATA_BYTES + 8),
    ],
    ids=["one-byte-over", "counted-in-utf8-bytes-not-characters"],
)
def test_task_data_too_large(data: dict[str, Any], size: int) -> None:
    with pytest.raises(DataTooLarge) as raised:
        task_data_json(data)
    assert raised.value.size == size
    assert str(size) in str(raised.value)
    assert str(MAX_DATA_BYTES) in str(raised.value)


def test_build_job_refuses_data_too_large() -> None:
    with pytest.raises(DataTooLarge):
        build_job(make_task(data={"x": "y" * MAX_DATA_BYTES}))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00Z"),
        (datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "2024-01-01T00:00:00Z"),
        (datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC), "2024-01-01T00:00:00.000005Z"),
    ],
    ids=["utc", "offset", "microseconds"],
)
def test_rfc3339(moment: datetime, expected: str) -> None:
    assert rfc3339(moment) == expected


def test_the_job_is_controlled_by_its_task() -> None:
    assert controller_uid(build_job(make_task())) == "uid-1"


def test_read_only_mappings_are_accepted() -> None:
    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({key: frozen(item) for key, item in value.items()})
        if isinstance(value, list):
            return tuple(frozen(item) for item in value)
        return value

    assert build_job(frozen(make_task())) == build_job(make_task())


TRICKY_DATA = {
    "ref": "$(HOME) and $(KADENCE_TASK_NAME)",
    "escaped": "$$ and $$(HOME)",
    "lone": "$ at the end $",
    "unclosed": "$(never closed",
    "quotes": "\"double\" and 'single'",
    "lines": "one\ntwo\r\nthree",
    "text": "ünïcødé ✓ 日本",
}


@pytest.mark.parametrize("value", [*TRICKY_DATA.values(), "", "$", "$$", "$()", "$(A)$(B)"])
def test_kubernetes_expansion_of_the_data_gives_back_the_data(value: str) -> None:
    """The kubelet expands `$(VAR)` and `$$` in env values; the data must survive it."""
    task = make_task()
    task["spec"]["data"] = {"v": value}
    container = pod_spec(build_job(task))["containers"][0]
    defined = {"HOME": "/root"}
    for var in container["env"]:
        if var["name"] == "KADENCE_TASK_DATA":
            seen = expand(var["value"], defined)
            break
        defined[var["name"]] = expand(var["value"], defined)
    assert json.loads(seen) == {"v": value}


@given(st.dictionaries(st.text(max_size=5), st.text(alphabet='$()AB \n"é', max_size=12)))
@settings(max_examples=300, deadline=None)
def test_any_data_survives_kubernetes_expansion(data: dict[str, str]) -> None:
    task = make_task()
    task["spec"]["data"] = data
    env = pod_spec(build_job(task))["containers"][0]["env"]
    value = next(var["value"] for var in env if var["name"] == "KADENCE_TASK_DATA")
    assert expand(value, {"A": "x", "B": "y", "HOME": "/root"}) == task_data_json(data)
