"""Running batches as flow runs of the `ingest-batch` deployment (one Kubernetes Job each).

Every batch is started at once; the work pool's concurrency limit decides how many
Jobs run at a time. When a batch run ends, its items' outcomes are read back: from
the outcome table it publishes, or, if it died before publishing (a deleted pod, a
crash), from its task runs' final states. Items with no final state are run again
in a new batch run, up to `batch_attempts` runs in all; the handler skips what an
earlier run already ingested. Outcomes are keyed by item ID, so nothing is counted
twice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable

from video_ingest.observer import read_task_runs_of_flow_run
from video_ingest.settings import IngestSettings
from video_ingest.summary import ItemOutcome, OutcomeLedger

log = logging.getLogger("video_ingest.cluster_batches")
POLL_SECONDS = 2.0


@dataclass
class BatchRun:
    index: int
    ids: list[str]
    attempt: int
    started: float = 0.0


def outcomes_from_task_runs(task_runs) -> list[ItemOutcome]:
    """Outcomes of the task runs that reached a final state; the newest run per item wins. Pure."""
    newest: dict[str, object] = {}
    for run in task_runs:
        if run.state is None or not run.state.is_final():
            continue
        seen = newest.get(run.name)
        if seen is None or (run.state.timestamp or 0) >= (seen.state.timestamp or 0):
            newest[run.name] = run
    outcomes = []
    for item_id, run in newest.items():
        ok = run.state.is_completed()
        outcomes.append(
            ItemOutcome(item_id, ok=ok, state=run.state.name or run.state.type.value,
                        attempts=run.run_count, detail="" if ok else (run.state.message or "")[:500])
        )
    return outcomes


def read_published_outcomes(client, flow_run_id) -> list[ItemOutcome] | None:
    """The outcome table a batch run published, or None if it published none."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    # A batch run publishes one table artifact: its outcomes.
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            type=ArtifactFilterType(any_=["table"]),
        )
    )
    if not artifacts:
        return None
    newest = max(artifacts, key=lambda artifact: artifact.created)
    rows = json.loads(newest.data) if isinstance(newest.data, str) else newest.data
    return [ItemOutcome.from_dict(row) for row in rows]


def run_batches_as_deployments(
    batches: list[list[str]],
    sources: dict[str, str],
    batch_args: dict,
    ledger: OutcomeLedger,
    settings: IngestSettings,
    notify: Callable[[ItemOutcome], None] | None = None,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.context import FlowRunContext
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    parent = FlowRunContext.get()
    prefix = parent.flow_run.name if parent and parent.flow_run else "bulk"
    running: dict = {}

    def start(batch: BatchRun) -> None:
        suffix = f"-rerun{batch.attempt - 1}" if batch.attempt > 1 else ""
        flow_run = run_deployment(
            settings.batch_deployment,
            parameters={
                "items": batch.ids,
                "sources": {i: sources[i] for i in batch.ids if i in sources} or None,
                **{key: value for key, value in batch_args.items() if value is not None},
            },
            flow_run_name=f"{prefix}-batch-{batch.index:04d}{suffix}",
            timeout=0,
        )
        batch.started = time.monotonic()
        running[flow_run.id] = batch

    def finish(client, flow_run_id, batch: BatchRun, state_name: str) -> None:
        outcomes = read_published_outcomes(client, flow_run_id)
        if outcomes is None:
            outcomes = outcomes_from_task_runs(read_task_runs_of_flow_run(client, flow_run_id))
        wanted = set(batch.ids)
        for outcome in outcomes:
            if outcome.id in wanted:
                ledger.record(outcome)
                if notify:
                    notify(outcome)
        unfinished = ledger.unfinished(batch.ids)
        if not unfinished:
            return
        if batch.attempt < settings.batch_attempts:
            log.warning(
                "batch %d ended %s with %d item(s) unfinished; running them again (run %d of %d)",
                batch.index, state_name, len(unfinished), batch.attempt + 1, settings.batch_attempts,
            )
            start(BatchRun(batch.index, unfinished, batch.attempt + 1))
        else:
            log.error("batch %d: %d item(s) still unfinished after %d runs", batch.index, len(unfinished), batch.attempt)

    for index, ids in enumerate(batches):
        start(BatchRun(index, ids, attempt=1))
    with get_client(sync_client=True) as client:
        while running:
            time.sleep(POLL_SECONDS)
            flow_runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(running))), limit=len(running)
            )
            for flow_run in flow_runs:
                batch = running[flow_run.id]
                if flow_run.state is not None and flow_run.state.is_final():
                    del running[flow_run.id]
                    finish(client, flow_run.id, batch, flow_run.state.name)
                elif time.monotonic() - batch.started > settings.batch_timeout:
                    log.error("batch %d took longer than %.0fs; cancelling it", batch.index, settings.batch_timeout)
                    client.set_flow_run_state(flow_run.id, Cancelling(message="batch timeout"), force=True)
                    batch.started = time.monotonic()  # give the cancellation time before acting again
