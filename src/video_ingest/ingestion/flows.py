"""The Prefect flows: `ingest-batch` (one task run per video) and `bulk-video-ingest`.

The logic lives in pure modules (window, slots ledger, summary, batches); this
module wires it to Prefect: one `process-video` task run per item, named after its
ID, tagged, retried with exponential backoff and jitter; outcomes taken from each
run's final state, never from a counter of submissions.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import Any, Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Completed, Failed, State

from video_ingest.ingestion.batches import PARAMETER_BUDGET
from video_ingest.ingestion.event_backlog import EventBacklog
from video_ingest.ingestion.handlers import PermanentItemError, VideoHandler, build_handler, item_problem
from video_ingest.ingestion.item_runs import ItemRuns, RetryPolicy
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.request import IngestRequest
from video_ingest.ingestion.slots import SlotLimitError, SlotSource, batch_slots, wait_briefly
from video_ingest.ingestion.summary import BatchSummary, ItemOutcome, OutcomeLedger
from video_ingest.ingestion.window import InflightWindow
from video_ingest.settings import IngestSettings, SettingsError, load_settings

# Told of each item's final outcome (the CLI's progress bar), or None.
OutcomeListener = Callable[[ItemOutcome], None] | None


def _settings() -> IngestSettings:
    """The settings where this flow runs, read when a run needs them (not cached: tests
    and long-lived processes may change the environment between runs). The package's
    loggers (video_ingest.*) log at its log_level; the chart names them in
    PREFECT_LOGGING_EXTRA_LOGGERS, so their lines also reach the run's logs in the UI."""
    settings = load_settings()
    logging.getLogger("video_ingest").setLevel(settings.log_level)
    return settings


def _handler(name: str):
    return build_handler(name, _settings())


def ingest_item(item: VideoItem, attempt: int, handler: VideoHandler) -> dict[str, Any]:
    """One attempt at one video with `handler`; `attempt` is its task run's run count.

    The item is checked here, where it runs, whoever submitted it (the CLI, the UI or
    the API): an ID or source the handler can never process fails permanently, with
    its reason, and spends no retries.
    """
    problem = item_problem(item, handler)
    if problem:
        raise PermanentItemError(problem)
    result = handler.process(item, attempt)
    return {"action": result.action, "attempt": attempt, "checksum": result.checksum, "bytes": result.size}


def retry_policy(settings: IngestSettings) -> RetryPolicy:
    """Exponential backoff from the settings' first delay (1x, 2x, 4x, ...), with jitter."""
    return RetryPolicy.exponential(settings.retries, settings.retry_delay, settings.retry_jitter)


def run_items(
    items: list[VideoItem],
    submit: Callable[[VideoItem], Any],
    window: InflightWindow,
    slots: SlotSource,
    on_outcome: Callable[[ItemOutcome], None],
    events_backlogged: Callable[[], bool] = lambda: False,
) -> list[ItemOutcome]:
    """Submit every item through a bounded window, holding one slot per item in flight.

    `submit` returns a `concurrent.futures.Future` of the item's outcome. An item's slot
    is taken before it is submitted and given back once its final state is recorded.
    While `events_backlogged()`, no new item is submitted (see event_backlog.py).
    """
    pending = deque(items)
    item_of: dict[int, VideoItem] = {}
    outcomes: list[ItemOutcome] = []

    def finish(future) -> None:
        item = item_of.pop(id(future))
        error = future.exception()
        if error is None:
            outcome = future.result()
        else:  # not the item's own failure (ItemRuns records those) but the runner's
            outcome = ItemOutcome(item.id, ok=False, state="Crashed", detail=f"{type(error).__name__}: {error}"[:500])
        outcomes.append(outcome)
        slots.give_back(len(pending))
        on_outcome(outcome)

    while pending:
        if window.full:
            finish(window.next_finished())
        elif events_backlogged():
            finished = window.next_finished(timeout=0.05) if len(window) else None
            if finished is not None:
                finish(finished)
            elif not len(window):
                wait_briefly(0.05)
        elif slots.try_take(len(pending)):
            item = pending.popleft()
            future = submit(item)
            item_of[id(future)] = item
            window.add(future)
        elif len(window):
            finished = window.next_finished(timeout=max(slots.retry_after, 0.05))
            if finished is not None:
                finish(finished)
        else:
            wait_briefly(slots.retry_after)
    for future in window.drain():
        finish(future)
    return outcomes


def batch_flow(on_outcome: OutcomeListener = None):
    """The `ingest-batch` flow, telling `on_outcome` of each item's final outcome."""

    @flow(name="ingest-batch", persist_result=False, validate_parameters=True)
    def ingest_batch(
        items: list[str],
        sources: dict[str, str] | None = None,
        handler: str | None = None,
        max_inflight: int | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
    ) -> State:
        """Ingest one batch: one `process-video` task run per ID; Failed if any item failed.

        Options left as None come from the settings where the batch runs (on a cluster,
        the chart's `ingest.*` values in the pod's environment).
        """
        request = IngestRequest.from_parameters(
            items, sources, handler=handler, max_inflight=max_inflight, retries=retries, retry_delay=retry_delay,
        )
        return _run_batch(request, on_outcome)

    return ingest_batch


# The batch deployment's flow (`video_ingest.ingestion.flows:ingest_batch`).
ingest_batch = batch_flow()


def _run_batch(request: IngestRequest, on_outcome: OutcomeListener) -> State:
    logger = get_run_logger()
    try:
        settings = request.options.applied_to(_settings(), source="batch parameter")
        handler_name = settings.handler
        chosen = _handler(handler_name)
    except (SettingsError, ValueError) as exc:
        return _rejected_batch(request.ids, str(exc), on_outcome)
    # No wider than the threads: a wider window would hold slots for items that only wait.
    window = InflightWindow(min(settings.max_inflight, settings.max_workers))
    context = FlowRunContext.get()
    flow_run = context.flow_run
    # Only a run of the batch deployment can be given up (cluster_batches); one in this process is not.
    if flow_run.deployment_id and _given_up(flow_run.id):
        logger.warning("the bulk run gave this batch run up before its pod started; its items run in another")
        return Cancelled(message="given up by its bulk run before it started: ran nothing")
    runs = ItemRuns(flow_run, context.flow, tags=[settings.tag], policy=retry_policy(settings),
                    log_successes=logging.getLevelName(settings.log_level) <= logging.INFO)
    work = partial(ingest_item, handler=chosen)
    backlog = EventBacklog(settings.max_unsent_events)
    started = time.monotonic()
    with ExitStack() as held:
        try:
            slots = held.enter_context(_item_slots(settings, window.limit, flow_run.id))
        except SlotLimitError as exc:
            return _rejected_batch(request.ids, str(exc), on_outcome)
        held.enter_context(runs)  # closed once the item threads below have finished
        # The item threads, sized by the settings where the batch runs (read now, not at import).
        threads = held.enter_context(ThreadPoolExecutor(settings.max_workers, thread_name_prefix="item"))
        outcomes = run_items(
            list(request.items),
            # Each item runs in a copy of the flow run's context: its events and logs name the flow run.
            submit=lambda item: threads.submit(contextvars.copy_context().run, runs.run, item, work),
            window=window,
            slots=slots,
            on_outcome=on_outcome or (lambda outcome: None),
            events_backlogged=backlog.too_high,
        )
    summary = BatchSummary.from_outcomes(outcomes)
    elapsed = time.monotonic() - started
    logger.info(
        "batch done: %d items, %d succeeded (%d already ingested), %d failed, %.1f items/s, peak in flight %d,"
        " held back %d times for unsent events",
        summary.total, summary.succeeded, summary.skipped, summary.failed,
        summary.total / elapsed if elapsed else 0.0, window.peak, backlog.held_back,
    )
    _publish(summary, outcomes, title=f"ingest-batch {flow_run.name}")
    result = {"summary": summary.to_json(), "outcomes": [o.to_dict() for o in outcomes]}
    if summary.failed:
        shown = ", ".join(summary.failed_ids[:20]) + (" ..." if summary.failed > 20 else "")
        return Failed(message=f"{summary.failed} of {summary.total} items failed: {shown}", data=result)
    return Completed(message=f"{summary.total} items succeeded", data=result)


def _given_up(flow_run_id) -> bool:
    from prefect.client.orchestration import get_client

    from video_ingest.ingestion.cluster_batches import given_up

    with get_client(sync_client=True) as client:
        return given_up(client.read_flow_run_states(flow_run_id))


def _rejected_batch(items: list[str], reason: str, on_outcome: OutcomeListener = None) -> State:
    """A batch whose options cannot run: every item failed with the same reason."""
    outcomes = [ItemOutcome(item_id, ok=False, state="Rejected", detail=reason[:500]) for item_id in items]
    for outcome in outcomes if on_outcome else []:
        on_outcome(outcome)
    summary = BatchSummary.from_outcomes(outcomes)
    _publish(summary, outcomes, title="ingest-batch (rejected)")
    result = {"summary": summary.to_json(), "outcomes": [o.to_dict() for o in outcomes]}
    return Failed(message=f"batch rejected: {reason}", data=result)


def _item_slots(settings: IngestSettings, cap: int, flow_run_id):
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder

    return batch_slots(
        settings.slot_limit,
        tag=settings.tag,
        cap=cap,
        block=settings.slot_block,
        lease_seconds=settings.slot_lease_seconds,
        holder=ConcurrencyLeaseHolder(type="flow_run", id=flow_run_id),
    )


def _publish(summary: BatchSummary, outcomes: list[ItemOutcome], title: str) -> None:
    create_markdown_artifact(markdown=summary.to_markdown(title), description=title)
    # No key: a keyed artifact also updates a collection, whose event carries the
    # whole table and is refused (dropped) by the server past 1.5 MB (~14k rows).
    create_table_artifact(
        table=[o.to_dict() for o in outcomes],
        description="one row per item: final state, attempts, what the handler did",
    )


@flow(name="bulk-video-ingest", persist_result=False, validate_parameters=True)
def bulk_video_ingest(
    items: list[str],
    sources: dict[str, str] | None = None,
    batch_size: int | None = None,
    handler: str | None = None,
    max_inflight: int | None = None,
    retries: int | None = None,
    retry_delay: float | None = None,
    on_cluster: bool = False,
) -> State:
    """Split IDs into batches and ingest each: in-process, or as deployment runs (Jobs).

    The bulk deployment's flow (a run from the UI or the API: its IDs are parameters,
    so Prefect's 512 KB limit on a run's parameters bounds them). The CLI runs the same
    flow with its request bound in-process instead (`bulk_flow_for`), any number of IDs.
    Options left as None come from the settings where the batches run: on a cluster,
    the chart's `ingest.*` values (the work pool's job template), read from the
    server, so a submitter on a laptop needs no settings of its own.
    """
    request = IngestRequest.from_parameters(
        items, sources, batch_size=batch_size, handler=handler, max_inflight=max_inflight,
        retries=retries, retry_delay=retry_delay,
    )
    return _run_bulk(request, on_cluster=on_cluster, on_outcome=None)


def bulk_flow_for(request: IngestRequest, on_outcome: OutcomeListener = None):
    """`bulk-video-ingest` for a submission in this process: `request` is bound here,
    not sent as the run's parameters (Prefect refuses parameters over 512 KB, about
    35,000 IDs); the run shows how many items there are, the first ones and the
    options set. `on_outcome` hears of every item's final outcome."""

    @flow(name="bulk-video-ingest", persist_result=False, validate_parameters=True)
    def bulk_video_ingest(item_count: int, first_items: list[str], options: dict, on_cluster: bool = False) -> State:
        return _run_bulk(request, on_cluster=on_cluster, on_outcome=on_outcome)

    return bulk_video_ingest


def _run_bulk(request: IngestRequest, on_cluster: bool, on_outcome: OutcomeListener) -> State:
    try:
        settings = _settings()
        if on_cluster:
            from video_ingest.ingestion.cluster_batches import read_cluster_settings

            settings = read_cluster_settings(settings)
        settings = request.options.applied_to(settings, source="bulk parameter")
    except SettingsError as exc:
        return Failed(message=f"bulk run rejected: {exc}")
    # On a cluster each batch is a run whose parameters carry its IDs and sources.
    batches = request.batches(settings.batch_size, budget=PARAMETER_BUDGET if on_cluster else None)
    ledger = OutcomeLedger(request.ids)
    if on_cluster:
        from video_ingest.ingestion.cluster_batches import run_batches_as_deployments

        run_batches_as_deployments(batches, ledger, settings, notify=on_outcome)
    else:
        ingest_here = batch_flow(on_outcome)
        for batch in batches:
            state = ingest_here(**batch.parameters(), return_state=True)
            data = state.result(raise_on_failure=False) if state.is_final() else None
            for row in (data or {}).get("outcomes", []) if isinstance(data, dict) else []:
                ledger.record(ItemOutcome.from_dict(row))
    summary = ledger.summary()
    create_markdown_artifact(markdown=summary.to_markdown("bulk-video-ingest"), description="bulk summary")
    result = {"summary": summary.to_record()}
    if summary.failed:
        shown = ", ".join(summary.failed_ids[:20]) + (" ..." if summary.failed > 20 else "")
        return Failed(message=f"{summary.failed} of {summary.total} items failed: {shown}", data=result)
    return Completed(message=f"{summary.total} items succeeded", data=result)
