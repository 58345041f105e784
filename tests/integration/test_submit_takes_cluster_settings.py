"""`video-ingest submit` sends only what its command line sets: every other option
comes from the cluster's settings, as its flow-run pods see them (the work pool's
job template env, which the chart renders from `ingest.*`).

Prefect's process worker stands in for the Kubernetes worker; the pool's env is
what the chart's apply hook writes into the Kubernetes pool's job template.
"""

import json
import math

from conftest import batch_pool_with_worker, video_ingest, write_ids
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

from video_ingest.prefect_api.observer import read_task_runs_named


def test_submit_with_no_options_runs_with_the_clusters_handler_batch_size_and_retries(
    api_env, client, tmp_path, unique
):
    # The submitter's own machine knows nothing: no handler, no destination, no batch size.
    submitter_env = dict(api_env)
    pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_BATCH_SIZE": "3", "VIDEO_INGEST_RETRIES": "1",
                "VIDEO_INGEST_RETRY_DELAY": "0", "VIDEO_INGEST_SLOT_LIMIT": ""}
    ids = [f"{unique}-ok-{n}" for n in range(5)] + [f"{unique}-flaky#flaky=1", f"{unique}-bad#fail"]
    with batch_pool_with_worker(client, f"{unique}-pool", {**api_env, **pool_env}, pool_env) as deployment:
        submitter_env["VIDEO_INGEST_BATCH_DEPLOYMENT"] = deployment
        done = video_ingest("submit", "--ids-file", str(write_ids(tmp_path / "ids.txt", ids)), "--json",
                            env=submitter_env, timeout=400)
        batch_deployment = client.read_deployment_by_name(deployment)

    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "total": 7, "succeeded": 6, "failed": 1, "failed_ids": [f"{unique}-bad#fail"]}
    batches = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[batch_deployment.id])))
    assert len(batches) == math.ceil(len(ids) / 3), "batch size did not come from the cluster"
    for batch in batches:
        assert set(batch.parameters) <= {"items", "sources"}, f"submit sent options it was not given: {batch.parameters}"
    runs = {run.name: run for run in read_task_runs_named(client, unique, expected=len(ids))}
    assert runs[f"{unique}-flaky#flaky=1"].run_count == 2
    assert (runs[f"{unique}-bad#fail"].state.type.value, runs[f"{unique}-bad#fail"].run_count) == ("FAILED", 2)


def test_submit_checks_id_syntax_only_and_an_option_given_wins_over_the_cluster(api_env, client, tmp_path, unique):
    pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_RETRIES": "3", "VIDEO_INGEST_RETRY_DELAY": "0",
                "VIDEO_INGEST_SLOT_LIMIT": ""}
    with batch_pool_with_worker(client, f"{unique}-pool", {**api_env, **pool_env}, pool_env) as deployment:
        env = {**api_env, "VIDEO_INGEST_BATCH_DEPLOYMENT": deployment}
        bad = video_ingest("submit", "--ids-file", str(write_ids(tmp_path / "bad.txt", ["../escape"])), env=env)
        assert bad.returncode == 2 and "invalid ID" in bad.stderr
        done = video_ingest("submit", "--ids-file", str(write_ids(tmp_path / "ids.txt", [f"{unique}-x#fail"])),
                            "--retries", "0", "--json", env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    (run,) = read_task_runs_named(client, unique, expected=1)
    assert run.run_count == 1, "--retries 0 on the command line did not win over the cluster's 3"
