"""Ctrl-C on `video-ingest run` and `submit` against a real server: the bulk run says it was
interrupted and no slot stays held; what `run` had done is skipped when the same IDs run
again; the batch runs `submit` had started go on and finish.

Prefect's process worker stands in for the Kubernetes worker (`batch_pool_with_worker`)."""

import re
import signal
import time

from conftest import batch_pool_with_worker, start_cli, start_run, video_ingest, write_ids

from video_ingest.prefect_api.observer import batch_runs_of, read_task_runs_named
from video_ingest.prefect_api.ui_links import run_links


def bulk_run_id(stderr: str) -> str:
    """The bulk run's ID, from the one page in the Prefect UI the CLI named."""
    (link,) = run_links(stderr)
    return link.rsplit("/", 1)[1]


def interrupt_once_an_item_is_done(process, client, prefix: str) -> str:
    """SIGINT to `process` once the server has an item named `prefix...` done; its stderr,
    after it exited 130 with one line saying it was interrupted."""
    read_task_runs_named(client, prefix, expected=1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.rstrip().endswith("video-ingest: interrupted") and "Traceback" not in err, err
    return err


def test_ctrl_c_on_run_exits_130_marks_its_runs_crashed_frees_every_slot_and_a_rerun_does_only_the_rest(
        api_env, client, tmp_path, unique):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    limit_name = f"{unique}-items"
    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit_name, limit=4))
    env = {**api_env, "VIDEO_INGEST_SLOT_LIMIT": limit_name, "VIDEO_INGEST_SLOT_BLOCK": "2",
           "VIDEO_INGEST_DESTINATION": str(tmp_path / "dest")}
    ids = [f"{unique}-{n:02d}" for n in range(60)]
    # Three batches of 20 items of 300 ms, 4 at a time: about 1.5 s of items each.
    listed = write_ids(tmp_path / "ids.txt", [f"{item}#ms=300" for item in ids])
    try:
        run = start_run(listed, env, "--batch-size", "20", "--max-inflight", "4", "--json")
        err = interrupt_once_an_item_is_done(run, client, unique)
        bulk_id = bulk_run_id(err)
        assert client.read_flow_run(bulk_id).state.type.value == "CRASHED"
        batches = batch_runs_of(client, bulk_id)
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
        # Every item Prefect recorded done is skipped (the server may record the last ones a
        # little later, so more may be skipped than were read back above).
        assert skipped >= len(done_before), (len(done_before), skipped)
        assert f"{len(ids)} items: {len(ids)} succeeded" in again.stderr, again.stderr
    finally:
        client.delete_global_concurrency_limit_by_name(limit_name)


def test_ctrl_c_on_submit_exits_130_and_the_batch_runs_it_started_finish_every_item(
        api_env, client, tmp_path, unique):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_BATCH_SIZE": "10", "VIDEO_INGEST_MAX_INFLIGHT": "1",
                "VIDEO_INGEST_SLOT_LIMIT": ""}
    ids = [f"{unique}-{n:02d}" for n in range(30)]
    # Three batches of 10 items of 1 s, one at a time: about 10 s of items each.
    listed = write_ids(tmp_path / "ids.txt", [f"{item}#ms=1000" for item in ids])
    with batch_pool_with_worker(client, f"{unique}-pool", {**api_env, **pool_env}, pool_env) as deployment:
        submit = start_cli("submit", "--ids-file", str(listed), "--json",
                           env={**api_env, "VIDEO_INGEST_BATCH_DEPLOYMENT": deployment})
        err = interrupt_once_an_item_is_done(submit, client, unique)
        assert client.read_flow_run(bulk_run_id(err)).state.type.value == "CRASHED"
        # Its three batch runs were started at once, and go on in the pool without it.
        batch_filter = FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[client.read_deployment_by_name(deployment).id]))
        at_interrupt = client.read_flow_runs(flow_run_filter=batch_filter)
        assert not all(batch.state.is_final() for batch in at_interrupt), "no batch was left to go on"
        deadline = time.monotonic() + 300
        while True:
            batches = client.read_flow_runs(flow_run_filter=batch_filter)
            if all(batch.state.is_final() for batch in batches) or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert [batch.state.type.value for batch in batches] == ["COMPLETED"] * 3
    runs = read_task_runs_named(client, unique, expected=len(ids))
    assert sorted(run.name.split("#")[0] for run in runs if run.state.is_completed()) == ids
