"""The ways of running N no-op items that the benchmark compares.

Run as `python -m bench.variants VARIANT N RESULT_JSON [PREFIX [MS]]`, one
process per run, so each variant's peak RSS is its own; PREFIX names the items
(several runs at once need their own) and MS gives ours' synthetic items that many
ms of work. The Prefect API comes from PREFECT_API_URL and
our flow's settings from VIDEO_INGEST_* (the benchmark sets both).

* `seed`: the pattern this project started from: one task per video tagged
  `video-ingest` (a tag limit enforces the cap), `ThreadPoolTaskRunner(32)`, a
  window of 500 futures waited on with `as_completed` over the whole window, and
  `retries=3`. Its naming bug (a `task_run_name` lambda, called with no arguments by
  Prefect 3, so nothing ran) is fixed with a name template; nothing else changes.
* `map`: Prefect's own `.map` over the same tagged task, the same thread pool.
* `map-nolimit`: `.map` over the same task without its tag: no limit and no
  concurrency call at all, Prefect at its fastest.
* `ours`: our `ingest-batch` flow with the synthetic handler, items holding slots
  of the `video-ingest` global limit leased in blocks, each a task run recorded
  through its events without Prefect's task engine (item_runs.py).
* `ours-nolimit`: the same flow; the benchmark runs it with no global limit
  (VIDEO_INGEST_SLOT_LIMIT empty).
* `events-only`: no task engine and no handler: each item's three task-run events,
  made with Prefect's function and sent on websockets of the flow's own
  (bench/events_only.py). The floor under any client that records three per item.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from prefect import flow, task
from prefect.futures import as_completed, wait
from prefect.task_runners import ThreadPoolTaskRunner

SEED_WINDOW = 500
THREADS = 32


def video_ids(count: int, prefix: str = "vid", ms: int = 0) -> list[str]:
    """The same item IDs for every variant (runs are told apart by flow run); with `ms`,
    the synthetic handler's directive for that much work per item."""
    work = f"#ms={ms}" if ms else ""
    return [f"{prefix}-{n:06d}{work}" for n in range(count)]


@task(retries=3, tags=["video-ingest"], task_run_name="ingest-{video_id}", persist_result=False)
def ingest_video(video_id: str) -> str:
    return video_id


ingest_video_untagged = ingest_video.with_options(tags=[])


@flow(name="bench-seed", task_runner=ThreadPoolTaskRunner(max_workers=THREADS), persist_result=False)
def seed_bulk(video_ids: list[str]) -> int:
    in_flight = []
    completed = 0
    for video_id in video_ids:
        in_flight.append(ingest_video.submit(video_id))
        if len(in_flight) >= SEED_WINDOW:
            done = next(as_completed(list(in_flight)))
            in_flight.remove(done)
            completed += 1
    for _ in as_completed(in_flight):
        completed += 1
    return completed


def map_and_wait(item_task, video_ids: list[str]) -> int:
    futures = item_task.map(video_ids)
    wait(futures)
    return sum(1 for future in futures if future.state.is_completed())


@flow(name="bench-map", task_runner=ThreadPoolTaskRunner(max_workers=THREADS), persist_result=False)
def map_bulk(video_ids: list[str]) -> int:
    return map_and_wait(ingest_video, video_ids)


@flow(name="bench-map-nolimit", task_runner=ThreadPoolTaskRunner(max_workers=THREADS), persist_result=False)
def map_bulk_nolimit(video_ids: list[str]) -> int:
    return map_and_wait(ingest_video_untagged, video_ids)


@flow(name="bench-events-only", persist_result=False)
def events_only_bulk(video_ids: list[str]) -> int:
    from prefect.context import FlowRunContext

    from bench.events_only import send_item_events

    return send_item_events(FlowRunContext.get().flow_run.id, video_ids)


def run_ours(ids: list[str]):
    from video_ingest.ingestion.flows import ingest_batch

    return ingest_batch(items=ids, return_state=True)


def run_variant(variant: str, count: int, prefix: str = "vid", ms: int = 0) -> dict:
    ids = video_ids(count, prefix, ms)
    started_at = time.time()
    started = time.monotonic()
    if variant == "seed":
        state = seed_bulk(ids, return_state=True)
    elif variant == "map":
        state = map_bulk(ids, return_state=True)
    elif variant == "map-nolimit":
        state = map_bulk_nolimit(ids, return_state=True)
    elif variant in ("ours", "ours-nolimit"):  # the limit is in the environment
        state = run_ours(ids)
    elif variant == "events-only":
        state = events_only_bulk(ids, return_state=True)
    else:
        raise SystemExit(
            f"unknown variant {variant!r}: use seed, map, map-nolimit, ours, ours-nolimit or events-only")
    flow_seconds = time.monotonic() - started
    from video_ingest.prefect_api.connection import drain_client_workers

    # The task runs' states reach the server as events: an item is not observable
    # until they are sent, so the time to send them counts.
    drain_client_workers(timeout=3600)
    drained_seconds = time.monotonic() - started
    reported = state.result(raise_on_failure=False)
    if isinstance(reported, dict):  # ours: the batch summary
        reported = reported["summary"]["succeeded"]
    return {
        "variant": variant,
        "items": count,
        "started_at": started_at,
        "flow_seconds": flow_seconds,
        "drained_seconds": drained_seconds,
        "flow_run_id": str(state.state_details.flow_run_id),
        "flow_state": state.name,
        "reported_completed": reported if isinstance(reported, int) else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str]) -> None:
    variant, count, out = argv[0], int(argv[1]), argv[2]
    prefix = argv[3] if len(argv) > 3 else "vid"
    ms = int(argv[4]) if len(argv) > 4 else 0
    result = run_variant(variant, count, prefix, ms)
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
