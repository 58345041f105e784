"""`run` and `submit`: the library functions behind `video-ingest run` and `submit`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

from video_ingest.ingestion.handlers import build_handler, item_problem
from video_ingest.ingestion.manifest import Manifest, ManifestError, VideoItem
from video_ingest.ingestion.request import BatchOptions, IngestRequest
from video_ingest.ingestion.summary import BatchSummary, ItemOutcome
from video_ingest.settings import IngestSettings

DEMO_FAULTS_EVERY = 10  # in a demo list, every 10th ID is flaky and every 25th fails
FIRST_ITEMS_SHOWN = 20  # IDs a bulk run started here shows among its parameters (all are in its batches)


def demo_manifest(count: int) -> Manifest:
    """`count` synthetic IDs with a few flaky and failing ones, for a first look."""
    if count < 1:
        raise ManifestError("--demo needs a positive number of items")
    items = []
    for n in range(1, count + 1):
        item_id = f"demo-{n:06d}"
        if n % 25 == 0:
            item_id += "#fail"
        elif n % DEMO_FAULTS_EVERY == 0:
            item_id += "#flaky=1"
        items.append(VideoItem(item_id))
    return Manifest(items)


def check_items(items: Iterable[VideoItem], handler: str, settings: IngestSettings) -> None:
    """Raise ManifestError naming the items the handler could never process."""
    try:
        chosen = build_handler(handler, settings)
    except ValueError as exc:
        raise ManifestError(str(exc)) from None
    problems = [p for p in (item_problem(item, chosen) for item in items) if p]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ManifestError(f"{len(problems)} item(s) cannot be processed: " + "; ".join(problems[:5]) + more)


@dataclass
class RunResult:
    summary: BatchSummary
    flow_run_id: str | None = None
    api_url: str | None = None


def run(
    request: IngestRequest,
    settings: IngestSettings,
    *,
    on_cluster: bool = False,
    on_outcome: Callable[[ItemOutcome], None] | None = None,
    on_start: Callable[[str, str], None] | None = None,
) -> RunResult:
    """Ingest every item of `request` with the `bulk-video-ingest` flow and summarize.

    Runs against `settings.prefect_api_url`, or an embedded server when it is unset.
    Batches run in this process, where `settings` decide every option the request
    leaves unset, and every item is checked here first; or (`on_cluster`) as runs of
    the batch deployment, where the cluster's own settings decide them: then only ID
    syntax is checked here (when the ID file was read), and each item is checked
    where it runs. `on_start(flow_run_id, flow_run_name)` is called once the bulk
    flow run is Running.
    """
    from video_ingest.ingestion import flows
    from video_ingest.prefect_api.connection import ensure_global_limit, prefect_api

    if not on_cluster:
        request = replace(request, options=request.options.over(BatchOptions.of(settings)))
        check_items(request.items, request.options.handler, settings)
    with prefect_api(settings.prefect_api_url, settings.state_dir) as api_url:
        if not settings.prefect_api_url and settings.slot_limit:
            # A server of our own has none of a platform's limits: it gets the items'
            # global limit, as wide as a batch's threads (batches run one at a time here).
            ensure_global_limit(settings.slot_limit, settings.max_workers)
        heartbeat = None
        if on_cluster:
            from video_ingest.ingestion.cluster_batches import heartbeat_seconds_of, read_cluster_env
            from video_ingest.settings import settings_with_env

            # A missing deployment or a bad cluster setting is one clear line, before anything starts.
            cluster = read_cluster_env(settings)
            settings_with_env(settings, cluster)
            # The bulk run sends heartbeats as often as the cluster's flow runs do: the
            # automation that crashes silent runs (unresponsiveRuns) is sized for them.
            heartbeat = heartbeat_seconds_of(cluster)
        bulk_flow = flows.bulk_flow_for(request, on_outcome)
        if on_start:
            bulk_flow = bulk_flow.with_options(
                on_running=[lambda flow, flow_run, state: on_start(str(flow_run.id), flow_run.name)]
            )
        ids = request.ids
        with heartbeats_every(heartbeat):
            state = bulk_flow(
                item_count=len(ids), first_items=ids[:FIRST_ITEMS_SHOWN], options=request.options.chosen(),
                on_cluster=on_cluster, return_state=True,
            )
        data = state.result(raise_on_failure=False)
        if not isinstance(data, dict) or "summary" not in data:
            raise RuntimeError(f"bulk-video-ingest ended {state.name}: {state.message}")
        summary = BatchSummary.from_record(data["summary"])
        return RunResult(summary, str(state.state_details.flow_run_id), api_url)


@contextmanager
def heartbeats_every(seconds: int | None) -> Iterator[None]:
    """Flow runs started inside send a heartbeat every `seconds` (None: Prefect's setting as it is)."""
    if seconds is None:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: seconds}):
        yield


def submit_detached(request: IngestRequest, settings: IngestSettings, deployment: str) -> str:
    """Start a run of the bulk deployment on the cluster and return its flow run ID.

    Only the options the request sets are sent; the cluster's settings supply the rest.
    """
    from prefect.deployments import run_deployment

    from video_ingest.prefect_api.connection import check_api

    if not settings.prefect_api_url:
        raise ManifestError("submit --detach needs PREFECT_API_URL pointing at the cluster's Prefect API")
    if request.too_big_for_parameters():
        raise ManifestError(
            f"submit --detach sends the IDs as the bulk run's parameters, which Prefect caps at 512 KB;"
            f" these take {request.parameters_size() // 1024} KB: submit without --detach (any number of IDs)"
            " or split the file"
        )
    check_api(settings.prefect_api_url)
    flow_run = run_deployment(
        deployment,
        parameters={**request.parameters(), "on_cluster": True},
        timeout=0,
        as_subflow=False,
    )
    return str(flow_run.id)
