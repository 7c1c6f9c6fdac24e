"""`python -m tests.cluster down`: stop the local control plane and delete its state (or keep
it with --keep), touching nothing the control plane did not make. No cluster needed: a state
folder is made by hand, and a `sleep` stands in for a running component."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster.__main__ import STATE_FILES, STATE_FOLDERS, delete_state, kept_data, main


def state_folder(root: Path, *, extra: tuple[str, ...] = (), data: bool = True) -> Path:
    """A state folder as ControlPlane leaves it, plus `extra` files it did not make."""
    state = root / "cluster"
    state.mkdir()
    for name in STATE_FILES:
        (state / name).write_text(name)
    for name in STATE_FOLDERS:
        (state / name).mkdir()
    (state / "logs" / "etcd.log").write_text("log")
    if data:
        (state / "etcd" / "member" / "snap").mkdir(parents=True)
        (state / "etcd" / "member" / "snap" / "db").write_bytes(b"schedules of earlier runs")
    for name in extra:
        (state / name).write_text("mine")
    return state


@dataclass
class DownCase:
    id: str
    argv: list[str]
    extra: tuple[str, ...] = ()
    left: list[str] | None = None
    """What remains in the folder; None: the folder is gone."""
    says: list[str] = field(default_factory=list)


DOWN_CASES = [
    DownCase(
        "down deletes the state: the next up starts an empty cluster",
        ["down"],
        says=["stopped nothing (not running)", "deleted the state in", "starts an empty cluster"],
    ),
    DownCase(
        "down --keep keeps all of it for the next up to resume",
        ["down", "--keep"],
        left=sorted([*STATE_FILES - {"pids.json"}, *STATE_FOLDERS]),  # stopped: no pids
        says=["kept the state in", "resumes it"],
    ),
    DownCase(
        "what the control plane did not make stays, and so does the folder",
        ["down"],
        extra=("notes.txt", "my-manifests.yaml"),
        left=["my-manifests.yaml", "notes.txt"],
        says=["left what it did not make there: my-manifests.yaml, notes.txt"],
    ),
]


@pytest.mark.parametrize("case", DOWN_CASES, ids=[c.id for c in DOWN_CASES])
def test_down(case: DownCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = state_folder(tmp_path, extra=case.extra)
    assert main([*case.argv, "--dir", str(state)]) == 0
    out = capsys.readouterr().out
    if case.left is None:
        assert not state.exists()
    else:
        assert sorted(p.name for p in state.iterdir()) == case.left
    for text in case.says:
        assert text in out


def test_down_stops_what_runs_before_deleting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = state_folder(tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (state / "pids.json").write_text(json.dumps({"etcd": sleeper.pid}))
        assert main(["down", "--dir", str(state)]) == 0
        assert sleeper.wait(timeout=10) != 0  # ended by a signal
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "stopped etcd" in capsys.readouterr().out
    assert not state.exists()


def test_down_of_a_folder_that_does_not_exist_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["down", "--dir", str(tmp_path / "never")]) == 0
    assert capsys.readouterr().out == "stopped nothing (not running)\n"
    assert delete_state(tmp_path / "never") == []


def test_a_folder_named_like_a_state_file_is_not_the_control_planes(tmp_path: Path) -> None:
    state = state_folder(tmp_path)
    (state / "kubeconfig").unlink()
    (state / "kubeconfig").mkdir()
    assert delete_state(state) == ["kubeconfig"]


KEPT = [
    ("etcd data from an earlier run", True, True),
    ("an etcd folder with nothing in it", False, False),
]


@pytest.mark.parametrize(("data", "kept"), [c[1:] for c in KEPT], ids=[c[0] for c in KEPT])
def test_up_knows_when_it_resumes_kept_data(tmp_path: Path, data: bool, kept: bool) -> None:
    assert kept_data(state_folder(tmp_path, data=data)) is kept
    assert kept_data(tmp_path / "nothing") is False
