"""The CustomResourceDefinitions in `crds/`, generated from the models in `kadence.models`.

`python -m kadence.crdgen [--check] [OUTDIR]` writes them (default: the repository's `crds/`);
with `--check` it writes nothing and fails when the files differ from what the models make.
The models stay the single source of truth: the API server's schema, defaults and `kubectl
explain` text all come from them, and what JSON Schema cannot say (CEL rules, list maps,
printer columns) is declared here.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from kadence import GROUP, VERSION
from kadence.models import ScheduleSpec, ScheduleStatus, TaskSpec, TaskStatus
from kadence.naming import MAX_SCHEDULE_NAME_LENGTH, TASK_SUFFIX_LENGTH

_HISTORY_LIMIT = ScheduleSpec.model_fields["history_limit"].default
"""spec.historyLimit's default, for the CEL rule that reads it when it is not set."""

Schema = dict[str, Any]

DEFAULT_OUTDIR = Path(__file__).resolve().parents[2] / "crds"
CATEGORY = "kadence"
SCHEDULE_NAME_MAX = MAX_SCHEDULE_NAME_LENGTH
TASK_NAME_MAX = MAX_SCHEDULE_NAME_LENGTH + TASK_SUFFIX_LENGTH

_DROPPED_KEYWORDS = frozenset({"title"})
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
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
)
_KEPT_KEYWORDS = frozenset(key for key in _KEY_ORDER if not key.startswith("x-kubernetes-"))
_LIST_MAP_KEYS = {"conditions": ["type"]}

_JOB_SPEC_EXTRA: Schema = {
    "required": ["template"],
    "properties": {
        "template": {
            "description": "The pod template of each Job (core/v1 PodTemplateSpec).",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    },
}

_SCHEDULE_EXTRAS: dict[str, Schema] = {
    "": {
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {SCHEDULE_NAME_MAX}",
                "message": (
                    f"metadata.name may have at most {SCHEDULE_NAME_MAX} characters: a "
                    "Schedule's tasks and their Jobs are named after it with a suffix of "
                    f"{TASK_NAME_MAX - SCHEDULE_NAME_MAX} characters, and Job names may "
                    f"have at most {TASK_NAME_MAX}"
                ),
            }
        ]
    },
    "spec": {
        "x-kubernetes-validations": [
            {
                "rule": (
                    "[has(self.schedule), has(self.schedules), has(self.interval)]"
                    ".filter(x, x).size() == 1"
                ),
                "message": (
                    "set exactly one of schedule (a cron expression), schedules (a list of "
                    "them) and interval (a duration such as 15m)"
                ),
            },
            {
                "rule": "!has(self.startAt) || !has(self.endAt) || self.startAt <= self.endAt",
                "message": "startAt must not be after endAt",
            },
            {
                "rule": (
                    "!has(self.suspendAfterFailures) || self.suspendAfterFailures <= "
                    f"(has(self.historyLimit) ? self.historyLimit : {_HISTORY_LIMIT})"
                ),
                "message": (
                    "suspendAfterFailures must be at most historyLimit "
                    f"(default {_HISTORY_LIMIT}): the failures in a row are read from "
                    "status.history"
                ),
            },
        ]
    },
    "spec.interval": {
        "x-kubernetes-validations": [
            {
                "rule": "self.matches('[1-9]')",
                "message": "interval must be at least 1s, such as 90s, 15m, 24h or 1h30m",
            }
        ]
    },
    "spec.jobTemplate.spec": _JOB_SPEC_EXTRA,
}

_TASK_EXTRAS: dict[str, Schema] = {
    "": {
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {TASK_NAME_MAX}",
                "message": (
                    f"metadata.name may have at most {TASK_NAME_MAX} characters, "
                    "because the Task's Job has the same name"
                ),
            }
        ]
    },
    "spec.jobTemplate.spec": _JOB_SPEC_EXTRA,
}

_ROOT_PROPERTIES: Schema = {
    "apiVersion": {
        "description": (
            "APIVersion defines the versioned schema of this representation of an object. "
            "Servers should convert recognized schemas to the latest internal value, and may "
            "reject unrecognized values."
        ),
        "type": "string",
    },
    "kind": {
        "description": (
            "Kind is a string value representing the REST resource this object represents. "
            "Servers may infer this from the endpoint the client submits requests to."
        ),
        "type": "string",
    },
    "metadata": {"type": "object"},
}

_AGE_COLUMN: Schema = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "When the object was created.",
}


def structural_schema(schema: Schema) -> Schema:
    """Turn a pydantic JSON schema into a Kubernetes structural schema.

    The API server only accepts schemas where every node states one type and nothing is
    referenced: `$ref`s are inlined, `X | None` becomes plain X (absent means None), titles go.
    A construct with no structural equivalent raises ValueError, so a model change that the CRD
    cannot express fails here instead of producing a schema that silently differs.
    """
    defs = schema.get("$defs", {})
    root = {key: value for key, value in schema.items() if key != "$defs"}
    return _convert(root, defs, "")


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").removeprefix("#/$defs/")]
        return _convert({**target, **node}, defs, path)
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"{path or '.'}: anyOf of several types is not structural")
        return _convert({**options[0], **node}, defs, path)
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in node and node["default"] is None:
        del node["default"]

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key not in _KEPT_KEYWORDS and not key.startswith("x-kubernetes-"):
            raise ValueError(f"{path or '.'}: {key} has no structural equivalent")
        if key == "properties":
            out[key] = {
                name: _convert(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, defs, f"{path}[]")
        else:
            out[key] = copy.deepcopy(value)
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise ValueError(f"{path or '.'}: no type")
    return out


def _mark_list_maps(node: Schema) -> None:
    """Make condition lists maps keyed by type, so server-side apply merges them per type."""
    for name, child in node.get("properties", {}).items():
        keys = _LIST_MAP_KEYS.get(name)
        if keys and child.get("type") == "array":
            child["x-kubernetes-list-type"] = "map"
            child["x-kubernetes-list-map-keys"] = keys
        _mark_list_maps(child)
    if isinstance(node.get("items"), dict):
        _mark_list_maps(node["items"])


def _node_at(schema: Schema, path: str) -> Schema:
    node = schema
    for name in filter(None, path.split(".")):
        node = node["properties"][name]
    return node


def _add(schema: Schema, extras: dict[str, Schema]) -> None:
    """Add what JSON Schema cannot say; refuse to overwrite what the models already say."""
    for path, extra in extras.items():
        node = _node_at(schema, path)
        clash = node.keys() & extra.keys()
        if clash:
            raise ValueError(f"{path or '.'}: the models already set {sorted(clash)}")
        node.update(copy.deepcopy(extra))


def _ordered(node: Schema) -> Schema:
    """Keywords in a fixed, readable order; properties stay in the models' field order."""

    def rank(key: str) -> tuple[int, str]:
        return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)

    out: Schema = {}
    for key in sorted(node, key=rank):
        value = node[key]
        if key == "properties":
            value = {name: _ordered(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = _ordered(value)
        out[key] = value
    return out


def _object_schema(
    description: str, spec: type[BaseModel], status: type[BaseModel], extras: dict[str, Schema]
) -> Schema:
    schema: Schema = {
        "description": description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            **copy.deepcopy(_ROOT_PROPERTIES),
            "spec": structural_schema(spec.model_json_schema(by_alias=True)),
            "status": structural_schema(status.model_json_schema(by_alias=True)),
        },
    }
    _mark_list_maps(schema)
    _add(schema, extras)
    return _ordered(schema)


def _column(
    schema: Schema, name: str, json_path: str, column_type: str = "", priority: int = 0
) -> Schema:
    """A printer column whose type and help text come from the schema node it shows."""
    node = _node_at(schema, json_path)
    if not column_type:
        column_type = "date" if node.get("format") == "date-time" else node["type"]
    column: Schema = {
        "name": name,
        "type": column_type,
        "jsonPath": json_path,
        "description": node["description"],
    }
    if priority:
        column["priority"] = priority
    return column


def _condition_column(type_: str, description: str) -> Schema:
    """A printer column with the status of one condition, as Flux and others show READY."""
    return {
        "name": type_,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{type_}")].status',
        "description": description,
    }


def _crd(kind: str, plural: str, short_name: str, schema: Schema, columns: list[Schema]) -> Schema:
    """A CRD; Age comes last of the default columns, before those shown only with -o wide."""
    narrow = [column for column in columns if not column.get("priority")]
    wide = [column for column in columns if column.get("priority")]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [*narrow, _AGE_COLUMN, *wide],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def schedule_crd() -> Schema:
    """The Schedule CRD."""
    schema = _object_schema(
        "Recurring work: at each deadline of a cron schedule or an interval, a Task joins its "
        "scheduler's queue and runs as a Job, or is claimed by a runner in a pull queue.",
        ScheduleSpec,
        ScheduleStatus,
        _SCHEDULE_EXTRAS,
    )
    columns = [
        _column(schema, "Scheduler", ".spec.schedulerId"),
        _column(schema, "Schedule", ".spec.schedule"),
        _column(schema, "Schedules", ".spec.schedules", column_type="string"),
        _column(schema, "Interval", ".spec.interval"),
        _column(schema, "Enabled", ".spec.enabled"),
        _condition_column("Ready", "Whether a Task is made at each deadline."),
        _condition_column("Healthy", "False after a failed run or a deadline without a Task."),
        # A `date` column shows a future instant as <invalid>, so the next deadline is a string.
        _column(schema, "Next", ".status.deadlineAt", column_type="string"),
        _column(schema, "Last", ".status.lastScheduledAt"),
        _column(schema, "Active", ".status.active", column_type="string"),
        # A list shows as JSON; -o wide adds the timing as the operator read it, joined by ", "
        # with the values H chose.
        _column(schema, "Timing", ".status.observedTiming", priority=1),
    ]
    return _crd("Schedule", "schedules", "sched", schema, columns)


def task_crd() -> Schema:
    """The Task CRD."""
    schema = _object_schema(
        "One run of a job: made by a Schedule at a deadline, or directly for a manual run; "
        "queued per scheduler in priority order, then run as a Job or, in a pull queue, "
        "claimed by a runner.",
        TaskSpec,
        TaskStatus,
        _TASK_EXTRAS,
    )
    columns = [
        _column(schema, "Scheduler", ".spec.schedulerId"),
        _column(schema, "Priority", ".spec.priority"),
        _column(schema, "Phase", ".status.phase"),
        _column(schema, "Schedule", ".spec.scheduleRef.name"),
        _column(schema, "Job", ".status.jobName", priority=1),
        _column(schema, "Deadline", ".spec.deadlineAt", priority=1),
        _column(schema, "Message", ".status.message", priority=1),
    ]
    return _crd("Task", "tasks", "tsk", schema, columns)


def render(crd: Schema) -> str:
    """One CRD as the YAML text that is committed."""
    header = (
        "# Generated by `python -m kadence.crdgen` from operator/kadence/models.py; do not edit.\n"
    )
    return header + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)


def generate() -> dict[str, str]:
    """File name to YAML text, for every CRD."""
    crds = [schedule_crd(), task_crd()]
    return {f"{crd['metadata']['name']}.yaml": render(crd) for crd in crds}


def stale_files(outdir: Path, files: dict[str, str]) -> list[str]:
    """Report lines for each file in `outdir` that is missing or differs from `files`."""
    report: list[str] = []
    for name, text in files.items():
        path = outdir / name
        if not path.exists():
            report.append(f"{path}: missing")
            continue
        current = path.read_text()
        if current == text:
            continue
        diff = list(
            difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{path} (on disk)",
                f"{path} (from the models)",
                lineterm="",
            )
        )
        added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
        report.append(f"{path}: differs, +{added} -{removed} lines")
        report.extend(diff[:60])
        if len(diff) > 60:
            report.append(f"... {len(diff) - 60} more diff lines")
    return report


def main(argv: list[str] | None = None) -> int:
    """Write the CRDs, or with --check report whether the committed ones are current."""
    parser = argparse.ArgumentParser(
        prog="python -m kadence.crdgen",
        description="Generate kadence's CustomResourceDefinitions from its models.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files differ from what the models generate",
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        default=DEFAULT_OUTDIR,
        help=f"folder of the CRD files (default: {DEFAULT_OUTDIR})",
    )
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        report = stale_files(args.outdir, files)
        if report:
            print("\n".join(report), file=sys.stderr)
            print("Regenerate with: python -m kadence.crdgen", file=sys.stderr)
            return 1
        return 0
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = args.outdir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
