"""The operator's configuration file: the documented format, and errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kadence.config import ConfigError, load_config, parse_config


def test_the_documented_example_is_read() -> None:
    config = parse_config(
        "queues:\n  defaultCapacity: 10\n  capacity:\n    boefje-org0: 4\nnamespaces: []\n"
    )
    assert config.queues.capacity_of("boefje-org0") == 4
    assert config.queues.capacity_of("anything-else") == 10
    assert config.namespaces == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queues: {defaultCapcity: 3}", "queues.defaultCapcity: unknown key"),
        ("namespace: [a]", "namespace: unknown key"),
        ("queues: {capacity: {q: 0}}", "queues.capacity.q"),
        ("queues: {defaultCapacity: many}", "queues.defaultCapacity"),
        ("- a\n- b", "must be a mapping"),
        ("queues: [", "not valid YAML"),
    ],
    ids=["misspelt-key", "unknown-top-key", "zero-capacity", "not-a-number", "a-list", "bad-yaml"],
)
def test_bad_configuration_is_refused_with_a_message_naming_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_config(text)


def test_no_file_means_defaults_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    assert load_config(None).queues.default_capacity == 10
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
