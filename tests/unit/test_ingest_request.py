"""One request per submission: its items (ID and source) and the options its submitter
chose, made once and carried unchanged as each batch run's parameters."""

from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.request import BatchOptions, IngestRequest
from video_ingest.settings import IngestSettings


def request_of(ids, sources, **options):
    return IngestRequest.of((VideoItem(i, sources.get(i)) for i in ids), BatchOptions(**options))


def test_a_request_travels_as_a_runs_parameters_and_back_unchanged():
    request = request_of(["a", "b#fail", "c"], {"b#fail": "https://example.com/b.mp4"}, handler="synthetic",
                         retries=0, retry_delay=0.5)
    parameters = request.parameters()
    assert parameters == {"items": ["a", "b#fail", "c"], "sources": {"b#fail": "https://example.com/b.mp4"},
                          "handler": "synthetic", "retries": 0, "retry_delay": 0.5}
    assert IngestRequest.from_parameters(**parameters) == request
    # unset options are not sent: the settings where the batches run decide them
    assert request_of(["a"], {}).parameters() == {"items": ["a"], "sources": None}


def test_the_flows_take_exactly_the_requests_parameters():
    from video_ingest.ingestion.flows import bulk_video_ingest, ingest_batch

    options = set(BatchOptions.names())
    assert set(ingest_batch.parameters.properties) == {"items", "sources"} | options - {"batch_size"}
    assert set(bulk_video_ingest.parameters.properties) == {"items", "sources", "on_cluster"} | options


def test_every_option_is_a_setting_and_options_set_win_over_the_settings():
    assert set(BatchOptions.names()) <= set(IngestSettings.model_fields)
    settings = IngestSettings(handler="synthetic", retries=5)
    chosen = BatchOptions(retries=0, max_inflight=8)
    assert chosen.over(BatchOptions.of(settings)) == BatchOptions(
        handler="synthetic", max_inflight=8, retries=0, retry_delay=settings.retry_delay, batch_size=settings.batch_size,
    )
    applied = chosen.applied_to(settings, source="test")
    assert (applied.retries, applied.max_inflight, applied.handler) == (0, 8, "synthetic")
