"""The reaper's pass against a real Prefect server. The Kubernetes API is a stand-in
here (a list of Jobs and a record of deletions); the e2e tier runs the reaper beside
the real worker on kind."""

from types import SimpleNamespace

from prefect import flow
from prefect.states import Cancelled, Pending

from video_ingest.ingestion.cluster_batches import NOT_STARTED
from video_ingest.platform.job_reaper import FLOW_RUN_LABEL, reap_once


class JobsStandIn:
    def __init__(self, jobs: dict[str, tuple[str, bool]]):  # name -> (flow run id, finished)
        self.jobs, self.deleted = jobs, []

    def list_namespaced_job(self, namespace, label_selector):
        assert (namespace, label_selector) == ("ns", "app.kubernetes.io/component=flow-run")
        items = []
        for name, (run_id, finished) in self.jobs.items():
            conditions = [SimpleNamespace(type="Complete", status="True")] if finished else None
            items.append(SimpleNamespace(metadata=SimpleNamespace(name=name, labels={FLOW_RUN_LABEL: run_id}),
                                         status=SimpleNamespace(conditions=conditions)))
        return SimpleNamespace(items=items)

    def delete_namespaced_job(self, name, namespace, propagation_policy):
        self.deleted.append(name)


def test_a_pass_deletes_the_active_jobs_of_given_up_runs_and_nothing_else(client, unique):
    @flow(name=f"{unique}-batch")
    def batch() -> None:
        return None

    given_up, waiting, given_up_done = (client.create_flow_run(flow=batch, name=f"{unique}-{n}").id for n in range(3))
    for run_id in (given_up, given_up_done):
        client.set_flow_run_state(run_id, Cancelled(message=f"{NOT_STARTED} within 20s of its Job"), force=True)
    client.set_flow_run_state(waiting, Pending(), force=True)
    jobs = JobsStandIn({"job-given-up": (str(given_up), False), "job-waiting": (str(waiting), False),
                        "job-given-up-finished": (str(given_up_done), True)})

    assert reap_once(jobs, client, "ns", "app.kubernetes.io/component=flow-run") == ["job-given-up"]
    assert jobs.deleted == ["job-given-up"]
