"""The runner verbs of `kadence`: `claim`, `renew`, `complete`, `fail` and `work`, so that
a shell loop can be a runner of a pull queue (docs/runners.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kadence.runner_plan import OPS, Filter, renew_interval

if TYPE_CHECKING:
    from kadence.runner import Claimed, Runner

EXIT_FAILED = 1
"""`work`: the command failed, and the Task was reported Failed."""
EXIT_USAGE = 2
EXIT_LOST = 3
"""The claim is no longer this runner's (it expired, or the Task was cancelled)."""
EXIT_NOTHING = 4
"""Nothing was granted within --wait."""
EXIT_REFUSED = 5
"""The API server refused a call, or could not be reached."""
EXIT_STOPPED = 6
"""`work` was stopped (SIGTERM, SIGINT): the Task was released, back to its queue."""
STOP_GRACE_SECONDS = 10.0
"""How long a command whose claim was lost has to stop after SIGTERM, before SIGKILL."""

VERBS = ("claim", "renew", "complete", "fail", "work")


def _value(text: str) -> Any:
    """A filter value: JSON when it parses (`3`, `true`, `["a","b"]`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def filters(args: argparse.Namespace) -> list[Filter]:
    """The --filter FIELD OP VALUE triples as Filters; ValueError names a bad one."""
    return [Filter(field, op, _value(value)) for field, op, value in args.filter]


def holder(args: argparse.Namespace) -> str | None:
    """--holder, else $KADENCE_HOLDER, else the host name for the verbs a shell runs one
    after another (each a new process), and the library's HOSTNAME/PID for `work`."""
    given = args.holder or os.environ.get("KADENCE_HOLDER")
    if given or args.command_name == "work":
        return given
    return socket.gethostname()


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-n", "--namespace", help="the Tasks' namespace (default: the pod's, or the context's)"
    )
    command.add_argument(
        "--holder",
        help="who holds the claim: the same in every verb of one runner "
        "(default: $KADENCE_HOLDER, else the host name; for work HOSTNAME/PID)",
    )
    command.add_argument("--log-level", choices=("debug", "info", "warning"), default="warning")


def _claiming(command: argparse.ArgumentParser) -> None:
    command.add_argument("scheduler_id", metavar="SCHEDULER_ID", help="the pull queue")
    command.add_argument(
        "--filter",
        nargs=3,
        action="append",
        default=[],
        metavar=("FIELD", "OP", "VALUE"),
        help=f"only Tasks whose spec.data FIELD (dotted path) OP VALUE; OP one of {' '.join(OPS)}; "
        "VALUE is JSON when it parses, else text (repeat: all must hold)",
    )
    command.add_argument(
        "--lease",
        type=int,
        default=30,
        metavar="SECONDS",
        help="lease of the claim, 5 to 3600 (default 30)",
    )
    command.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up after this long without a Task (exit {EXIT_NOTHING}; default: wait on)",
    )


def add_commands(commands: Any) -> None:
    """Add the runner verbs to the `kadence` parser's subcommands."""
    claim = commands.add_parser(
        "claim",
        help="claim the next Task of a pull queue and print it",
        description="Ask for the head of the queue (among the Tasks the filters select), "
        "wait for the operator's grant and print the Task. Then `renew` it at least once "
        "per lease, and `complete` or `fail` it.",
    )
    _claiming(claim)
    _common(claim)
    claim.add_argument(
        "-o", "--output", choices=("json", "name"), default="json", help="what to print"
    )

    renew = commands.add_parser("renew", help="renew the claim on a Task (it becomes Running)")
    renew.add_argument("task", metavar="TASK")
    _common(renew)

    complete = commands.add_parser("complete", help="report a claimed Task completed")
    complete.add_argument("task", metavar="TASK")
    complete.add_argument("--result", metavar="JSON", help="the result, JSON (<= 4096 chars)")
    _common(complete)

    fail = commands.add_parser("fail", help="report a claimed Task failed")
    fail.add_argument("task", metavar="TASK")
    fail.add_argument("--message", required=True, help="why it failed (<= 1024 chars)")
    _common(fail)

    work = commands.add_parser(
        "work",
        help="claim a Task, run a command for it, and report its exit code",
        description="Claim a Task, run COMMAND with the variables a Job of the Task would "
        "get (KADENCE_TASK_NAME, KADENCE_SCHEDULER_ID, KADENCE_DEADLINE_AT, "
        "KADENCE_TASK_DATA) and KADENCE_RESULT_FILE, renew the claim while it runs, and "
        "report the Task Completed (exit 0, with the JSON the command wrote to "
        "KADENCE_RESULT_FILE as its result) or Failed. Exit codes: 0 completed, "
        f"{EXIT_FAILED} failed, {EXIT_LOST} claim lost, {EXIT_NOTHING} nothing to claim, "
        f"{EXIT_REFUSED} refused by the API server, {EXIT_STOPPED} stopped by a signal "
        "(the Task released, back to its queue).",
    )
    _claiming(work)
    _common(work)
    work.add_argument("command", nargs="+", metavar="COMMAND", help="what to run, after --")


def main(args: argparse.Namespace) -> int:
    """Run one runner verb; API refusals are a message and exit code, not a traceback."""
    from kubernetes.config import ConfigException
    from urllib3.exceptions import HTTPError

    from kadence.runner import ClaimLost, Runner, RunnerError

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Stopped while asking for a Task: SystemExit unwinds the claim, which takes its
    # request back (or releases a Task granted meanwhile) on the way out.
    previous = signal.signal(signal.SIGTERM, _exit_stopped)
    try:
        selected = filters(args) if "filter" in args else []
        runner = Runner(
            namespace=args.namespace, holder=holder(args), lease_seconds=getattr(args, "lease", 30)
        )
        if args.command_name == "claim":
            return _claim(runner, args.scheduler_id, selected, args)
        if args.command_name == "work":
            return _work(runner, args.scheduler_id, selected, args)
        task = runner.held(args.task)
        if args.command_name == "renew":
            runner.renew(task)
        elif args.command_name == "complete":
            runner.complete(task, args.result)
        else:
            runner.fail(task, args.message)
    except ClaimLost as lost:
        print(f"kadence {args.command_name}: claim lost: {lost}", file=sys.stderr)
        return EXIT_LOST
    except (ValueError, ConfigException) as error:
        print(f"kadence {args.command_name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (RunnerError, HTTPError, OSError) as error:
        print(f"kadence {args.command_name}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _exit_stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(EXIT_STOPPED)


def _claim(
    runner: Runner, scheduler_id: str, selected: list[Filter], args: argparse.Namespace
) -> int:
    task = runner.claim(scheduler_id, selected, args.wait)
    if task is None:
        print(f"kadence claim: no Task of {scheduler_id} granted", file=sys.stderr)
        return EXIT_NOTHING
    if args.output == "name":
        print(task.name)
    else:
        print(
            json.dumps(
                {
                    "namespace": task.namespace,
                    "name": task.name,
                    "schedulerId": task.scheduler_id,
                    "holder": task.holder,
                    "deadlineAt": task.env.get("KADENCE_DEADLINE_AT"),
                    "data": task.data,
                }
            )
        )
    return 0


def _work(
    runner: Runner, scheduler_id: str, selected: list[Filter], args: argparse.Namespace
) -> int:
    task = runner.claim(scheduler_id, selected, args.wait)
    if task is None:
        print(f"kadence work: no Task of {scheduler_id} granted", file=sys.stderr)
        return EXIT_NOTHING
    try:
        runner.renew(task)
    except (KeyboardInterrupt, SystemExit):  # stopped between the grant and the start
        runner.release(task)
        raise
    with tempfile.TemporaryDirectory(prefix="kadence-work-") as scratch:
        result_file = Path(scratch) / "result.json"
        env = {
            **os.environ,
            **task.env,
            "KADENCE_HOLDER": runner.holder,
            "KADENCE_NAMESPACE": task.namespace,
            "KADENCE_RESULT_FILE": str(result_file),
        }
        stopping = _Stop()
        restore = stopping.install()  # before the command starts: no signal goes unseen
        try:
            try:
                child = subprocess.Popen(args.command, env=env)
            except OSError as error:
                runner.fail(task, f"could not start {args.command[0]}: {error}")
                return EXIT_FAILED
            lost = stopping.run(child, lambda: _run_renewing(runner, task, child))
        finally:
            restore()
        if lost is not None:
            print(f"kadence work: claim lost, command stopped: {lost}", file=sys.stderr)
            return EXIT_LOST
        if stopping.received:
            runner.release(task)
            print(f"kadence work: stopped; {task.name} goes back to its queue", file=sys.stderr)
            return EXIT_STOPPED
        if child.returncode != 0:
            runner.fail(task, _exit_message(args.command[0], child.returncode))
            return EXIT_FAILED
        text = result_file.read_text() if result_file.exists() else ""
        try:
            runner.complete(task, text.strip() or None)
        except ValueError as error:
            runner.fail(task, f"{args.command[0]} wrote a result kadence cannot keep: {error}")
            return EXIT_FAILED
    return 0


def _exit_message(program: str, code: int) -> str:
    if code < 0:
        return f"{program} was killed by signal {signal.Signals(-code).name}"
    return f"{program} exited with code {code}"


def _run_renewing(
    runner: Runner, task: Claimed, child: subprocess.Popen[bytes]
) -> Exception | None:
    """Renew while the command runs; stop it when the claim is lost (and return why)."""
    from urllib3.exceptions import HTTPError

    from kadence.runner import ClaimLost, RunnerError

    interval = renew_interval(task.lease_seconds)
    while True:
        try:
            child.wait(timeout=interval)
            return None
        except subprocess.TimeoutExpired:
            pass
        try:
            runner.renew(task)
        except ClaimLost as lost:
            _stop(child)
            return lost
        except (RunnerError, HTTPError, OSError) as error:
            logging.getLogger(__name__).warning("renewing %s failed: %s", task.name, error)


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class _Stop:
    """SIGTERM and SIGINT (a pod stopping) while `kadence work` runs a command: passed on
    to the command, so that it ends, and noted, so that the Task is released, not failed."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.child: subprocess.Popen[bytes] | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def install(self) -> Callable[[], None]:
        """Handle the signals from now on; returns what puts the old handlers back."""
        previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def run(
        self, child: subprocess.Popen[bytes], supervise: Callable[[], Exception | None]
    ) -> Exception | None:
        """Supervise the command; a signal that came while it was starting reaches it too."""
        self.child = child
        for signum in self.received:
            child.send_signal(signum)
        return supervise()
