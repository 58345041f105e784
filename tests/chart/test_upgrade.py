"""`helm upgrade` behaves as ops expect: a limit changes on the server through
the apply hook without restarting the worker; the worker's own config rolls it;
the hook runs after install, upgrade and rollback and fails the release when
apply fails."""

from __future__ import annotations

import pytest

from .rendering import CHART, find, helm, render

WORKER = "video-ingest-worker"


def worker_pod_template(*args: str) -> dict:
    return find(render(*args), "Deployment", WORKER)["spec"]["template"]


def test_changing_only_limits_leaves_the_worker_pod_template_unchanged() -> None:
    before = worker_pod_template()
    after = worker_pod_template(
        "--set", "workPool.concurrencyLimit=9",
        "--set-json", 'workPool.queues=[{"name": "default", "concurrencyLimit": 3},'
                      ' {"name": "bulk", "priority": 2, "concurrencyLimit": 5}]',
        "--set", "concurrencyLimits.tags.video-ingest=13",
        "--set", "concurrencyLimits.global.video-ingest.limit=50",
        "--set", "concurrencyLimits.global.partner-api.limit=5",
        "--set-json", "concurrencyLimits.global.partner-api.slotDecayPerSecond=1.5",
    )
    assert after == before


def test_changing_only_limits_changes_the_platform_config_the_hook_applies() -> None:
    config = lambda *a: find(render(*a), "ConfigMap", "video-ingest-platform")["data"]  # noqa: E731
    assert config("--set", "workPool.concurrencyLimit=9") != config()


def test_changing_flow_run_settings_leaves_the_worker_running() -> None:
    before = worker_pod_template()
    after = worker_pod_template("--set", "ingest.maxInflight=99", "--set", "flowRuns.finishedJobTtl=60")
    assert after == before


@pytest.mark.parametrize(
    "args",
    [
        ("--set", "image.tag=0.2.0"),
        ("--set", "workPool.name=other-pool"),
        ("--set", "worker.env.PREFECT_WORKER_HEARTBEAT_SECONDS=15"),
        ("--set", "prefect.apiKeySecret.name=prefect-cloud", "--set", "server.enabled=false",
         "--set", "prefect.apiUrl=https://api.example.com/api", "--set", "networkPolicy.prefectApi.cidrs={203.0.113.0/24}"),
        ("--set", "worker.querySeconds=3"),
    ],
    ids=["image", "pool-name", "worker-env", "credentials", "poll-interval"],
)
def test_changing_the_worker_config_rolls_the_worker(args) -> None:
    assert worker_pod_template(*args) != worker_pod_template()


def test_no_pod_template_depends_on_the_platform_config_checksum(rendered_sets) -> None:
    for objects in rendered_sets.values():
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                annotations = obj["spec"]["template"]["metadata"].get("annotations") or {}
                assert not [k for k in annotations if k.startswith("checksum/")], obj["metadata"]["name"]


def test_apply_hook_runs_after_install_upgrade_and_rollback_and_keeps_a_failed_log(rendered_sets) -> None:
    job = find(rendered_sets["default"], "Job", "video-ingest-apply")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade", "post-rollback"}
    assert int(annotations["helm.sh/hook-weight"]) >= 0
    # Replaced by the next hook, not deleted on failure or success: the log
    # of a failed apply stays readable.
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert job["spec"]["backoffLimit"] <= 2
    assert job["spec"]["activeDeadlineSeconds"] > 0
    # Without the cleanup hook (cleanup.enabled=false) helm uninstall leaves
    # hook objects behind: the Job removes itself later.
    assert job["spec"]["ttlSecondsAfterFinished"] >= 3600
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    container = spec["containers"][0]
    assert container["command"] == ["video-ingest", "apply", "--config", "/etc/video-ingest/platform.yaml"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/video-ingest")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "video-ingest-platform"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PREFECT_API_URL"] == "http://video-ingest-server.video-ingest.svc:4200/api"


def test_apply_hook_waits_until_the_prefect_api_answers(rendered_sets) -> None:
    spec = find(rendered_sets["default"], "Job", "video-ingest-apply")["spec"]["template"]["spec"]
    (wait,) = spec["initContainers"]
    assert wait["name"] == "wait-for-api"
    assert "/health" in wait["command"][-1]
    assert {e["name"]: e["value"] for e in wait["env"]}["PREFECT_API_URL"].endswith(":4200/api")


def test_apply_test_and_cleanup_objects_are_the_only_hooks(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        hooks = {
            (o["kind"], o["metadata"]["name"]): o["metadata"]["annotations"]["helm.sh/hook"]
            for o in objects
            if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
        }
        assert hooks == {
            ("Job", "video-ingest-apply"): "post-install,post-upgrade,post-rollback",
            ("Pod", "video-ingest-test"): "test",
            ("ServiceAccount", "video-ingest-cleanup"): "pre-delete",
            ("Role", "video-ingest-cleanup"): "pre-delete",
            ("RoleBinding", "video-ingest-cleanup"): "pre-delete",
            ("Job", "video-ingest-cleanup"): "pre-delete",
        }, set_name


def test_helm_test_pod_stays_after_its_run_so_helm_test_logs_can_read_it(rendered_sets) -> None:
    # Helm reads the test pod's log after the run: hook-succeeded would
    # delete it first. The next `helm test` replaces it; uninstall's cleanup
    # hook deletes it.
    pod = find(rendered_sets["default"], "Pod", "video-ingest-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"


def test_helm_test_pod_asserts_the_server_matches_the_values(rendered_sets) -> None:
    pod = find(rendered_sets["default"], "Pod", "video-ingest-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "video-ingest apply --dry-run --exit-code --config /etc/video-ingest/platform.yaml" in script
    # Drift is told by the exit code (3), not by reading the output.
    assert "code=$?" in script and '3) echo "FAIL' in script and "set -e" not in script
    assert pod["spec"]["restartPolicy"] == "Never"


def test_worker_polls_the_pool_with_a_health_server(rendered_sets) -> None:
    """`video-ingest worker` runs Prefect's `worker start --type kubernetes --with-healthcheck`
    (its arguments: tests/unit/test_worker_start.py)."""
    spec = find(rendered_sets["default"], "Deployment", WORKER)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["video-ingest", "worker", "--pool", "video-ingest"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PREFECT_WORKER_WEBSERVER_PORT"] == "8080"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "health"}
    assert container["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]


def test_worker_heartbeat_seconds_reach_the_worker_and_nonsense_is_refused() -> None:
    def heartbeat(*args: str) -> str:
        container = next(c for c in worker_pod_template(*args)["spec"]["containers"] if c["name"] == "worker")
        return next(e["value"] for e in container["env"] if e["name"] == "PREFECT_WORKER_HEARTBEAT_SECONDS")

    assert heartbeat() == "10"
    assert heartbeat("--set", "worker.heartbeatSeconds=25") == "25"
    refused = helm("template", "x", str(CHART), "--set", "worker.heartbeatSeconds=0", check=False)
    assert refused.returncode != 0 and "heartbeatSeconds" in refused.stderr
