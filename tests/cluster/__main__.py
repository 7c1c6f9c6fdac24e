"""`python -m tests.cluster up|down|status`: the local control plane from the command line.

`down` stops it and deletes its state (etcd's data, certificates, kubeconfig, logs), as
`kind delete cluster` does, so the next `up` starts an empty cluster; `down --keep`
stops it and keeps the state, and the next `up` resumes with every object it held.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from tests.cluster.controlplane import ControlPlane, ControlPlaneError, build_binaries, cache_dir

STATE_FILES = frozenset(
    {
        "kubeconfig",
        "pids.json",
        "tokens.csv",
        "ca.crt",
        "ca.key",
        "ca.srl",
        "san.cnf",
        "apiserver.crt",
        "apiserver.csr",
        "apiserver.key",
        "sa.key",
        "sa.pub",
    }
)
"""What `ControlPlane` writes into its state folder (controlplane.py)."""
STATE_FOLDERS = frozenset({"etcd", "logs"})
"""The folders it makes there: etcd's data and the components' logs."""


def kept_data(state_dir: Path) -> bool:
    """Whether the folder holds etcd data from an earlier run (a `down --keep`)."""
    etcd = state_dir / "etcd"
    return etcd.is_dir() and any(etcd.iterdir())


def delete_state(state_dir: Path) -> list[str]:
    """Delete what the control plane made in `state_dir`, and the folder once empty.

    Only the files and folders it makes are deleted, so a `--dir` pointed at the wrong
    folder loses nothing else. Returns the names of what was left (not the control
    plane's), sorted; the folder stays when there are any.
    """
    if not state_dir.is_dir():
        return []
    left = []
    for entry in sorted(state_dir.iterdir()):
        if entry.name in STATE_FOLDERS and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name in STATE_FILES and not entry.is_dir():
            entry.unlink()
        else:
            left.append(entry.name)
    if not left:
        state_dir.rmdir()
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("KADENCE_CLUSTER_DIR", cache_dir() / "cluster")),
        help="state folder: certificates, etcd data, logs, kubeconfig (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="down: keep the state, so that the next up resumes with the same objects",
    )
    args = parser.parse_args(argv)
    bin_dir = cache_dir() / "bin"
    plane = ControlPlane(state_dir=args.dir, bin_dir=bin_dir, tie_to_parent=False)
    try:
        if args.command == "up":
            resuming = kept_data(args.dir) and not plane.running_pids()
            plane.bin_dir = build_binaries()
            plane.start()
            if resuming:
                print(
                    f"resumed the state kept in {args.dir}: the objects of the last run are "
                    "back (make cluster-down deletes them)"
                )
            print(f"control plane running at {plane.server}; logs in {plane.log_dir}")
            print(f"export KUBECONFIG={plane.kubeconfig}")
        elif args.command == "down":
            return _down(plane, keep=args.keep)
        else:
            pids = plane.running_pids()
            for name, pid in sorted(pids.items()):
                print(f"{name}: running (pid {pid})")
            if not pids:
                print(f"not running (state folder {args.dir})")
                return 1
            print(f"export KUBECONFIG={plane.kubeconfig}")
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _down(plane: ControlPlane, *, keep: bool) -> int:
    pids = plane.running_pids()
    plane.stop()
    print(f"stopped {', '.join(sorted(pids)) or 'nothing (not running)'}")
    state = plane.state_dir
    if keep:
        if state.is_dir():
            print(f"kept the state in {state}: the next make cluster-up resumes it")
        return 0
    still = plane.running_pids()
    if still:
        print(
            f"error: still running after stop: {', '.join(sorted(still))}; state kept in {state}",
            file=sys.stderr,
        )
        return 1
    if not state.exists():
        return 0
    left = delete_state(state)
    if left:
        print(
            f"deleted the control plane's state in {state}; left what it did not make there: "
            f"{', '.join(left)}"
        )
    else:
        print(f"deleted the state in {state}: the next make cluster-up starts an empty cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
