"""The product's promises, proven on a real kind cluster with the chart installed.

One release (in-chart Prefect server on PostgreSQL with Redis messaging, our
worker, limits from values-e2e.yaml) serves the module; tests run in file
order: install, one bulk run observed three ways, upgrade, pod loss, helm test,
uninstall. Every count is taken from Kubernetes or from the Prefect server,
never from our own counters.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from data_plane import (
    BUCKET,
    CREDENTIALS_SECRET,
    SOURCE_URL,
    bucket_report,
    create_bucket,
    data_plane_objects,
    in_cluster_pod,
    source_hashes,
    wait_ready,
)
from kind_release import (
    API_URL,
    E2E_VALUES,
    FLOW_RUN_SELECTOR,
    JobPodWatch,
    Release,
    auth_string,
    prefect_client,
    wait_for_api,
)
from reachability import can_connect

from video_ingest.prefect_api.observer import (
    POOL_SLOT_STATES,
    batch_runs_of,
    every_final,
    intervals_in_states,
    max_concurrent,
    read_task_runs_named,
    read_task_runs_until,
)
from video_ingest.prefect_api.ui_links import run_links

NAMESPACE = "video-ingest-e2e"
RELEASE = "vi"
VALUES = yaml.safe_load(E2E_VALUES.read_text())
POOL = VALUES["workPool"]["name"]
POOL_LIMIT = VALUES["workPool"]["concurrencyLimit"]
TAG_LIMIT = VALUES["concurrencyLimits"]["tags"]["video-ingest"]
RETRIES = VALUES["ingest"]["retries"]
PSA_LABEL = "pod-security.kubernetes.io/enforce"


README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
# The README's cluster example, exactly as printed: the test fails if it stops working.
README_SUBMIT = next(line.strip() for line in README.splitlines()
                     if line.startswith("PREFECT_API_URL=") and " video-ingest submit " in line)
# ... and the line before it, which reads the auth string from the release's Secret.
README_AUTH = next(line.strip() for line in README.splitlines()
                   if line.startswith("export PREFECT_API_AUTH_STRING=") and " get secret " in line)
VIDEO_INGEST = str(Path(sys.executable).with_name("video-ingest"))  # the installed console script


def submit_command(ids: list[str], tmp_path: Path, *flags: str) -> dict:
    """The README's submit command, from the host, with `flags` appended: the keyword
    arguments that run it in a folder of its own (ids.txt there).

    The submitter's environment holds nothing but the API URL: every option the
    command line leaves out comes from the cluster's `ingest.*` values.
    """
    folder = tmp_path / f"submit-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
    command = README_SUBMIT.replace("http://<prefect-api>/api", API_URL).replace(" video-ingest ", f" {VIDEO_INGEST} ")
    # The README's release is `video-ingest` in namespace video-ingest; this one is RELEASE in NAMESPACE.
    login = (README_AUTH.replace("--namespace video-ingest ", f"--context kind-video-ingest --namespace {NAMESPACE} ")
             .replace(" video-ingest-api-auth ", f" {RELEASE}-video-ingest-api-auth "))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(PREFECT_HOME=str(folder / "prefect-home"))
    return {"args": login + " && " + " ".join([command, *flags]), "shell": True, "cwd": folder, "env": env,
            "text": True}


def submit(ids: list[str], tmp_path: Path, *flags: str, timeout: float = 900) -> tuple[int, dict, str]:
    """The README's submit command (`submit_command`), run to its end."""
    done = subprocess.run(**submit_command(ids, tmp_path, *flags), capture_output=True, timeout=timeout)
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


def working_attempts(kind_cluster, prefix: str) -> dict[str, int]:
    """Per item, how many attempts did its work: lines of the synthetic handler's
    append-only `<id>.attempts` records on the shared destination volume."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    script = f"for f in /data/ingest/{prefix}*.attempts; do [ -e \"$f\" ] && echo \"$f $(wc -l < \"$f\")\"; done; true"
    listing = in_cluster_pod(kubectl, "video-ingest:dev", ["sh", "-c", script], claim="ingest-data")
    counts = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(".attempts"):
            counts[Path(parts[0]).name.removesuffix(".attempts")] = int(parts[1])
    return counts


def slots_in_use(client) -> dict[str, int]:
    """Active slots of every limit the e2e values name (the tag limit is `tag:<tag>`)."""
    return {name: client.read_global_concurrency_limit_by_name(name).active_slots for name in slots_in_use_names()}


def wait_for_free_slots(timeout: float = 120) -> dict[str, int]:
    """Every limit's slots back to 0 (releases are asynchronous), or what is left after `timeout`."""
    deadline = time.monotonic() + timeout
    with prefect_client() as client:
        while True:
            used = slots_in_use(client)
            if not any(used.values()) or time.monotonic() > deadline:
                return used
            time.sleep(2)


def print_figures(scenario: str, **figures) -> None:
    """One line per fault scenario with what it measured (CI prints passed tests' output,
    `-rP`): the README's table of fault scenarios quotes these lines."""
    print(f"FIGURES {scenario}: " + ", ".join(f"{name}={value}" for name, value in figures.items()), flush=True)


def batch_figures(stderr: str) -> dict:
    """How many batch runs the bulk run made, and how many of them were reruns."""
    with prefect_client() as client:
        batches = batch_runs_of(client, bulk_run_id(stderr))
    return {"batch_runs": len(batches), "reruns": sum("-rerun" in run.name for run in batches)}


def timed_free_slots() -> tuple[dict[str, int], float]:
    began = time.monotonic()
    used = wait_for_free_slots()
    return used, round(time.monotonic() - began, 1)


def completed_items(prefix: str, at_least: int = 1, timeout: float = 300) -> bool:
    """Wait until the server has `at_least` task runs named `prefix...` Completed.
    Calls that fail while the API is away (a fault in progress) are retried."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with prefect_client() as client:
                runs = read_task_runs_named(client, prefix, expected=0, timeout=0)
            if sum(1 for run in runs if run.state and run.state.is_completed()) >= at_least:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def first_item_completed(prefix: str, timeout: float = 300) -> bool:
    """Wait until the server has a first task run named `prefix...` Completed."""
    return completed_items(prefix, 1, timeout)


def newest_bulk_run(client):
    """The bulk-video-ingest flow run that started last, as the server has it."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    (newest,) = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["bulk-video-ingest"])),
        sort=FlowRunSort.START_TIME_DESC, limit=1,
    )
    return newest


def bulk_run_id(stderr: str) -> str:
    """The bulk flow run's ID, read back from the server (newest bulk-video-ingest run)."""
    with prefect_client() as client:
        return str(newest_bulk_run(client).id)


@pytest.fixture(scope="module")
def release(kind_cluster, project_image, postgres_image, redis_image):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    rel = Release(RELEASE, NAMESPACE, kind_cluster.context)
    # A run stopped half-way (Ctrl-C, a CI timeout) leaves its release, its Prefect history
    # and its object store in a reused cluster: start from nothing, or names collide.
    rel.uninstall()
    kind_cluster("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=300s")
    kind_cluster("create", "namespace", NAMESPACE)
    # Pod Security Admission at its strictest: every pod of ours must be admitted as it is.
    kind_cluster("label", "namespace", NAMESPACE, "--overwrite", f"{PSA_LABEL}=restricted",
                 "pod-security.kubernetes.io/enforce-version=latest")
    # the destination volume the flow-run pods share (one node: RWO is enough)
    kubectl.apply({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "ingest-data", "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
    })
    rel.install()
    wait_for_api()
    # The chart's server requires the auth string it generated: the tests' own clients send it.
    os.environ["PREFECT_API_AUTH_STRING"] = auth_string(rel)
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


def test_namespace_enforces_restricted_pod_security_and_admits_every_pod_of_ours(release, kind_cluster):
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    labels = kind_cluster.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert labels[PSA_LABEL] == "restricted"
    # Enforced: a pod asking for root and privileges is refused at admission.
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa-probe", "namespace": NAMESPACE},
             "spec": {"containers": [{"name": "c", "image": "video-ingest:dev", "command": ["true"],
                                      "securityContext": {"privileged": True, "runAsUser": 0}}]}}
    refused = subprocess.run(["kubectl", "--context", kind_cluster.context, "apply", "-f", "-"],
                             input=json.dumps(stray), capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, refused
    # Admitted: every workload of the release has its pods running (flow-run Jobs are proven by the runs below).
    for kind in ("deployment", "statefulset"):
        for name in kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.name}").split():
            kubectl("rollout", "status", f"{kind}/{name}", "--timeout=120s")
    warnings = kubectl("get", "events", "--field-selector", "reason=FailedCreate", "-o",
                       "jsonpath={.items[*].message}")
    assert "PodSecurity" not in warnings, warnings


def test_api_refuses_requests_without_the_generated_auth_string(release):
    """server.auth.enabled is the default: only the health probes answer without the Secret's auth string."""
    import httpx

    secret = os.environ["PREFECT_API_AUTH_STRING"]
    user, _, password = secret.partition(":")
    assert user == "admin" and len(password) == 32, "the generated auth string is admin:<32 characters>"
    query = {"url": API_URL + "/flow_runs/filter", "json": {"limit": 1}, "timeout": 30}
    assert httpx.post(**query).status_code == 401
    assert httpx.post(**query, auth=("admin", "not-the-password")).status_code == 401
    assert httpx.post(**query, auth=(user, password)).status_code == 200
    assert httpx.get(API_URL + "/health", timeout=30).status_code == 200  # what the probes use
    # A client without the auth string gets one clear message and a non-zero exit.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    done = subprocess.run([VIDEO_INGEST, "status"], env={**env, "PREFECT_API_URL": API_URL},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "401" in done.stderr + done.stdout, (done.returncode, done.stderr[-2000:])
    # The release keeps its auth string across upgrades (read back from the cluster).
    release.upgrade()
    assert auth_string(release) == secret


def secret_values(kubectl) -> dict[str, str]:
    """Every credential the release keeps in a Secret: name/key -> value."""
    values = {}
    for secret in kubectl.json("get", "secrets")["items"]:
        for key, encoded in (secret.get("data") or {}).items():
            value = base64.b64decode(encoded).decode(errors="replace")
            if len(value) >= 16:
                values[f"{secret['metadata']['name']}/{key}"] = value.partition(":")[2] or value
    return values


def test_no_credential_is_on_a_command_line_or_in_a_log(release, kind_cluster):
    """Process lists, the containers' runtime specs (what `crictl inspect` shows on the node)
    and every container's log hold none of the release's passwords."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    secrets = secret_values(kubectl)
    assert {f"{RELEASE}-video-ingest-api-auth/auth-string", f"{RELEASE}-video-ingest-postgresql/password",
            f"{RELEASE}-video-ingest-redis/password"} <= set(secrets)
    seen: dict[str, str] = {}
    # the release's pods (flow-run Jobs included), not the e2e's own object store and video source
    for pod in kubectl.json("get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}",
                            "--field-selector=status.phase=Running")["items"]:
        name = pod["metadata"]["name"]
        for status in pod["status"].get("containerStatuses", []):
            container = status["name"]
            seen[f"{name}/{container} processes"] = kubectl(
                "exec", name, "-c", container, "--", "sh", "-c",
                'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done')
            seen[f"{name}/{container} log"] = kubectl("logs", name, "-c", container)
            runtime_id = status["containerID"].removeprefix("containerd://")
            spec = json.loads(subprocess.run(
                ["docker", "exec", "video-ingest-control-plane", "crictl", "inspect", runtime_id],
                capture_output=True, text=True, check=True, timeout=60).stdout)
            seen[f"{name}/{container} runtime args"] = " ".join(spec["info"]["runtimeSpec"]["process"]["args"])
    assert any("redis-server" in text for text in seen.values()) and len(seen) >= 15, sorted(seen)
    leaks = [(where, secret) for where, text in seen.items() for secret, value in secrets.items() if value in text]
    assert not leaks, leaks


def test_ui_is_served_at_the_url_the_notes_print(release):
    """The UI's static build needs a writable directory; the root filesystem is read-only."""
    import httpx

    page = httpx.get(API_URL.removesuffix("/api") + "/", follow_redirects=True, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower(), (page.status_code, page.text[:300])


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
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    tmp_path = tmp_path_factory.mktemp("bulk")
    plain = [f"ok-{n:02d}#ms=1500" for n in range(19)]
    flaky = [f"flaky-{n}#flaky=2" for n in range(3)]
    failing = [f"bad-{n}#fail" for n in range(2)]
    ids = plain[:6] + flaky + plain[6:12] + failing + plain[12:]
    with JobPodWatch(kind_cluster.context, NAMESPACE) as pods:
        code, summary, stderr = submit(ids, tmp_path)  # batch size, window, retries: the values'
    assert VALUES["ingest"]["batchSize"] == 4 and VALUES["ingest"]["maxInflight"] == 4
    parent = bulk_run_id(stderr)
    with prefect_client() as client:
        batches = batch_runs_of(client, parent)
        states = {str(run.id): client.read_flow_run_states(run.id) for run in batches}
        # The server records task runs from their events, after the flow runs end: wait until
        # every item's final state is recorded, or 60 s (the tests then name what is missing).
        batch_filter = FlowRunFilter(id=FlowRunFilterId(any_=[run.id for run in batches]))
        tasks = read_task_runs_until(client, every_final(ids), timeout=60, flow_run_filter=batch_filter)
    return {"ids": ids, "flaky": flaky, "failing": failing, "code": code, "summary": summary, "stderr": stderr,
            "pods": pods, "batches": batches, "states": states, "tasks": tasks}


def test_pool_limit_caps_running_jobs(bulk_run):
    batches = bulk_run["batches"]
    assert len(batches) >= 6, f"expected one flow run per batch, got {len(batches)}"
    assert all(run.state.is_final() for run in batches)
    pods = bulk_run["pods"]
    assert len(pods.pods_seen) >= len(batches), "every batch runs as its own Job pod"
    seen_by_kubernetes = max_concurrent(pods.intervals)
    now = datetime.now(timezone.utc)
    histories = bulk_run["states"].values()
    # The pool's slots are held from Pending (the worker took the run) to a final state: the server counts
    # Pending and Running runs against the limit. Running alone can alternate between two slot holders
    # when a pod's start (Pending) takes longer than its batch's work (Running).
    holding_slots = max_concurrent(
        [stretch for states in histories for stretch in intervals_in_states(states, POOL_SLOT_STATES, now)]
    )
    running = max_concurrent(
        [stretch for states in histories for stretch in intervals_in_states(states, frozenset({"RUNNING"}), now)]
    )
    print(f"pool limit {POOL_LIMIT}: max running Job pods {seen_by_kubernetes}, "
          f"max flow runs holding a slot {holding_slots}, max Running flow runs {running}")
    assert seen_by_kubernetes <= POOL_LIMIT
    assert running <= holding_slots <= POOL_LIMIT
    assert holding_slots == POOL_LIMIT, "batches never overlapped: the limit was not exercised"


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


def test_prefect_ui_shows_the_bulk_run_its_batches_and_each_items_final_state(bulk_run, kind_cluster):
    """What a person sees, in a real browser (Debian's Chromium, tests/e2e/prefect_ui.py):
    the link `submit` printed opens the bulk run, which lists its batches with their
    states; a batch lists one task run per video, named by its ID, with its final
    state, and its outcome table names the IDs that failed. Logs in first when the
    API requires an auth string. Screenshots: $VIDEO_INGEST_ARTIFACTS/prefect-ui/."""
    from prefect_ui import login_auth_string, prefect_ui

    links = run_links(bulk_run["stderr"])
    ui_base = API_URL.removesuffix("/api")
    assert len(links) == 1 and links[0].startswith(f"{ui_base}/runs/flow-run/"), bulk_run["stderr"][-2000:]
    batches = {run.name: run for run in bulk_run["batches"]}
    with prefect_client() as client:
        bulk = client.read_flow_run(links[0].rsplit("/", 1)[1])
        linked_batches = {run.id for run in batch_runs_of(client, str(bulk.id))}
    assert linked_batches == {run.id for run in batches.values()}, "the printed link is not the run of these batches"
    holder = {item: next(run for run in batches.values() if item in run.parameters["items"])
              for item in [*bulk_run["failing"], bulk_run["flaky"][0]]}
    auth = login_auth_string(kind_cluster.in_namespace(NAMESPACE), f"{RELEASE}-video-ingest-api-auth")

    with prefect_ui(auth) as ui:
        ui.open(links[0], bulk.name)
        assert ui.batch_count() == len(batches)
        ui.screenshot("bulk-run")
        assert {name: ui.batch_state(name) for name in batches} == {name: run.state_name for name, run in batches.items()}
        failed_in_tables = set()
        for item, batch in holder.items():
            ui.open(links[0], bulk.name)
            ui.open_batch(batch.name)
            expected = "Failed" if item in bulk_run["failing"] else "Completed"
            assert ui.task_run_state(item) == expected, f"{item} in batch {batch.name}"
            ui.screenshot(f"batch-{batch.name}")
            rows = ui.outcome_table()
            ui.screenshot(f"outcome-table-{batch.name}")
            assert sorted(row["id"] for row in rows) == sorted(batch.parameters["items"])
            failed_in_tables |= {row["id"] for row in rows if (row["ok"], row["state"]) == ("false", "Failed")}
        assert failed_in_tables == set(bulk_run["failing"]), "the outcome tables do not name the failed IDs"

        item = bulk_run["failing"][0]
        ui.open(f"{ui_base}/runs/flow-run/{holder[item].id}", holder[item].name)
        ui.open_task_run(item)
        assert ui.task_run_header() == {"state": "Failed", "run_count": str(RETRIES + 1)}
        ui.screenshot("item-task-run")
    print(f"Prefect UI screenshots: {ui.screenshots}" + (" (logged in)" if ui.logged_in else ""))


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
    submitter = ThreadPoolExecutor(max_workers=1)
    began = time.monotonic()
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
    took = round(time.monotonic() - began, 1)
    submitter.shutdown()
    assert code == 0, stderr
    assert summary == {"total": 12, "succeeded": 12, "failed": 0, "failed_ids": []}
    print_figures("flow-run pods deleted", items=len(ids), pods_deleted=len(victims), run_seconds=took,
                  succeeded=summary["succeeded"], **batch_figures(stderr))
    # exactly once: one working attempt per item, from the append-only attempt records
    assert working_attempts(kind_cluster, "lost-") == {i.split("#")[0]: 1 for i in ids}
    # and the lost batch really ran again: a rerun flow run, or Prefect rescheduling the same one
    with prefect_client() as client:
        batches = batch_runs_of(client, bulk_run_id(stderr))
        reran = [run.name for run in batches if "-rerun" in run.name]
        rescheduled = [run.name for run in batches
                       if sum(s.type.value == "RUNNING" for s in client.read_flow_run_states(run.id)) > 1]
    assert reran or rescheduled, f"pods {victims} were deleted but no batch ran twice"


def run_through_faults(kind_cluster, tmp_path, prefix: str, count: int, faults: list[tuple[int, str]]) -> list[str]:
    """Submit `count` items of 2.5 s; after `done` items completed, delete the pods of
    `selector`, for each (done, selector) in turn. Then assert what every fault must
    leave intact: all items succeeded, each by one working attempt; never more Job pods
    than the pool limit nor tagged task runs than the tag limit; every limit's slots free."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    ids = [f"{prefix}-{n:02d}#ms=2500" for n in range(count)]
    with JobPodWatch(kind_cluster.context, NAMESPACE) as pods:
        submitter = ThreadPoolExecutor(max_workers=1)
        began = time.monotonic()
        result = submitter.submit(submit, ids, tmp_path)
        for done_before, selector in faults:
            assert completed_items(f"{prefix}-", at_least=done_before), f"fewer than {done_before} done before {selector}"
            kubectl("delete", "pod", "-l", selector, "--wait=false")
        code, summary, stderr = result.result(timeout=1200)
        took = round(time.monotonic() - began, 1)
        submitter.shutdown()
    assert code == 0, stderr
    assert summary == {"total": count, "succeeded": count, "failed": 0, "failed_ids": []}
    attempts = working_attempts(kind_cluster, f"{prefix}-")
    with prefect_client() as client:
        runs = [run for run in read_task_runs_named(client, f"{prefix}-", expected=count)
                if run.start_time and run.end_time and run.state and run.state.is_completed()]
    slots_left, freed_after = timed_free_slots()
    print_figures(prefix, faults="+".join(sel.split("=")[1] for _, sel in faults), items=count, run_seconds=took,
                  succeeded=summary["succeeded"], working_attempts=sum(attempts.values()),
                  max_job_pods=f"{max_concurrent(pods.intervals)}/{POOL_LIMIT}",
                  max_tagged_runs=f"{max_concurrent([(run.start_time, run.end_time) for run in runs])}/{TAG_LIMIT}",
                  slots_free_after_s=freed_after, **batch_figures(stderr))
    assert attempts == {i.split("#")[0]: 1 for i in ids}
    assert max_concurrent(pods.intervals) <= POOL_LIMIT
    assert max_concurrent([(run.start_time, run.end_time) for run in runs]) <= TAG_LIMIT
    assert slots_left == dict.fromkeys(slots_in_use_names(), 0)
    return ids


def test_api_server_pod_deleted_mid_run_loses_no_item_and_frees_every_slot(release, kind_cluster, tmp_path):
    """The in-chart server restarts (Recreate) during a run: leases live in Redis, the
    submitter and the batches wait for the API, nothing is lost or done twice."""
    run_through_faults(kind_cluster, tmp_path, "restart", 16, [(1, "app.kubernetes.io/component=server")])


def test_worker_postgresql_and_redis_pods_deleted_in_turn_mid_run_lose_no_item(release, kind_cluster, tmp_path):
    """One run, three faults in turn, each once more items completed: the worker, the
    PostgreSQL pod (its StatefulSet brings it back on its volume), then the Redis pod (it
    comes back with its append-only file, so Prefect's tag-limit leases and ours are still
    there and every slot is freed)."""
    assert VALUES["redis"]["enabled"] is True
    run_through_faults(kind_cluster, tmp_path, "faults", 24, [(1, "app.kubernetes.io/component=worker"),
                                                             (8, "app.kubernetes.io/component=postgresql"),
                                                             (14, "app.kubernetes.io/component=redis")])


def pending_flow_run_pods(kubectl) -> list[str]:
    return kubectl("get", "pods", "-l", FLOW_RUN_SELECTOR, "--field-selector=status.phase=Pending",
                   "-o", "jsonpath={.items[*].metadata.name}").split()


def test_batch_whose_pod_cannot_be_scheduled_frees_its_pool_slot_and_fails_with_the_reason(
        release, kind_cluster, tmp_path):
    """flowRuns.nodeSelector names a node that does not exist: each batch's Job is created but
    its pod never schedules. After ingest.startTimeout the bulk run gives the run up (Cancelled:
    its pool slot is free at once) and runs the items again; once every attempt is spent, each
    item fails with that reason, none ran. The reaper beside the worker deletes the given-up
    Jobs, so their Pending pods leave the flow-run pod quota. Made schedulable again, the next
    run succeeds."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    start_timeout, attempts = 20, 2
    release.upgrade(**{"flowRuns.nodeSelector": {"video-ingest.dev/e2e": "no-such-node"},
                       "ingest.startTimeout": start_timeout, "ingest.batchAttempts": attempts})
    # Submitted at once: the worker reads the pool's new job template before it starts runs.
    try:
        ids = [f"unsched-{n}#ms=500" for n in range(4)]  # one batch
        began = time.monotonic()
        code, summary, stderr = submit(ids, tmp_path)
        took = time.monotonic() - began
        print_figures("unschedulable", items=len(ids), start_timeout_s=start_timeout, batch_attempts=attempts,
                      run_seconds=round(took, 1), failed=summary.get("failed"), **batch_figures(stderr))
        assert code == 1, stderr
        assert summary["failed_ids"] == ids and summary["succeeded"] == 0, summary
        assert "did not start within 20s" in stderr, stderr[-3000:]
        # Bounded: the first run, then the last attempt's four runs two at a time (pool limit 2),
        # each given up about the start timeout (plus polling) after its Job: not for ever.
        assert took < 3 * (start_timeout + 60) + 120, took
        assert working_attempts(kind_cluster, "unsched-") == {}, "an item ran although its pod never started"
        with prefect_client() as client:
            batches = batch_runs_of(client, bulk_run_id(stderr))
            # The first run, then the last attempt's (the leftovers split apart): all given up.
            assert len(batches) == 1 + len(ids) and all(
                run.state.name == "Cancelled" and run.state.message.startswith("given up: its pod did not start")
                for run in batches), [(run.name, run.state.name) for run in batches]
            # Given up means off the pool: nothing of ours holds a pool slot now.
            holding = [run for run in client.read_flow_runs(limit=200)
                       if run.work_pool_name == POOL and run.state and run.state.type.value in ("PENDING", "RUNNING")]
            assert not holding, [(run.name, run.state.name) for run in holding]
        # The reaper (one pass every 30 s) deletes the given-up Jobs and with them their Pending pods.
        deadline = time.monotonic() + 120
        while (pending := pending_flow_run_pods(kubectl)) and time.monotonic() < deadline:
            time.sleep(5)
        assert not pending, f"given-up Jobs' pods still Pending after 120 s: {pending}"
    finally:
        # Back to the values files: the selector is gone from the pool's template.
        release.upgrade(**{"flowRuns.nodeSelector": None, "ingest.startTimeout": None, "ingest.batchAttempts": None})
        if pending_flow_run_pods(kubectl):  # only when the assertion above failed: leave the next tests a free quota
            kubectl("delete", "jobs", "-l", FLOW_RUN_SELECTOR, "--wait=false")
    code, summary, stderr = submit([f"sched-{n}#ms=500" for n in range(4)], tmp_path)
    assert (code, summary["succeeded"]) == (0, 4), stderr[-3000:]


def test_item_too_big_for_its_pods_memory_fails_alone_and_the_others_succeed_once(release, kind_cluster, tmp_path):
    """One item holds more memory than a flow-run pod may (kind values: 768Mi), so its pod is
    killed for memory with the batch's other items in flight. The leftovers run again, split
    one item per run on the last attempt: the other items succeed, each by one working
    attempt, and only the big one is reported failed. No slot is left taken.

    The others take 45 s, so they are still in flight when the big one dies. At 2 s each
    they were, in earlier runs; then the kernel's kill came 27 s after its batch began,
    the others had finished first, and the last attempt had nothing to split."""
    big = "oom-big#mem=1500,ms=1000"
    others = [f"oom-{n}#ms=45000" for n in range(3)]
    began = time.monotonic()
    code, summary, stderr = submit([big, *others], tmp_path)  # one batch (ingest.batchSize 4)
    print_figures("out of memory", items=1 + len(others), run_seconds=round(time.monotonic() - began, 1),
                  succeeded=summary.get("succeeded"), failed=summary.get("failed"), **batch_figures(stderr))
    assert code == 1, stderr
    assert (summary["succeeded"], summary["failed_ids"]) == (3, [big]), summary
    assert working_attempts(kind_cluster, "oom-") == {item.split("#")[0]: 1 for item in others}
    with prefect_client() as client:
        batches = batch_runs_of(client, bulk_run_id(stderr))
    crashed = [run.name for run in batches if run.state.type.value == "CRASHED"]
    assert len(crashed) >= 2, f"the big item's batch did not crash: {[(r.name, r.state.name) for r in batches]}"
    assert any("-part" in run.name for run in batches), "the last attempt did not run the leftovers apart"
    assert wait_for_free_slots() == dict.fromkeys(slots_in_use_names(), 0)


def test_limit_paused_at_zero_mid_run_holds_new_items_until_raised(release, kind_cluster, tmp_path):
    """`helm upgrade` sets the items' global limit to 0 mid-run: items in flight finish,
    no new one starts, nothing fails; raised again, the rest run."""
    limit_key = "concurrencyLimits.global.video-ingest.limit"
    ids = [f"pause-{n:02d}#ms=2000" for n in range(12)]
    submitter = ThreadPoolExecutor(max_workers=1)
    result = submitter.submit(submit, ids, tmp_path)
    assert first_item_completed("pause-"), "no item completed before the pause"
    release.upgrade(**{limit_key: 0})
    paused_at = datetime.now(timezone.utc)
    time.sleep(75)  # items in flight finish (2 s), renewals (every 20 s) see the pause
    quiet_from = paused_at + timedelta(seconds=45)
    raised_at = datetime.now(timezone.utc)
    release.upgrade(**{limit_key: VALUES["concurrencyLimits"]["global"]["video-ingest"]["limit"]})
    code, summary, stderr = result.result(timeout=900)
    submitter.shutdown()
    assert code == 0, stderr
    assert summary == {"total": 12, "succeeded": 12, "failed": 0, "failed_ids": []}
    with prefect_client() as client:
        runs = read_task_runs_named(client, "pause-", expected=len(ids))
    resumed = min((run.start_time for run in runs if run.start_time and run.start_time > raised_at), default=None)
    print_figures("limit paused at 0", items=len(ids), paused_s=round((raised_at - paused_at).total_seconds()),
                  first_start_after_raise_s=round((resumed - raised_at).total_seconds(), 1) if resumed else None,
                  started_while_paused=sum(1 for run in runs
                                           if run.start_time and quiet_from < run.start_time < raised_at),
                  succeeded=summary["succeeded"])
    started_while_paused = [run.name for run in runs if run.start_time and quiet_from < run.start_time < raised_at]
    assert not started_while_paused, f"items started while the limit was 0: {started_while_paused}"
    assert any(run.start_time and run.start_time > raised_at for run in runs), "the pause never held an item back"
    assert working_attempts(kind_cluster, "pause-") == {i.split("#")[0]: 1 for i in ids}
    assert wait_for_free_slots() == dict.fromkeys(slots_in_use_names(), 0)


def slots_in_use_names() -> list[str]:
    return [*VALUES["concurrencyLimits"]["global"], *(f"tag:{tag}" for tag in VALUES["concurrencyLimits"]["tags"])]


@pytest.fixture(scope="module")
def data_plane(release, kind_cluster, seaweedfs_image, project_image):
    """SeaweedFS (S3) and an HTTP source of real videos made in the cluster, in the release's namespace."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    kubectl.apply(*data_plane_objects(seaweedfs_image, "video-ingest:dev"))
    wait_ready(kubectl)
    create_bucket(kubectl)
    return kubectl


def test_submitter_killed_mid_run_its_bulk_run_is_crashed_and_its_batches_finish(release, kind_cluster, tmp_path):
    """The submitting process SIGKILLed (a laptop closed: no Ctrl-C, no last word) while
    its batches run: the chart's automation marks its bulk run Crashed once it has sent
    no heartbeat for unresponsiveRuns.crashAfterSeconds; its batch runs, beating in their
    pods for longer than that, are left alone and finish every item, each once."""
    from video_ingest.platform.reconcile import UNRESPONSIVE_AUTOMATION

    crash_after, heartbeat = 60, 30  # the smallest the chart allows
    ids = [f"gone-{n}#ms=25000" for n in range(8)]  # two batches of 4 items of 25 s, one at a time: 100 s each
    release.upgrade(**{"flowRuns.heartbeatSeconds": heartbeat, "unresponsiveRuns.crashAfterSeconds": crash_after})
    submitter = None
    try:
        with prefect_client() as client:
            automations = client.read_automations_by_name(UNRESPONSIVE_AUTOMATION)
            assert [a.trigger.within.total_seconds() for a in automations] == [crash_after]
        submitter = subprocess.Popen(**submit_command(ids, tmp_path, "--batch-size", "4", "--max-inflight", "1"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert first_item_completed("gone-"), "no item completed"
        with prefect_client() as client:
            bulk = newest_bulk_run(client)
            assert bulk.state.is_running() and bulk.parameters["first_items"][0] == ids[0], bulk.parameters
            os.killpg(submitter.pid, signal.SIGKILL)  # the shell and the submitter under it
            submitter.communicate(timeout=30)
            killed_at = time.monotonic()
            # Every 2 s until the bulk run is Crashed and its batches have ended: the batches,
            # beating in their pods, are never seen Crashed.
            seen_crashed, crashed_after, ended = set(), None, {}
            while crashed_after is None or len(ended) < 2:
                assert time.monotonic() - killed_at < crash_after + 300, \
                    f"bulk run {client.read_flow_run(bulk.id).state.name}, batches ended: {ended}"
                if crashed_after is None and (bulk := client.read_flow_run(bulk.id)).state.is_crashed():
                    crashed_after = round(time.monotonic() - killed_at)
                batches = batch_runs_of(client, str(bulk.id))
                seen_crashed |= {run.name for run in batches if run.state.is_crashed()}
                ended = {run.name: run.state.name for run in batches if run.state.is_final()}
                time.sleep(2)
            assert crashed_after <= crash_after + 60, f"crashed {crashed_after} s after the kill"
            assert f"No heartbeat for {crash_after} s" in bulk.state.message, bulk.state.message
            assert not seen_crashed, f"batch runs crashed while beating: {sorted(seen_crashed)}"
        assert len(ended) == 2 and set(ended.values()) == {"Completed"}, ended
        print_figures("submitter killed", items=len(ids), heartbeat_s=heartbeat, crash_after_s=crash_after,
                      bulk_crashed_s_after_kill=crashed_after, batches_completed=len(ended))
        assert working_attempts(kind_cluster, "gone-") == {i.split("#")[0]: 1 for i in ids}
    finally:
        if submitter and submitter.poll() is None:
            os.killpg(submitter.pid, signal.SIGKILL)
        release.upgrade(**{"flowRuns.heartbeatSeconds": None, "unresponsiveRuns.crashAfterSeconds": None})


def test_real_videos_go_from_http_to_the_bucket_probed_checksummed_and_idempotent(release, data_plane, tmp_path):
    """`helm upgrade` to the fetch handler with an S3 destination (credentials from a Secret),
    then the README's submit command: the bucket, listed from inside the cluster, holds
    every good video with its sidecar; broken files fail once, with their reasons; a re-run
    skips everything; a deleted object is ingested again, and only it."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    kubectl, image = data_plane, "video-ingest:dev"
    release.upgrade(**{"ingest.handler": "fetch", "ingest.destination": f"s3://{BUCKET}/ingest",
                       "ingest.sourceBase": SOURCE_URL, "flowRuns.envFromSecrets": [CREDENTIALS_SECRET]})
    good = ["clip-a.mp4", "clip-b.mp4", "clip-c.mkv"]
    broken = {"cut.mp4": "truncated", "text.mp4": "not a decodable video", "empty.mp4": "empty",
              "missing.mp4": "not found"}
    ids = good + list(broken)

    code, summary, stderr = submit(ids, tmp_path)
    assert code == 1, stderr
    assert summary["succeeded"] == len(good) and sorted(summary["failed_ids"]) == sorted(broken), summary
    report = bucket_report(kubectl, image, "ingest")
    hashes = source_hashes(kubectl, image, good)
    assert set(report["sidecars"]) == set(good)
    assert {key.split("/")[0] for key in report["objects"]} == set(good), "a broken file left an object"
    for name in good:
        stored, sidecar = report["objects"][f"{name}/video{Path(name).suffix}"], report["sidecars"][name]
        assert stored["sha256"] == sidecar["sha256"] == hashes[name]
        assert stored["bytes"] == sidecar["bytes"]
        probe = sidecar["probe"]
        assert (probe["video_codec"], probe["width"], probe["height"]) == ("mpeg4", 64, 48)
        assert probe["duration_seconds"] > 0.5
    with prefect_client() as client:  # recorded from events, a little after submit returns
        recorded = read_task_runs_until(client, every_final(ids), timeout=60,
                                        task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=ids)))
    runs = {run.name: run for run in recorded}
    for name, reason in broken.items():
        assert runs[name].state.type.value == "FAILED" and reason in (runs[name].state.message or ""), runs[name].state
        assert runs[name].run_count == 1, f"{name}: a permanent failure was retried"

    code, summary, stderr = submit(ids, tmp_path)
    assert code == 1 and f"{len(good)} succeeded ({len(good)} already ingested)" in stderr, stderr

    report = bucket_report(kubectl, image, "ingest", delete=["clip-b.mp4/video.mp4"])
    assert "clip-b.mp4/video.mp4" not in report["objects"]
    code, summary, stderr = submit(ids, tmp_path)
    assert code == 1 and f"{len(good)} succeeded ({len(good) - 1} already ingested)" in stderr, stderr
    assert bucket_report(kubectl, image, "ingest")["objects"]["clip-b.mp4/video.mp4"]["sha256"] == hashes["clip-b.mp4"]


# The release's in-cluster endpoints (Service name, port) the NetworkPolicies guard.
API = (f"{RELEASE}-video-ingest-server", 4200)
DATABASE = (f"{RELEASE}-video-ingest-postgresql", 5432)
REDIS = (f"{RELEASE}-video-ingest-redis", 6379)


def chart_labels(component: str) -> dict[str, str]:
    """The labels the chart's NetworkPolicies select on, for one of its components."""
    return {"app.kubernetes.io/name": "video-ingest", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": component}


def test_pod_without_our_labels_reaches_neither_database_redis_nor_api(release, kind_cluster):
    """NetworkPolicies are on by default: a pod the chart did not make reaches none of the
    release's PostgreSQL, Redis and Prefect API, while a pod with the server's labels
    reaches PostgreSQL and Redis (they listen; the labels decide)."""
    stranger = {"app": "stranger"}
    for host, port in (DATABASE, REDIS, API):
        assert not can_connect(kind_cluster, NAMESPACE, stranger, host, port), f"a stranger reached {host}:{port}"
    for host, port in (DATABASE, REDIS):
        assert can_connect(kind_cluster, NAMESPACE, chart_labels("server"), host, port), f"{host}:{port}"


def test_flow_run_pod_reaches_the_api_but_not_database_or_redis(release, kind_cluster):
    flow_run = chart_labels("flow-run")
    assert can_connect(kind_cluster, NAMESPACE, flow_run, *API), "a flow-run pod must reach the Prefect API"
    for host, port in (DATABASE, REDIS):
        assert not can_connect(kind_cluster, NAMESPACE, flow_run, host, port), f"a flow-run pod reached {host}:{port}"


def test_helm_test_checks_the_server_against_values(release):
    done = release.helm("test", release.name, "--logs", "--timeout", "5m")
    assert "Phase:          Succeeded" in done.stdout or "Succeeded" in done.stdout


def test_server_without_redis_deleted_mid_run_keeps_its_leases_and_frees_every_slot(release, kind_cluster, tmp_path):
    """The in-chart server with broker memory (no Redis, the chart's default) keeps its
    concurrency leases in files on a claim (server.leases.persistence). Its pod deleted
    mid-run comes back holding them: Prefect's tag-limit slots and ours are freed as
    items finish, and no item is lost or done twice. (Next to last: the release loses
    its Redis here.)"""
    release.upgrade(**{"server.messaging.broker": "memory", "server.services.separate": False, "redis.enabled": False,
                       "ingest.handler": None, "ingest.destination": None, "ingest.sourceBase": None,
                       "flowRuns.envFromSecrets": None})
    wait_for_api()
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    assert kubectl("get", "pvc", f"{RELEASE}-video-ingest-server-leases", "-o", "jsonpath={.status.phase}") == "Bound"
    assert not kubectl("get", "pods", "-l", "app.kubernetes.io/component=redis", "-o", "name")
    run_through_faults(kind_cluster, tmp_path, "noredis", 16, [(1, "app.kubernetes.io/component=server")])


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
