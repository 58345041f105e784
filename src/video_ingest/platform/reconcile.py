"""`video-ingest apply`: make the Prefect server match the platform config.

Three steps, the middle one pure:

1. `read_server_state` reads what exists (pool, queues, limits, deployments, the
   automation that crashes unresponsive runs);
2. `plan_changes` compares it with the config and lists the changes, each one
   printable ("update work pool video-ingest: concurrency_limit 4 -> 7");
3. `execute` sends them, in order: pool, queues, tag limits, global limits,
   deployments, automation.

The config is validated completely before step 1, so a bad file changes nothing.
A second run plans no changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from video_ingest.platform.config import (
    FLOW_ENTRYPOINTS,
    ConfigError,
    DeploymentConfig,
    JobTemplateConfig,
    PlatformConfig,
)
from video_ingest.settings import IngestSettings

FLOW_RUN_COMPONENT_LABEL = {"app.kubernetes.io/component": "flow-run"}
LIMIT_PAGE = 200


# The automation that marks a silent Running flow run of ours Crashed. It is ours by
# this name: apply creates, updates and deletes only the automation called so.
UNRESPONSIVE_AUTOMATION = "video-ingest: crash unresponsive flow runs"
# What we compare between the server's automation and ours (not its name or ID).
AUTOMATION_FIELDS = ("description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve")


@dataclass(frozen=True)
class Change:
    kind: str  # "work pool", "work queue", "tag limit", "global limit", "deployment", "automation"
    name: str
    action: str  # "create", "update", "delete"
    fields: tuple[tuple[str, Any, Any], ...] = ()
    payload: dict = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        if self.action == "update":
            parts = ", ".join(f"{name} {_short(old)} -> {_short(new)}" for name, old, new in self.fields)
            return f"update {self.kind} {self.name}: {parts}"
        if self.action == "create":
            parts = ", ".join(f"{name}={_short(new)}" for name, _, new in self.fields)
            return f"create {self.kind} {self.name}" + (f" ({parts})" if parts else "")
        return f"delete {self.kind} {self.name}"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class ServerState:
    pool: dict | None = None
    queues: dict[str, dict] = field(default_factory=dict)
    tag_limits: dict[str, dict] = field(default_factory=dict)
    global_limits: dict[str, dict] = field(default_factory=dict)
    deployments: dict[str, dict] = field(default_factory=dict)
    # every automation named UNRESPONSIVE_AUTOMATION: {"id": .., **automation_fields(..)}
    automations: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- pure: desired state


def unresponsive_runs_automation(crash_after_seconds: int) -> dict:
    """The automation that crashes a Running flow run of our flows (bulk and batch) after
    `crash_after_seconds` without a heartbeat, in the JSON form of Prefect's
    AutomationCore. Prefect's flow engine sends a heartbeat event every
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds while a run is Running; a run that ends
    sends its final state instead. Silence means its process is gone (killed, its laptop
    asleep, its node lost) and nothing else would ever end the run. Pure."""
    ended = [f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")]
    return {
        "description": (
            f"Marks a Running run of {', '.join(sorted(FLOW_ENTRYPOINTS))} Crashed when it has sent no heartbeat"
            f" for {crash_after_seconds} s: the process running it is gone. Kept by video-ingest apply"
            " (unresponsiveRuns in the platform config)."
        ),
        "enabled": True,
        "trigger": {
            "type": "event",
            "posture": "Proactive",
            "after": ["prefect.flow-run.heartbeat"],
            "expect": sorted(["prefect.flow-run.heartbeat", *ended]),
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": sorted(FLOW_ENTRYPOINTS)},
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": float(crash_after_seconds),
        },
        "actions": [{
            "type": "change-flow-run-state",
            "state": "CRASHED",
            "name": None,
            "force": False,
            "message": (
                f"No heartbeat for {crash_after_seconds} s: the process running this flow run is gone"
                " (killed, its machine asleep or lost). Runs it had started go on."
            ),
        }],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


def canonical(value: Any) -> Any:
    """`value` with every list of strings sorted, so that two automations read back
    from JSON compare equal whatever order their sets were written in. Pure."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [canonical(item) for item in value]
        return sorted(items) if all(isinstance(item, str) for item in items) else items
    return value


def covers(have: Any, want: Any) -> bool:
    """Whether `have` says everything `want` says: the same values at every key of `want`
    (lists of strings in any order); keys only `have` has (defaults a later Prefect
    adds) do not count. Pure."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(key in have and covers(have[key], item) for key, item in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return False
        have, want = canonical(have), canonical(want)
        return all(covers(h, w) for h, w in zip(have, want))
    return have == want


def build_base_job_template(default: dict, job: JobTemplateConfig) -> dict:
    """prefect-kubernetes' default base job template with our settings applied. Pure."""
    template = copy.deepcopy(default)
    props = template["variables"]["properties"]

    def default_of(variable: str, value: Any) -> None:
        if value is not None and variable in props:
            props[variable]["default"] = value

    default_of("namespace", job.namespace)
    default_of("image", job.image)
    default_of("image_pull_policy", job.image_pull_policy)
    default_of("service_account_name", job.service_account_name)
    default_of("finished_job_ttl", job.finished_job_ttl)
    default_of("backoff_limit", job.backoff_limit)
    default_of("pod_watch_timeout_seconds", job.pod_watch_timeout_seconds)
    if job.env:
        default_of("env", dict(job.env))
    if job.labels:
        default_of("labels", dict(job.labels))
    if job.annotations:
        default_of("annotations", dict(job.annotations))
    for kind in ("requests", "limits"):
        for resource, quantity in job.resources.get(kind, {}).items():
            default_of(f"{resource}_{kind[:-1]}", quantity)

    manifest = template["job_configuration"]["job_manifest"]
    pod_template = manifest["spec"]["template"]
    pod_template.setdefault("metadata", {})["labels"] = {**FLOW_RUN_COMPONENT_LABEL, **job.labels}
    pod = pod_template["spec"]
    pod["automountServiceAccountToken"] = job.automount_service_account_token
    if job.pod_security_context:
        pod["securityContext"] = dict(job.pod_security_context)
    if job.node_selector:
        pod["nodeSelector"] = dict(job.node_selector)
    if job.tolerations:
        pod["tolerations"] = list(job.tolerations)
    if job.affinity:
        pod["affinity"] = dict(job.affinity)
    if job.priority_class_name:
        pod["priorityClassName"] = job.priority_class_name
    if job.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in job.image_pull_secrets]
    if job.volumes:
        pod["volumes"] = list(job.volumes)
    container = pod["containers"][0]
    if job.security_context:
        container["securityContext"] = dict(job.security_context)
    if job.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in job.env_from_secrets]
    if job.volume_mounts:
        container["volumeMounts"] = list(job.volume_mounts)
    return template


def desired_deployment(config: PlatformConfig, deployment: DeploymentConfig, schema: dict) -> dict:
    return {
        "entrypoint": deployment.entrypoint,
        "work_pool_name": config.work_pool.name,
        "work_queue_name": deployment.work_queue or "default",
        "parameters": deployment.parameters,
        "job_variables": deployment.job_variables,
        "tags": sorted(deployment.tags),
        "description": deployment.description_text,
        "concurrency_limit": deployment.concurrency_limit,
        "parameter_openapi_schema": schema,
        "pull_steps": [],
    }


def plan_changes(
    config: PlatformConfig,
    actual: ServerState,
    default_template: dict,
    parameter_schemas: dict[str, dict],
) -> list[Change]:
    """Every change that makes `actual` match `config`. Pure."""
    changes: list[Change] = []
    pool = config.work_pool
    want_pool = {
        "type": pool.type,
        "description": pool.description,
        "concurrency_limit": pool.concurrency_limit,
        "base_job_template": build_base_job_template(default_template, pool.job_template),
    }
    queues_now = dict(actual.queues)
    if actual.pool is None:
        # creating a pool also creates its "default" queue
        queues_now["default"] = {"concurrency_limit": None, "priority": 1, "description": None}
        changes.append(
            Change("work pool", pool.name, "create",
                   (("type", None, pool.type), ("concurrency_limit", None, pool.concurrency_limit)),
                   payload=want_pool)
        )
    else:
        if actual.pool.get("type") != pool.type:
            raise ConfigError(
                f"work pool {pool.name!r} exists with type {actual.pool.get('type')!r}, not {pool.type!r};"
                " delete it or choose another name"
            )
        diffs = _field_diffs(actual.pool, want_pool, ["description", "concurrency_limit"])
        if actual.pool.get("base_job_template") != want_pool["base_job_template"]:
            diffs.append(("base_job_template", _template_summary(actual.pool.get("base_job_template")),
                          _template_summary(want_pool["base_job_template"])))
        if diffs:
            changes.append(Change("work pool", pool.name, "update", tuple(diffs),
                                  payload={name: want_pool[name] for name, _, _ in diffs}))

    for queue in pool.queues:
        want = {"concurrency_limit": queue.concurrency_limit, "priority": queue.priority,
                "description": queue.description}
        have = queues_now.get(queue.name)
        label = f"{pool.name}/{queue.name}"
        if have is None:
            changes.append(Change("work queue", label, "create",
                                  (("concurrency_limit", None, queue.concurrency_limit), ("priority", None, queue.priority)),
                                  payload={"name": queue.name, **want}))
            continue
        compare = ["concurrency_limit", "description"] + (["priority"] if queue.priority is not None else [])
        if queue.description is None:
            compare.remove("description")
        diffs = _field_diffs(have, want, compare)
        if diffs:
            changes.append(Change("work queue", label, "update", tuple(diffs),
                                  payload={"id": have.get("id"), "name": queue.name,
                                           **{n: want[n] for n, _, _ in diffs}}))

    for tag, limit in config.concurrency_limits.tags.items():
        have = actual.tag_limits.get(tag)
        if limit is None:
            if have is not None:
                changes.append(Change("tag limit", tag, "delete", payload={"name": f"tag:{tag}"}))
        elif have is None:
            changes.append(Change("tag limit", tag, "create", (("limit", None, limit),),
                                  payload={"name": f"tag:{tag}", "limit": limit}))
        elif have["limit"] != limit:
            changes.append(Change("tag limit", tag, "update", (("limit", have["limit"], limit),),
                                  payload={"name": f"tag:{tag}", "limit": limit}))

    for name, limit in config.concurrency_limits.global_.items():
        have = actual.global_limits.get(name)
        if limit is None:
            if have is not None:
                changes.append(Change("global limit", name, "delete", payload={"name": name}))
            continue
        want = {"limit": limit.limit, "slot_decay_per_second": limit.slot_decay_per_second, "active": limit.active}
        if have is None:
            changes.append(Change("global limit", name, "create",
                                  tuple((k, None, v) for k, v in want.items()), payload={"name": name, **want}))
        else:
            diffs = _field_diffs(have, want, list(want))
            if diffs:
                changes.append(Change("global limit", name, "update", tuple(diffs),
                                      payload={"name": name, **{n: want[n] for n, _, _ in diffs}}))

    for deployment in config.deployments:
        key = f"{deployment.flow}/{deployment.name}"
        want = desired_deployment(config, deployment, parameter_schemas[deployment.flow])
        have = actual.deployments.get(key)
        if have is None:
            changes.append(Change("deployment", key, "create",
                                  (("work_queue_name", None, want["work_queue_name"]),),
                                  payload={"flow": deployment.flow, "name": deployment.name, **want}))
            continue
        diffs = _field_diffs(have, want, list(want))
        if diffs:
            changes.append(Change("deployment", key, "update", tuple(diffs),
                                  payload={"flow": deployment.flow, "name": deployment.name, **want}))
    changes += _plan_automation(config, actual.automations)
    return changes


def _plan_automation(config: PlatformConfig, have: list[dict]) -> list[Change]:
    """Create, update or delete the automation named UNRESPONSIVE_AUTOMATION (only it);
    a second one of that name is deleted. Pure."""
    if config.unresponsive_runs is None:
        return []
    seconds = config.unresponsive_runs.crash_after_seconds
    if seconds is None:
        return [Change("automation", UNRESPONSIVE_AUTOMATION, "delete", payload={"id": a["id"]}) for a in have]
    want = unresponsive_runs_automation(seconds)
    if not have:
        return [Change("automation", UNRESPONSIVE_AUTOMATION, "create", (("crash_after_seconds", None, seconds),),
                       payload={"fields": want})]
    first, *extra = have
    changes = [Change("automation", UNRESPONSIVE_AUTOMATION, "delete", payload={"id": a["id"]}) for a in extra]
    if not covers(first, want):
        within = (first.get("trigger") or {}).get("within")
        old = int(within) if isinstance(within, (int, float)) else None
        diff = (("crash_after_seconds", old, seconds),) if old != seconds else (("definition", "edited", "ours"),)
        changes.append(Change("automation", UNRESPONSIVE_AUTOMATION, "update", diff,
                              payload={"id": first["id"], "fields": want}))
    return changes


def _field_diffs(have: dict, want: dict, names: list[str]) -> list[tuple[str, Any, Any]]:
    return [(name, have.get(name), want[name]) for name in names if have.get(name) != want[name]]


def _template_summary(template: dict | None) -> str:
    if not template:
        return "none"
    props = template.get("variables", {}).get("properties", {})
    image = props.get("image", {}).get("default")
    namespace = props.get("namespace", {}).get("default")
    return f"image={image}, namespace={namespace}"


# ---------------------------------------------------------------- the server side


def default_job_template() -> dict:
    from prefect_kubernetes.worker import KubernetesWorker

    return KubernetesWorker.get_default_base_job_template()


def parameter_schemas() -> dict[str, dict]:
    from prefect.utilities.callables import parameter_schema

    from video_ingest.ingestion import flows

    return {
        "ingest-batch": parameter_schema(flows.ingest_batch.fn).model_dump_for_openapi(),
        "bulk-video-ingest": parameter_schema(flows.bulk_video_ingest.fn).model_dump_for_openapi(),
    }


def read_server_state(client, config: PlatformConfig) -> ServerState:
    from prefect.exceptions import ObjectNotFound

    state = ServerState()
    try:
        pool = client.read_work_pool(config.work_pool.name)
    except ObjectNotFound:
        pool = None
    if pool is not None:
        state.pool = {
            "type": pool.type,
            "description": pool.description,
            "concurrency_limit": pool.concurrency_limit,
            "base_job_template": pool.base_job_template,
        }
        for queue in client.read_work_queues(work_pool_name=config.work_pool.name):
            state.queues[queue.name] = {
                "id": queue.id,
                "concurrency_limit": queue.concurrency_limit,
                "priority": queue.priority,
                "description": queue.description or None,
            }
    offset = 0
    while True:
        page = client.read_global_concurrency_limits(limit=LIMIT_PAGE, offset=offset)
        for limit in page:
            entry = {"limit": limit.limit, "slot_decay_per_second": limit.slot_decay_per_second or 0.0,
                     "active": limit.active, "active_slots": limit.active_slots}
            if limit.name.startswith("tag:"):
                state.tag_limits[limit.name.removeprefix("tag:")] = entry
            else:
                state.global_limits[limit.name] = entry
        if len(page) < LIMIT_PAGE:
            break
        offset += LIMIT_PAGE
    for deployment in config.deployments:
        key = f"{deployment.flow}/{deployment.name}"
        try:
            found = client.read_deployment_by_name(key)
        except ObjectNotFound:
            continue
        gcl = getattr(found, "global_concurrency_limit", None)
        state.deployments[key] = {
            "entrypoint": found.entrypoint,
            "work_pool_name": found.work_pool_name,
            "work_queue_name": found.work_queue_name,
            "parameters": found.parameters,
            "job_variables": found.job_variables,
            "tags": sorted(found.tags),
            "description": found.description,
            "concurrency_limit": gcl.limit if gcl is not None else None,
            "parameter_openapi_schema": found.parameter_openapi_schema,
            "pull_steps": found.pull_steps or [],
        }
    if config.unresponsive_runs is not None:
        for automation in client.read_automations_by_name(UNRESPONSIVE_AUTOMATION):
            fields = automation.model_dump(mode="json", include=set(AUTOMATION_FIELDS))
            fields["trigger"].pop("id", None)
            state.automations.append({"id": str(automation.id), **fields})
    return state


class ApplyError(RuntimeError):
    """The server refused a change; the ones before it were applied (apply again is safe)."""


def execute(client, config: PlatformConfig, changes: list[Change], on_change=None) -> None:
    for change in changes:
        try:
            _execute_one(client, config, change)
        except Exception as exc:
            detail = getattr(exc, "args", [""])[0] if exc.args else exc.__class__.__name__
            raise ApplyError(f"server refused '{change}': {str(detail)[:300]}") from exc
        if on_change:
            on_change(change)


def _execute_one(client, config: PlatformConfig, change: Change) -> None:
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
        WorkPoolUpdate,
    )

    p = change.payload
    if change.kind == "work pool" and change.action == "create":
        client.create_work_pool(WorkPoolCreate(
            name=change.name, type=p["type"], description=p["description"],
            concurrency_limit=p["concurrency_limit"], base_job_template=p["base_job_template"],
        ))
    elif change.kind == "work pool":
        client.update_work_pool(change.name, WorkPoolUpdate(**p))
    elif change.kind == "work queue" and change.action == "create":
        client.create_work_queue(
            name=p["name"], work_pool_name=config.work_pool.name, description=p["description"],
            concurrency_limit=p["concurrency_limit"], priority=p["priority"],
        )
    elif change.kind == "work queue":
        fields = {k: v for k, v in p.items() if k not in ("id", "name")}
        queue_id = p["id"] or client.read_work_queue_by_name(p["name"], work_pool_name=config.work_pool.name).id
        client.update_work_queue(queue_id, **fields)
    elif change.kind in ("tag limit", "global limit") and change.action == "delete":
        client.delete_global_concurrency_limit_by_name(p["name"])
    elif change.kind in ("tag limit", "global limit") and change.action == "create":
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
            name=p["name"], limit=p["limit"],
            slot_decay_per_second=p.get("slot_decay_per_second", 0.0), active=p.get("active", True),
        ))
    elif change.kind in ("tag limit", "global limit"):
        fields = {k: v for k, v in p.items() if k != "name"}
        client.update_global_concurrency_limit(p["name"], GlobalConcurrencyLimitUpdate(**fields))
    elif change.kind == "deployment":
        _upsert_deployment(client, p)
    elif change.kind == "automation" and change.action == "delete":
        client.delete_automation(p["id"])
    elif change.kind == "automation":
        from prefect.events.schemas.automations import AutomationCore

        automation = AutomationCore.model_validate({"name": change.name, **p["fields"]})
        if change.action == "create":
            client.create_automation(automation)
        else:
            client.update_automation(p["id"], automation)
    else:  # pragma: no cover - plan_changes only makes the kinds above
        raise ValueError(f"unknown change {change}")


def _upsert_deployment(client, p: dict) -> None:
    flow_id = client.create_flow_from_name(p["flow"])
    client.create_deployment(
        flow_id=flow_id,
        name=p["name"],
        entrypoint=p["entrypoint"],
        work_pool_name=p["work_pool_name"],
        work_queue_name=p["work_queue_name"],
        parameters=p["parameters"],
        job_variables=p["job_variables"],
        tags=p["tags"],
        description=p["description"],
        concurrency_limit=p["concurrency_limit"],
        parameter_openapi_schema=p["parameter_openapi_schema"],
        pull_steps=p["pull_steps"],
        enforce_parameter_schema=True,
    )


def apply(config: PlatformConfig, settings: IngestSettings, dry_run: bool = False, on_change=None) -> list[Change]:
    """Reconcile the server at `settings.prefect_api_url` with `config`; return the changes.

    `on_change` is called with each change once the server has accepted it (or, in a
    dry run, once planned)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from video_ingest.prefect_api.connection import ApiUnreachable, check_api

    if not settings.prefect_api_url:
        raise ApiUnreachable("apply needs PREFECT_API_URL: the Prefect server to configure")
    check_api(settings.prefect_api_url)
    with temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}):
        with get_client(sync_client=True) as client:
            actual = read_server_state(client, config)
            changes = plan_changes(config, actual, default_job_template(), parameter_schemas())
            if dry_run:
                for change in changes:
                    if on_change:
                        on_change(change)
            else:
                execute(client, config, changes, on_change)
    return changes
