"""`video-ingest run` against a real server: every item accounted for by its final state."""

import json
import os
import time

from conftest import start_run, video_ingest, write_ids

from video_ingest.prefect_api.observer import read_task_runs_named


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_flaky_items_succeed_and_failing_items_are_named(api_env, client, tmp_path, unique):
    plain = [f"{unique}-ok-{n}" for n in range(14)]
    flaky = [f"{unique}-flaky-{n}#flaky=2" for n in range(3)]
    failing = [f"{unique}-bad-{n}#fail" for n in range(3)]
    ids = write_ids(tmp_path / "ids.txt", plain + flaky + failing)

    done = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", "--retries", "2",
                        "--retry-delay", "0", "--json", env=api_env)

    assert done.returncode == 1, done.stderr
    assert last_json(done.stdout) == {"total": 20, "succeeded": 17, "failed": 3, "failed_ids": failing}
    # ... and says why each failed, on stderr.
    reasons = [line for line in done.stderr.splitlines() if line.startswith("video-ingest: failed ")]
    assert [line.split()[2].rstrip(":") for line in reasons] == failing, done.stderr
    # after all three attempts (the first and two retries), as the server's run counts below agree
    assert all("Failed after 3 attempts:" in line and "synthetic failure" in line for line in reasons), reasons
    # What the server recorded agrees: flaky ones completed on attempt 3, failing ones failed after 3.
    runs = {run.name: run for run in read_task_runs_named(client, unique, expected=20)}
    assert len(runs) == 20
    for item in flaky:
        assert (runs[item].state.type.value, runs[item].run_count) == ("COMPLETED", 3)
    for item in failing:
        assert (runs[item].state.type.value, runs[item].run_count) == ("FAILED", 3)
    assert all(runs[item].state.type.value == "COMPLETED" for item in plain)
    # Each item is a `process-video` task run of its batch, tagged, whose recorded history
    # is every attempt's state in order (the batch records them through events, no engine);
    # one that succeeds at once, within a second, is recorded Completed alone.
    history = {item: [state.name for state in client.read_task_run_states(runs[item].id)]
               for item in (plain[0], flaky[0], failing[0])}
    assert history == {
        plain[0]: ["Completed"],
        flaky[0]: ["Running", "Retrying", "Retrying", "Completed"],
        failing[0]: ["Running", "Retrying", "Retrying", "Failed"],
    }, history
    assert {run.task_key for run in runs.values()} == {"video_ingest.process_video"}
    assert all(run.tags == ["video-ingest"] and run.flow_run_id and run.flow_run_run_count == 1
               for run in runs.values())
    assert all(run.start_time and run.end_time and run.start_time <= run.end_time for run in runs.values())


def test_all_good_file_exits_zero(api_env, tmp_path, unique):
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-{n}" for n in range(5)])
    done = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", "--json", env=api_env)
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout) == {"total": 5, "succeeded": 5, "failed": 0, "failed_ids": []}


def test_failed_ids_file_is_ready_to_resubmit(api_env, tmp_path, unique):
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-a", f"{unique}-b#fail", f"{unique}-c#fail"])
    failed_out = tmp_path / "failed.txt"
    done = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", "--retries", "0",
                        "--failed-out", str(failed_out), env=api_env)
    assert done.returncode == 1
    assert failed_out.read_text().splitlines() == [f"{unique}-b#fail", f"{unique}-c#fail"]


def test_resubmitting_skips_what_is_already_ingested(api_env, tmp_path, unique):
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-{n}" for n in range(4)])
    env = {**api_env, "VIDEO_INGEST_DESTINATION": str(tmp_path / "dest")}
    first = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", env=env)
    second = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", env=env)
    assert first.returncode == second.returncode == 0
    assert "(0 already ingested)" in first.stderr
    assert "(4 already ingested)" in second.stderr


def test_run_without_api_url_uses_an_embedded_server(api_env, tmp_path, unique):
    """A newcomer's first command (`make demo`): no API URL and no settings at all, so
    the items' global limit is the default one, which the embedded server is given."""
    env = {k: v for k, v in api_env.items() if k not in ("PREFECT_API_URL", "VIDEO_INGEST_SLOT_LIMIT")}
    env["VIDEO_INGEST_STATE_DIR"] = str(tmp_path / "state")
    done = video_ingest("run", "--demo", "30", "--retry-delay", "0", "--json", env=env)
    # the demo list has one #fail item (every 25th) and flaky ones that recover
    assert done.returncode == 1, done.stderr
    assert last_json(done.stdout) == {"total": 30, "succeeded": 29, "failed": 1, "failed_ids": ["demo-000025#fail"]}
    assert os.path.exists(tmp_path / "state" / "prefect.db")
    assert "Traceback" not in done.stderr


def test_items_of_a_batch_rejected_for_a_missing_limit_are_named_with_the_reason(api_env, tmp_path, unique):
    """A server without the items' global limit (fail closed): every item fails, and the
    CLI says why for each, not "no outcome recorded"."""
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-{n}" for n in range(3)])
    env = {**api_env, "VIDEO_INGEST_SLOT_LIMIT": f"missing-{unique}"}
    done = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", "--json", env=env)
    assert done.returncode == 1, done.stderr
    assert last_json(done.stdout)["failed"] == 3
    assert f"failed {unique}-0: Rejected: global concurrency limit 'missing-{unique}' does not exist" in done.stderr
    assert "no outcome recorded" not in done.stderr


def test_a_retry_with_a_delay_is_recorded_as_awaiting_it(api_env, client, tmp_path, unique):
    ids = write_ids(tmp_path / "ids.txt", [f"{unique}-flaky#flaky=1"])
    done = video_ingest("run", "--ids-file", str(ids), "--handler", "synthetic", "--retries", "1",
                        "--retry-delay", "0.5", "--json", env=api_env)
    assert done.returncode == 0, done.stderr
    (run,) = read_task_runs_named(client, unique, expected=1)
    states = client.read_task_run_states(run.id)
    assert [state.name for state in states] == ["Running", "AwaitingRetry", "Retrying", "Completed"]
    waited = states[2].timestamp - states[1].timestamp
    assert waited.total_seconds() >= 0.5 * 0.8, f"the retry started {waited} after its failure"  # jitter 0.2
    assert run.run_count == 2 and run.empirical_policy.retries == 1


def test_an_item_running_longer_than_a_second_is_recorded_running_while_it_runs(api_env, client, tmp_path, unique):
    """Its Running state reaches the server while it runs, stamped when it started; a
    quick one beside it is recorded Completed alone, with the same start and end times."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    slow, quick = f"{unique}-slow#ms=4000", f"{unique}-quick"
    ids = write_ids(tmp_path / "ids.txt", [slow, quick])
    running = start_run(ids, api_env, "--json")
    try:
        seen_running = None
        deadline = time.monotonic() + 60
        while seen_running is None and time.monotonic() < deadline and running.poll() is None:
            found = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=f"{unique}-slow")))
            if found and found[0].state.type.value == "RUNNING":
                seen_running = found[0]
            time.sleep(0.2)
        stdout, _ = running.communicate(timeout=120)
    finally:
        running.kill()
    assert running.returncode == 0 and last_json(stdout)["succeeded"] == 2, stdout
    assert seen_running is not None, "the slow item was never seen Running while it ran"
    runs = {run.name: run for run in read_task_runs_named(client, unique, expected=2)}
    slow_states = client.read_task_run_states(runs[slow].id)
    assert [state.name for state in slow_states] == ["Running", "Completed"]
    assert slow_states[0].timestamp == runs[slow].start_time
    assert (runs[slow].end_time - runs[slow].start_time).total_seconds() >= 4
    assert [state.name for state in client.read_task_run_states(runs[quick].id)] == ["Completed"]
    assert runs[quick].start_time < runs[quick].end_time and runs[quick].run_count == 1
