"""The platform config file that `video-ingest apply` reconciles onto a Prefect server.

One YAML file; its keys mirror the Helm chart's values (the chart renders this
file from `values.yaml` into a ConfigMap), so a reader of either knows the other:

```yaml
workPool:
  name: video-ingest
  concurrencyLimit: 4            # running flow-run Jobs; null = unlimited
  queues:
    - {name: default, concurrencyLimit: null, priority: 1}
  jobTemplate:                   # overrides on prefect-kubernetes' default base job template
    namespace: video-ingest
    image: video-ingest:0.1.0
    serviceAccountName: video-ingest-flow-run
    finishedJobTtl: 600
concurrencyLimits:
  tags: {video-ingest: 200}      # Prefect tag limits; null deletes one
  global:                        # global limits; null deletes one
    video-ingest: {limit: 200}
    partner-api: {limit: 10, slotDecayPerSecond: 2.0}
deployments:
  - {name: ingest-batch, flow: ingest-batch, workQueue: default}
unresponsiveRuns:                # a Running run of our flows silent this long is Crashed
  crashAfterSeconds: 600         # null deletes the automation that does it
```

Limits the file does not mention are left alone (other teams may own them);
write `null` to remove one. Without `unresponsiveRuns`, the automation is left as
it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from video_ingest.settings import HEARTBEAT_SETTING, PREFECT_DEFAULT_HEARTBEAT_SECONDS, heartbeat_seconds

FLOW_ENTRYPOINTS = {
    "ingest-batch": "video_ingest.ingestion.flows:ingest_batch",
    "bulk-video-ingest": "video_ingest.ingestion.flows:bulk_video_ingest",
}

FLOW_DESCRIPTIONS = {
    "ingest-batch": "Ingest one batch of videos: one task run per video, in one Kubernetes Job.",
    "bulk-video-ingest": "Split a list of videos into batches and run each batch as an ingest-batch Job.",
}

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class ConfigError(ValueError):
    """The platform config cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)


class QueueConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    concurrency_limit: int | None = Field(None, ge=0, alias="concurrencyLimit")
    priority: int | None = Field(None, ge=1)
    description: str | None = None


class JobTemplateConfig(_Strict):
    """What the flow-run Jobs look like; applied onto prefect-kubernetes' default template."""

    namespace: str | None = None
    image: str | None = None
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] | None = Field(None, alias="imagePullPolicy")
    service_account_name: str | None = Field(None, alias="serviceAccountName")
    automount_service_account_token: bool = Field(False, alias="automountServiceAccountToken")
    finished_job_ttl: int | None = Field(None, ge=0, alias="finishedJobTtl")
    backoff_limit: int = Field(0, ge=0, alias="backoffLimit")
    pod_watch_timeout_seconds: int | None = Field(None, ge=1, alias="podWatchTimeoutSeconds")
    env: dict[str, str] = Field(default_factory=dict)
    env_from_secrets: list[str] = Field(default_factory=list, alias="envFromSecrets")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    priority_class_name: str | None = Field(None, alias="priorityClassName")
    image_pull_secrets: list[str] = Field(default_factory=list, alias="imagePullSecrets")
    pod_security_context: dict[str, Any] = Field(default_factory=dict, alias="podSecurityContext")
    security_context: dict[str, Any] = Field(default_factory=dict, alias="securityContext")
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list, alias="volumeMounts")

    @field_validator("resources")
    @classmethod
    def _resource_keys(cls, value: dict) -> dict:
        unknown = set(value) - {"requests", "limits"}
        if unknown:
            raise ValueError(f"resources may only have requests and limits, not {sorted(unknown)}")
        return value


class WorkPoolConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    type: Literal["kubernetes"] = "kubernetes"
    description: str | None = None
    concurrency_limit: int | None = Field(None, ge=0, alias="concurrencyLimit")
    queues: list[QueueConfig] = Field(default_factory=list)
    job_template: JobTemplateConfig = Field(default_factory=JobTemplateConfig, alias="jobTemplate")

    @field_validator("queues")
    @classmethod
    def _unique_queues(cls, queues: list[QueueConfig]) -> list[QueueConfig]:
        names = [queue.name for queue in queues]
        dupes = sorted({name for name in names if names.count(name) > 1})
        if dupes:
            raise ValueError(f"queue names must be unique: {dupes}")
        return queues


class GlobalLimitConfig(_Strict):
    limit: int = Field(ge=0)
    slot_decay_per_second: float = Field(0.0, ge=0, alias="slotDecayPerSecond")
    active: bool = True


class ConcurrencyLimitsConfig(_Strict):
    tags: dict[str, int | None] = Field(default_factory=dict)
    global_: dict[str, GlobalLimitConfig | None] = Field(default_factory=dict, alias="global")

    @field_validator("tags")
    @classmethod
    def _tag_limits(cls, tags: dict[str, int | None]) -> dict[str, int | None]:
        for tag, limit in tags.items():
            if not tag or tag.startswith("tag:"):
                raise ValueError(f"bad tag name {tag!r}")
            if limit is not None and (isinstance(limit, bool) or limit < 0):
                raise ValueError(f"limit for tag {tag!r} must be a non-negative integer or null")
        return tags

    @field_validator("global_")
    @classmethod
    def _global_names(cls, limits: dict) -> dict:
        for name in limits:
            if not name or name.startswith("tag:"):
                raise ValueError(f"bad global limit name {name!r} (tag limits go under 'tags')")
        return limits


class DeploymentConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    flow: Literal["ingest-batch", "bulk-video-ingest"]
    work_queue: str | None = Field(None, alias="workQueue")
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict, alias="jobVariables")
    concurrency_limit: int | None = Field(None, ge=1, alias="concurrencyLimit")

    @property
    def entrypoint(self) -> str:
        return FLOW_ENTRYPOINTS[self.flow]

    @property
    def description_text(self) -> str:
        return self.description or FLOW_DESCRIPTIONS[self.flow]


class UnresponsiveRunsConfig(_Strict):
    """A Running flow run of ours that has sent no heartbeat for `crash_after_seconds` is
    marked Crashed (a Prefect automation); None removes the automation."""

    crash_after_seconds: int | None = Field(ge=60, alias="crashAfterSeconds")


class PlatformConfig(_Strict):
    work_pool: WorkPoolConfig = Field(alias="workPool")
    concurrency_limits: ConcurrencyLimitsConfig = Field(
        default_factory=ConcurrencyLimitsConfig, alias="concurrencyLimits"
    )
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    unresponsive_runs: UnresponsiveRunsConfig | None = Field(None, alias="unresponsiveRuns")

    @property
    def heartbeat_seconds(self) -> int:
        """Seconds between the flow-run pods' heartbeats: their env's setting, else Prefect's default."""
        value = self.work_pool.job_template.env.get(HEARTBEAT_SETTING)
        return heartbeat_seconds(value) if value is not None else PREFECT_DEFAULT_HEARTBEAT_SECONDS

    @field_validator("deployments")
    @classmethod
    def _unique_deployments(cls, deployments: list[DeploymentConfig]) -> list[DeploymentConfig]:
        keys = [(d.flow, d.name) for d in deployments]
        dupes = sorted({f"{flow}/{name}" for flow, name in keys if keys.count((flow, name)) > 1})
        if dupes:
            raise ValueError(f"deployments must be unique per flow and name: {dupes}")
        return deployments

    @field_validator("work_pool")
    @classmethod
    def _heartbeat_setting(cls, pool: WorkPoolConfig) -> WorkPoolConfig:
        value = pool.job_template.env.get(HEARTBEAT_SETTING)
        if value is not None:
            try:
                heartbeat_seconds(value)
            except ValueError as exc:
                raise ValueError(f"jobTemplate.env.{exc}") from None
        return pool

    def check_references(self) -> None:
        crash_after = self.unresponsive_runs.crash_after_seconds if self.unresponsive_runs else None
        if crash_after is not None and crash_after < 2 * self.heartbeat_seconds:
            raise ConfigError(
                f"unresponsiveRuns.crashAfterSeconds: {crash_after} would crash live flow runs: it must be at least"
                f" twice their heartbeat, {self.heartbeat_seconds} s"
                f" (jobTemplate.env.{HEARTBEAT_SETTING}, Prefect's default {PREFECT_DEFAULT_HEARTBEAT_SECONDS} s)"
            )
        queue_names = {queue.name for queue in self.work_pool.queues} | {"default"}
        for deployment in self.deployments:
            if deployment.work_queue and deployment.work_queue not in queue_names:
                raise ConfigError(
                    f"deployments.{deployment.name}.workQueue: queue {deployment.work_queue!r}"
                    f" is not in workPool.queues"
                )


def parse_config(data: Any, source: str = "<config>") -> PlatformConfig:
    """Validate a parsed YAML document; one ConfigError listing every problem. Pure."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        config = PlatformConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where}: {message}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    config.check_references()
    return config


def load_config(path: str | Path) -> PlatformConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(path))
