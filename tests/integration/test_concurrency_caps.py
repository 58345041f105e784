"""Limits checked from the start and end times Prefect recorded, not from our own counters."""

from conftest import start_run, write_ids

from video_ingest.prefect_api.observer import max_concurrent, read_task_runs_named, task_run_intervals


def two_concurrent_runs(env, client, tmp_path, unique) -> list:
    """Two `video-ingest run`s of 15 items of 200 ms at once; their 30 task runs."""
    runs = [
        start_run(write_ids(tmp_path / f"ids{k}.txt", [f"{unique}-{k}-{n}#ms=200" for n in range(15)]),
                  env, "--max-inflight", "8")
        for k in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    task_runs = read_task_runs_named(client, unique, expected=30)
    assert len(task_runs) == 30
    return task_runs


def test_window_caps_running_task_runs(api_env, client, tmp_path, unique):
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-{n}#ms=150" for n in range(40)])
    run = start_run(ids, api_env, "--max-inflight", "4")
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    runs = read_task_runs_named(client, unique, expected=40)
    peak = max_concurrent(task_run_intervals(runs))
    assert len(runs) == 40
    assert peak <= 4
    assert peak >= 3, "the window was not used at all: items ran one by one"


def test_global_limit_caps_items_across_two_concurrent_runs(api_env, client, tmp_path, unique):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    limit_name = f"{unique}-items"
    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit_name, limit=3))
    env = {**api_env, "VIDEO_INGEST_SLOT_LIMIT": limit_name, "VIDEO_INGEST_SLOT_BLOCK": "2"}
    try:
        task_runs = two_concurrent_runs(env, client, tmp_path, unique)
        peak = max_concurrent(task_run_intervals(task_runs))
        assert peak <= 3
        assert peak >= 2, "items never overlapped: the test would not notice an over-limit run"
        # every slot went back: nothing leaked
        assert client.read_global_concurrency_limit_by_name(limit_name).active_slots == 0
    finally:
        client.delete_global_concurrency_limit_by_name(limit_name)


def test_tag_limit_caps_items_across_two_concurrent_runs_and_its_slots_all_go_back(api_env, client, tmp_path,
                                                                                   unique):
    """A tag limit (`tag:<tag>`) is leased in blocks by each batch, like the global one."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    tag = f"{unique}-tag"
    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=f"tag:{tag}", limit=3))
    env = {**api_env, "VIDEO_INGEST_TAG": tag, "VIDEO_INGEST_SLOT_BLOCK": "2"}
    try:
        task_runs = two_concurrent_runs(env, client, tmp_path, unique)
        assert all(run.tags == [tag] for run in task_runs)
        peak = max_concurrent(task_run_intervals(task_runs))
        assert peak <= 3
        assert peak >= 2, "items never overlapped: the test would not notice an over-limit run"
        assert client.read_global_concurrency_limit_by_name(f"tag:{tag}").active_slots == 0
    finally:
        client.delete_global_concurrency_limit_by_name(f"tag:{tag}")


def test_a_tag_limit_deleted_mid_run_stops_holding_items_back(api_env, client, tmp_path, unique):
    """One item at a time under a tag limit of 1; once the limit is deleted, the batch's
    next lease finds no limit and the rest run as wide as the window (Prefect's engine
    also ran tagged items unlimited once their tag limit was gone)."""
    from datetime import datetime, timezone

    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    tag = f"{unique}-tag"
    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=f"tag:{tag}", limit=1))
    env = {**api_env, "VIDEO_INGEST_TAG": tag}
    run = start_run(write_ids(tmp_path / "ids.txt", [f"{unique}-{n:02d}#ms=400" for n in range(24)]),
                    env, "--max-inflight", "6")
    try:
        read_task_runs_named(client, unique, expected=2)  # two items done, one at a time
    finally:
        client.delete_global_concurrency_limit_by_name(f"tag:{tag}")
    deleted_at = datetime.now(timezone.utc)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    task_runs = read_task_runs_named(client, unique, expected=24)
    before = [(r.start_time, r.end_time) for r in task_runs if r.end_time and r.end_time <= deleted_at]
    after = [(r.start_time, r.end_time) for r in task_runs if r.start_time and r.start_time > deleted_at]
    assert before and max_concurrent(before) == 1, "the tag limit of 1 did not hold before it was deleted"
    assert max_concurrent(after) >= 3, "items stayed one at a time after their tag limit was deleted"
