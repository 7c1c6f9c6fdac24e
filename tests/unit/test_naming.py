import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kadence.naming import (
    MAX_SCHEDULE_NAME_LENGTH,
    TASK_SUFFIX_LENGTH,
    default_hash,
    task_name_for_deadline,
    task_name_for_run_request,
)

CEST = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), "nightly-1704067200"),
        (datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC), "nightly-0000000005"),
        (datetime(2024, 1, 1, 2, 0, tzinfo=CEST), "nightly-1704067200"),
        (datetime(2024, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC), "nightly-1704067200"),
        (datetime(2286, 11, 20, 17, 46, 39, tzinfo=UTC), "nightly-9999999999"),
    ],
    ids=["utc", "zero-padded", "offset-same-instant", "fraction-dropped", "last-10-digit-second"],
)
def test_deadline_name(deadline: datetime, expected: str) -> None:
    assert task_name_for_deadline("nightly", deadline) == expected


@pytest.mark.parametrize(
    ("schedule", "deadline"),
    [
        ("nightly", datetime(2024, 1, 1)),
        ("nightly", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("nightly", datetime(2286, 11, 20, 17, 46, 40, tzinfo=UTC)),
        ("x" * (MAX_SCHEDULE_NAME_LENGTH + 1), datetime(2024, 1, 1, tzinfo=UTC)),
    ],
    ids=["naive", "before-1970", "eleven-digits", "schedule-name-too-long"],
)
def test_deadline_name_refused(schedule: str, deadline: datetime) -> None:
    with pytest.raises(ValueError, match=r"time zone|1970|characters"):
        task_name_for_deadline(schedule, deadline)


def test_longest_schedule_name_gives_a_63_character_job_name() -> None:
    schedule = "s" * MAX_SCHEDULE_NAME_LENGTH
    deadline_name = task_name_for_deadline(schedule, datetime(2024, 1, 1, tzinfo=UTC))
    request_name = task_name_for_run_request(schedule, "now")
    assert len(deadline_name) == len(request_name) == 63
    assert len(deadline_name) - len(schedule) == TASK_SUFFIX_LENGTH


def test_run_request_name() -> None:
    digest = hashlib.sha256(b"2024-05-01T12:00:00Z").hexdigest()
    assert task_name_for_run_request("nightly", "2024-05-01T12:00:00Z") == f"nightly-r{digest[:9]}"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z", True),
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:01Z", False),
        ("", " ", False),
    ],
    ids=["same-request-same-name", "new-request-new-name", "whitespace-matters"],
)
def test_run_request_name_is_deterministic(first: str, second: str, same: bool) -> None:
    names = {
        task_name_for_run_request("nightly", first),
        task_name_for_run_request("nightly", second),
    }
    assert (len(names) == 1) is same


@pytest.mark.parametrize(
    "request_value",
    ["now", "", "2024-05-01T12:00:00Z", "1704067200"],
    ids=["word", "empty", "timestamp", "digits"],
)
def test_run_request_name_never_looks_like_a_deadline_name(request_value: str) -> None:
    suffix = task_name_for_run_request("nightly", request_value).removeprefix("nightly-")
    assert re.fullmatch(r"r[0-9a-f]{9}", suffix)
    assert not re.fullmatch(r"[0-9]{10}", suffix)


SPEC = {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
SPEC_TEXT = '{"template":{"spec":{"containers":[{"image":"busybox","name":"c"}]}}}'


@pytest.mark.parametrize(
    ("data", "template", "canonical"),
    [
        ({}, {"spec": {}}, '{"data":{},"jobTemplate":{"metadata":{},"spec":{}}}'),
        (
            {"b": 1, "a": [1, 2]},
            {"spec": SPEC},
            f'{{"data":{{"a":[1,2],"b":1}},"jobTemplate":{{"metadata":{{}},"spec":{SPEC_TEXT}}}}}',
        ),
        (
            {"z": {"y": 1, "x": None}},
            {"metadata": {"labels": {"b": "2", "a": "1"}}, "spec": {}},
            '{"data":{"z":{"x":null,"y":1}},'
            '"jobTemplate":{"metadata":{"labels":{"a":"1","b":"2"}},"spec":{}}}',
        ),
        (
            {"naam": "café"},
            {"metadata": None, "spec": {}},
            '{"data":{"naam":"café"},"jobTemplate":{"metadata":{},"spec":{}}}',
        ),
        ({"a": 1}, None, '{"data":{"a":1},"jobTemplate":null}'),
    ],
    ids=[
        "empty",
        "keys-sorted-compact",
        "nested-sorted",
        "utf8-not-escaped-null-metadata",
        "no-template-in-a-pull-queue",
    ],
)
def test_default_hash(data: dict, template: dict | None, canonical: str) -> None:
    assert default_hash(data, template) == hashlib.md5(canonical.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (({"a": 1, "b": {"c": 2, "d": 3}}, {"spec": SPEC}),
         ({"b": {"d": 3, "c": 2}, "a": 1}, {"spec": SPEC}), True),
        (({}, {"spec": SPEC}), ({}, {"metadata": {}, "spec": SPEC}), True),
        (({}, {"spec": SPEC}), ({}, {"spec": {**SPEC, "backoffLimit": 0}}), False),
        (({}, {"spec": SPEC}), ({}, {"metadata": {"labels": {"x": "y"}}, "spec": SPEC}), False),
        (({"a": 1}, {"spec": SPEC}), ({"a": 2}, {"spec": SPEC}), False),
    ],
    ids=[
        "key-order-ignored",
        "absent-metadata-is-empty-metadata",
        "different-job-spec-differs",
        "different-job-labels-differ",
        "different-data-differs",
    ],
)  # fmt: skip
def test_default_hash_is_equal_only_for_equal_work(
    a: tuple[dict, dict], b: tuple[dict, dict], equal: bool
) -> None:
    assert (default_hash(*a) == default_hash(*b)) is equal
