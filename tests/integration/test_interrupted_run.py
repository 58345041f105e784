"""Ctrl-C on `video-ingest run` against a real server: the runs say they were interrupted,
no slot stays held, and running the same IDs again does only what was not done."""

import re
import signal

from conftest import start_run, video_ingest, write_ids

from video_ingest.prefect_api.observer import read_task_runs_named


def test_ctrl_c_exits_130_marks_its_runs_crashed_frees_every_slot_and_a_rerun_does_only_the_rest(
        api_env, client, tmp_path, unique):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    limit_name = f"{unique}-items"
    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit_name, limit=4))
    env = {**api_env, "VIDEO_INGEST_SLOT_LIMIT": limit_name, "VIDEO_INGEST_SLOT_BLOCK": "2",
           "VIDEO_INGEST_DESTINATION": str(tmp_path / "dest")}
    ids = [f"{unique}-{n:02d}" for n in range(60)]
    # Three batches of 20 items of 300 ms, 4 at a time: about 1.5 s of items each.
    listed = write_ids(tmp_path / "ids.txt", [f"{item}#ms=300" for item in ids])
    try:
        run = start_run(listed, env, "--batch-size", "20", "--max-inflight", "4", "--json")
        read_task_runs_named(client, unique, expected=1)  # the first items are done: interrupt it mid-run
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130, err
        assert err.rstrip().endswith("video-ingest: interrupted") and "Traceback" not in err, err

        bulk_id = re.search(r"bulk run \S+ in the Prefect UI: \S+/runs/flow-run/(\S+)", err).group(1)
        assert client.read_flow_run(bulk_id).state.type.value == "CRASHED"
        batches = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[bulk_id])))
        assert batches and all(batch.state.is_final() for batch in batches), [b.state for b in batches]
        assert "CRASHED" in {batch.state.type.value for batch in batches}
        assert client.read_global_concurrency_limit_by_name(limit_name).active_slots == 0

        done_before = {r.name for r in read_task_runs_named(client, unique, expected=0, timeout=0)
                       if r.state and r.state.is_completed()}
        assert 0 < len(done_before) < len(ids), "the interrupt came before the first item or after the last"

        again = video_ingest("run", "--ids-file", str(listed), "--handler", "synthetic", "--retry-delay", "0",
                             "--batch-size", "20", "--json", env=env)
        assert again.returncode == 0, again.stderr
        skipped = int(re.search(r"\((\d+) already ingested\)", again.stderr).group(1))
        # Every item Prefect recorded done is skipped; at most the ones in flight at the interrupt
        # (4, the limit) finished their work without their Completed state reaching the server.
        assert len(done_before) <= skipped <= len(done_before) + 4, (len(done_before), skipped)
        assert f"{len(ids)} items: {len(ids)} succeeded" in again.stderr, again.stderr
    finally:
        client.delete_global_concurrency_limit_by_name(limit_name)
