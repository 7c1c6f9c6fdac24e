"""The `kadence` command: `next` previews a schedule with the operator's engine, and bad
input gives a message and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from kadence.cli import main


def test_next_prints_the_deadlines_across_a_spring_forward_night(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["next", "30 2 * * *", "--time-zone", "Europe/Amsterdam",
         "--after", "2026-03-28T00:00:00Z", "--count", "3"]
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.split() == [
        "2026-03-28T01:30:00Z",
        "2026-03-29T01:00:00Z",  # 02:30 does not exist that night: the first instant after the gap
        "2026-03-30T00:30:00Z",
    ]


def test_next_hashes_h_from_the_name(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["next", "H * * * *", "--after", "2026-01-01T00:00:00Z", "--count", "1"]
    main([*args, "--name", "ns/a"])
    main([*args, "--name", "ns/a"])
    first, again = capsys.readouterr().out.split()
    assert first == again


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["next", "61 * * * *"], 1, "out of range"),
        (["next", "* * * * *", "--time-zone", "Mars/Olympus"], 1, "unknown time zone"),
        (["next", "* * * * *", "--count", "0"], 2, "at least 1"),
    ],
    ids=["bad-cron", "bad-zone", "bad-count"],
)
def test_bad_input_is_a_message(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    assert message in capsys.readouterr().err


def test_run_refuses_a_bad_configuration_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("queues: {defaultCapacity: 2}\nnamespace: [a]\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "namespace: unknown key" in capsys.readouterr().err
