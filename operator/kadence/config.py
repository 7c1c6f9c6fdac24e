"""The operator's configuration file (`kadence run --config FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says why."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QueuesConfig(StrictModel):
    default_capacity: int = Field(default=10, ge=1, alias="defaultCapacity")
    capacity: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    def capacity_of(self, scheduler_id: str) -> int:
        """Most tasks of this queue that may be Dispatched or Running at once."""
        return self.capacity.get(scheduler_id, self.default_capacity)


class OperatorConfig(StrictModel):
    queues: QueuesConfig = Field(default_factory=QueuesConfig)
    namespaces: list[str] = Field(default_factory=list)


def parse_config(text: str, source: str = "config") -> OperatorConfig:
    """Validate YAML text; unknown keys and bad values raise ConfigError naming them."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping, not {type(raw).__name__}")
    try:
        config = OperatorConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in error.errors()
        )
        raise ConfigError(f"{source}: {problems}") from error
    return config


def load_config(path: Path | None) -> OperatorConfig:
    """Read the file at path, or the defaults when no file is given."""
    if path is None:
        return OperatorConfig()
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    return parse_config(text, str(path))
