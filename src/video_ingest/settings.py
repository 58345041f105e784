"""The one place that reads the environment.

Everything else in the package receives an `IngestSettings` (or plain values taken
from it); nothing else calls `os.environ`. Prefect's own variables (`PREFECT_API_URL`
and friends) are read by Prefect itself; we only look at the API URL to decide
whether to start an embedded server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


# Prefect's setting for the seconds between a running flow run's heartbeat events
# (its default: 180; at least 30). The chart sets it on the flow-run pods.
HEARTBEAT_SETTING = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
PREFECT_DEFAULT_HEARTBEAT_SECONDS = 180
MIN_HEARTBEAT_SECONDS = 30


def heartbeat_seconds(value: str) -> int:
    """A HEARTBEAT_SETTING value as whole seconds; ValueError saying why when Prefect
    would not take it. Pure."""
    if not (value.isdigit() and int(value) >= MIN_HEARTBEAT_SECONDS):
        raise ValueError(f"{HEARTBEAT_SETTING} must be a whole number of seconds, at least {MIN_HEARTBEAT_SECONDS},"
                         f" not {value!r}")
    return int(value)


class IngestSettings(BaseSettings):
    """Runtime settings for the ingest flows and the CLI (env prefix `VIDEO_INGEST_`)."""

    model_config = SettingsConfigDict(env_prefix="VIDEO_INGEST_", extra="ignore")

    handler: str = Field("fetch", min_length=1, description="per-video handler: 'fetch' or 'synthetic'")
    max_inflight: int = Field(64, ge=1, le=10_000, description="in-flight task runs per batch")
    max_workers: int = Field(16, ge=1, le=512, description="threads running task runs")
    retries: int = Field(3, ge=0, le=100)
    retry_delay: float = Field(2.0, ge=0, le=3600, description="first retry delay, seconds")
    retry_jitter: float = Field(0.2, ge=0, le=1)
    batch_size: int = Field(500, ge=1, le=1_000_000)
    tag: str = Field("video-ingest", min_length=1, description="tag put on every item task run")
    slot_limit: str | None = Field(
        "video-ingest",
        description="global concurrency limit that every item holds a slot of while it runs",
    )
    slot_block: int = Field(16, ge=1, le=1000, description="slots leased per server call")
    slot_lease_seconds: float = Field(60.0, ge=10, le=3600)
    max_unsent_events: int = Field(
        2000, ge=0, le=1_000_000,
        description="hold new items back while this many Prefect events wait to be sent (0: never)",
    )
    source_base: str = Field("", description="prefix for IDs whose manifest row has no source")
    destination: str = Field("", description="where ingested files and sidecars go (fsspec URI)")
    source_schemes: str = Field(
        "http,https,s3", pattern=r"^[a-z0-9+.,\s-]*$",
        description="source URI schemes the fetch handler may read, comma-separated (add file to allow pod-local paths)",
    )
    probe_timeout: float = Field(60.0, gt=0, le=3600, description="seconds of I/O one probe may take")
    synthetic_ms: int = Field(0, ge=0, le=600_000, description="synthetic work per item, ms")
    batch_deployment: str = Field("ingest-batch/ingest-batch")
    batch_attempts: int = Field(3, ge=1, le=20, description="runs of one batch before giving up")
    batch_timeout: float = Field(3600.0, gt=0, description="seconds one batch run may take")
    start_timeout: float = Field(
        900.0, gt=0, le=86_400,
        description="seconds a batch run may stay Pending once its Job exists (pod unschedulable, image missing)",
    )
    prefect_api_url: str | None = Field(
        None, validation_alias=AliasChoices("PREFECT_API_URL", "VIDEO_INGEST_PREFECT_API_URL")
    )
    state_dir: str = Field("~/.video-ingest", description="embedded server database and logs")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("prefect_api_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None


ENV_PREFIX = "VIDEO_INGEST_"

def settings_with_env(base: IngestSettings, env: dict[str, str]) -> IngestSettings:
    """`base` with the `VIDEO_INGEST_*` variables of `env` applied on top. Pure.

    Used for a cluster's settings as its flow-run pods see them (the work pool's job
    template env), read by a submitter on a laptop. Unknown names are ignored.
    """
    fields = IngestSettings.model_fields
    updates = {}
    for name, value in env.items():
        key = name.removeprefix(ENV_PREFIX).lower() if name.startswith(ENV_PREFIX) else None
        if key in fields and key != "prefect_api_url":
            updates[key] = value
    return with_overrides(base, source="cluster ingest setting", **updates)


def with_overrides(base: IngestSettings, source: str = "setting", **overrides: object) -> IngestSettings:
    """`base` with the overrides that are not None applied, validated like the environment."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    if not clean:
        return base
    merged = _validated({**base.model_dump(exclude={"prefect_api_url"}), **clean}, source)
    return merged.model_copy(update={"prefect_api_url": base.prefect_api_url})


def load_settings(**overrides: object) -> IngestSettings:
    """Read settings from the environment, apply explicit overrides (CLI flags).

    Raises `SettingsError` with one line per bad value instead of pydantic's report.
    """
    clean = {key: value for key, value in overrides.items() if value is not None}
    return _validated(clean, source="setting")


def _validated(values: dict, source: str) -> IngestSettings:
    """IngestSettings from explicit values (they win over the environment)."""
    try:
        return IngestSettings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError(f"invalid {source}: " + "; ".join(problems)) from None
