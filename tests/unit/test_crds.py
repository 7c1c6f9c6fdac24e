"""The CRDs in crds/: current with the models, structural, documented, true to docs/resources.md."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from kadence import crdgen
from kadence.models import ScheduleSpec, ScheduleStatus, TaskSpec, TaskStatus

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
FILES = {"Schedule": "schedules.kadence.dev.yaml", "Task": "tasks.kadence.dev.yaml"}
MODELS: dict[str, dict[str, type[BaseModel]]] = {
    "Schedule": {"spec": ScheduleSpec, "status": ScheduleStatus},
    "Task": {"spec": TaskSpec, "status": TaskStatus},
}

SCHEMA_KEYWORDS = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
PYTHON_TYPES = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}

CONTRACT = {
    "Schedule": [
        "spec.schedulerId",
        "spec.schedule",
        "spec.timeZone",
        "spec.interval",
        "spec.enabled",
        "spec.priority",
        "spec.hash",
        "spec.data",
        "spec.jobTemplate.metadata",
        "spec.jobTemplate.spec",
        "spec.concurrencyPolicy",
        "spec.bufferLimit",
        "spec.startingDeadlineSeconds",
        "spec.missedRunPolicy",
        "spec.missedRunLimit",
        "spec.historyLimit",
        "spec.successfulTasksHistoryLimit",
        "spec.failedTasksHistoryLimit",
        "status.deadlineAt",
        "status.lastScheduledAt",
        "status.lastSuccessfulAt",
        "status.lastFailedAt",
        "status.active",
        "status.counts.created",
        "status.counts.completed",
        "status.counts.failed",
        "status.counts.cancelled",
        "status.counts.skipped",
        "status.counts.missed",
        "status.history[].task",
        "status.history[].deadlineAt",
        "status.history[].phase",
        "status.history[].startedAt",
        "status.history[].finishedAt",
        "status.history[].result",
        "status.lastHandledRunRequest",
        "status.conditions[].type",
        "status.observedGeneration",
    ],
    "Task": [
        "spec.schedulerId",
        "spec.priority",
        "spec.hash",
        "spec.data",
        "spec.jobTemplate.metadata",
        "spec.jobTemplate.spec",
        "spec.concurrencyPolicy",
        "spec.scheduleRef.name",
        "spec.deadlineAt",
        "status.phase",
        "status.queuedAt",
        "status.dispatchedAt",
        "status.startedAt",
        "status.finishedAt",
        "status.jobName",
        "status.message",
        "status.conditions[].type",
        "status.attempts",
        "status.result",
        "status.claim.holder",
        "status.claim.user",
        "status.claim.leaseSeconds",
        "status.claim.requestedAt",
        "status.claim.claimedAt",
        "status.claim.renewedAt",
        "status.claim.startedAt",
        "status.claim.outcome",
        "status.claim.message",
        "status.claim.result",
        "status.claim.finishedAt",
    ],
}
PHASES = ["Pending", "Queued", "Dispatched", "Running", "Completed", "Failed", "Cancelled"]


def load(kind: str) -> dict[str, Any]:
    return yaml.safe_load((CRD_DIR / FILES[kind]).read_text())


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return only


def root_schema(kind: str) -> dict[str, Any]:
    return version(load(kind))["schema"]["openAPIV3Schema"]


def node_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at a dotted path, where `name[]` steps into the items of a list."""
    node = schema
    for part in path.split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}[]")


@pytest.fixture(params=sorted(FILES))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_committed_crds_are_generated_from_the_models() -> None:
    generated = crdgen.generate()
    assert sorted(generated) == sorted(FILES.values())
    for name, text in generated.items():
        assert (CRD_DIR / name).read_text() == text, (
            f"crds/{name} is stale: run `python -m kadence.crdgen`"
        )


def test_check_reports_drift_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().err
    assert crdgen.main([str(tmp_path)]) == 0
    assert crdgen.main(["--check", str(tmp_path)]) == 0
    path = tmp_path / FILES["Task"]
    path.write_text(path.read_text().replace("tsk", "tk"))
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: differs" in err
    assert "+    - tsk" in err


def test_models_without_a_structural_form_are_refused() -> None:
    class Loose(BaseModel):
        value: int | str

    with pytest.raises(ValueError, match="anyOf"):
        crdgen.structural_schema(Loose.model_json_schema())


def test_names_scope_and_subresources(kind: str) -> None:
    crd = load(kind)
    plural = f"{kind.lower()}s"
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.kadence.dev"
    spec = crd["spec"]
    assert spec["group"] == "kadence.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": [{"Schedule": "sched", "Task": "tsk"}[kind]],
        "categories": ["kadence"],
    }
    served = version(crd)
    assert served["name"] == "v1alpha1"
    assert served["served"] is True
    assert served["storage"] is True
    assert served["subresources"] == {"status": {}}


def test_schema_is_structural(kind: str) -> None:
    root = root_schema(kind)
    assert root["properties"]["metadata"] == {"type": "object"}
    for path, node in walk(root):
        where = path or "<root>"
        assert set(node) <= SCHEMA_KEYWORDS, f"{where}: {set(node) - SCHEMA_KEYWORDS}"
        free_form = node.get("x-kubernetes-preserve-unknown-fields") is True
        assert node.get("type") in TYPES or free_form, f"{where}: no type"
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{where}: array without items"
        if "properties" in node:
            assert node["type"] == "object", where
            assert "additionalProperties" not in node, where
        for name in node.get("required", []):
            assert name in node.get("properties", {}), f"{where}: required {name} is undeclared"
        if "enum" in node:
            assert all(isinstance(v, PYTHON_TYPES[node["type"]]) for v in node["enum"]), where
        if "x-kubernetes-list-map-keys" in node:
            assert node["x-kubernetes-list-type"] == "map", where
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"])


def test_every_property_is_described(kind: str) -> None:
    root = root_schema(kind)
    assert root.get("description")
    for path, node in walk(root):
        if path and not path.endswith("[]") and path != "metadata":
            assert node.get("description"), f"{kind} {path} has no description"


def defaults(node: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    if "default" in node:
        yield path, node["default"]
    for name, child in node.get("properties", {}).items():
        yield from defaults(child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from defaults(node["items"], (*path, "[]"))


def unwrap(annotation: Any) -> Any:
    """The model or list element type inside `X | None` and `list[X]`."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    return annotation


def field_at(model: type[BaseModel], path: tuple[str, ...]) -> FieldInfo:
    by_alias = {field.alias or name: field for name, field in model.model_fields.items()}
    field = by_alias[path[0]]
    rest = [part for part in path[1:] if part != "[]"]
    if not rest:
        return field
    return field_at(unwrap(field.annotation), tuple(rest))


def test_defaults_round_trip_through_the_models(kind: str) -> None:
    root = root_schema(kind)
    found = 0
    for part, model in MODELS[kind].items():
        for path, default in defaults(root["properties"][part]):
            field = field_at(model, path)
            adapter = TypeAdapter(field.annotation)
            parsed = adapter.validate_python(default)
            assert adapter.dump_python(parsed, mode="json", by_alias=True) == default, path
            model_default = field.get_default(call_default_factory=True)
            assert adapter.dump_python(model_default, mode="json") == default, path
            found += 1
    assert found


@pytest.mark.parametrize(
    ("kind", "path"), [(kind, path) for kind, paths in CONTRACT.items() for path in paths]
)
def test_contract_fields_exist(kind: str, path: str) -> None:
    assert node_at(root_schema(kind), path)


def test_contract_details() -> None:
    schedule = root_schema("Schedule")
    spec = schedule["properties"]["spec"]
    assert spec["required"] == ["schedulerId"], "a pull queue's schedule has no jobTemplate"
    assert {name: node.get("default") for name, node in spec["properties"].items()} == {
        "schedulerId": None,
        "schedule": None,
        "schedules": None,
        "timeZone": "UTC",
        "startAt": None,
        "endAt": None,
        "runLimit": None,
        "interval": None,
        "enabled": True,
        "suspendReason": None,
        "priority": 0,
        "hash": None,
        "data": None,
        "jobTemplate": None,
        "concurrencyPolicy": "Forbid",
        "bufferLimit": 10,
        "startingDeadlineSeconds": None,
        "missedRunPolicy": "RunLatest",
        "missedRunLimit": 10,
        "historyLimit": 10,
        "successfulTasksHistoryLimit": 3,
        "failedTasksHistoryLimit": 1,
        "backfillLimit": 100,
        "suspendAfterFailures": None,
    }
    policies = ["Forbid", "Allow", "Replace", "BufferOne", "BufferAll"]
    assert spec["properties"]["concurrencyPolicy"]["enum"] == policies
    assert (
        spec["properties"]["bufferLimit"]["minimum"],
        spec["properties"]["bufferLimit"]["maximum"],
    ) == (1, 1000)
    assert spec["properties"]["missedRunPolicy"]["enum"] == ["RunLatest", "Skip", "RunAll"]
    assert spec["properties"]["hash"]["maxLength"] == 32
    assert node_at(schedule, "status.history[].phase")["enum"] == PHASES
    assert node_at(schedule, "status.deadlineAt")["format"] == "date-time"
    task = root_schema("Task")
    assert task["properties"]["spec"]["required"] == ["schedulerId"]
    claim = node_at(task, "status.claim")
    assert claim["required"] == ["holder", "user", "leaseSeconds", "requestedAt"]
    assert (
        claim["properties"]["leaseSeconds"]["minimum"],
        claim["properties"]["leaseSeconds"]["maximum"],
    ) == (5, 3600)
    assert claim["properties"]["outcome"]["enum"] == ["Completed", "Failed"]
    assert claim["properties"]["result"]["maxLength"] == 4096
    assert claim["properties"]["message"]["maxLength"] == 1024
    assert node_at(task, "status.result")["maxLength"] == 4096
    assert node_at(schedule, "status.history[].result")["maxLength"] == 4096
    assert node_at(task, "status.phase")["enum"] == PHASES
    assert node_at(task, "spec.concurrencyPolicy")["enum"] == policies
    assert "default" not in node_at(task, "spec.concurrencyPolicy")
    for root in (schedule, task):
        assert root["required"] == ["spec"]
        for part in ("data", "jobTemplate.metadata", "jobTemplate.spec"):
            assert node_at(root, f"spec.{part}")["x-kubernetes-preserve-unknown-fields"] is True
        assert node_at(root, "spec.jobTemplate.spec")["required"] == ["template"]
        conditions = node_at(root, "status.conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def rules(node: dict[str, Any]) -> dict[str, str]:
    return {rule["rule"]: rule["message"] for rule in node.get("x-kubernetes-validations", [])}


def test_validation_rules() -> None:
    schedule = root_schema("Schedule")
    assert "size(self.metadata.name) <= 52" in rules(schedule)
    spec_rules = rules(schedule["properties"]["spec"])
    assert (
        "[has(self.schedule), has(self.schedules), has(self.interval)].filter(x, x).size() == 1"
        in spec_rules
    )
    assert "!has(self.startAt) || !has(self.endAt) || self.startAt <= self.endAt" in spec_rules
    assert "self.matches('[1-9]')" in rules(node_at(schedule, "spec.interval"))
    assert "size(self.metadata.name) <= 63" in rules(root_schema("Task"))
    for kind in FILES:
        for path, node in walk(root_schema(kind)):
            for rule, message in rules(node).items():
                assert message.strip(), f"{kind} {path}: {rule} has no message"


def test_printer_columns(kind: str) -> None:
    columns = version(load(kind))["additionalPrinterColumns"]
    names = [column["name"] for column in columns if not column.get("priority")]
    assert (
        names
        == {
            "Schedule": [
                "Scheduler",
                "Schedule",
                "Schedules",
                "Interval",
                "Enabled",
                "Ready",
                "Healthy",
                "Next",
                "Last",
                "Active",
                "Age",
            ],
            "Task": ["Scheduler", "Priority", "Phase", "Schedule", "Age"],
        }[kind]
    )
    root = root_schema(kind)
    for column in columns:
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}
        assert column["description"]
        path = column["jsonPath"].removeprefix(".")
        if path.startswith("status.conditions[?"):
            assert node_at(root, "status.conditions[].status"), column
        elif path != "metadata.creationTimestamp":
            assert node_at(root, path), column
