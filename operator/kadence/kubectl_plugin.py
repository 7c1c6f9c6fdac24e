"""`kubectl kadence`: queues, next deadlines, runs, suspension, history and statistics.

A kubectl plugin (the `kubectl-kadence` executable). kubectl hands it every flag given
after `kadence` as it was typed, so it reads kubectl's own flags itself: `-n`, `-A`,
`--context`, `--kubeconfig` (and $KUBECONFIG), `--as`, `--as-group`, `--as-uid`,
`--request-timeout` and `-o json|yaml|wide`. This module only talks to the API server
and prints; what is shown is computed by `kadence.views` with the operator's own code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from kadence import GROUP, VERSION
from kadence.backfill import parse_backfill
from kadence.config import ConfigError, OperatorConfig, parse_config
from kadence.deadlines import parse_interval
from kadence.models import TaskPhase
from kadence.naming import (
    BACKFILL_ANNOTATION,
    BACKFILL_POLICY_ANNOTATION,
    RESUME_REQUEST_ANNOTATION,
    RUN_REQUEST_ANNOTATION,
    SCHEDULE_LABEL,
    TASK_LABEL,
    task_name_for_run_request,
)
from kadence.resources import phase_of
from kadence.views import (
    CONFIG_KEY,
    CONFIG_SELECTOR,
    choose_config,
    history_document,
    history_rows,
    next_document,
    next_note,
    next_view,
    queue_views,
    queues_document,
    recorded_problem,
    render_history,
    render_next,
    render_queues,
    render_stats,
    run_request_value,
    short_seconds,
    stats_document,
    task_stats,
)

PROG = "kubectl kadence"
OPERATOR_NAMESPACE = "kadence-system"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
Body = dict[str, Any]


class PluginError(Exception):
    """What went wrong, in one line for a person; the plugin exits non-zero."""


def warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr)


# -- the command line ---------------------------------------------------------------------


def _global_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """kubectl's flags, accepted before and after the verb (kubectl passes them through
    as typed); on a verb they override only when given."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "-n", "--namespace", default=default(None), help="the namespace (default: the context's)"
    )
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=default(False),
        help="every namespace (queue, stats)",
    )
    parser.add_argument("--context", default=default(None), help="the kubeconfig context to use")
    parser.add_argument(
        "--kubeconfig", default=default(None), help="the kubeconfig file (default: $KUBECONFIG)"
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("json", "yaml", "wide"),
        default=default(None),
        help="json, yaml, or wide (default: a table)",
    )
    parser.add_argument(
        "--as", dest="as_user", metavar="USER", default=default(None), help="impersonate USER"
    )
    parser.add_argument(
        "--as-group",
        action="append",
        metavar="GROUP",
        default=default(None),
        help="impersonate GROUP (once)",
    )
    parser.add_argument("--as-uid", metavar="UID", default=default(None), help="impersonate UID")
    parser.add_argument(
        "--request-timeout",
        metavar="DURATION",
        default=default("0"),
        help="give up on one API request after this long (30s, 1m; 0: never)",
    )


def _config_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-namespace",
        default=OPERATOR_NAMESPACE,
        metavar="NAMESPACE",
        help="where the operator's ConfigMap is (labelled app.kubernetes.io/part-of=kadence, "
        f"component=operator; default {OPERATOR_NAMESPACE})",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="kadence from kubectl: queues in the order they run, next deadlines, "
        "runs on request, suspension, history and statistics.",
    )
    _global_flags(top, top=True)
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=text, description=text)
        _global_flags(sub, top=False)
        return sub

    queue = verb(
        "queue",
        "the queues in the order their Tasks will run, and the capacity in use",
    )
    queue.add_argument("scheduler_id", nargs="?", metavar="SCHEDULER_ID", help="one queue only")
    queue.add_argument(
        "--capacity", type=_positive, help="the capacity to show (default: the operator's)"
    )
    _config_namespace(queue)

    nxt = verb("next", "the next deadlines of a Schedule, as the operator computes them")
    nxt.add_argument("schedule", metavar="SCHEDULE")
    nxt.add_argument(
        "--count", type=_positive, default=5, help="how many deadlines (a cron; default 5)"
    )

    run = verb("run", "run a Schedule now (the kadence.dev/run-requested-at annotation)")
    run.add_argument("schedule", metavar="SCHEDULE")
    run.add_argument("--wait", action="store_true", help="wait for the run to finish")
    run.add_argument(
        "--timeout",
        type=_duration,
        default=timedelta(minutes=10),
        metavar="DURATION",
        help="with --wait, give up after this long (default 10m)",
    )

    suspend = verb("suspend", "disable a Schedule: no deadline fires until it is resumed")
    suspend.add_argument("schedule", metavar="SCHEDULE")
    suspend.add_argument("--reason", help="why, for people (shown in the Ready condition)")

    resume = verb(
        "resume",
        "enable a Schedule again, clear its suspend reason, and resume it after failures",
    )
    resume.add_argument("schedule", metavar="SCHEDULE")

    backfill = verb(
        "backfill",
        "run the past deadlines of a cron Schedule from START to END (kadence.dev/backfill)",
    )
    backfill.add_argument("schedule", metavar="SCHEDULE")
    backfill.add_argument("start", metavar="START", help="RFC 3339 time, included")
    backfill.add_argument("end", metavar="END", help="RFC 3339 time, excluded")
    backfill.add_argument(
        "--allow",
        action="store_true",
        help="make every deadline regardless of concurrencyPolicy (kadence.dev/backfill-policy)",
    )

    history = verb("history", "the finished runs of a Schedule, newest first")
    history.add_argument("schedule", metavar="SCHEDULE")

    stats = verb("stats", "per queue: Tasks by phase, and lag and run-time percentiles")
    stats.add_argument("scheduler_id", nargs="?", metavar="SCHEDULER_ID", help="one queue only")
    _config_namespace(stats)
    return top


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1: {text!r}")
    return value


def _duration(text: str) -> timedelta:
    try:
        return parse_interval(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _request_timeout(text: str) -> float | None:
    """kubectl's --request-timeout: `0` for none, whole seconds, or a duration."""
    if text.isdigit():
        return float(text) or None
    try:
        return parse_interval(text).total_seconds()
    except ValueError as error:
        raise PluginError(f"--request-timeout: {error}") from error


# -- the API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the plugin's requests go and in which namespace, from the kubeconfig."""

    api: client.ApiClient
    namespace: str
    server: str


def connect(args: argparse.Namespace) -> Target:
    """The kubeconfig (`--kubeconfig`, else $KUBECONFIG, else ~/.kube/config) and context
    (`--context`, else its current one), or in-cluster credentials when there is no
    kubeconfig at all; the namespace from `-n`, else the context's, else `default`."""
    configuration = client.Configuration()
    path = args.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    namespace: str | None = None
    try:
        config.load_kube_config(
            config_file=path,
            context=args.context,
            client_configuration=configuration,
            persist_config=False,
        )
        contexts, current = config.list_kube_config_contexts(path)
        chosen = next((c for c in contexts if c.get("name") == args.context), None)
        namespace = ((chosen or current or {}).get("context") or {}).get("namespace")
    except ConfigException as error:
        in_cluster = not (args.kubeconfig or args.context) and SERVICE_ACCOUNT_NAMESPACE.exists()
        if not in_cluster:
            raise PluginError(_config_problem(str(error), path, args.context)) from None
        config.load_incluster_config(client_configuration=configuration)
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    api = client.ApiClient(configuration)
    if args.as_user:
        api.set_default_header("Impersonate-User", args.as_user)
    if args.as_group:
        if not args.as_user:
            raise PluginError("--as-group needs --as")
        if len(args.as_group) > 1:
            raise PluginError("--as-group may be given once")
        api.set_default_header("Impersonate-Group", args.as_group[0])
    if args.as_uid:
        api.set_default_header("Impersonate-Uid", args.as_uid)
    return Target(api, args.namespace or namespace or "default", str(configuration.host))


def _config_problem(message: str, path: str, context: str | None) -> str:
    if "No configuration found" in message:
        return f"no cluster: no kubeconfig at {path} (give --kubeconfig or set $KUBECONFIG)"
    if context and "context" in message.lower():
        return f'no cluster: context "{context}" is not in the kubeconfig {path}'
    return f"no cluster: {message}"


class Kube:
    """The calls the plugin makes, each turning a failure into a one-line PluginError."""

    def __init__(self, target: Target, request_timeout: float | None) -> None:
        self.target = target
        self.namespace = target.namespace
        self._custom = client.CustomObjectsApi(target.api)
        self._core = client.CoreV1Api(target.api)
        self._batch = client.BatchV1Api(target.api)
        self._timeout = request_timeout

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._timeout is not None:
            kwargs["_request_timeout"] = self._timeout
        try:
            return fn(*args, **kwargs)
        except ApiException as error:
            raise ApiFailure(error) from None
        except (HTTPError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise PluginError(
                f"cannot reach the cluster at {self.target.server}: {reason}"
            ) from None

    def get_schedule(self, name: str) -> Body:
        try:
            found: Body = self._call(
                self._custom.get_namespaced_custom_object,
                GROUP, VERSION, self.namespace, "schedules", name,
            )  # fmt: skip
        except ApiFailure as failure:
            raise failure.explained("schedule", name, self.namespace) from None
        return found

    def patch_schedule(self, name: str, patch: Body) -> Body:
        try:
            patched: Body = self._call(
                self._custom.patch_namespaced_custom_object,
                GROUP, VERSION, self.namespace, "schedules", name, patch,
            )  # fmt: skip
        except ApiFailure as failure:
            raise failure.explained("schedule", name, self.namespace) from None
        return patched

    def get_task(self, name: str) -> Body | None:
        try:
            found: Body = self._call(
                self._custom.get_namespaced_custom_object,
                GROUP, VERSION, self.namespace, "tasks", name,
            )  # fmt: skip
        except ApiFailure as failure:
            if failure.status == 404 and failure.names(name):
                return None
            raise failure.explained("task", name, self.namespace) from None
        return found

    def list_tasks(self, namespace: str | None, selector: str = "") -> list[Body]:
        try:
            if namespace is None:
                listed = self._call(
                    self._custom.list_cluster_custom_object,
                    GROUP, VERSION, "tasks", label_selector=selector,
                )  # fmt: skip
            else:
                listed = self._call(
                    self._custom.list_namespaced_custom_object,
                    GROUP, VERSION, namespace, "tasks", label_selector=selector,
                )  # fmt: skip
        except ApiFailure as failure:
            raise failure.explained("tasks", None, namespace) from None
        items: list[Body] = listed.get("items", [])
        for item in items:  # a cluster-wide list leaves them out of each item
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", "Task")
        return items

    def list_jobs(self, namespace: str | None) -> list[Body]:
        """The Jobs the operator watches (labelled with their Task), as the API's JSON."""
        if namespace is None:
            listed = self._call(self._batch.list_job_for_all_namespaces, label_selector=TASK_LABEL)
        else:
            listed = self._call(
                self._batch.list_namespaced_job, namespace, label_selector=TASK_LABEL
            )
        plain = self.target.api.sanitize_for_serialization(listed.items)
        return list(plain)

    def list_configmaps(self, namespace: str) -> list[Body]:
        listed = self._call(
            self._core.list_namespaced_config_map, namespace, label_selector=CONFIG_SELECTOR
        )
        return list(self.target.api.sanitize_for_serialization(listed.items))


class ApiFailure(PluginError):
    """A request the API server answered with an error."""

    def __init__(self, error: ApiException) -> None:
        self.status = int(error.status or 0)
        self.reason = str(error.reason or "")
        self.body: Body = {}
        try:
            parsed = json.loads(error.body or "")
            if isinstance(parsed, dict):
                self.body = parsed
        except (TypeError, ValueError):
            pass
        message = str(self.body.get("message") or self.reason or f"HTTP {self.status}")
        super().__init__(" ".join(message.split()))

    def names(self, name: str) -> bool:
        """Whether a 404 is about that object (not about a resource type the API lacks)."""
        return (self.body.get("details") or {}).get("name") == name

    def explained(self, kind: str, name: str | None, namespace: str | None) -> PluginError:
        where = f'in namespace "{namespace}"' if namespace else "in any namespace"
        if self.status == 404 and name is not None and self.names(name):
            return PluginError(f'{kind} "{name}" not found {where}')
        if self.status == 404:
            return PluginError(
                f"the server has no {GROUP} resources: are the kadence CRDs installed? ({self})"
            )
        if self.status == 401:
            return PluginError(f"unauthorized: the server refused the credentials ({self})")
        return PluginError(str(self))


def _output(args: argparse.Namespace, document: Any, text: str) -> None:
    if args.output == "json":
        print(json.dumps(document, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(document, sort_keys=False), end="")
    elif text:
        print(text)


def _now() -> datetime:
    return datetime.now(UTC)


# -- reading what a queue needs -----------------------------------------------------------


def operator_config(kube: Kube, namespace: str) -> tuple[OperatorConfig | None, str | None]:
    """The operator's configuration from its ConfigMap, or None and why it is unknown."""
    unknown = "capacities unknown and no queue taken as shared (--config-namespace, --capacity)"
    try:
        chosen = choose_config(kube.list_configmaps(namespace))
    except ApiFailure as failure:
        return None, (
            f"cannot read the operator's configuration in namespace {namespace} ({failure}): "
            f"{unknown}"
        )
    if chosen is None:
        return None, f"no kadence ConfigMap in namespace {namespace}: {unknown}"
    name = f"configmap {namespace}/{chosen['metadata']['name']}"
    try:
        return parse_config(chosen["data"][CONFIG_KEY], name), None
    except ConfigError as error:
        return None, f"{error}: {unknown}"


def _queue_objects(
    kube: Kube,
    args: argparse.Namespace,
    configuration: OperatorConfig | None,
    scheduler_id: str | None,
    *,
    jobs: bool,
) -> tuple[list[Body], list[Body], list[str] | None]:
    """The Tasks (and Jobs) of the namespace, and of the namespaces sharing a queue with it;
    or of every namespace with -A. Returns them and the namespaces to show (None: all)."""
    if args.all_namespaces:
        return kube.list_tasks(None), _jobs(kube, None) if jobs else [], None
    namespace = kube.namespace
    tasks = kube.list_tasks(namespace)
    found = _jobs(kube, namespace) if jobs else []
    shared = configuration.queues.shared if configuration is not None else {}
    others = sorted(
        {
            other
            for sid, queue in shared.items()
            if namespace in queue.namespaces and scheduler_id in (None, sid)
            for other in queue.namespaces
            if other != namespace
        }
    )
    for other in others:
        try:
            tasks += kube.list_tasks(other)
            found += _jobs(kube, other) if jobs else []
        except PluginError as error:
            warn(f"a shared queue is shown in part: namespace {other}: {error}")
    return tasks, found, [namespace]


def _jobs(kube: Kube, namespace: str | None) -> list[Body]:
    try:
        return kube.list_jobs(namespace)
    except ApiFailure as failure:
        warn(f"cannot list Jobs ({failure}): slots held by Jobs of deleted Tasks are not counted")
        return []


def _where(args: argparse.Namespace, kube: Kube) -> str:
    return "any namespace" if args.all_namespaces else f"namespace {kube.namespace}"


# -- the verbs ----------------------------------------------------------------------------


def do_queue(kube: Kube, args: argparse.Namespace) -> int:
    configuration, unknown = operator_config(kube, args.config_namespace)
    tasks, jobs, namespaces = _queue_objects(
        kube, args, configuration, args.scheduler_id, jobs=True
    )
    if unknown is not None and args.capacity is None:
        warn(unknown)
    now = _now()
    views = queue_views(
        tasks,
        jobs,
        configuration,
        capacity=args.capacity,
        scheduler_id=args.scheduler_id,
        namespaces=namespaces,
    )
    if not views and args.output not in ("json", "yaml"):
        print(f"No unfinished Tasks in {_where(args, kube)}.", file=sys.stderr)
        return 0
    _output(
        args, queues_document(views, now), render_queues(views, now, wide=args.output == "wide")
    )
    return 0


def do_next(kube: Kube, args: argparse.Namespace) -> int:
    schedule = kube.get_schedule(args.schedule)
    tasks = kube.list_tasks(kube.namespace, f"{SCHEDULE_LABEL}={args.schedule}")
    now = _now()
    view = next_view(schedule, tasks, now, args.count)
    if view.problem is not None:
        if args.output in ("json", "yaml"):
            _output(args, next_document(view), "")
        raise PluginError(next_note(view) or view.problem)
    _output(args, next_document(view), render_next(view, now))
    return 0


def do_run(kube: Kube, args: argparse.Namespace) -> int:
    schedule = kube.get_schedule(args.schedule)
    annotations = schedule["metadata"].get("annotations") or {}
    handled = (schedule.get("status") or {}).get("lastHandledRunRequest")
    value = run_request_value(_now(), (annotations.get(RUN_REQUEST_ANNOTATION), handled))
    kube.patch_schedule(
        args.schedule, {"metadata": {"annotations": {RUN_REQUEST_ANNOTATION: value}}}
    )
    task = task_name_for_run_request(args.schedule, value)
    request = {
        "namespace": kube.namespace,
        "schedule": args.schedule,
        "runRequestedAt": value,
        "task": task,
    }
    if not args.wait:
        _output(args, request, f"task.{GROUP}/{task} requested")
        return 0
    if args.output is None or args.output == "wide":
        print(f"task.{GROUP}/{task} requested", flush=True)
    outcome = wait_for_run(kube, args.schedule, task, value, args.timeout)
    _output(args, {**request, **outcome}, outcome_line(task, outcome))
    return 0 if outcome["phase"] == TaskPhase.COMPLETED else 1


def wait_for_run(
    kube: Kube, schedule_name: str, task_name: str, value: str, timeout: timedelta
) -> Body:
    """Poll the Task until it finishes; it may be gone already (pruned at once by a history
    limit of 0), then its Schedule's history says how it ended."""
    end = time.monotonic() + timeout.total_seconds()
    seen: str | None = None
    while True:
        task = kube.get_task(task_name)
        if task is not None:
            phase = phase_of(task)
            status = task.get("status") or {}
            if phase != seen and not phase.finished:
                seen = phase
                message = f" ({status['message']})" if status.get("message") else ""
                print(f"task.{GROUP}/{task_name} {phase}{message}", file=sys.stderr, flush=True)
            if phase.finished:
                return {
                    "phase": str(phase),
                    "message": status.get("message"),
                    "startedAt": status.get("startedAt"),
                    "finishedAt": status.get("finishedAt"),
                }
        else:
            schedule = kube.get_schedule(schedule_name)
            ended = _from_history(schedule, task_name)
            if ended is not None:
                return ended
            _refuse_if_unrunnable(schedule, value)
        if time.monotonic() > end:
            where = f"it is {seen}" if seen else "it does not exist yet"
            raise PluginError(
                f"timed out after {short_seconds(timeout.total_seconds())} waiting for task "
                f"{task_name}: {where}"
            )
        time.sleep(1)


def _from_history(schedule: Body, task_name: str) -> Body | None:
    for entry in (schedule.get("status") or {}).get("history") or ():
        if entry.get("task") == task_name:
            return {
                "phase": entry.get("phase"),
                "message": None,
                "startedAt": entry.get("startedAt"),
                "finishedAt": entry.get("finishedAt"),
            }
    return None


def _refuse_if_unrunnable(schedule: Body, value: str) -> None:
    """A Schedule whose spec the operator cannot use makes no run: say so instead of
    waiting out the timeout."""
    status = schedule.get("status") or {}
    problem = recorded_problem(schedule)
    if problem is not None:
        raise PluginError(
            f"schedule {schedule['metadata']['name']} makes no run while its spec is invalid: "
            f"{problem}"
        )
    annotation = (schedule["metadata"].get("annotations") or {}).get(RUN_REQUEST_ANNOTATION)
    if annotation != value and status.get("lastHandledRunRequest") != value:
        raise PluginError(
            f"the run request was replaced by another ({annotation}) before the operator "
            "acted on it"
        )


def outcome_line(task_name: str, outcome: Body) -> str:
    line = f"task.{GROUP}/{task_name} {outcome['phase']}"
    started, finished = outcome.get("startedAt"), outcome.get("finishedAt")
    if started and finished:
        took = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        line += f" in {short_seconds(took.total_seconds())}"
    if outcome["phase"] != TaskPhase.COMPLETED and outcome.get("message"):
        line += f": {outcome['message']}"
    return line


def do_suspend(kube: Kube, args: argparse.Namespace) -> int:
    patch = {"spec": {"enabled": False, "suspendReason": args.reason or None}}
    patched = kube.patch_schedule(args.schedule, patch)
    if args.reason and (patched.get("spec") or {}).get("suspendReason") != args.reason:
        warn(
            "the cluster's Schedule CRD dropped spec.suspendReason: it predates the field "
            "(kubectl apply --server-side -f crds/)"
        )
    reason = f" ({args.reason})" if args.reason else ""
    _output(args, patched, f"schedule.{GROUP}/{args.schedule} suspended{reason}")
    return 0


def do_resume(kube: Kube, args: argparse.Namespace) -> int:
    """Both pauses at once: the one a person asked for (spec.enabled) and the one after
    failed runs (a new resume request value)."""
    schedule = kube.get_schedule(args.schedule)
    annotations = schedule["metadata"].get("annotations") or {}
    handled = (schedule.get("status") or {}).get("lastHandledResumeRequest")
    value = run_request_value(_now(), (annotations.get(RESUME_REQUEST_ANNOTATION), handled))
    patch = {
        "metadata": {"annotations": {RESUME_REQUEST_ANNOTATION: value}},
        "spec": {"enabled": True, "suspendReason": None},
    }
    patched = kube.patch_schedule(args.schedule, patch)
    _output(args, patched, f"schedule.{GROUP}/{args.schedule} resumed")
    return 0


def do_backfill(kube: Kube, args: argparse.Namespace) -> int:
    value = f"{args.start}/{args.end}"
    try:
        parse_backfill(value)
    except ValueError as error:
        raise PluginError(f"backfill {value}: {error}") from error
    schedule = kube.get_schedule(args.schedule)
    if (schedule.get("status") or {}).get("lastHandledBackfill") == value:
        raise PluginError(
            f"backfill {value} was acted on already: each value is acted on once (change START "
            "or END, e.g. by a second)"
        )
    policy = "Allow" if args.allow else None
    patch = {
        "metadata": {
            "annotations": {BACKFILL_ANNOTATION: value, BACKFILL_POLICY_ANNOTATION: policy}
        }
    }
    patched = kube.patch_schedule(args.schedule, patch)
    _output(args, patched, f"schedule.{GROUP}/{args.schedule} backfill {value} requested")
    return 0


def do_history(kube: Kube, args: argparse.Namespace) -> int:
    schedule = kube.get_schedule(args.schedule)
    rows = history_rows(schedule)
    if not rows and args.output not in ("json", "yaml"):
        print(f"No finished runs of schedule {args.schedule} yet.", file=sys.stderr)
        return 0
    _output(
        args, history_document(schedule, rows), render_history(rows, wide=args.output == "wide")
    )
    return 0


def do_stats(kube: Kube, args: argparse.Namespace) -> int:
    configuration, unknown = operator_config(kube, args.config_namespace)
    tasks, _, namespaces = _queue_objects(kube, args, configuration, args.scheduler_id, jobs=False)
    if unknown is not None:
        warn(unknown)
    stats = task_stats(tasks, configuration, scheduler_id=args.scheduler_id, namespaces=namespaces)
    if not stats and args.output not in ("json", "yaml"):
        print(f"No Tasks in {_where(args, kube)}.", file=sys.stderr)
        return 0
    _output(args, stats_document(stats), render_stats(stats))
    return 0


VERBS: dict[str, Callable[[Kube, argparse.Namespace], int]] = {
    "queue": do_queue,
    "next": do_next,
    "run": do_run,
    "suspend": do_suspend,
    "resume": do_resume,
    "backfill": do_backfill,
    "history": do_history,
    "stats": do_stats,
}
ONE_SCHEDULE = ("next", "run", "suspend", "resume", "backfill", "history")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.all_namespaces and args.verb in ONE_SCHEDULE:
            raise PluginError(f"-A does not apply to {args.verb}: a Schedule is in one namespace")
        kube = Kube(connect(args), _request_timeout(args.request_timeout))
        return VERBS[args.verb](kube, args)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
