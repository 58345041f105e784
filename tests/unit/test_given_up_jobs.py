"""Which Jobs the reaper beside the worker deletes: only active ones whose batch run was
given up before its pod started. Pure."""

from uuid import uuid4

from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Completed, Pending, Running

from video_ingest.ingestion.cluster_batches import NOT_STARTED
from video_ingest.platform.job_reaper import JobView, given_up_among, jobs_to_delete


def run(state):
    return FlowRun(id=uuid4(), flow_id=uuid4(), state=state)


def test_only_runs_given_up_by_their_bulk_run_count_as_given_up():
    gone = run(Cancelled(message=f"{NOT_STARTED} within 60s of its Job"))
    others = [run(Cancelled(message="batch timeout")), run(Pending()), run(Running()), run(Completed()),
              run(Cancelled(message="given up by its bulk run before it started: ran nothing"))]
    assert given_up_among([gone, *others]) == {str(gone.id)}


def test_only_active_jobs_of_given_up_runs_are_deleted():
    jobs = [JobView("a", "run-a", active=True), JobView("b", "run-b", active=True),
            JobView("c", "run-a", active=False), JobView("d", None, active=True)]
    assert jobs_to_delete(jobs, {"run-a"}) == ["a"]
    assert jobs_to_delete(jobs, set()) == []
