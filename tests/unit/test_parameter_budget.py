"""Prefect refuses a flow run whose parameters serialize to 512 KB or more: batch runs
are cut to fit, and a submission of any size runs without its IDs as parameters."""

import json

from video_ingest.ingestion.batches import PARAMETER_BUDGET
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.request import BatchOptions, IngestRequest


def request_of(ids, sources, **options):
    return IngestRequest.of((VideoItem(i, sources.get(i)) for i in ids), BatchOptions(**options))


def test_parameter_size_is_what_json_makes_of_the_ids_and_sources_give_or_take_a_few():
    ids = [f"clip-{n:05d}" for n in range(1000)] + ["vidéo-é"]
    sources = {i: f"https://videos.example.com/{i}.mp4?X-Amz-Signature={'a' * 64}" for i in ids[::3]}
    exact = len(json.dumps({"items": ids, "sources": sources}, ensure_ascii=False).encode())
    assert abs(request_of(ids, sources).parameters_size() - exact) < 0.05 * exact


def test_a_batch_too_big_for_a_runs_parameters_is_halved_until_it_fits_in_order():
    long = "https://videos.example.com/" + "x" * 900
    ids = [f"v{n:04d}" for n in range(2000)]
    sources = {i: f"{long}/{i}" for i in ids}
    fitted = request_of(ids, sources, retries=1, batch_size=1500).batches(1500, budget=PARAMETER_BUDGET)
    assert [i for batch in fitted for i in batch.ids] == ids
    assert all(batch.parameters_size() <= PARAMETER_BUDGET for batch in fitted)
    assert len(fitted) > 2
    # each batch keeps the sources and the options, but a batch run takes no batch size
    assert all(batch.sources == {i: sources[i] for i in batch.ids} for batch in fitted)
    assert all(batch.options == BatchOptions(retries=1) for batch in fitted)
    # batches that fit are left alone, and one item is never split
    assert [b.ids for b in request_of(ids[:20], sources).batches(10, budget=PARAMETER_BUDGET)] == [ids[:10], ids[10:20]]
    assert [b.ids for b in request_of(["huge"], {"huge": "x" * 10**6}).batches(10, budget=PARAMETER_BUDGET)] == [["huge"]]
    # in-process batches have no parameter budget
    assert [b.ids for b in request_of(ids, sources).batches(1500)] == [ids[:1500], ids[1500:]]


def test_a_bulk_run_started_here_carries_a_count_and_the_first_ids_not_every_id():
    from video_ingest.ingestion.flows import bulk_flow_for, bulk_video_ingest

    ids = [f"id-{n:06d}" for n in range(100_001)]
    here = bulk_flow_for(IngestRequest.of(VideoItem(i) for i in ids))
    assert here.name == bulk_video_ingest.name == "bulk-video-ingest"
    assert {"item_count", "first_items"} <= set(here.parameters.properties)
    assert "items" not in here.parameters.properties
    # the deployment's flow (UI, API, submit --detach) still takes its IDs as parameters
    assert "items" in bulk_video_ingest.parameters.properties
