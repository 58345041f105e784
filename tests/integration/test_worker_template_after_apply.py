"""A run created after `video-ingest apply` changed the job template gets the new template
from the worker, though the worker's websocket channel is down and it had no heartbeat since.

A real server and a real `apply`; the worker is prefect-kubernetes' class as the chart runs
it, asked for its scheduled runs and for the Job configuration of one, without a cluster to
start the Job on (that part is proven on kind)."""

import asyncio

import yaml
from conftest import video_ingest


def apply_handler(api_env, tmp_path, pool: str, handler: str) -> None:
    config = {
        "workPool": {"name": pool, "concurrencyLimit": 2, "queues": [{"name": "default", "priority": 1}],
                     "jobTemplate": {"image": "video-ingest:0.1.0", "namespace": "video-ingest",
                                     "env": {"VIDEO_INGEST_HANDLER": handler}}},
        "deployments": [{"name": f"{pool}-batch", "flow": "ingest-batch", "workQueue": "default"}],
    }
    path = tmp_path / f"platform-{handler}.yaml"
    path.write_text(yaml.safe_dump(config))
    applied = video_ingest("apply", "--config", str(path), env=api_env)
    assert applied.returncode == 0, applied.stderr


async def close_channel(channel) -> None:
    """Stop the worker's channel once its session runs, and wait until that has ended
    (Prefect's channel holds its session's scope in `_run_scope` while it runs)."""
    async def until(condition) -> None:
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the worker's channel did not start or end within 10 s")

    await until(lambda: channel._run_scope is not None)
    channel.stop()
    await until(lambda: channel._run_scope is None)


async def handler_in_job_of_next_run(worker_class, pool: str, create_run) -> tuple[str, str]:
    """(the handler in the worker's copy of the template after it synced, the handler in the
    Job configuration of the run `create_run` makes after that)."""
    def handler_of(template: dict) -> str:
        return template["variables"]["properties"]["env"]["default"]["VIDEO_INGEST_HANDLER"]

    async with worker_class(work_pool_name=pool) as worker:
        # Entering synced the worker with the server and opened its websocket channel. Close
        # the channel, as a restarted server does: no new template is pushed to the worker.
        await close_channel(worker._worker_channel)
        synced = handler_of(worker.work_pool.base_job_template)
        flow_run_id = create_run()
        runs = await worker._get_scheduled_flow_runs()
        run = next(r.flow_run for r in runs if r.flow_run.id == flow_run_id)
        configuration = await worker.job_configuration.resolve_for_flow_run(
            run, client=worker.client, work_pool=worker.work_pool, worker_name=worker.name)
        return synced, configuration.env["VIDEO_INGEST_HANDLER"]


def test_run_created_after_apply_gets_the_new_template_without_a_worker_heartbeat(
        prefect_server, api_env, client, tmp_path, unique, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_kubernetes.worker import KubernetesWorker

    from video_ingest.platform.worker import FreshPoolKubernetesWorker

    monkeypatch.setenv("PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED", "false")  # no cluster to watch
    apply_handler(api_env, tmp_path, unique, "fetch")
    deployment = client.read_deployment_by_name(f"ingest-batch/{unique}-batch")
    made = []

    def apply_then_create_run(handler: str):
        def create_run():
            apply_handler(api_env, tmp_path, unique, handler)
            made.append(client.create_flow_run_from_deployment(deployment.id, parameters={"items": ["v-1"]}).id)
            return made[-1]
        return create_run

    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
            ours = asyncio.run(handler_in_job_of_next_run(
                FreshPoolKubernetesWorker, unique, apply_then_create_run("synthetic")))
            # The premise, on Prefect's own class: its copy stays as synced until its next heartbeat.
            prefects = asyncio.run(handler_in_job_of_next_run(
                KubernetesWorker, unique, apply_then_create_run("fetch")))
    finally:
        for flow_run_id in made:
            client.delete_flow_run(flow_run_id)
    assert ours == ("fetch", "synthetic")
    assert prefects == ("synthetic", "synthetic")
