"""`submit` and `status` print the Prefect UI page of the runs they talk about.

A real server and real runs: the link's ID is read back from the server and must be
the bulk run that `submit` started, whose batches are its child flow runs.
"""

import json

from conftest import batch_pool_with_worker, video_ingest, write_ids
from prefect.client.schemas.actions import WorkPoolCreate

from video_ingest.platform.reconcile import parameter_schemas
from video_ingest.prefect_api.observer import batch_runs_of
from video_ingest.prefect_api.ui_links import run_links


def test_submit_prints_the_ui_page_of_its_bulk_run_and_keeps_json_on_stdout(
    prefect_server, api_env, client, tmp_path, unique
):
    pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_RETRIES": "0", "VIDEO_INGEST_SLOT_LIMIT": ""}
    ids = [f"{unique}-a", f"{unique}-b#fail"]
    with batch_pool_with_worker(client, f"{unique}-pool", {**api_env, **pool_env}, pool_env) as deployment:
        env = {**api_env, "VIDEO_INGEST_BATCH_DEPLOYMENT": deployment}
        done = video_ingest("submit", "--ids-file", str(write_ids(tmp_path / "ids.txt", ids)), "--json",
                            env=env, timeout=300)

    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "total": 2, "succeeded": 1, "failed": 1, "failed_ids": [f"{unique}-b#fail"]}
    links = run_links(done.stderr)
    assert len(links) == 1, done.stderr
    ui = prefect_server.url.removesuffix("/api")
    assert links[0].startswith(f"{ui}/runs/flow-run/"), links
    bulk = client.read_flow_run(links[0].rsplit("/", 1)[1])
    assert client.read_flow(bulk.flow_id).name == "bulk-video-ingest"
    batches = batch_runs_of(client, bulk.id)
    assert [batch.parameters["items"] for batch in batches] == [ids], "the link is not the run that ran our items"


def test_detached_submit_and_status_link_the_bulk_run_under_the_prefect_ui_url_setting(
    api_env, client, tmp_path, unique
):
    """No worker: the detached bulk run stays Scheduled, in flight for `status` to list."""
    pool = f"{unique}-pool"
    client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    client.create_deployment(
        flow_id=client.create_flow_from_name("bulk-video-ingest"), name=unique,
        entrypoint="video_ingest.ingestion.flows:bulk_video_ingest", work_pool_name=pool,
        parameter_openapi_schema=parameter_schemas()["bulk-video-ingest"], pull_steps=[],
    )
    env = {**api_env, "PREFECT_UI_URL": "https://prefect.example.org/"}
    ids_file = write_ids(tmp_path / "ids.txt", [f"{unique}-a"])
    started = video_ingest("submit", "--ids-file", str(ids_file), "--detach", "--deployment",
                           f"bulk-video-ingest/{unique}", "--json", env=env)
    assert started.returncode == 0, started.stderr
    flow_run_id = json.loads(started.stdout.strip().splitlines()[-1])["flow_run_id"]
    link = f"https://prefect.example.org/runs/flow-run/{flow_run_id}"
    try:
        assert json.loads(started.stdout.strip().splitlines()[-1]) == {"flow_run_id": flow_run_id, "ui_url": link}
        assert f"video-ingest: bulk run {flow_run_id} in the Prefect UI: {link}" in started.stderr

        as_json = video_ingest("status", "--pool", pool, "--json", env=env)
        assert as_json.returncode == 0, as_json.stderr
        report = json.loads(as_json.stdout)
        name = client.read_flow_run(flow_run_id).name
        listed = {"id": flow_run_id, "name": name, "state": "Scheduled", "ui_url": link}
        assert report["ui_url"] == "https://prefect.example.org"
        assert listed in report["bulk_runs"] and listed in report["runs"], report

        as_text = video_ingest("status", "--pool", pool, env=env)
        assert as_text.returncode == 0, as_text.stderr
        lines = as_text.stdout.splitlines()
        assert "Prefect UI: https://prefect.example.org" in lines
        assert f"  {name} (Scheduled): {link}" in lines[lines.index("bulk runs in flight:"):], as_text.stdout
    finally:
        client.delete_flow_run(flow_run_id)
