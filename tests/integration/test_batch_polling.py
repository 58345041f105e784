"""The bulk flow's poll over more batches than the API returns at once (200)."""

from prefect import flow
from prefect.states import Completed, Running

from video_ingest.ingestion.cluster_batches import FINAL_STATE_TYPES, read_flow_runs_among


def test_poll_reads_every_finished_batch_among_more_than_200_and_no_running_one(client, unique):
    @flow(name=f"{unique}-batches")
    def batches() -> None:
        return None

    created = [client.create_flow_run(flow=batches, name=f"{unique}-{n}", parameters={}).id for n in range(230)]
    finished, running = created[:215], created[215:]
    for run_id in finished:
        client.set_flow_run_state(run_id, Completed(), force=True)
    for run_id in running:
        client.set_flow_run_state(run_id, Running(), force=True)

    assert sorted(run.id for run in read_flow_runs_among(client, created, FINAL_STATE_TYPES)) == sorted(finished)
    assert sorted(run.id for run in read_flow_runs_among(client, created, ["RUNNING"])) == sorted(running)
