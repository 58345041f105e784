"""The bulk flow splits IDs into batches, each its own ingest-batch flow run."""

from prefect.settings import PREFECT_API_URL, temporary_settings

from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.request import IngestRequest
from video_ingest.ingestion.submission import run
from video_ingest.prefect_api.observer import batch_runs_of
from video_ingest.settings import load_settings


def test_bulk_run_makes_one_child_flow_run_per_batch(prefect_server, client, unique, monkeypatch):
    monkeypatch.setenv("VIDEO_INGEST_SLOT_LIMIT", "")
    items = [VideoItem(f"{unique}-{n}") for n in range(12)] + [VideoItem(f"{unique}-x#fail")]
    settings = load_settings(handler="synthetic", batch_size=5, retries=0, retry_delay=0)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
        settings = settings.model_copy(update={"prefect_api_url": prefect_server.url})
        result = run(IngestRequest.of(items), settings)

    assert result.summary.to_json() == {"total": 13, "succeeded": 12, "failed": 1, "failed_ids": [f"{unique}-x#fail"]}
    children = batch_runs_of(client, result.flow_run_id)
    states = sorted(child.state.type.value for child in children)
    assert states == ["COMPLETED", "COMPLETED", "FAILED"]  # batches of 5, 5 and 3; the last holds x#fail
    parent = client.read_flow_run(result.flow_run_id)
    assert parent.state.type.value == "FAILED" and f"{unique}-x#fail" in parent.state.message
