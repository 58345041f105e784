"""One settings contract between the chart and the package: every `ingest.*` value
reaches exactly one VIDEO_INGEST_* variable of the flow-run pods, that variable is a
field of IngestSettings, and the schema's bounds are the field's bounds. Checked field by
field, so a setting added, renamed or re-bounded on one side only fails here."""

from __future__ import annotations

import json
import typing

import annotated_types
import pytest

from video_ingest.settings import ENV_PREFIX, IngestSettings, settings_with_env

from .rendering import CHART, platform_config, render

SCHEMA = json.loads((CHART / "values.schema.json").read_text())["properties"]["ingest"]["properties"]
FIELDS = IngestSettings.model_fields

# IngestSettings fields with no `ingest.*` value, and why: each new field must be decided on.
NOT_IN_CHART = {
    "prefect_api_url": "the chart sets PREFECT_API_URL itself (the in-chart server or prefect.apiUrl)",
    "state_dir": "the embedded server's files: local runs only",
    "synthetic_ms": "the synthetic handler's per-item work: tests and benchmarks set it per item (#ms=)",
    "slot_lease_seconds": "Prefect's lease length: the default suits every layout so far",
    "max_unsent_events": "the event backlog bound: the default suits every layout so far",
    "batch_deployment": "fixed by the chart from its own deployment names",
}


def job_env(*args: str) -> dict[str, str]:
    return platform_config(render(*args))["workPool"]["jobTemplate"]["env"]


def probe_value(key: str, spec: dict, default_env: dict[str, str]):
    """A valid value for ingest.<key> that differs from the default rendering."""
    kind = spec.get("type")
    if "enum" in spec:
        return next(v for v in spec["enum"] if v not in default_env.values())
    if kind == "integer":
        return next(n for n in range(spec.get("minimum", 0) + 1, 10**6) if str(n) not in default_env.values())
    if kind == "number":
        return min(spec.get("maximum", 10), 0.75)
    if kind == "array":
        return ["probe"]
    return f"probe-{key.lower()}"


def env_of_value(key: str) -> str:
    """The one VIDEO_INGEST_* variable that changes when ingest.<key> does."""
    default = job_env()
    value = probe_value(key, SCHEMA[key], default)
    changed = {name for name, v in job_env("--set-json", f"ingest.{key}={json.dumps(value)}").items()
               if default.get(name) != v}
    assert len(changed) == 1, f"ingest.{key} changed {sorted(changed) or 'nothing'} in the flow-run env"
    return changed.pop()


def field_bounds(name: str) -> dict:
    """The schema keywords IngestSettings' field `name` amounts to."""
    bounds: dict = {}
    info = FIELDS[name]
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            bounds["minimum"] = meta.ge
        elif isinstance(meta, annotated_types.Le):
            bounds["maximum"] = meta.le
        elif isinstance(meta, annotated_types.Gt):
            bounds["exclusiveMinimum"] = meta.gt
        elif isinstance(meta, annotated_types.MinLen):
            bounds["minLength"] = meta.min_length
    if typing.get_origin(info.annotation) is typing.Literal:
        bounds["enum"] = list(typing.get_args(info.annotation))
    return bounds


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_each_ingest_value_is_one_settings_field_with_the_same_bounds(key: str) -> None:
    env = env_of_value(key)
    assert env.startswith(ENV_PREFIX), env
    field = env.removeprefix(ENV_PREFIX).lower()
    assert field in FIELDS, f"ingest.{key} renders {env}, which IngestSettings does not read"
    wanted = {k: v for k, v in SCHEMA[key].items()
              if k in ("minimum", "maximum", "exclusiveMinimum", "minLength", "enum")}
    assert wanted == field_bounds(field), f"ingest.{key} (schema) and IngestSettings.{field} disagree"


def test_every_settings_field_is_a_chart_value_or_left_out_on_purpose() -> None:
    in_chart = {env_of_value(key).removeprefix(ENV_PREFIX).lower() for key in SCHEMA}
    assert set(FIELDS) - in_chart == set(NOT_IN_CHART)
    assert not in_chart & set(NOT_IN_CHART)


def test_the_rendered_flow_run_env_is_valid_settings() -> None:
    env = {k: v for k, v in job_env().items() if k.startswith(ENV_PREFIX)}
    settings = settings_with_env(IngestSettings(), env)
    assert settings.batch_size == 500 and settings.handler == "fetch"
    assert {name.removeprefix(ENV_PREFIX).lower() for name in env} <= set(FIELDS)
