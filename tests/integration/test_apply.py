"""`video-ingest apply` against a real server: idempotent, dry-run, clearing, refusing bad input."""

import yaml
from conftest import video_ingest


def config_for(pool: str, limit, tag_limit=13, queue_limit=2) -> dict:
    return {
        "workPool": {
            "name": pool,
            "concurrencyLimit": limit,
            "queues": [{"name": "default", "priority": 1}, {"name": "bulk", "priority": 2, "concurrencyLimit": queue_limit}],
            "jobTemplate": {"image": "video-ingest:0.1.0", "namespace": "video-ingest", "finishedJobTtl": 300},
        },
        "concurrencyLimits": {"tags": {f"{pool}-tag": tag_limit}, "global": {f"{pool}-api": {"limit": 5, "slotDecayPerSecond": 1.5}}},
        "deployments": [{"name": f"{pool}-batch", "flow": "ingest-batch", "workQueue": "default"}],
    }


def write_config(tmp_path, data) -> str:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_second_apply_changes_nothing_and_server_shows_the_limits(api_env, client, tmp_path, unique):
    path = write_config(tmp_path, config_for(unique, 7))
    first = video_ingest("apply", "--config", path, env=api_env)
    assert first.returncode == 0, first.stderr
    assert f"changed: create work pool {unique}" in first.stdout
    second = video_ingest("apply", "--config", path, env=api_env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "video-ingest apply: nothing to change, the server matches the config"

    assert client.read_work_pool(unique).concurrency_limit == 7
    queues = {q.name: q for q in client.read_work_queues(work_pool_name=unique)}
    assert (queues["bulk"].concurrency_limit, queues["bulk"].priority) == (2, 2)
    assert client.read_global_concurrency_limit_by_name(f"tag:{unique}-tag").limit == 13
    api_limit = client.read_global_concurrency_limit_by_name(f"{unique}-api")
    assert (api_limit.limit, api_limit.slot_decay_per_second) == (5, 1.5)
    deployment = client.read_deployment_by_name(f"ingest-batch/{unique}-batch")
    assert deployment.entrypoint == "video_ingest.ingestion.flows:ingest_batch" and deployment.work_pool_name == unique


def test_dry_run_prints_the_change_and_changes_nothing(api_env, client, tmp_path, unique):
    assert video_ingest("apply", "--config", write_config(tmp_path, config_for(unique, 7)), env=api_env).returncode == 0
    dry = video_ingest("apply", "--dry-run", "--config", write_config(tmp_path, config_for(unique, 9)), env=api_env)
    assert dry.returncode == 0
    assert dry.stdout.strip() == f"would change: update work pool {unique}: concurrency_limit 7 -> 9"
    assert client.read_work_pool(unique).concurrency_limit == 7


def test_drift_check_exits_3_on_drift_and_0_in_sync(api_env, client, tmp_path, unique):
    in_sync = write_config(tmp_path, config_for(unique, 7))
    assert video_ingest("apply", "--config", in_sync, env=api_env).returncode == 0
    assert video_ingest("apply", "--dry-run", "--exit-code", "--config", in_sync, env=api_env).returncode == 0
    drifted = video_ingest("apply", "--dry-run", "--exit-code", "--config",
                           write_config(tmp_path, config_for(unique, 9)), env=api_env)
    assert drifted.returncode == 3, drifted.stderr
    assert drifted.stdout.strip() == f"would change: update work pool {unique}: concurrency_limit 7 -> 9"
    assert client.read_work_pool(unique).concurrency_limit == 7


def test_null_clears_the_pool_and_queue_limits_and_deletes_a_tag_limit(api_env, client, tmp_path, unique):
    assert video_ingest("apply", "--config", write_config(tmp_path, config_for(unique, 7)), env=api_env).returncode == 0
    cleared = video_ingest(
        "apply", "--config", write_config(tmp_path, config_for(unique, None, tag_limit=None, queue_limit=None)), env=api_env
    )
    assert cleared.returncode == 0, cleared.stderr
    assert client.read_work_pool(unique).concurrency_limit is None
    queues = {q.name: q for q in client.read_work_queues(work_pool_name=unique)}
    assert queues["bulk"].concurrency_limit is None
    names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
    assert f"tag:{unique}-tag" not in names


def test_bad_config_is_refused_and_nothing_is_applied(api_env, client, tmp_path, unique):
    from prefect.exceptions import ObjectNotFound

    data = config_for(unique, 7)
    data["concurrencyLimits"]["tags"][f"{unique}-tag"] = -1
    refused = video_ingest("apply", "--config", write_config(tmp_path, data), env=api_env)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "concurrencyLimits.tags" in refused.stderr
    try:
        client.read_work_pool(unique)
        raise AssertionError("the pool was created from a refused config")
    except ObjectNotFound:
        pass


def test_unresponsive_runs_automation_is_created_updated_and_deleted_by_name(api_env, client, tmp_path, unique):
    """Only the automation of our name is touched; the server's copy reads back as ours
    (no drift on a second apply, so `helm test`'s drift check stays green)."""
    from video_ingest.platform.reconcile import UNRESPONSIVE_AUTOMATION

    def crash_after(seconds):
        return write_config(tmp_path, {**config_for(unique, 7), "unresponsiveRuns": {"crashAfterSeconds": seconds}})

    def ours():
        return [(a.trigger.within.total_seconds(), a.actions[0].state.value, a.enabled)
                for a in client.read_automations_by_name(UNRESPONSIVE_AUTOMATION)]

    try:
        created = video_ingest("apply", "--config", crash_after(600), env=api_env)
        assert created.returncode == 0, created.stderr
        assert f"changed: create automation {UNRESPONSIVE_AUTOMATION} (crash_after_seconds=600)" in created.stdout
        assert ours() == [(600.0, "CRASHED", True)]
        in_sync = video_ingest("apply", "--dry-run", "--exit-code", "--config", crash_after(600), env=api_env)
        assert in_sync.returncode == 0, in_sync.stdout
        updated = video_ingest("apply", "--config", crash_after(900), env=api_env)
        assert f"update automation {UNRESPONSIVE_AUTOMATION}: crash_after_seconds 600 -> 900" in updated.stdout
        assert ours() == [(900.0, "CRASHED", True)]
        unmentioned = video_ingest("apply", "--config", write_config(tmp_path, config_for(unique, 7)), env=api_env)
        assert "automation" not in unmentioned.stdout and ours() == [(900.0, "CRASHED", True)]
        deleted = video_ingest("apply", "--config", crash_after(None), env=api_env)
        assert f"changed: delete automation {UNRESPONSIVE_AUTOMATION}" in deleted.stdout, deleted.stderr
        assert ours() == []
    finally:
        for automation in client.read_automations_by_name(UNRESPONSIVE_AUTOMATION):
            client.delete_automation(automation.id)
