import copy

import pytest

from video_ingest.platform.config import parse_config
from video_ingest.platform.reconcile import (
    UNRESPONSIVE_AUTOMATION,
    ServerState,
    build_base_job_template,
    default_job_template,
    plan_changes,
    unresponsive_runs_automation,
)

SCHEMAS = {"ingest-batch": {"title": "p"}, "bulk-video-ingest": {"title": "p"}}
CONFIG = {
    "workPool": {
        "name": "pool",
        "concurrencyLimit": 4,
        "queues": [{"name": "default", "priority": 1}, {"name": "bulk", "priority": 2, "concurrencyLimit": 1}],
        "jobTemplate": {
            "image": "video-ingest:0.1.0",
            "namespace": "ns",
            "serviceAccountName": "flow-runs",
            "finishedJobTtl": 600,
            "envFromSecrets": ["creds"],
            "nodeSelector": {"pool": "video"},
            "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
            "securityContext": {"runAsNonRoot": True},
        },
    },
    "concurrencyLimits": {"tags": {"video-ingest": 13, "gone": None}, "global": {"video-ingest": {"limit": 200}}},
    "deployments": [{"name": "ingest-batch", "flow": "ingest-batch"}],
}


@pytest.fixture(scope="module")
def default_template():
    return default_job_template()


def state_matching(config, default_template) -> ServerState:
    """What the server holds after a successful apply of `config`: what the plan for an
    empty server sends, stored as sent (the server's own fields beside it), not rebuilt
    with the functions that compute what is wanted."""
    sent = {(c.kind, c.name): c.payload for c in plan_changes(config, ServerState(), default_template, SCHEMAS)}
    pool = sent[("work pool", config.work_pool.name)]
    queues = {"default": {"id": "q-default", "concurrency_limit": None, "priority": 1, "description": None}}
    for (kind, _), payload in sent.items():
        if kind == "work queue":
            queues[payload["name"]] = {"id": f"q-{payload['name']}", **{k: v for k, v in payload.items() if k != "name"}}
    return ServerState(
        pool={**pool, "id": "pool-id", "status": "READY"},
        queues=queues,
        tag_limits={p["name"].removeprefix("tag:"): {"limit": p["limit"], "active": True}
                    for (kind, _), p in sent.items() if kind == "tag limit"},
        global_limits={p["name"]: {k: v for k, v in p.items() if k != "name"}
                       for (kind, _), p in sent.items() if kind == "global limit"},
        deployments={name: {k: v for k, v in p.items() if k not in ("flow", "name")}
                     for (kind, name), p in sent.items() if kind == "deployment"},
    )


def test_a_created_deployment_is_sent_what_the_config_says(default_template):
    (create,) = [c for c in plan_changes(parse_config(CONFIG), ServerState(), default_template, SCHEMAS)
                 if c.kind == "deployment"]
    assert create.payload == {
        "flow": "ingest-batch", "name": "ingest-batch",
        "entrypoint": "video_ingest.ingestion.flows:ingest_batch", "work_pool_name": "pool",
        "work_queue_name": "default", "parameters": {}, "job_variables": {}, "tags": [],
        "description": create.payload["description"], "concurrency_limit": None,
        "parameter_openapi_schema": {"title": "p"}, "pull_steps": [],
    }
    assert create.payload["description"]


def test_empty_server_gets_everything_created(default_template):
    changes = plan_changes(parse_config(CONFIG), ServerState(), default_template, SCHEMAS)
    # the pool's own "default" queue already matches (priority 1, no limit): no change for it
    assert [str(c).split(" (")[0] for c in changes] == [
        "create work pool pool",
        "create work queue pool/bulk",
        "create tag limit video-ingest",
        "create global limit video-ingest",
        "create deployment ingest-batch/ingest-batch",
    ]


def test_matching_server_needs_no_change(default_template):
    config = parse_config(CONFIG)
    assert plan_changes(config, state_matching(config, default_template), default_template, SCHEMAS) == []


def test_a_new_pool_limit_is_one_update_naming_old_and_new(default_template):
    config = parse_config(CONFIG)
    state = state_matching(config, default_template)
    state.pool["concurrency_limit"] = 7
    (change,) = plan_changes(config, state, default_template, SCHEMAS)
    assert str(change) == "update work pool pool: concurrency_limit 7 -> 4"


def test_null_tag_limit_deletes_an_existing_one(default_template):
    config = parse_config(CONFIG)
    state = state_matching(config, default_template)
    state.tag_limits["gone"] = {"limit": 3}
    (change,) = plan_changes(config, state, default_template, SCHEMAS)
    assert str(change) == "delete tag limit gone"


def test_null_pool_limit_clears_it(default_template):
    data = copy.deepcopy(CONFIG)
    data["workPool"]["concurrencyLimit"] = None
    config = parse_config(data)
    state = state_matching(parse_config(CONFIG), default_template)
    (change,) = plan_changes(config, state, default_template, SCHEMAS)
    assert change.payload == {"concurrency_limit": None}


def test_base_job_template_carries_our_job_settings(default_template):
    config = parse_config(CONFIG)
    template = build_base_job_template(default_template, config.work_pool.job_template)
    props = template["variables"]["properties"]
    assert props["image"]["default"] == "video-ingest:0.1.0"
    assert props["finished_job_ttl"]["default"] == 600
    assert props["cpu_request"]["default"] == "250m" and props["memory_limit"]["default"] == "1Gi"
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "flow-run"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["nodeSelector"] == {"pool": "video"}
    container = pod["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert container["securityContext"] == {"runAsNonRoot": True}
    # the default template itself is left untouched
    assert "nodeSelector" not in default_template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]


def server_automation(fields: dict, automation_id: str) -> dict:
    """An automation as read_server_state keeps it: Prefect's model of what was sent,
    dumped with the server's own additions and its sets in another order."""
    from prefect.events.schemas.automations import AutomationCore

    dumped = AutomationCore.model_validate({"name": UNRESPONSIVE_AUTOMATION, **fields}).model_dump(mode="json")
    dumped["trigger"]["expect"] = list(reversed(dumped["trigger"]["expect"]))
    dumped["trigger"]["id"] = "trigger-id"
    dumped["tags"] = ["added-by-a-later-prefect"]
    return {"id": automation_id, **dumped}


def automation_changes(config: dict, automations: list[dict], default_template) -> list:
    state = ServerState(automations=automations)
    return [c for c in plan_changes(parse_config(config), state, default_template, SCHEMAS) if c.kind == "automation"]


def test_unresponsive_runs_automation_is_created_once_then_matches_what_the_server_returns(default_template):
    config = {**CONFIG, "unresponsiveRuns": {"crashAfterSeconds": 600}}
    (create,) = automation_changes(config, [], default_template)
    assert (create.action, str(create)) == ("create", f"create automation {UNRESPONSIVE_AUTOMATION} (crash_after_seconds=600)")
    trigger = create.payload["fields"]["trigger"]
    assert (trigger["posture"], trigger["within"], trigger["after"]) == ("Proactive", 600.0, ["prefect.flow-run.heartbeat"])
    assert trigger["match_related"]["prefect.resource.name"] == ["bulk-video-ingest", "ingest-batch"]
    assert create.payload["fields"]["actions"][0]["state"] == "CRASHED"
    assert automation_changes(config, [server_automation(create.payload["fields"], "a1")], default_template) == []


def test_a_new_crash_after_updates_ours_null_deletes_it_and_a_second_of_its_name_goes(default_template):
    ours = server_automation(unresponsive_runs_automation(600), "a1")
    twin = server_automation(unresponsive_runs_automation(600), "a2")
    (update,) = automation_changes({**CONFIG, "unresponsiveRuns": {"crashAfterSeconds": 900}}, [ours],
                                   default_template)
    assert (update.action, update.payload["id"], update.fields) == ("update", "a1", (("crash_after_seconds", 600, 900),))
    edited = {**ours, "actions": [{**ours["actions"][0], "state": "FAILED"}]}
    (put_back,) = automation_changes({**CONFIG, "unresponsiveRuns": {"crashAfterSeconds": 600}}, [edited],
                                     default_template)
    assert (put_back.action, put_back.fields) == ("update", (("definition", "edited", "ours"),))
    deletes = automation_changes({**CONFIG, "unresponsiveRuns": {"crashAfterSeconds": None}}, [ours, twin],
                                 default_template)
    assert [(c.action, c.payload["id"]) for c in deletes] == [("delete", "a1"), ("delete", "a2")]
    (extra,) = automation_changes({**CONFIG, "unresponsiveRuns": {"crashAfterSeconds": 600}}, [ours, twin],
                                  default_template)
    assert (extra.action, extra.payload["id"]) == ("delete", "a2")
    assert automation_changes(CONFIG, [edited], default_template) == []
