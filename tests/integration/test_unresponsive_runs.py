"""A bulk run whose submitter is gone without a word (SIGKILL: a laptop that sleeps, a
terminal closed) is marked Crashed by the automation `apply` keeps
(`unresponsiveRuns.crashAfterSeconds`), once it has sent no heartbeat for that long;
the batch runs it had started go on and finish. A submitter that is alive sends its
heartbeats as often as the cluster's flow runs (their pool's env), so its bulk run,
and the batches beating in the pool, are left alone.

A real server, its triggers service and real processes; Prefect's process worker
stands in for the Kubernetes worker (`batch_pool_with_worker`)."""

import signal
import time

from conftest import batch_pool_with_worker, start_cli, write_ids

from video_ingest.prefect_api.observer import batch_runs_of

CRASH_AFTER = 60  # the smallest the config allows: twice the smallest heartbeat Prefect allows
HEARTBEAT = "30"


def bulk_run_of(client, first_id: str, timeout: float = 120):
    """The Running bulk run whose first item is `first_id`."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["bulk-video-ingest"]))):
            if run.parameters.get("first_items", [])[:1] == [first_id] and run.state.is_running():
                return run
        time.sleep(1)
    raise AssertionError(f"no bulk run of {first_id} started Running in {timeout} s")


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(2)
    return found


def test_a_killed_submitters_bulk_run_is_crashed_and_live_runs_are_left_alone(api_env, client, tmp_path, unique):
    from prefect.events.schemas.automations import AutomationCore

    from video_ingest.platform.reconcile import UNRESPONSIVE_AUTOMATION, unresponsive_runs_automation

    automation_id = client.create_automation(AutomationCore.model_validate(
        {"name": UNRESPONSIVE_AUTOMATION, **unresponsive_runs_automation(CRASH_AFTER)}))
    pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_SLOT_LIMIT": "",
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": HEARTBEAT}
    # Each submitter: one batch of two items of 45 s, one at a time: 90 s of beating batch,
    # and a bulk run as long, past the crash window.
    gone_ids = [f"{unique}-gone-{n}#ms=45000" for n in range(2)]
    alive_ids = [f"{unique}-alive-{n}#ms=45000" for n in range(2)]
    flags = ("--batch-size", "2", "--max-inflight", "1", "--json")
    try:
        with batch_pool_with_worker(client, f"{unique}-pool", {**api_env, **pool_env}, pool_env) as deployment:
            env = {**api_env, "VIDEO_INGEST_BATCH_DEPLOYMENT": deployment}
            alive = start_cli("submit", "--ids-file", str(write_ids(tmp_path / "alive.txt", alive_ids)), *flags,
                              env=env)
            alive_bulk = bulk_run_of(client, alive_ids[0])
            gone = start_cli("submit", "--ids-file", str(write_ids(tmp_path / "gone.txt", gone_ids)), *flags, env=env)
            gone_bulk = bulk_run_of(client, gone_ids[0])
            (gone_batch,) = wait_until(lambda: [b for b in batch_runs_of(client, gone_bulk.id) if b.state.is_running()],
                                       120, "the killed submitter's batch running")
            gone.send_signal(signal.SIGKILL)
            gone.communicate(timeout=30)
            killed_at = time.monotonic()

            # Until the live submitter is done, every 2 s: the killed one's bulk run is
            # Crashed within the window; the live one's, and the orphaned batch, never are.
            seen_crashed, crashed = [], None
            while alive.poll() is None:
                if crashed is None and (run := client.read_flow_run(gone_bulk.id)).state.is_crashed():
                    crashed, silent_for = run, round(time.monotonic() - killed_at)
                seen_crashed += [name for name, run_id in (("live bulk run", alive_bulk.id), ("batch", gone_batch.id))
                                 if client.read_flow_run(run_id).state.is_crashed()]
                assert time.monotonic() - killed_at < 300, "the live submitter never ended"
                time.sleep(2)
            out, err = alive.communicate()
            assert alive.returncode == 0, err
            assert not seen_crashed, f"crashed while alive: {sorted(set(seen_crashed))}"
            assert crashed is not None, "the killed submitter's bulk run was never crashed while the other ran"
            assert f"No heartbeat for {CRASH_AFTER} s" in crashed.state.message, crashed.state.message
            assert client.read_flow_run(alive_bulk.id).state.is_completed()
            wait_until(lambda: client.read_flow_run(gone_batch.id).state.is_final(), 120, "the orphaned batch ending")
        assert client.read_flow_run(gone_batch.id).state.is_completed()
        assert client.read_flow_run(gone_bulk.id).state.is_crashed()
        print(f"bulk run of a killed submitter Crashed {silent_for} s after the kill"
              f" (crash after {CRASH_AFTER} s without a heartbeat, heartbeats every {HEARTBEAT} s)")
    finally:
        client.delete_automation(automation_id)
