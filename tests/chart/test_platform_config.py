"""Values reach the Prefect side through platform.yaml, which `video-ingest
apply` must accept, and bad values are refused before anything is applied."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from prefect.utilities.templating import apply_values

from video_ingest.platform.config import parse_config
from video_ingest.platform.reconcile import build_base_job_template, default_job_template

from .rendering import CHART, VALUE_SETS, helm, platform_config, render


def test_limits_flow_from_values_into_platform_config() -> None:
    objects = render("--set", "workPool.concurrencyLimit=7", "--set", "concurrencyLimits.tags.video-ingest=13")
    data = platform_config(objects)
    assert data["workPool"]["concurrencyLimit"] == 7
    assert data["concurrencyLimits"]["tags"] == {"video-ingest": 13}
    config = parse_config(data)
    assert config.work_pool.concurrency_limit == 7
    assert config.concurrency_limits.tags == {"video-ingest": 13}


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_rendered_platform_config_is_accepted_by_video_ingest_apply(set_name, rendered_sets) -> None:
    config = parse_config(platform_config(rendered_sets[set_name]), f"{set_name} platform.yaml")
    assert config.work_pool.job_template.automount_service_account_token is False
    assert config.work_pool.job_template.service_account_name == "video-ingest-flow-run"


def test_every_limit_kind_reaches_the_config(rendered_sets) -> None:
    config = parse_config(platform_config(rendered_sets["everything"]))
    assert config.work_pool.name == "media-ingest"
    assert config.work_pool.concurrency_limit == 12
    assert {q.name: (q.concurrency_limit, q.priority) for q in config.work_pool.queues} == {
        "default": (10, 1), "bulk": (2, 2)
    }
    assert config.concurrency_limits.tags == {"video-ingest": 400, "transcode": 8, "legacy": None}
    globals_ = config.concurrency_limits.global_
    assert globals_["video-ingest"].limit == 300
    assert globals_["partner-api"].limit == 10 and globals_["partner-api"].slot_decay_per_second == 2.0
    assert globals_["old-limit"] is None
    assert [(d.name, d.flow, d.work_queue) for d in config.deployments] == [
        ("ingest-batch", "ingest-batch", "default"), ("bulk-video-ingest", "bulk-video-ingest", "bulk")
    ]


def test_null_pool_and_queue_limits_mean_unlimited(tmp_path) -> None:
    values = tmp_path / "unlimited.yaml"
    values.write_text(
        "workPool:\n  concurrencyLimit: null\n  queues:\n"
        "    - {name: default, concurrencyLimit: null}\n    - {name: bulk, priority: 2}\n"
    )
    config = parse_config(platform_config(render("--values", str(values))))
    assert config.work_pool.concurrency_limit is None
    assert config.work_pool.queues[0].concurrency_limit is None


def test_default_global_limit_is_the_one_items_hold_slots_of(rendered_sets) -> None:
    data = platform_config(rendered_sets["default"])
    env = data["workPool"]["jobTemplate"]["env"]
    assert data["concurrencyLimits"]["global"]["video-ingest"] == {"limit": 200}
    assert env["VIDEO_INGEST_SLOT_LIMIT"] == "video-ingest"


def test_ingest_values_become_flow_run_environment() -> None:
    objects = render(
        "--set", "ingest.maxInflight=500", "--set", "ingest.retries=4", "--set-json", "ingest.retryDelay=1.5",
        "--set", "ingest.batchSize=250", "--set", "ingest.handler=synthetic",
        "--set", "ingest.destination=s3://archive/v", "--set", "ingest.sourceBase=https://cdn/",
        "--set", "flowRuns.env.EXTRA=yes",
    )
    env = platform_config(objects)["workPool"]["jobTemplate"]["env"]
    assert env["VIDEO_INGEST_MAX_INFLIGHT"] == "500"
    assert env["VIDEO_INGEST_RETRIES"] == "4"
    assert env["VIDEO_INGEST_RETRY_DELAY"] == "1.5"
    assert env["VIDEO_INGEST_BATCH_SIZE"] == "250"
    assert env["VIDEO_INGEST_HANDLER"] == "synthetic"
    assert env["VIDEO_INGEST_DESTINATION"] == "s3://archive/v"
    assert env["VIDEO_INGEST_SOURCE_BASE"] == "https://cdn/"
    assert env["VIDEO_INGEST_BATCH_DEPLOYMENT"] == "ingest-batch/ingest-batch"
    assert env["EXTRA"] == "yes"
    assert all(isinstance(value, str) for value in env.values())


def test_unresponsive_runs_reach_the_config_with_the_heartbeat_they_are_sized_for(tmp_path) -> None:
    data = platform_config(render("--set", "flowRuns.heartbeatSeconds=45", "--set", "unresponsiveRuns.crashAfterSeconds=90"))
    assert data["unresponsiveRuns"] == {"crashAfterSeconds": 90}
    assert data["workPool"]["jobTemplate"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "45"
    assert parse_config(data).heartbeat_seconds == 45
    off = tmp_path / "off.yaml"
    off.write_text("unresponsiveRuns:\n  crashAfterSeconds: null\n")
    assert platform_config(render("--values", str(off)))["unresponsiveRuns"] == {"crashAfterSeconds": None}


def test_large_numbers_stay_exact(rendered_sets) -> None:
    env = platform_config(rendered_sets["everything"])["workPool"]["jobTemplate"]["env"]
    assert env["VIDEO_INGEST_BATCH_SIZE"] == "1000000"


def flow_run_job(objects: list[dict]) -> dict:
    """The Job manifest the worker would create from the pool's base job
    template, with the template's defaults filled in as Prefect does."""
    config = parse_config(platform_config(objects))
    template = build_base_job_template(default_job_template(), config.work_pool.job_template)
    defaults = {
        name: spec["default"]
        for name, spec in template["variables"]["properties"].items()
        if "default" in spec
    }
    defaults.setdefault("name", "ingest-batch-abc")
    defaults["command"] = "prefect flow-run execute"
    job = apply_values(copy.deepcopy(template["job_configuration"]["job_manifest"]), defaults)
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in (container.get("env") or {}).items()]
    container["args"] = container["args"].split()
    # prefect-kubernetes' default template puts Job fields in the pod spec
    # (upstream quirk; the API server drops them with a warning).
    job["spec"]["template"]["spec"].pop("parallelism", None)
    job["spec"]["template"]["spec"].pop("completions", None)
    return job


@pytest.mark.parametrize("set_name", ["default", "everything"])
def test_flow_run_jobs_are_hardened_valid_and_cleaned_up(set_name, rendered_sets) -> None:
    job = flow_run_job(rendered_sets[set_name])
    for version in ("1.30", "1.34"):
        kubernetes_validate.validate(job, version, strict=True)
    pod = job["spec"]["template"]
    spec = pod["spec"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "flow-run"
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "video-ingest"
    assert spec["serviceAccountName"] == "video-ingest-flow-run"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] == 10001
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/home/app/.prefect"} <= mounts
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert job["spec"]["ttlSecondsAfterFinished"] == (600 if set_name == "default" else 120)
    assert job["spec"]["backoffLimit"] == 0


def test_flow_run_jobs_carry_scheduling_and_data_settings(rendered_sets) -> None:
    job = flow_run_job(rendered_sets["everything"])
    spec = job["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node.example.com/pool": "ingest"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in spec["affinity"]
    assert spec["priorityClassName"] == "ingest-batch"
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}, {"name": "runs-registry"}]
    container = spec["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "ingest-credentials"}}]
    assert container["image"] == "registry.example.com/media/video-ingest:0.1.0"
    assert {"name": "destination", "persistentVolumeClaim": {"claimName": "video-archive"}} in spec["volumes"]
    assert {"name": "destination", "mountPath": "/data"} in container["volumeMounts"]


def test_finished_job_ttl_null_keeps_jobs(tmp_path) -> None:
    values = tmp_path / "keep.yaml"
    values.write_text("flowRuns:\n  finishedJobTtl: null\n")
    job = flow_run_job(render("--values", str(values)))
    # None: the Kubernetes client leaves the field out, so Jobs are kept.
    assert job["spec"].get("ttlSecondsAfterFinished") is None


# ---------------------------------------------------------------- the schema


@pytest.mark.parametrize(
    "args, complaint",
    [
        (("--set", "workPool.concurrencyLimit=-1"), "minimum"),
        (("--set-string", "workPool.concurrencyLimit=abc"), "concurrencyLimit"),
        (("--set", "workPool.concurrencyLimit=2.5"), "concurrencyLimit"),
        (("--set", "concurrencyLimits.tags.video-ingest=-5"), "minimum"),
        (("--set-string", "concurrencyLimits.global.video-ingest.limit=many"), "limit"),
        (("--set", "workPool.queues[0].name=default", "--set", "workPool.queues[0].concurrencyLimit=-2"), "minimum"),
        (("--set", "unknownTopLevelKey=1"), "unknownTopLevelKey"),
        (("--set", "worker.replicaCount=2"), "replicaCount"),
        (("--set", "image.pullPolicy=Sometimes"), "pullPolicy"),
        (("--set", "image.tag=latest"), "tag"),
        (("--set", "deployments[0].name=x", "--set", "deployments[0].flow=other"), "flow"),
        (("--set", "ingest.maxInflight=0"), "maxInflight"),
        (("--set", "ingest.window=64"), "window"),
        (("--set", "server.service.nodePort=80", "--set", "server.service.type=NodePort"), "nodePort"),
        (("--set", "flowRuns.heartbeatSeconds=20"), "heartbeatSeconds"),
        (("--set", "unresponsiveRuns.crashAfterSeconds=30"), "crashAfterSeconds"),
    ],
    ids=[
        "negative-pool-limit", "string-pool-limit", "fractional-pool-limit", "negative-tag-limit",
        "string-global-limit", "negative-queue-limit", "unknown-top-level-key", "unknown-worker-key",
        "bad-pull-policy", "latest-tag", "unknown-flow", "zero-max-inflight", "old-window-name",
        "node-port-out-of-range", "heartbeat-below-prefects-minimum", "crash-after-below-a-minute",
    ],
)
def test_schema_refuses_bad_values_before_anything_is_applied(args, complaint) -> None:
    result = helm("template", "video-ingest", str(CHART), *args, check=False)
    assert result.returncode != 0, f"helm accepted {args}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_schema_refuses_a_bad_values_file(tmp_path) -> None:
    values = tmp_path / "bad.yaml"
    values.write_text("workPool:\n  concurrencyLimit: abc\n")
    result = helm("template", "video-ingest", str(CHART), "--values", str(values), check=False)
    assert result.returncode != 0 and "concurrencyLimit" in result.stderr


@pytest.mark.parametrize(
    "args, complaint",
    [
        (("--set", "server.enabled=false"), "prefect.apiUrl is required"),
        (("--set", "prefect.apiUrl=http://prefect:4200/api"), "not both"),
        (("--set", "postgresql.enabled=false"), "needs a database"),
        (("--set", "concurrencyLimits.deleteGlobal={video-ingest}"), "both set"),
        (("--set", "workPool.queues[0].name=default"), "queue \"bulk\""),
        (("--set", "unresponsiveRuns.crashAfterSeconds=119"), "at least twice the flow runs' heartbeat, 60 s"),
        (("--set", "flowRuns.env.PREFECT_FLOWS_HEARTBEAT_FREQUENCY=400"), "at least twice the flow runs' heartbeat, 400 s"),
    ],
    ids=["no-api", "server-and-api-url", "server-without-database", "set-and-deleted", "deployment-on-unknown-queue",
         "crash-before-two-heartbeats", "crash-before-two-heartbeats-set-in-env"],
)
def test_contradictory_values_fail_with_a_clear_message(args, complaint) -> None:
    result = helm("template", "video-ingest", str(CHART), *args, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr
