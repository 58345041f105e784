"""`video-ingest status`: the pool, its limits, slots in use and runs in flight.

Every run listed carries its page in the Prefect UI (`ui_url`; see ui_links), and
the bulk runs in flight are listed apart: a bulk run started by `submit` runs on
the submitter's machine, in no work pool, and is what a person follows.
"""

from __future__ import annotations

from video_ingest.platform.config import PlatformConfig
from video_ingest.settings import IngestSettings

IN_FLIGHT_STATES = ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING"]
LISTED_RUNS = 20


def read_status(settings: IngestSettings, config: PlatformConfig | None = None, pool: str | None = None) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from video_ingest.ingestion.flows import bulk_video_ingest
    from video_ingest.prefect_api.connection import ApiUnreachable, check_api
    from video_ingest.prefect_api.ui_links import flow_run_url, ui_url

    if not settings.prefect_api_url:
        raise ApiUnreachable("status needs PREFECT_API_URL: the Prefect server to read")
    check_api(settings.prefect_api_url)
    pool_name = pool or (config.work_pool.name if config else "video-ingest")
    api_url = settings.prefect_api_url
    report: dict = {"api_url": api_url, "ui_url": ui_url(api_url), "work_pool": {"name": pool_name}}
    in_flight = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=IN_FLIGHT_STATES)))

    def listed(runs) -> list[dict]:
        return [{"id": str(r.id), "name": r.name, "state": r.state_name, "ui_url": flow_run_url(api_url, r.id)}
                for r in runs[:LISTED_RUNS]]

    with temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}):
        with get_client(sync_client=True) as client:
            try:
                work_pool = client.read_work_pool(pool_name)
            except ObjectNotFound:
                report["work_pool"]["missing"] = True
                work_pool = None
            if work_pool is not None:
                report["work_pool"].update(
                    type=work_pool.type,
                    concurrency_limit=work_pool.concurrency_limit,
                    status=str(work_pool.status.value if work_pool.status else "unknown"),
                )
                report["queues"] = [
                    {"name": q.name, "concurrency_limit": q.concurrency_limit, "priority": q.priority,
                     "paused": q.is_paused}
                    for q in client.read_work_queues(work_pool_name=pool_name)
                ]
                runs = client.read_flow_runs(
                    work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name])),
                    flow_run_filter=in_flight,
                    limit=200,
                )
                counts: dict[str, int] = {}
                for run in runs:
                    counts[run.state_name or "?"] = counts.get(run.state_name or "?", 0) + 1
                report["runs_in_flight"] = counts
                report["runs"] = listed(runs)
            report["bulk_runs"] = listed(client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[bulk_video_ingest.name])),
                flow_run_filter=in_flight,
                limit=LISTED_RUNS,
            ))
            limits = client.read_global_concurrency_limits(limit=200)
            report["limits"] = [
                {"name": limit.name, "limit": limit.limit, "active_slots": limit.active_slots,
                 "slot_decay_per_second": limit.slot_decay_per_second, "active": limit.active}
                for limit in sorted(limits, key=lambda lim: lim.name)
            ]
    return report


def format_status(report: dict) -> str:
    """Human-readable status. Pure."""
    pool = report["work_pool"]
    lines = [f"Prefect API: {report['api_url']}"]
    if report.get("ui_url"):
        lines.append(f"Prefect UI: {report['ui_url']}")
    if pool.get("missing"):
        lines.append(f"work pool {pool['name']}: not found (run video-ingest apply)")
    else:
        limit = pool.get("concurrency_limit")
        running = sum(report.get("runs_in_flight", {}).values())
        lines.append(
            f"work pool {pool['name']} ({pool.get('type')}, {pool.get('status')}):"
            f" limit {limit if limit is not None else 'none'}, {running} run(s) in flight"
        )
        for queue in report.get("queues", []):
            qlimit = queue["concurrency_limit"]
            lines.append(
                f"  queue {queue['name']}: priority {queue['priority']},"
                f" limit {qlimit if qlimit is not None else 'none'}{', paused' if queue['paused'] else ''}"
            )
        for state, count in sorted(report.get("runs_in_flight", {}).items()):
            lines.append(f"  {state}: {count}")
        lines += [f"  {line}" for line in _run_lines(report.get("runs", []))]
    if report.get("bulk_runs"):
        lines.append("bulk runs in flight:")
        lines += _run_lines(report["bulk_runs"])
    if report.get("limits"):
        lines.append("concurrency limits:")
        for limit in report["limits"]:
            decay = f", decays {limit['slot_decay_per_second']}/s" if limit["slot_decay_per_second"] else ""
            inactive = ", inactive" if not limit["active"] else ""
            lines.append(f"  {limit['name']}: {limit['active_slots']}/{limit['limit']} slots in use{decay}{inactive}")
    return "\n".join(lines)


def _run_lines(runs: list[dict]) -> list[str]:
    """One line per listed run: its name, state and UI page (its ID without a UI). Pure."""
    return [f"  {run['name']} ({run['state']}): {run.get('ui_url') or run['id']}" for run in runs]
