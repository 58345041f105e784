"""`video-ingest status`: the pool, its limits, slots in use and runs in flight."""

from __future__ import annotations

from video_ingest.platform_config import PlatformConfig
from video_ingest.settings import IngestSettings

IN_FLIGHT_STATES = ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING"]


def read_status(settings: IngestSettings, config: PlatformConfig | None = None, pool: str | None = None) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from video_ingest.prefect_api import ApiUnreachable, check_api

    if not settings.prefect_api_url:
        raise ApiUnreachable("status needs PREFECT_API_URL: the Prefect server to read")
    check_api(settings.prefect_api_url)
    pool_name = pool or (config.work_pool.name if config else "video-ingest")
    report: dict = {"api_url": settings.prefect_api_url, "work_pool": {"name": pool_name}}
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
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=IN_FLIGHT_STATES))
                    ),
                    limit=200,
                )
                counts: dict[str, int] = {}
                for run in runs:
                    counts[run.state_name or "?"] = counts.get(run.state_name or "?", 0) + 1
                report["runs_in_flight"] = counts
                report["runs"] = [
                    {"id": str(r.id), "name": r.name, "state": r.state_name} for r in runs[:20]
                ]
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
    if report.get("limits"):
        lines.append("concurrency limits:")
        for limit in report["limits"]:
            decay = f", decays {limit['slot_decay_per_second']}/s" if limit["slot_decay_per_second"] else ""
            inactive = ", inactive" if not limit["active"] else ""
            lines.append(f"  {limit['name']}: {limit['active_slots']}/{limit['limit']} slots in use{decay}{inactive}")
    return "\n".join(lines)
