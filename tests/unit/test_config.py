"""The operator's configuration file: the documented format, and errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kadence.config import ConfigError, QueueKey, load_config, parse_config


def test_the_documented_example_is_read() -> None:
    config = parse_config(
        "queues:\n  defaultCapacity: 10\n  capacity:\n    boefje-org0: 4\nnamespaces: []\n"
    )
    queue = config.queues.queue_of("team-a", "boefje-org0")
    assert queue == QueueKey("team-a", "boefje-org0"), "each namespace has its own queue"
    assert config.queues.capacity_of(queue) == 4
    assert config.queues.capacity_of(QueueKey("team-a", "anything-else")) == 10
    assert config.namespaces == []
    assert config.admission.require_policies is True
    assert config.admission.policies == [
        "kadence-require-job-create",
        "kadence-operator-only",
        "kadence-operator-jobs",
    ]


SHARED = """
queues:
  defaultCapacity: 10
  capacity: {boefje: 3}
  shared:
    boefje:
      namespaces: [team-a, team-b]
      capacity: 2
      namespaceCapacity: 1
      priority: {min: 0, max: 100}
    reports:
      namespaces: [team-a]
"""


@pytest.mark.parametrize(
    ("namespace", "scheduler_id", "queue", "capacity"),
    [
        ("team-a", "boefje", QueueKey(None, "boefje"), 2),
        ("team-b", "boefje", QueueKey(None, "boefje"), 2),
        ("team-c", "boefje", QueueKey("team-c", "boefje"), 3),
        ("team-a", "reports", QueueKey(None, "reports"), 10),
        ("team-a", "other", QueueKey("team-a", "other"), 10),
    ],
    ids=[
        "listed-namespace-joins-the-shared-queue",
        "another-listed-namespace-too",
        "unlisted-namespace-keeps-its-own-queue",
        "shared-without-capacity-takes-the-default",
        "unshared-schedulerId",
    ],
)
def test_shared_queues(namespace: str, scheduler_id: str, queue: QueueKey, capacity: int) -> None:
    queues = parse_config(SHARED).queues
    assert queues.queue_of(namespace, scheduler_id) == queue
    assert queues.capacity_of(queue) == capacity
    assert (queues.sharing(queue) is not None) == (queue.namespace is None)


@pytest.mark.parametrize(
    ("text", "scheduler_id", "max_attempts"),
    [
        ("queues: {pull: {boefje: {maxAttempts: 5}}}", "boefje", 5),
        ("queues: {pull: {boefje: {}}}", "boefje", 3),
        ("queues: {pull: {boefje: {}}}", "reports", None),
        ("queues: {shared: {boefje: {namespaces: [a]}}, pull: {boefje: {}}}", "boefje", 3),
    ],
    ids=["attempts-set", "attempts-default", "not-pulled-runs-jobs", "pulled-and-shared"],
)
def test_pull_queues(text: str, scheduler_id: str, max_attempts: int | None) -> None:
    queues = parse_config(text).queues
    pull = queues.pull_of(scheduler_id)
    assert (pull.max_attempts if pull is not None else None) == max_attempts
    assert queues.named(scheduler_id) is (max_attempts is not None)


def test_single_tenant_clusters_can_run_without_the_policies() -> None:
    config = parse_config("admission: {requirePolicies: false}")
    assert config.admission.require_policies is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queues: {defaultCapcity: 3}", "queues.defaultCapcity: unknown key"),
        ("namespace: [a]", "namespace: unknown key"),
        ("queues: {capacity: {q: 0}}", "queues.capacity.q"),
        ("queues: {defaultCapacity: many}", "queues.defaultCapacity"),
        ("- a\n- b", "must be a mapping"),
        ("queues: [", "not valid YAML"),
        ("queues: {shared: {q: {namespaces: []}}}", "queues.shared.q.namespaces"),
        ("queues: {shared: {q: {namespaces: [a], priority: {min: 5, max: 1}}}}", "above max"),
        ("admission: {requirePolicy: false}", "admission.requirePolicy: unknown key"),
        ("queues: {pull: {boefje: {maxAttempts: 0}}}", "queues.pull.boefje.maxAttempts"),
        ("queues: {pull: {boefje: {attempts: 2}}}", "queues.pull.boefje.attempts: unknown key"),
    ],
    ids=[
        "misspelt-key",
        "unknown-top-key",
        "zero-capacity",
        "not-a-number",
        "a-list",
        "bad-yaml",
        "shared-queue-without-namespaces",
        "empty-priority-range",
        "misspelt-admission-key",
        "pull-queue-without-attempts",
        "misspelt-pull-key",
    ],
)
def test_bad_configuration_is_refused_with_a_message_naming_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_config(text)


def test_no_file_means_defaults_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    assert load_config(None).queues.default_capacity == 10
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
