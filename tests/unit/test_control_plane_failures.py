"""The local control plane fails fast and says why: no Go, a dead component, a second start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cluster.controlplane import COMPONENTS, ControlPlane, ControlPlaneError

ROOT = Path(__file__).resolve().parents[2]


def test_building_without_go_says_to_install_it(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "tests/cluster/build.sh")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KADENCE_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "Go is not installed" in result.stderr


@pytest.mark.parametrize("version", ["1.29", "1.37", "latest"])
def test_building_an_unsupported_version_names_the_supported_ones(
    tmp_path: Path, version: str
) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "tests/cluster/build.sh")],
        env={**os.environ, "KADENCE_CACHE": str(tmp_path), "KADENCE_K8S_VERSION": version},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert f"KADENCE_K8S_VERSION={version} is not supported" in result.stderr
    assert "1.30 1.31 1.32 1.33 1.34 1.35 1.36" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is built or cached for an unsupported version"


def fake_binaries(folder: Path, etcd_script: str) -> Path:
    folder.mkdir()
    for name in COMPONENTS:
        (folder / name).write_text("#!/bin/sh\nsleep 60\n")
    (folder / "etcd").write_text(etcd_script)
    for path in folder.iterdir():
        path.chmod(0o755)
    return folder


def test_a_component_that_dies_fails_the_start_with_the_end_of_its_log(tmp_path: Path) -> None:
    bin_dir = fake_binaries(
        tmp_path / "bin",
        "#!/bin/sh\necho 'listen tcp 127.0.0.1:2379: bind: address already in use'\nexit 1\n",
    )
    plane = ControlPlane(state_dir=tmp_path / "state", bin_dir=bin_dir)
    with pytest.raises(ControlPlaneError, match="etcd exited with code 1") as failure:
        plane.start(timeout=20)
    assert "address already in use" in str(failure.value)
    assert plane.running_pids() == {}


def test_a_second_start_in_the_same_folder_is_refused_and_leaves_the_first_alone(
    tmp_path: Path,
) -> None:
    bin_dir = fake_binaries(tmp_path / "bin", "#!/bin/sh\nsleep 60\n")
    first = ControlPlane(state_dir=tmp_path / "state", bin_dir=bin_dir)
    first.state_dir.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        first.pid_file.write_text(f'{{"etcd": {sleeper.pid}}}')
        second = ControlPlane(state_dir=tmp_path / "state", bin_dir=bin_dir)
        with pytest.raises(ControlPlaneError, match="already running"):
            second.start(timeout=5)
        assert sleeper.poll() is None, "the first control plane's process must survive"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_missing_binaries_name_the_build_script(tmp_path: Path) -> None:
    plane = ControlPlane(state_dir=tmp_path / "state", bin_dir=tmp_path / "nothing")
    with pytest.raises(ControlPlaneError, match=r"build\.sh"):
        plane.start(timeout=5)
    assert not os.path.exists(plane.pid_file)
