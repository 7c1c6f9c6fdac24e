"""The `kadence` command: `run` the operator, preview a schedule with `next`, or be a
runner of a pull queue (`claim`, `renew`, `complete`, `fail`, `work`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from kadence import runner_cli
from kadence.config import ConfigError, load_config

LOG_LEVELS = ("debug", "info", "warning", "error")


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 instant: {text!r}") from error
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset or Z: {text!r}")
    return value.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kadence",
        description="Flexible scheduling for Kubernetes: Schedules make Tasks, Tasks run as Jobs.",
    )
    commands = top.add_subparsers(dest="command_name", required=True)

    run = commands.add_parser(
        "run",
        help="run the operator against the current kubeconfig (or in-cluster credentials)",
        description=(
            "Watch Schedules, Tasks and their Jobs; make a Task at each deadline, dispatch "
            "queued Tasks as Jobs within each queue's capacity, and write status back."
        ),
    )
    run.add_argument(
        "--config",
        type=Path,
        help="YAML file with queues.defaultCapacity, queues.capacity and namespaces "
        "(default: capacity 10 per queue, all namespaces)",
    )
    run.add_argument(
        "--liveness-port",
        type=int,
        default=8080,
        help="serve the probes /healthz and /readyz here (0: off; default 8080)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="serve Prometheus /metrics here (0: off; default 9090)",
    )
    run.add_argument("--log-level", choices=LOG_LEVELS, default="info")

    nxt = commands.add_parser(
        "next",
        help="print the next deadlines of a cron expression",
        description="Print the next deadlines of EXPR, one RFC 3339 instant (UTC) per line, "
        "computed by the same engine as the operator.",
    )
    nxt.add_argument("expression", metavar="EXPR", help="cron expression, e.g. '30 2 * * *'")
    nxt.add_argument("--time-zone", default="UTC", help="IANA zone EXPR is read in (default UTC)")
    nxt.add_argument(
        "--after",
        type=_instant,
        help="start after this instant (default: now), e.g. 2026-03-29T00:00:00Z",
    )
    nxt.add_argument("--count", type=int, default=5, help="how many deadlines (default 5)")
    nxt.add_argument(
        "--name", default="", metavar="NAMESPACE/NAME", help="the schedule H is hashed from"
    )
    runner_cli.add_commands(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command_name == "next":
        return _next(args)
    if args.command_name in runner_cli.VERBS:
        return runner_cli.main(args)
    return _run(args)


def _next(args: argparse.Namespace) -> int:
    from kadence.cron import InvalidSchedule, next_deadlines

    if args.count < 1:
        print("kadence next: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        deadlines = next_deadlines(
            args.expression, args.time_zone, args.after or datetime.now(UTC), args.count, args.name
        )
    except InvalidSchedule as error:
        print(f"kadence next: {error}", file=sys.stderr)
        return 1
    for deadline in deadlines:
        print(deadline.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"kadence run: {error}", file=sys.stderr)
        return 2

    import kopf
    from prometheus_client import REGISTRY, start_http_server

    from kadence import compat, handlers, health, kube, metrics

    kube.load_client_config()
    wanted = compat.needs(config.admission.require_policies)
    missing = compat.missing_apis(kube.served_resources(compat.group_versions(wanted)), wanted)
    if missing:
        print("kadence run: this cluster lacks what kadence needs:", file=sys.stderr)
        for line in missing:
            print(f"  - {line}", file=sys.stderr)
        return 2
    if args.metrics_port:
        start_http_server(args.metrics_port)
    runtime = handlers.Runtime(config)
    REGISTRY.register(
        metrics.StateCollector(
            lambda: list(runtime.store.schedules.values()), runtime.queues.states, runtime.leading
        )
    )
    scope = {"namespaces": config.namespaces} if config.namespaces else {"clusterwide": True}

    async def operate() -> None:
        probes = None
        if args.liveness_port:
            app = health.application(runtime.check_alive, runtime.readiness)
            probes = await health.serve(app, args.liveness_port)
        try:
            # standalone: kopf's peering would only pause replicas; the Lease elects one
            await kopf.operator(standalone=True, memo=kopf.Memo(runtime=runtime), **scope)
        finally:
            if probes is not None:
                await probes.cleanup()

    asyncio.run(operate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
