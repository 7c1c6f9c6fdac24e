"""The runner verbs of `kadence`: arguments, exit codes, and what `work` reports for the
command it runs. The Runner is a stand-in here; tests/e2e/test_pull_runners.py runs the
real one against the API server."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import kadence.runner
from kadence.cli import main, parser
from kadence.runner import Claimed, ClaimLost, RunnerError
from kadence.runner_cli import (
    EXIT_FAILED,
    EXIT_LOST,
    EXIT_NOTHING,
    EXIT_REFUSED,
    EXIT_STOPPED,
    EXIT_USAGE,
)
from kadence.runner_plan import Filter

TASK = {
    "metadata": {
        "name": "scan-1",
        "namespace": "scan",
        "creationTimestamp": "2026-03-01T12:00:00Z",
    },
    "spec": {"schedulerId": "boefje", "data": {"host": "example.org"}},
}


@dataclass
class FakeRunner:
    """Records what the verbs asked of it; `lose_after` renewals raise ClaimLost."""

    namespace: str | None = None
    holder: str | None = None
    lease_seconds: int = 30
    granted: bool = True
    lose_after: int | None = None
    refuse: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def claim(self, scheduler_id: str, filters: Sequence[Filter], wait: float | None) -> Any:
        self.calls.append(("claim", (scheduler_id, list(filters), wait)))
        if self.refuse:
            raise RunnerError(403, "may not claim Tasks of queue boefje")
        return self._claimed() if self.granted else None

    def _claimed(self) -> Claimed:
        return Claimed(
            namespace="scan", name="scan-1", scheduler_id="boefje", data={"host": "example.org"},
            deadline_at=None, lease_seconds=self.lease_seconds, holder=self.holder or "", task=TASK,
        )  # fmt: skip

    def held(self, name: str) -> Any:
        self.calls.append(("held", name))
        if name == "gone":
            raise ClaimLost("task gone is claimed by other/1 now")
        return self._claimed()

    def renew(self, task: Claimed) -> None:
        self.calls.append(("renew", task.name))
        renewals = sum(1 for call in self.calls if call[0] == "renew")
        if self.lose_after is not None and renewals > self.lose_after:
            raise ClaimLost("task scan-1 is claimed by other/1 now")

    def complete(self, task: Claimed, result: Any = None) -> None:
        if result is not None:
            kadence.runner_plan.result_text(result)
        self.calls.append(("complete", result))

    def fail(self, task: Claimed, message: str) -> None:
        self.calls.append(("fail", message))

    def release(self, task: Claimed) -> None:
        self.calls.append(("release", task.name))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    made = FakeRunner()

    def build(namespace: str | None = None, holder: str | None = None, **kw: Any) -> FakeRunner:
        made.namespace, made.holder = namespace, holder or "host/1"
        made.lease_seconds = kw.get("lease_seconds", 30)
        return made

    monkeypatch.setattr(kadence.runner, "Runner", build)
    monkeypatch.delenv("KADENCE_HOLDER", raising=False)
    return made


def test_work_takes_the_command_after_the_double_dash() -> None:
    args = parser().parse_args(
        ["work", "boefje", "--filter", "boefje.id", "eq", "dns", "--lease", "10",
         "--", "sh", "-c", "echo $KADENCE_TASK_NAME", "--wait", "x"]
    )  # fmt: skip
    assert args.scheduler_id == "boefje"
    assert args.command == ["sh", "-c", "echo $KADENCE_TASK_NAME", "--wait", "x"]
    assert args.filter == [["boefje.id", "eq", "dns"]]
    assert args.lease == 10


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--filter", "boefje.id", "eq", "dns"], [Filter("boefje.id", "eq", "dns")]),
        (["--filter", "size", "gt", "10"], [Filter("size", "gt", 10)]),
        (["--filter", "id", "eq", '"10"'], [Filter("id", "eq", "10")]),
        (["--filter", "tag", "in", '["a", "b"]'], [Filter("tag", "in", ["a", "b"])]),
        (
            ["--filter", "a", "eq", "true", "--filter", "b", "ne", "null"],
            [Filter("a", "eq", True), Filter("b", "ne", None)],
        ),
        ([], []),
    ],
    ids=["text-value", "number-value", "quoted-number-is-text", "json-list", "repeated", "none"],
)
def test_filters_from_arguments(fake: FakeRunner, argv: list[str], expected: list[Filter]) -> None:
    assert main(["claim", "boefje", *argv]) == 0
    assert fake.calls[0] == ("claim", ("boefje", expected, None))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["claim", "q", "--filter", "size", "like", "1"], "unknown filter operator"),
        (["claim", "q", "--filter", "size", "in", "3"], "needs a list"),
        (["claim", "q", "--filter", "..", "eq", "3"], "dotted path"),
    ],
    ids=["unknown-operator", "in-without-list", "bad-path"],
)
def test_bad_filter_is_a_usage_error(
    fake: FakeRunner, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not fake.calls  # refused before asking anything


@pytest.mark.parametrize(
    "argv",
    [["work", "boefje"], ["fail", "scan-1"], ["claim"], ["renew"]],
    ids=["work-without-command", "fail-without-message", "claim-without-queue", "renew-no-task"],
)
def test_missing_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_claim_prints_the_task(fake: FakeRunner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claim", "boefje", "--holder", "me", "-n", "scan", "--wait", "5"]) == 0
    out = capsys.readouterr().out
    assert '"name": "scan-1"' in out
    assert '"data": {"host": "example.org"}' in out
    assert (fake.namespace, fake.holder) == ("scan", "me")
    assert fake.calls == [("claim", ("boefje", [], 5.0))]
    assert main(["claim", "boefje", "-o", "name"]) == 0
    assert capsys.readouterr().out == "scan-1\n"


def test_shell_verbs_share_a_holder_by_default(
    fake: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "pod-7")
    main(["renew", "scan-1"])
    assert fake.holder == "pod-7"
    monkeypatch.setenv("KADENCE_HOLDER", "pool/3")
    main(["complete", "scan-1"])
    assert fake.holder == "pool/3"


def test_nothing_granted_exits_4(fake: FakeRunner, capsys: pytest.CaptureFixture[str]) -> None:
    fake.granted = False
    assert main(["claim", "boefje", "--wait", "0"]) == EXIT_NOTHING
    assert main(["work", "boefje", "--wait", "0", "--", "true"]) == EXIT_NOTHING
    assert "no Task of boefje granted" in capsys.readouterr().err


def test_refusal_is_a_message_not_a_traceback(
    fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.refuse = True
    assert main(["claim", "boefje"]) == EXIT_REFUSED
    assert "may not claim Tasks of queue boefje" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code", "last"),
    [
        (["renew", "scan-1"], 0, ("renew", "scan-1")),
        (["complete", "scan-1", "--result", '{"found": 3}'], 0, ("complete", '{"found": 3}')),
        (["complete", "scan-1"], 0, ("complete", None)),
        (["complete", "scan-1", "--result", "three"], EXIT_USAGE, ("held", "scan-1")),
        (["fail", "scan-1", "--message", "no route"], 0, ("fail", "no route")),
        (["renew", "gone"], EXIT_LOST, ("held", "gone")),
    ],
    ids=["renew", "complete-with-result", "complete", "result-not-json", "fail", "lost"],
)
def test_shell_verbs(fake: FakeRunner, argv: list[str], code: int, last: Any) -> None:
    assert main(argv) == code
    assert fake.calls[-1] == last


def test_work_runs_the_command_with_the_task_variables_and_its_result(
    fake: FakeRunner, tmp_path: Any
) -> None:
    seen = tmp_path / "env"
    script = (
        f'printf "%s %s %s" "$KADENCE_TASK_NAME" "$KADENCE_TASK_DATA" "$KADENCE_HOLDER" > {seen}; '
        'echo \'{"found": 3}\' > "$KADENCE_RESULT_FILE"'
    )
    assert main(["work", "boefje", "--holder", "w/1", "--", "sh", "-c", script]) == 0
    assert seen.read_text() == 'scan-1 {"host":"example.org"} w/1'
    assert [c[0] for c in fake.calls] == ["claim", "renew", "complete"]
    assert fake.calls[-1] == ("complete", '{"found": 3}')


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        (["sh", "-c", "exit 7"], EXIT_FAILED, "sh exited with code 7"),
        (["sh", "-c", "kill -KILL $$"], EXIT_FAILED, "sh was killed by signal SIGKILL"),
        (["/no/such/program"], EXIT_FAILED, "could not start /no/such/program"),
        (["sh", "-c", 'echo oops > "$KADENCE_RESULT_FILE"'], EXIT_FAILED, "cannot keep"),
    ],
    ids=["non-zero-exit", "killed", "not-found", "result-not-json"],
)
def test_work_reports_a_failed_command(
    fake: FakeRunner, command: list[str], code: int, message: str
) -> None:
    assert main(["work", "boefje", "--", *command]) == code
    kind, reported = fake.calls[-1]
    assert kind == "fail"
    assert message in reported


def test_work_stops_the_command_when_the_claim_is_lost(
    fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.lose_after = 1  # the start renewal succeeds, the first heartbeat finds it lost
    code = main(["work", "boefje", "--lease", "5", "--", sys.executable, "-c",
                 "import time; time.sleep(60)"])  # fmt: skip
    assert code == EXIT_LOST
    assert "claim lost" in capsys.readouterr().err
    assert not [c for c in fake.calls if c[0] in ("complete", "fail")]


def test_work_stopped_by_a_signal_releases_the_task(fake: FakeRunner) -> None:
    # The command plays the pod's stop: it sends SIGTERM to `kadence work`, which passes it on.
    code = main(["work", "boefje", "--", "sh", "-c", "kill -TERM $PPID; exec sleep 30"])
    assert code == EXIT_STOPPED
    assert fake.calls[-1] == ("release", "scan-1")


def test_stopped_while_asking_exits_6_and_puts_the_handler_back(
    fake: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped_while_waiting(*_: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the pod stops while the runner waits for a grant
        time.sleep(5)

    monkeypatch.setattr(fake, "claim", stopped_while_waiting)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        main(["work", "boefje", "--", "true"])
    assert stopped.value.code == EXIT_STOPPED
    assert signal.getsignal(signal.SIGTERM) == before
