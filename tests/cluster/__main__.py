"""`python -m tests.cluster up|down|status`: the local control plane from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tests.cluster.controlplane import ControlPlane, ControlPlaneError, build_binaries, cache_dir


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("KADENCE_CLUSTER_DIR", cache_dir() / "cluster")),
        help="state folder: certificates, etcd data, logs, kubeconfig (default: %(default)s)",
    )
    args = parser.parse_args()
    bin_dir = cache_dir() / "bin"
    plane = ControlPlane(state_dir=args.dir, bin_dir=bin_dir, tie_to_parent=False)
    try:
        if args.command == "up":
            plane.bin_dir = build_binaries()
            plane.start()
            print(f"control plane running at {plane.server}; logs in {plane.log_dir}")
            print(f"export KUBECONFIG={plane.kubeconfig}")
        elif args.command == "down":
            pids = plane.running_pids()
            plane.stop()
            print(f"stopped {', '.join(sorted(pids)) or 'nothing (not running)'}")
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


if __name__ == "__main__":
    sys.exit(main())
