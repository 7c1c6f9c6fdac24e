"""Crash points for the fault suite, off unless the environment arms them.

`KADENCE_FAULTS=task-created=250,job-created=1` kills the process (SIGKILL, no cleanup)
the 250th time a Task is created before the Schedule's status says so, or the first time
a Job is created before its Task says Dispatched: the moments where a crash could lose
or double a run. `KADENCE_FAULTS_NAMESPACE` counts only the Tasks and Jobs of that
namespace, so that a test's crash comes from its own objects. Nothing else reads the
variables, and unset ones cost a dict lookup.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter

log = logging.getLogger(__name__)

ENV = "KADENCE_FAULTS"
SCOPE_ENV = "KADENCE_FAULTS_NAMESPACE"
POINTS = frozenset({"task-created", "job-created"})


def parse(text: str) -> dict[str, int]:
    """`point=N,...` as {point: N}; an unknown point or a bad count is an error."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        point, _, count = item.partition("=")
        if point not in POINTS or not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"{ENV}: {item!r} is not POINT=N with N >= 1 and POINT one of {sorted(POINTS)}"
            )
        armed[point] = int(count)
    return armed


_armed = parse(os.environ.get(ENV, ""))
_scope = os.environ.get(SCOPE_ENV) or None
_passes: Counter[str] = Counter()


def crash_point(point: str, namespace: str) -> None:
    """Die here if the environment armed `point` (for `namespace`) and this is its Nth
    pass."""
    if point not in _armed or _scope not in (None, namespace):
        return
    _passes[point] += 1
    if _passes[point] >= _armed[point]:
        log.critical("fault point %s reached (pass %d): killing the process", point, _passes[point])
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
