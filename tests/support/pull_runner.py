"""A runner process for the end-to-end tests and the benchmark: claims Tasks of one pull
queue with `kadence.runner` until it is stopped, and writes one JSON line per claim and per
report, so that a test can check who did what and when (wall-clock seconds, one machine).

    python -m tests.support.pull_runner --kubeconfig K --namespace N --queue Q --log L
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kubernetes import config

from kadence.runner import Runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--lease", type=int, default=30)
    parser.add_argument("--work-seconds", type=float, default=0.0)
    args = parser.parse_args()

    api = config.new_client_from_config(config_file=str(args.kubeconfig))
    runner = Runner(namespace=args.namespace, lease_seconds=args.lease, api=api)
    with args.log.open("a", buffering=1) as log:

        def note(event: str, task: str) -> None:
            line = {"event": event, "task": task, "holder": runner.holder, "at": time.time()}
            log.write(json.dumps(line) + "\n")

        while True:
            with runner.work(args.queue) as task:
                assert task is not None  # no `wait`: it waits for a Task as long as it runs
                note("claimed", task.name)
                time.sleep(args.work_seconds)
                task.result = {"holder": runner.holder}
                note("working-done", task.name)
            note("reported", task.name)


if __name__ == "__main__":
    main()
