"""The operator's configuration file (`kadence run --config FILE`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from kadence.deadlines import parse_interval

DEFAULT_POLICIES = [
    "kadence-require-job-create",
    "kadence-operator-only",
    "kadence-operator-jobs",
]
"""The admission policies of `deploy/base` (the Helm chart names its own)."""


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says why."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True, order=True)
class QueueKey:
    """A queue: one namespace's tasks of a schedulerId, or (namespace None) the tasks of the
    namespaces that share that schedulerId by configuration."""

    namespace: str | None
    scheduler_id: str

    def __str__(self) -> str:
        return f"{self.namespace or '*'}/{self.scheduler_id}"


class PriorityRange(StrictModel):
    min: int = Field(default=-(2**31))
    max: int = Field(default=2**31 - 1)

    @model_validator(mode="after")
    def _ordered(self) -> PriorityRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SharedQueue(StrictModel):
    """A queue that several namespaces share; any other namespace keeps its own."""

    namespaces: list[str] = Field(min_length=1)
    capacity: int | None = Field(default=None, ge=1)
    namespace_capacity: int | None = Field(default=None, ge=1, alias="namespaceCapacity")
    priority: PriorityRange = Field(default_factory=PriorityRange)


class PullQueue(StrictModel):
    """A queue whose Tasks runners claim instead of running as Jobs."""

    max_attempts: int = Field(default=3, ge=1, alias="maxAttempts")
    """Claims granted before a Task whose claims keep expiring ends Failed."""


def _duration(text: str) -> str:
    parse_interval(text)  # raises with a message that shows the expected form
    return text


Duration = Annotated[str, AfterValidator(_duration)]


class QueuesConfig(StrictModel):
    default_capacity: int = Field(default=10, ge=1, alias="defaultCapacity")
    capacity: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    shared: dict[str, SharedQueue] = Field(default_factory=dict)
    default_start_timeout: Duration = Field(default="15m", alias="defaultStartTimeout")
    start_timeout: dict[str, Duration] = Field(default_factory=dict, alias="startTimeout")
    pull: dict[str, PullQueue] = Field(default_factory=dict)

    def pull_of(self, scheduler_id: str) -> PullQueue | None:
        """The pull configuration of a schedulerId; None: its Tasks run as Jobs."""
        return self.pull.get(scheduler_id)

    def start_timeout_of(self, scheduler_id: str) -> timedelta:
        """How long a Task's Job may go without a ready pod before the Task fails."""
        return parse_interval(self.start_timeout.get(scheduler_id, self.default_start_timeout))

    def queue_of(self, namespace: str, scheduler_id: str) -> QueueKey:
        """The queue a task of this namespace and schedulerId joins: the shared one only
        when the configuration lists its namespace, else its namespace's own."""
        shared = self.shared.get(scheduler_id)
        if shared is not None and namespace in shared.namespaces:
            return QueueKey(None, scheduler_id)
        return QueueKey(namespace, scheduler_id)

    def capacity_of(self, queue: QueueKey) -> int:
        """Most tasks of this queue that may be Dispatched or Running at once."""
        shared = self.shared.get(queue.scheduler_id) if queue.namespace is None else None
        if shared is not None and shared.capacity is not None:
            return shared.capacity
        return self.capacity.get(queue.scheduler_id, self.default_capacity)

    def sharing(self, queue: QueueKey) -> SharedQueue | None:
        """The configuration of a shared queue; None for a namespace's own."""
        return self.shared.get(queue.scheduler_id) if queue.namespace is None else None

    def named(self, scheduler_id: str) -> bool:
        """Whether the configuration names this schedulerId (metrics label only those)."""
        return any(scheduler_id in named for named in (self.capacity, self.shared, self.pull))


class AdmissionConfig(StrictModel):
    require_policies: bool = Field(default=True, alias="requirePolicies")
    policies: list[str] = Field(default_factory=lambda: list(DEFAULT_POLICIES))


class LeaderElectionConfig(StrictModel):
    """Who may act: the replica holding a `coordination.k8s.io` Lease, as in client-go's
    leaderelection (the defaults are its defaults)."""

    enabled: bool = True
    lease_name: str = Field(default="kadence", min_length=1, alias="leaseName")
    lease_namespace: str = Field(default="", alias="leaseNamespace")
    lease_duration: Duration = Field(default="15s", alias="leaseDuration")
    renew_deadline: Duration = Field(default="10s", alias="renewDeadline")
    retry_period: Duration = Field(default="2s", alias="retryPeriod")

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionConfig:
        """A leader must give up before its Lease can expire, and try more than once
        before giving up; otherwise two replicas could act at once."""
        duration, renew, retry = (
            parse_interval(self.lease_duration),
            parse_interval(self.renew_deadline),
            parse_interval(self.retry_period),
        )
        if not duration > renew:
            raise ValueError(
                f"leaseDuration {self.lease_duration} must be longer than "
                f"renewDeadline {self.renew_deadline}"
            )
        if not renew > retry:
            raise ValueError(
                f"renewDeadline {self.renew_deadline} must be longer than "
                f"retryPeriod {self.retry_period}"
            )
        return self


class OperatorConfig(StrictModel):
    queues: QueuesConfig = Field(default_factory=QueuesConfig)
    namespaces: list[str] = Field(default_factory=list)
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    leader_election: LeaderElectionConfig = Field(
        default_factory=LeaderElectionConfig, alias="leaderElection"
    )


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
