"""Running batches as flow runs of the `ingest-batch` deployment (one Kubernetes Job each).

Every batch is started at once; the work pool's concurrency limit decides how many
Jobs run at a time. A batch's timeout counts from when it is first seen Running, so
batches queued behind the pool limit wait as long as the pool needs. Polling reads
only the batches that finished since the last poll (in pages), plus, less often,
the running ones for their timeouts: its cost does not grow with every batch's
parameters. A Prefect API that is away for a while (a server restart) is waited
for, up to `API_OUTAGE_SECONDS`. A batch left Pending with no Job (its worker went
away mid-submission) is scheduled again after `STUCK_PENDING_SECONDS`. When a batch run ends, its items' outcomes are read back: from
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
from datetime import datetime, timezone
from typing import Callable

from video_ingest.ingestion.request import IngestRequest
from video_ingest.ingestion.summary import ItemOutcome, OutcomeLedger, outcome_from_state
from video_ingest.prefect_api.observer import read_task_runs_of_flow_run
from video_ingest.settings import (
    HEARTBEAT_SETTING,
    IngestSettings,
    SettingsError,
    heartbeat_seconds,
    settings_with_env,
)

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
RUNNING_CHECK_SECONDS = 15.0
API_OUTAGE_SECONDS = 600.0
PAGE = 200  # the most flow runs the API returns at once
# A batch Pending this long with no Job recorded lost its worker between claiming
# it and creating the Job (a worker restart, an API error mid-submission): it holds
# a slot of the pool's limit and will never run, so it is put back to Scheduled.
STUCK_PENDING_SECONDS = 180.0
FINAL_STATE_TYPES = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]


@dataclass
class BatchRun:
    index: int
    request: IngestRequest  # its items and options, as its run's parameters carry them
    attempt: int
    part: int | None = None  # which of the runs a last attempt split the leftovers into
    running_since: float | None = None  # monotonic time first seen Running

    @property
    def ids(self) -> list[str]:
        return self.request.ids

    def rerun(self, ids: list[str], part: int | None) -> "BatchRun":
        """The next run of this batch, for the items `ids` (in this batch's order)."""
        wanted = set(ids)
        items = [item for item in self.request.items if item.id in wanted]
        return BatchRun(self.index, self.request.with_items(items), self.attempt + 1, part)


def cluster_env(base_job_template: dict, job_variables: dict | None) -> dict[str, str]:
    """The environment a flow-run pod of this pool and deployment gets. Pure."""
    variables = (base_job_template or {}).get("variables", {}).get("properties", {})
    env = dict(variables.get("env", {}).get("default") or {})
    env.update((job_variables or {}).get("env") or {})
    return {str(key): str(value) for key, value in env.items()}


def heartbeat_seconds_of(env: dict[str, str]) -> int | None:
    """The flow-run heartbeat a cluster's pods are given (HEARTBEAT_SETTING in their env),
    or None when it gives none. Pure."""
    value = env.get(HEARTBEAT_SETTING)
    if value is None:
        return None
    try:
        return heartbeat_seconds(value)
    except ValueError as exc:
        raise SettingsError(f"invalid cluster setting: {exc}") from None


def read_cluster_settings(settings: IngestSettings) -> IngestSettings:
    """`settings` overlaid with the cluster's ingest settings, as its flow-run pods see them."""
    return settings_with_env(settings, read_cluster_env(settings))


def read_cluster_env(settings: IngestSettings) -> dict[str, str]:
    """The environment the cluster gives its flow-run pods: the batch deployment's work
    pool's job template, with the deployment's job variables."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(settings.batch_deployment)
        except ObjectNotFound:
            raise SettingsError(
                f"deployment {settings.batch_deployment!r} not found on the server"
                " (is the chart installed, and did its apply hook finish?)"
            ) from None
        pool = client.read_work_pool(deployment.work_pool_name)
    return cluster_env(pool.base_job_template, deployment.job_variables)


def stuck_pending(flow_run, now: datetime, limit: float = STUCK_PENDING_SECONDS) -> bool:
    """Pending longer than `limit` seconds with no infrastructure recorded. Pure."""
    state = flow_run.state
    if state is None or state.type.value != "PENDING" or flow_run.infrastructure_pid:
        return False
    return (now - state.timestamp).total_seconds() > limit


# The message of a batch run given up because its pod never started. A pod that
# starts after all finds it in its run's history and leaves its items alone.
NOT_STARTED = "given up: its pod did not start"


def not_started(flow_run, now: datetime, limit: float) -> bool:
    """Pending longer than `limit` seconds although its Job exists (infrastructure recorded):
    its pod cannot be scheduled, or cannot pull its image. Pure."""
    state = flow_run.state
    if state is None or state.type.value != "PENDING" or not flow_run.infrastructure_pid:
        return False
    return (now - state.timestamp).total_seconds() > limit


def is_give_up(state) -> bool:
    """Whether `state` is the bulk run giving a batch run up before its pod started. Pure."""
    return state is not None and state.type.value == "CANCELLED" and (state.message or "").startswith(NOT_STARTED)


def given_up(states) -> bool:
    """Whether a batch run's state history holds the bulk run giving up on it. Pure."""
    return any(is_give_up(state) for state in states)


def unstarted_outcomes(ids: list[str], runs: int, last_state: str, last_message: str) -> list[ItemOutcome]:
    """Final outcomes of items whose batch gave up before they ever ran. Pure."""
    detail = f"not run: its batch ran {runs} time(s), the last ended {last_state}"
    detail += f" ({last_message})" if last_message else ""
    return [ItemOutcome(item_id, ok=False, state="NotRun", detail=detail[:500]) for item_id in ids]


LAST_ATTEMPT_PARTS = 16


def rerun_groups(unfinished: list[str], next_attempt: int, attempts: int) -> list[list[str]]:
    """The batch runs that take on a crashed batch's leftovers. Pure.

    Whole while more attempts remain after the next one. The last attempt splits them
    into up to LAST_ATTEMPT_PARTS runs (one item each for up to that many leftovers),
    so an item that kills its pod (too big for its memory) takes no other item down
    with it: the others succeed, and it alone is reported.
    """
    if next_attempt < attempts or len(unfinished) <= 1:
        return [list(unfinished)]
    parts = min(len(unfinished), LAST_ATTEMPT_PARTS)
    return [unfinished[part::parts] for part in range(parts)]


def pages(ids: list, size: int = PAGE) -> list[list]:
    """`ids` in chunks of at most `size`. Pure."""
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def outcomes_from_task_runs(task_runs) -> list[ItemOutcome]:
    """Outcomes of the task runs that reached a final state; the newest run per item wins. Pure."""
    newest: dict[str, object] = {}
    for run in task_runs:
        if run.state is None or not run.state.is_final():
            continue
        seen = newest.get(run.name)
        if seen is None or (run.state.timestamp or 0) >= (seen.state.timestamp or 0):
            newest[run.name] = run
    return [outcome_from_state(item_id, run.state, attempts=run.run_count) for item_id, run in newest.items()]


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
    batches: list[IngestRequest],
    ledger: OutcomeLedger,
    settings: IngestSettings,
    notify: Callable[[ItemOutcome], None] | None = None,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled, Cancelling, Scheduled

    parent = FlowRunContext.get()
    prefix = parent.flow_run.name if parent and parent.flow_run else "bulk"
    running: dict = {}

    def start(batch: BatchRun) -> None:
        suffix = f"-rerun{batch.attempt - 1}" if batch.attempt > 1 else ""
        suffix += f"-part{batch.part:02d}" if batch.part is not None else ""
        flow_run = run_deployment(
            settings.batch_deployment,
            parameters=batch.request.parameters(),
            flow_run_name=f"{prefix}-batch-{batch.index:04d}{suffix}",
            timeout=0,
        )
        running[flow_run.id] = batch

    def check_timeout(client, flow_run, batch: BatchRun | None) -> None:
        if batch is None:
            return
        now = time.monotonic()
        if batch.running_since is None:
            batch.running_since = now
        elif now - batch.running_since > settings.batch_timeout:
            log.error("batch %d ran longer than %.0fs; cancelling it", batch.index, settings.batch_timeout)
            client.set_flow_run_state(flow_run.id, Cancelling(message="batch timeout"), force=True)
            batch.running_since = now  # give the cancellation time before acting again

    def finish(client, flow_run_id, batch: BatchRun, state_name: str, message: str) -> None:
        outcomes = read_published_outcomes(client, flow_run_id)
        if outcomes is None:
            outcomes = outcomes_from_task_runs(read_task_runs_of_flow_run(client, flow_run_id))
        wanted = set(batch.ids)
        for outcome in outcomes:
            if outcome.id in wanted and ledger.record(outcome) and notify:
                notify(outcome)
        unfinished = ledger.unfinished(batch.ids)
        if not unfinished:
            return
        if batch.attempt < settings.batch_attempts:
            log.warning(
                "batch %d ended %s with %d item(s) unfinished; running them again (attempt %d of %d)",
                batch.index, state_name, len(unfinished), batch.attempt + 1, settings.batch_attempts,
            )
            groups = rerun_groups(unfinished, batch.attempt + 1, settings.batch_attempts)
            for part, group in enumerate(groups):
                start(batch.rerun(group, part if len(groups) > 1 else None))
        else:
            log.error("batch %d: %d item(s) still unfinished after %d runs", batch.index, len(unfinished), batch.attempt)
            never_ran = [item_id for item_id in unfinished if not ledger.attempted(item_id)]
            for outcome in unstarted_outcomes(never_ran, batch.attempt, state_name, message):
                if ledger.record(outcome) and notify:
                    notify(outcome)

    for index, request in enumerate(batches):
        start(BatchRun(index, request, attempt=1))
    with get_client(sync_client=True) as client:
        last_running_check = 0.0
        api_away_since: float | None = None
        while running:
            time.sleep(POLL_SECONDS)
            try:
                for flow_run in read_flow_runs_among(client, list(running), FINAL_STATE_TYPES):
                    batch = running.get(flow_run.id)
                    if batch is not None:
                        finish(client, flow_run.id, batch, flow_run.state.name, flow_run.state.message or "")
                        del running[flow_run.id]
                if time.monotonic() - last_running_check >= RUNNING_CHECK_SECONDS:
                    last_running_check = time.monotonic()
                    for flow_run in read_flow_runs_among(client, list(running), ["RUNNING", "PENDING"]):
                        if flow_run.state.type.value == "RUNNING":
                            check_timeout(client, flow_run, running.get(flow_run.id))
                        elif not_started(flow_run, datetime.now(timezone.utc), settings.start_timeout):
                            # Cancelled frees its pool slot; its Job stays (the bulk run may not
                            # delete Jobs), and should its pod start after all, it finds this
                            # state and runs nothing (flows.ingest_batch).
                            reason = f"{NOT_STARTED} within {settings.start_timeout:.0f}s of its Job"
                            log.warning("batch run %s: %s; running its items in a new run", flow_run.name, reason)
                            client.set_flow_run_state(flow_run.id, Cancelled(message=reason), force=True)
                        elif stuck_pending(flow_run, datetime.now(timezone.utc)):
                            log.warning("batch run %s is Pending with no Job for over %.0fs; scheduling it again",
                                        flow_run.name, STUCK_PENDING_SECONDS)
                            client.set_flow_run_state(
                                flow_run.id, Scheduled(message="Pending with no Job: scheduled again"), force=True,
                            )
            except Exception as exc:
                if not _api_unavailable(exc):
                    raise
                api_away_since = api_away_since or time.monotonic()
                away = time.monotonic() - api_away_since
                log.warning("Prefect API unavailable for %.0fs (%s%s); waiting for it", away, exc, _body_of(exc))
                if away > API_OUTAGE_SECONDS:
                    raise
                continue
            api_away_since = None


def read_flow_runs_among(client, ids: list, state_types: list[str]) -> list:
    """The flow runs among `ids` whose state type is one of `state_types`, page by page."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    found = []
    for chunk in pages(ids):
        found += client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=chunk),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=state_types)),
            ),
            limit=len(chunk),
        )
    return found


def _api_unavailable(exc: BaseException) -> bool:
    """A connection failure, a 5xx, or an answer that is not the Prefect API's (every
    error the API sends has a JSON body; a proxy, an ingress or a port left to another
    listener while the server restarts answers with anything else): worth waiting for,
    not a bug."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    return exc.response.status_code >= 500 or not _is_json(exc.response)


def _body_of(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    text = getattr(response, "text", "") if response is not None else ""
    return f"; it answered {text[:200]!r}" if text else ""


def _is_json(response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True
