"""The crash points' switch: off by default, and strict about what it is given."""

from __future__ import annotations

import pytest

from kadence.faults import parse


def test_nothing_is_armed_without_the_variable() -> None:
    assert parse("") == {}


def test_points_are_armed_with_their_pass() -> None:
    assert parse("task-created=250, job-created=1") == {"task-created": 250, "job-created": 1}


@pytest.mark.parametrize(
    "text", ["task-made=1", "job-created", "job-created=0", "job-created=x"],
    ids=["unknown point", "no count", "zero", "not a number"],
)  # fmt: skip
def test_a_bad_setting_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="POINT=N"):
        parse(text)
