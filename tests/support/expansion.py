"""Kubernetes' `$(VAR)` expansion of container env values, as the kubelet applies it.

A transcription of k8s.io/kubernetes third_party/forked/golang/expansion (`Expand`):
`$$` is an escaped `$`; `$(NAME)` is replaced by NAME's value when NAME is defined
earlier, and kept as written otherwise; any other `$` stays. Used by the tests to show
that what the operator writes into a Job is what the container reads.
"""

from __future__ import annotations

from collections.abc import Mapping

OPERATOR = "$"
REFERENCE_OPENER = "("
REFERENCE_CLOSER = ")"


def expand(value: str, defined: Mapping[str, str]) -> str:
    """The value a container sees for an env var written as `value`."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(value):
        if value[cursor] == OPERATOR and cursor + 1 < len(value):
            out.append(value[checkpoint:cursor])
            read, is_var, advance = _try_read_variable_name(value[cursor + 1 :])
            if is_var:
                out.append(defined.get(read, f"$({read})"))
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


def _try_read_variable_name(rest: str) -> tuple[str, bool, int]:
    """(what was read, whether it is a variable name, how far the cursor moves)."""
    first = rest[0]
    if first == OPERATOR:
        return OPERATOR, False, 1  # `$$`: an escaped operator
    if first == REFERENCE_OPENER:
        for index in range(1, len(rest)):
            if rest[index] == REFERENCE_CLOSER:
                return rest[1:index], True, index + 1
        return OPERATOR + REFERENCE_OPENER, False, 1  # never closed: kept as written
    return OPERATOR + first, False, 1
