"""The bulk flow's view of the cluster: its settings as a submitter reads them from the
work pool, paging, and batches stuck Pending. Pure."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Completed, Pending, Running

from video_ingest.ingestion.cluster_batches import (
    NOT_STARTED,
    cluster_env,
    given_up,
    heartbeat_seconds_of,
    not_started,
    pages,
    stuck_pending,
    unstarted_outcomes,
)
from video_ingest.settings import SettingsError, load_settings, settings_with_env, with_overrides


def test_pod_env_is_the_pools_template_env_with_the_deployments_job_variables_on_top():
    template = {"variables": {"properties": {"env": {"default": {"VIDEO_INGEST_BATCH_SIZE": "8", "A": "1"}}}}}
    assert cluster_env(template, {"env": {"VIDEO_INGEST_BATCH_SIZE": 4}}) == {"VIDEO_INGEST_BATCH_SIZE": "4", "A": "1"}
    assert cluster_env({}, None) == {}


def test_cluster_values_override_the_submitters_own_and_other_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("VIDEO_INGEST_BATCH_SIZE", "999")
    local = load_settings()
    merged = settings_with_env(local, {"VIDEO_INGEST_BATCH_SIZE": "4", "VIDEO_INGEST_HANDLER": "synthetic",
                                       "VIDEO_INGEST_PREFECT_API_URL": "http://elsewhere", "HOME": "/x"})
    assert (merged.batch_size, merged.handler, merged.prefect_api_url) == (4, "synthetic", local.prefect_api_url)


def test_a_bad_cluster_value_names_the_setting():
    with pytest.raises(SettingsError, match="batch_size"):
        settings_with_env(load_settings(), {"VIDEO_INGEST_BATCH_SIZE": "0"})


def test_options_left_unset_keep_the_settings_and_bad_ones_are_refused():
    base = load_settings(retries=5)
    assert with_overrides(base, retries=None, handler=None) is base
    assert with_overrides(base, retries=1).retries == 1
    with pytest.raises(SettingsError, match="max_inflight"):
        with_overrides(base, source="batch parameter", max_inflight=-1)


def test_pages_never_exceed_the_apis_limit():
    assert [len(page) for page in pages(list(range(450)))] == [200, 200, 50]
    assert pages([]) == []


def test_a_batch_pending_too_long_with_no_job_is_stuck_and_nothing_else_is():
    now = datetime.now(timezone.utc)
    old, recent = now - timedelta(seconds=400), now - timedelta(seconds=30)

    def run(state, pid=None):
        return FlowRun(flow_id=uuid4(), state=state, infrastructure_pid=pid)

    assert stuck_pending(run(Pending(timestamp=old)), now, limit=180)
    assert not stuck_pending(run(Pending(timestamp=recent)), now, limit=180)
    assert not stuck_pending(run(Pending(timestamp=old), pid="ns:job-1"), now, limit=180)
    assert not stuck_pending(run(Running(timestamp=old)), now, limit=180)


def test_a_batch_whose_job_exists_but_whose_pod_has_not_started_in_time_is_given_up():
    now = datetime.now(timezone.utc)
    old, recent = now - timedelta(seconds=400), now - timedelta(seconds=30)

    def run(state, pid="ns:job-1"):
        return FlowRun(flow_id=uuid4(), state=state, infrastructure_pid=pid)

    assert not_started(run(Pending(timestamp=old)), now, limit=300)
    assert not not_started(run(Pending(timestamp=recent)), now, limit=300)
    assert not not_started(run(Pending(timestamp=old), pid=None), now, limit=300)  # no Job: stuck_pending's case
    assert not not_started(run(Running(timestamp=old)), now, limit=300)


def test_a_run_given_up_is_recognised_from_its_history_and_no_other_cancellation_counts():
    assert given_up([Pending(), Cancelled(message=f"{NOT_STARTED} within 60s of its Job")])
    assert not given_up([Pending(), Running(), Cancelled(message="batch timeout")])
    assert not given_up([Pending(), Running(), Completed()])


def test_items_that_never_ran_fail_with_how_their_batch_ended():
    (outcome,) = unstarted_outcomes(["a"], 3, "Cancelled", f"{NOT_STARTED} within 60s of its Job")
    assert (outcome.id, outcome.ok, outcome.rerunnable) == ("a", False, False)
    assert outcome.detail == (f"not run: its batch ran 3 time(s), the last ended Cancelled "
                              f"({NOT_STARTED} within 60s of its Job)")


def test_leftovers_rerun_whole_then_split_on_the_last_attempt_so_a_pod_killer_fails_alone():
    from video_ingest.ingestion.cluster_batches import LAST_ATTEMPT_PARTS, rerun_groups

    leftovers = [f"v{n}" for n in range(5)]
    assert rerun_groups(leftovers, next_attempt=2, attempts=3) == [leftovers]
    assert rerun_groups(leftovers, next_attempt=3, attempts=3) == [[item] for item in leftovers]
    many = [f"v{n}" for n in range(40)]
    groups = rerun_groups(many, next_attempt=3, attempts=3)
    assert len(groups) == LAST_ATTEMPT_PARTS and sorted(sum(groups, [])) == sorted(many)
    assert rerun_groups(["v1"], next_attempt=3, attempts=3) == [["v1"]]


def _status_error(status: int, body: bytes, content_type: str = "application/json"):
    import httpx

    request = httpx.Request("POST", "http://127.0.0.1:4200/api/flow_runs/filter")
    response = httpx.Response(status, content=body, headers={"content-type": content_type}, request=request)
    return httpx.HTTPStatusError(f"{status}", request=request, response=response)


def test_poll_waits_through_connection_failures_5xx_and_answers_not_from_the_prefect_api():
    import httpx

    from video_ingest.ingestion.cluster_batches import _api_unavailable

    request = httpx.Request("GET", "http://127.0.0.1:4200/api/health")
    assert _api_unavailable(httpx.ConnectError("refused", request=request))
    assert _api_unavailable(_status_error(503, b'{"exception_message": "db down"}'))
    # something in front of the API (a proxy, an ingress) while the server restarts
    assert _api_unavailable(_status_error(403, b"", content_type="text/plain"))
    assert _api_unavailable(_status_error(403, b"<html>Forbidden</html>", content_type="text/html"))


def test_poll_stops_on_the_prefect_apis_own_client_errors():
    from video_ingest.ingestion.cluster_batches import _api_unavailable

    assert not _api_unavailable(_status_error(401, b'{"exception_message": "Unauthorized"}'))
    assert not _api_unavailable(_status_error(422, b'{"detail": [{"msg": "bad"}]}'))
    assert not _api_unavailable(ValueError("a bug of ours"))


def test_the_clusters_heartbeat_is_read_from_its_pods_env_and_a_bad_one_is_one_clear_error():
    assert heartbeat_seconds_of({"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "45", "OTHER": "x"}) == 45
    assert heartbeat_seconds_of({}) is None
    for bad in ("29", "soon", "-60", ""):
        with pytest.raises(SettingsError, match="invalid cluster setting: PREFECT_FLOWS_HEARTBEAT_FREQUENCY must be a whole number"):
            heartbeat_seconds_of({"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": bad})
