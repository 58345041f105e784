"""The product's promises, proven on a real kind cluster with the chart installed.

One release (in-chart Prefect server on PostgreSQL with Redis messaging, our
worker, limits from values-e2e.yaml) serves the module; tests run in file
order: install, one bulk run observed three ways, upgrade, pod loss, helm test,
uninstall. Every count is taken from Kubernetes or from the Prefect server,
never from our own counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kind_release import (
    API_URL,
    E2E_VALUES,
    FLOW_RUN_SELECTOR,
    JobPodWatch,
    Release,
    batch_runs_of,
    prefect_client,
    running_intervals_from_states,
    task_runs_of,
    wait_for_api,
)

from video_ingest.observer import max_concurrent, read_task_runs_named

NAMESPACE = "video-ingest-e2e"
RELEASE = "vi"
VALUES = yaml.safe_load(E2E_VALUES.read_text())
POOL = VALUES["workPool"]["name"]
POOL_LIMIT = VALUES["workPool"]["concurrencyLimit"]
TAG_LIMIT = VALUES["concurrencyLimits"]["tags"]["video-ingest"]
RETRIES = VALUES["ingest"]["retries"]


def submit(ids: list[str], tmp_path: Path, *flags: str, timeout: float = 900) -> tuple[int, dict, str]:
    """`video-ingest submit` from the host against the cluster's Prefect API."""
    ids_file = tmp_path / f"ids-{time.monotonic_ns()}.txt"
    ids_file.write_text("".join(f"{i}\n" for i in ids))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(PREFECT_API_URL=API_URL, PREFECT_HOME=str(tmp_path / "prefect-home"),
               VIDEO_INGEST_BATCH_DEPLOYMENT="ingest-batch/ingest-batch")
    done = subprocess.run(
        [sys.executable, "-m", "video_ingest.cli", "submit", "--ids-file", str(ids_file), "--handler", "synthetic",
         "--retries", str(RETRIES), "--retry-delay", "0", "--json", *flags],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


def bulk_run_id(stderr: str) -> str:
    """The bulk flow run's ID, read back from the server (newest bulk-video-ingest run)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with prefect_client() as client:
        (newest,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["bulk-video-ingest"])),
            sort=FlowRunSort.START_TIME_DESC, limit=1,
        )
        return str(newest.id)


@pytest.fixture(scope="module")
def release(kind_cluster, project_image, postgres_image, redis_image):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    kind_cluster("create", "namespace", NAMESPACE, check=False)
    # the destination volume the flow-run pods share (one node: RWO is enough)
    kubectl.apply({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "ingest-data", "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
    })
    rel = Release(RELEASE, NAMESPACE, kind_cluster.context)
    rel.install()
    wait_for_api()
    yield rel
    rel.uninstall()
    kind_cluster("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", check=False)


def test_install_makes_worker_ready_and_server_matches_values(release, kind_cluster):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    kubectl("rollout", "status", "deployment", "-l", "app.kubernetes.io/component=worker", "--timeout=180s")
    with prefect_client() as client:
        pool = client.read_work_pool(POOL)
        assert (pool.type, pool.concurrency_limit) == ("kubernetes", POOL_LIMIT)
        queues = {q.name: (q.priority, q.concurrency_limit) for q in client.read_work_queues(work_pool_name=POOL)}
        for queue in VALUES["workPool"]["queues"]:
            assert queues[queue["name"]] == (queue["priority"], queue.get("concurrencyLimit"))
        assert client.read_global_concurrency_limit_by_name("tag:video-ingest").limit == TAG_LIMIT
        for name, spec in VALUES["concurrencyLimits"]["global"].items():
            assert client.read_global_concurrency_limit_by_name(name).limit == spec["limit"]
        deployment = client.read_deployment_by_name("ingest-batch/ingest-batch")
        assert deployment.work_pool_name == POOL
        workers = client.read_workers_for_work_pool(POOL)
        assert any(worker.status.value == "ONLINE" for worker in workers), "no worker is polling the pool"


def test_server_events_flow_through_the_in_chart_redis(release, kind_cluster):
    """values-e2e.yaml sets server.messaging.broker=redis: the server's event stream lives in Redis."""
    assert VALUES["server"]["messaging"]["broker"] == "redis" and VALUES["redis"]["enabled"] is True
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    # The container's REDISCLI_AUTH (the generated password) authenticates redis-cli.
    exists = kubectl("exec", f"deployment/{RELEASE}-video-ingest-redis", "--", "redis-cli", "-e", "exists", "events")
    assert exists.strip() == "1", f"no `events` stream in Redis: {exists!r}"


def test_server_services_run_apart_from_the_api(release, kind_cluster):
    """values-e2e.yaml sets server.services.separate: the API runs without services, and the
    task run recorder and the other services consume the events stream from their own pod."""
    assert VALUES["server"]["services"]["separate"] is True
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    services = f"{RELEASE}-video-ingest-server-services"
    kubectl("rollout", "status", f"deployment/{services}", "--timeout=180s")
    api_command = kubectl("get", f"deployment/{RELEASE}-video-ingest-server", "-o",
                          "jsonpath={.spec.template.spec.containers[0].command}")
    assert "--no-services" in api_command
    ready = kubectl("get", "pods", "-l", "app.kubernetes.io/component=server-services", "-o",
                    "jsonpath={.items[*].status.containerStatuses[*].ready}")
    assert ready.split() == ["true", "true"], f"services containers not ready: {ready!r}"
    deadline = time.monotonic() + 60
    while True:
        groups = kubectl("exec", f"deployment/{RELEASE}-video-ingest-redis", "--", "redis-cli", "-e",
                         "xinfo", "groups", "events")
        if {"task-run-recorder", "event-persister"} <= set(groups.split()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {"task-run-recorder", "event-persister"} <= set(groups.split()), f"consumer groups: {groups!r}"


@pytest.fixture(scope="module")
def bulk_run(release, kind_cluster, tmp_path_factory):
    """One bulk run over more batches than the pool limit, with flaky and failing items."""
    tmp_path = tmp_path_factory.mktemp("bulk")
    plain = [f"ok-{n:02d}#ms=1500" for n in range(19)]
    flaky = [f"flaky-{n}#flaky=2" for n in range(3)]
    failing = [f"bad-{n}#fail" for n in range(2)]
    ids = plain[:6] + flaky + plain[6:12] + failing + plain[12:]
    with JobPodWatch(kind_cluster.context, NAMESPACE) as pods:
        code, summary, stderr = submit(ids, tmp_path, "--batch-size", "4", "--max-inflight", "4")
    parent = bulk_run_id(stderr)
    with prefect_client() as client:
        batches = batch_runs_of(client, parent)
        states = {str(run.id): client.read_flow_run_states(run.id) for run in batches}
        tasks = task_runs_of(client, [run.id for run in batches])
    return {"ids": ids, "flaky": flaky, "failing": failing, "code": code, "summary": summary, "stderr": stderr,
            "pods": pods, "batches": batches, "states": states, "tasks": tasks}


def test_pool_limit_caps_running_jobs(bulk_run):
    batches = bulk_run["batches"]
    assert len(batches) >= 6, f"expected one flow run per batch, got {len(batches)}"
    assert all(run.state.is_final() for run in batches)
    pods = bulk_run["pods"]
    assert len(pods.pods_seen) >= len(batches), "every batch runs as its own Job pod"
    seen_by_kubernetes = max_concurrent(pods.intervals)
    seen_by_prefect = max_concurrent(
        [interval for states in bulk_run["states"].values() for interval in running_intervals_from_states(states)]
    )
    print(f"pool limit {POOL_LIMIT}: max running Job pods {seen_by_kubernetes}, max Running flow runs {seen_by_prefect}")
    assert seen_by_kubernetes <= POOL_LIMIT
    assert seen_by_prefect <= POOL_LIMIT
    assert seen_by_prefect == POOL_LIMIT, "batches never overlapped: the limit was not exercised"


def test_tag_limit_caps_running_task_runs_across_batches(bulk_run):
    tagged = [run for run in bulk_run["tasks"] if "video-ingest" in run.tags]
    assert len({run.name for run in tagged}) == len(bulk_run["ids"])
    peak = max_concurrent([(run.start_time, run.end_time) for run in tagged if run.start_time and run.end_time])
    print(f"tag limit {TAG_LIMIT}: max running tagged task runs {peak}")
    assert peak <= TAG_LIMIT
    assert peak >= TAG_LIMIT - 1, "items never overlapped enough to test the tag limit"


def test_retries_recover_flaky_items_and_report_failing_ones(bulk_run):
    assert bulk_run["code"] == 1, bulk_run["stderr"]
    summary = bulk_run["summary"]
    assert summary["total"] == len(bulk_run["ids"])
    assert summary["succeeded"] + summary["failed"] == summary["total"]
    assert sorted(summary["failed_ids"]) == sorted(bulk_run["failing"])
    runs = {run.name: run for run in bulk_run["tasks"]}
    for item in bulk_run["flaky"]:
        assert (runs[item].state.type.value, runs[item].run_count) == ("COMPLETED", RETRIES + 1)
    for item in bulk_run["failing"]:
        assert (runs[item].state.type.value, runs[item].run_count) == ("FAILED", RETRIES + 1)


def test_helm_upgrade_with_a_new_pool_limit_applies_without_restarting_the_worker(release, kind_cluster, tmp_path):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    worker_pods = lambda: sorted(  # noqa: E731
        kubectl("get", "pods", "-l", "app.kubernetes.io/component=worker", "-o",
                "jsonpath={.items[*].metadata.uid}").split()
    )
    before = worker_pods()
    release.upgrade(**{"workPool.concurrencyLimit": 1})
    with prefect_client() as client:
        assert client.read_work_pool(POOL).concurrency_limit == 1
    assert worker_pods() == before, "a limit-only change restarted the worker"
    with JobPodWatch(kind_cluster.context, NAMESPACE) as pods:
        code, summary, stderr = submit([f"up-{n}#ms=1000" for n in range(6)], tmp_path, "--batch-size", "2")
    assert code == 0, stderr
    assert summary["succeeded"] == 6
    assert len(pods.pods_seen) >= 3
    assert max_concurrent(pods.intervals) == 1


def test_deleted_job_pod_reruns_its_batch_and_every_item_is_done_once(release, kind_cluster, tmp_path):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    release.upgrade(**{"workPool.concurrencyLimit": 2})
    ids = [f"lost-{n:02d}#ms=3000" for n in range(12)]
    env_flags = ("--batch-size", "6", "--max-inflight", "2")
    submitter = __import__("concurrent.futures").futures.ThreadPoolExecutor(max_workers=1)
    result = submitter.submit(submit, ids, tmp_path, *env_flags)
    # Kill mid-batch, judged by Prefect rather than by a clock: as soon as the server has
    # a first item Completed, every running batch pod has items left (6 items, 2 at a
    # time, 3 s each), so deleting them all leaves unfinished work behind for certain.
    victims: list[str] = []
    deadline = time.monotonic() + 300
    with prefect_client() as client:
        while not victims and time.monotonic() < deadline:
            done = [run for run in read_task_runs_named(client, "lost-", expected=0, timeout=0)
                    if run.state and run.state.is_completed()]
            if done:
                victims = kubectl("get", "pods", "-l", FLOW_RUN_SELECTOR, "--field-selector=status.phase=Running",
                                  "-o", "jsonpath={.items[*].metadata.name}").split()
                for victim in victims:
                    kubectl("delete", "pod", victim, "--wait=false")
            time.sleep(0.5)
    assert victims, "no flow-run pod was running when the first item completed"
    code, summary, stderr = result.result(timeout=900)
    submitter.shutdown()
    assert code == 0, stderr
    assert summary == {"total": 12, "succeeded": 12, "failed": 0, "failed_ids": []}
    # exactly once: one record per item on the shared volume, each written by one attempt
    listing = kubectl("run", "list-done", "--rm", "-i", "--restart=Never", "--image", "video-ingest:dev",
                      "--overrides", json.dumps({"spec": {
                          "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
                          "containers": [{"name": "list-done", "image": "video-ingest:dev",
                                          "command": ["sh", "-c", "ls /data/ingest"],
                                          "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                          "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "ingest-data"}}]}}),
                      timeout=180)
    records = sorted(name for name in listing.split() if name.startswith("lost-"))
    assert records == sorted(f"{i.split('#')[0]}.done" for i in ids)
    # and the lost batch really ran again: a rerun flow run, or Prefect rescheduling the same one
    with prefect_client() as client:
        batches = batch_runs_of(client, bulk_run_id(stderr))
        reran = [run.name for run in batches if "-rerun" in run.name]
        rescheduled = [run.name for run in batches
                       if sum(s.type.value == "RUNNING" for s in client.read_flow_run_states(run.id)) > 1]
    assert reran or rescheduled, f"pods {victims} were deleted but no batch ran twice"


def test_helm_test_checks_the_server_against_values(release):
    done = release.helm("test", release.name, "--logs", "--timeout", "5m")
    assert "Phase:          Succeeded" in done.stdout or "Succeeded" in done.stdout


def test_uninstall_leaves_no_job_or_pod_of_ours(release, kind_cluster):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    release.uninstall()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        left = kubectl("get", "jobs,pods", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name").split()
        left += kubectl("get", "jobs,pods", "-l", FLOW_RUN_SELECTOR, "-o", "name").split()
        if not left:
            return
        time.sleep(3)
    raise AssertionError(f"left behind after helm uninstall: {left}")
