"""Whether the admission policies that keep tenants apart are in place. Pure.

Every Schedule or Task is a way to get a Job made by the operator's ServiceAccount, so
the operator makes no Job while the ValidatingAdmissionPolicies that guard that way in
are missing (unless its configuration says to run without them). This reads the
policies and bindings the operator found and says what is wrong, for a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Body = dict[str, Any]


def missing_protection(
    names: Sequence[str],
    policies: Mapping[str, Body | None],
    bindings: Mapping[str, Body | None],
) -> list[str]:
    """What is wrong with the named policies, one line each; empty when every one is in
    force: it exists, and a binding of the same name binds it with the Deny action."""
    missing: list[str] = []
    for name in names:
        if policies.get(name) is None:
            missing.append(f"ValidatingAdmissionPolicy {name} is missing")
        binding = bindings.get(name)
        if binding is None:
            missing.append(f"ValidatingAdmissionPolicyBinding {name} is missing")
            continue
        spec = binding.get("spec") or {}
        if spec.get("policyName") != name or "Deny" not in (spec.get("validationActions") or []):
            missing.append(f"ValidatingAdmissionPolicyBinding {name} does not deny with {name}")
    return missing


def held_back(missing: Sequence[str]) -> str | None:
    """The message for what is held back, or None when nothing is."""
    if not missing:
        return None
    return "no Job is made until the admission policies are in place: " + "; ".join(missing)
