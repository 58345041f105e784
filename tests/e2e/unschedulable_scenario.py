"""NOT COLLECTED (no test_ prefix): the unschedulable-Job scenario, kept out of the e2e
suite until two things found on kind are fixed.

1. `helm upgrade --set-json flowRuns.nodeSelector=null` does not clear the selector on the
   server: the platform config leaves empty keys out, and apply then keeps the pool's old value.
2. The worker refreshes its copy of the pool's job template only on its heartbeat (30 s).

Its give-up, rerun, reason and reaper parts passed on kind (see the issue 12 note). To run it
by hand, move the function below into test_ingest_on_kind.py.
"""
# ruff: noqa

def pending_flow_run_pods(kubectl) -> list[str]:
    return kubectl("get", "pods", "-l", FLOW_RUN_SELECTOR, "--field-selector=status.phase=Pending",
                   "-o", "jsonpath={.items[*].metadata.name}").split()


def test_batch_whose_pod_cannot_be_scheduled_frees_its_pool_slot_and_fails_with_the_reason(
        release, kind_cluster, tmp_path):
    """flowRuns.nodeSelector names a node that does not exist: each batch's Job is created but
    its pod never schedules. After ingest.startTimeout the bulk run gives the run up (Cancelled:
    its pool slot is free at once) and runs the items again; once every attempt is spent, each
    item fails with that reason, none ran. The reaper beside the worker deletes the given-up
    Jobs, so their Pending pods leave the flow-run pod quota. Made schedulable again, the next
    run succeeds."""
    kubectl = kind_cluster.in_namespace(NAMESPACE)
    start_timeout, attempts = 20, 2
    release.upgrade(**{"flowRuns.nodeSelector": {"video-ingest.dev/e2e": "no-such-node"},
                       "ingest.startTimeout": start_timeout, "ingest.batchAttempts": attempts})
    # The worker renders Jobs from its copy of the pool's job template, which it refreshes on
    # its heartbeat (Prefect's default: every 30 s, +-30%): a batch submitted at once may still
    # get the old one.
    time.sleep(45)
    try:
        ids = [f"unsched-{n}#ms=500" for n in range(4)]  # one batch
        began = time.monotonic()
        code, summary, stderr = submit(ids, tmp_path)
        took = time.monotonic() - began
        assert code == 1, stderr
        assert summary["failed_ids"] == ids and summary["succeeded"] == 0, summary
        assert "did not start within 20s" in stderr, stderr[-3000:]
        # Bounded: the first run, then the last attempt's four runs two at a time (pool limit 2),
        # each given up about the start timeout (plus polling) after its Job: not for ever.
        assert took < 3 * (start_timeout + 60) + 120, took
        assert working_attempts(kind_cluster, "unsched-") == {}, "an item ran although its pod never started"
        with prefect_client() as client:
            batches = batch_runs_of(client, bulk_run_id(stderr))
            # The first run, then the last attempt's (the leftovers split apart): all given up.
            assert len(batches) == 1 + len(ids) and all(
                run.state.name == "Cancelled" and run.state.message.startswith("given up: its pod did not start")
                for run in batches), [(run.name, run.state.name) for run in batches]
            # Given up means off the pool: nothing of ours holds a pool slot now.
            holding = [run for run in client.read_flow_runs(limit=200)
                       if run.work_pool_name == POOL and run.state and run.state.type.value in ("PENDING", "RUNNING")]
            assert not holding, [(run.name, run.state.name) for run in holding]
        # The reaper (one pass every 30 s) deletes the given-up Jobs and with them their Pending pods.
        deadline = time.monotonic() + 120
        while (pending := pending_flow_run_pods(kubectl)) and time.monotonic() < deadline:
            time.sleep(5)
        assert not pending, f"given-up Jobs' pods still Pending after 120 s: {pending}"
    finally:
        # null, not {}: helm merges a map into the reused values, so {} would keep the selector.
        release.upgrade(**{"flowRuns.nodeSelector": None, "ingest.startTimeout": 900, "ingest.batchAttempts": 3})
        time.sleep(45)  # the worker's copy of the template again: the next Jobs must be schedulable
        if pending_flow_run_pods(kubectl):  # only when the assertion above failed: leave the next tests a free quota
            kubectl("delete", "jobs", "-l", FLOW_RUN_SELECTOR, "--wait=false")
    code, summary, stderr = submit([f"sched-{n}#ms=500" for n in range(4)], tmp_path)
    assert (code, summary["succeeded"]) == (0, 4), stderr[-3000:]


