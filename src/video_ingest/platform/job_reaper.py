"""Deleting the Jobs of batch runs that were given up before their pod started.

A batch run whose pod does not start within `VIDEO_INGEST_START_TIMEOUT` (its node
selector matches no node, its image cannot be pulled) is given up by its bulk run:
Cancelled, which frees its pool slot, and its items run in a new batch run. The bulk
run cannot delete the Job (flow-run pods get no Kubernetes token), and the Job's pod
would stay Pending, holding a place in the flow-run pod quota that the next Jobs need.
This loop runs beside the worker, with the worker's token, and deletes exactly those
Jobs: active, labelled with a flow run whose current state says it was given up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from video_ingest.ingestion.cluster_batches import is_give_up, pages

log = logging.getLogger(__name__)

FLOW_RUN_LABEL = "prefect.io/flow-run-id"


@dataclass(frozen=True)
class JobView:
    name: str
    flow_run_id: str | None
    active: bool  # not yet Complete or Failed


def jobs_to_delete(jobs: list[JobView], given_up_runs: set[str]) -> list[str]:
    """Names of the active Jobs whose flow run was given up. Pure."""
    return [job.name for job in jobs if job.active and job.flow_run_id in given_up_runs]


def given_up_among(flow_runs) -> set[str]:
    """IDs of the flow runs whose current state is the bulk run giving them up. Pure."""
    return {str(run.id) for run in flow_runs if is_give_up(run.state)}


def _job_view(job) -> JobView:
    conditions = {c.type for c in (job.status.conditions or []) if c.status == "True"}
    finished = bool(conditions & {"Complete", "Failed"})
    return JobView(job.metadata.name, (job.metadata.labels or {}).get(FLOW_RUN_LABEL), active=not finished)


def reap_once(batch_api, prefect_client, namespace: str, selector: str) -> list[str]:
    """One pass: list our flow-run Jobs, read their runs, delete those given up."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    jobs = [_job_view(job) for job in batch_api.list_namespaced_job(namespace, label_selector=selector).items]
    candidates = [job.flow_run_id for job in jobs if job.active and job.flow_run_id]
    runs = []
    for chunk in pages(candidates):
        runs += prefect_client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)),
                                              limit=len(chunk))
    doomed = jobs_to_delete(jobs, given_up_among(runs))
    for name in doomed:
        log.warning("deleting Job %s: its batch run was given up before its pod started", name)
        batch_api.delete_namespaced_job(name, namespace, propagation_policy="Background")
    return doomed


def run_forever(namespace: str, selector: str, every: float, heartbeat: Path | None = None) -> None:
    """Reap every `every` seconds; a failed pass is logged and tried again. After each
    pass `heartbeat` is touched: the container's probes read its age."""
    from kubernetes import client as kube
    from kubernetes import config
    from prefect.client.orchestration import get_client

    config.load_incluster_config()
    batch_api = kube.BatchV1Api()
    log.warning("reaping given-up Jobs in namespace %s (%s) every %.0fs", namespace, selector, every)
    with get_client(sync_client=True) as prefect_client:
        while True:
            try:
                reap_once(batch_api, prefect_client, namespace, selector)
            except Exception as exc:  # the API or Kubernetes away: try again next pass
                log.warning("reaping failed (%s: %s); trying again in %.0fs", exc.__class__.__name__, exc, every)
            if heartbeat:
                heartbeat.touch()
            time.sleep(every)
