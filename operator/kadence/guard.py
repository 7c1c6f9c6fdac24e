"""Fail closed: watch that the admission policies are in place, and say when they are not.

The operator reads each configured ValidatingAdmissionPolicy and its binding (by name:
its RBAC allows nothing else) at start-up and every few seconds after. While one is
missing the queues make no Job and each enabled Schedule says why in its `Ready`
condition; the log and `kadence_admission_policies_missing` say so too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from kadence import metrics
from kadence.admission import held_back, missing_protection
from kadence.kube import ApiError, KubeApi

log = logging.getLogger(__name__)

GROUP, VERSION = "admissionregistration.k8s.io", "v1"
CHECK_SECONDS = 5.0


class AdmissionGuard:
    """What holds Jobs back, if anything: `problem` is None while the policies are in force."""

    def __init__(self, kube: KubeApi, names: Sequence[str], changed: Callable[[], None]) -> None:
        self._kube = kube
        self._names = list(names)
        self._changed = changed
        self.problem: str | None = "the admission policies have not been checked yet"

    async def check(self) -> None:
        """Read the policies and bindings; on a change of verdict, log it and tell."""
        try:
            policies = {
                name: await self._kube.get_cluster_object(
                    GROUP, VERSION, "validatingadmissionpolicies", name
                )
                for name in self._names
            }
            bindings = {
                name: await self._kube.get_cluster_object(
                    GROUP, VERSION, "validatingadmissionpolicybindings", name
                )
                for name in self._names
            }
            missing = missing_protection(self._names, policies, bindings)
        except ApiError as error:
            missing = [f"they cannot be read: {error}"]
        metrics.ADMISSION_POLICIES_MISSING.set(len(missing))
        problem = held_back(missing)
        if problem == self.problem:
            return
        if problem is None:
            log.info("admission policies in place: %s; Jobs are made again", self._names)
        else:
            log.warning("%s", problem)
        self.problem = problem
        self._changed()

    async def run(self) -> None:
        """Check every few seconds, for the life of the operator."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await self.check()
