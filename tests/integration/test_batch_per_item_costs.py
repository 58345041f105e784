"""What a batch on a real server does once rather than per item: build its handler,
and (at the default ingest log level) log nothing for an item that just completed."""

import json
import subprocess
import sys

import pytest

# Run in a process of its own, so the counting wrapper and the settings stay there.
RUN_BATCH = """
import json, sys
from prefect.context import FlowRunContext
from video_ingest.ingestion import flows, handlers

built, run_ids = [], []
plain = handlers.HANDLERS["synthetic"]
handlers.HANDLERS["synthetic"] = lambda settings: built.append(1) or plain(settings)
run_batch = flows._run_batch
flows._run_batch = lambda *a: run_ids.append(str(FlowRunContext.get().flow_run.id)) or run_batch(*a)
state = flows.ingest_batch(items=sys.argv[1:], handler="synthetic", retries=2, retry_delay=0, return_state=True)
summary = state.result(raise_on_failure=False)["summary"]
print(json.dumps({"builds": len(built), "state": state.type.value, "summary": summary, "flow_run_id": run_ids[0]}))
"""


def run_batch(items: list[str], env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_BATCH, *items], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_batch_builds_its_handler_once_for_all_its_items_and_their_retries(api_env, unique):
    items = [f"{unique}-{n}" for n in range(6)] + [f"{unique}-flaky#flaky=1"]
    result = run_batch(items, api_env)
    assert result["state"] == "COMPLETED", result
    assert result["summary"]["succeeded"] == 7, result
    assert result["builds"] == 1, result


@pytest.mark.parametrize("log_level, success_lines", [("WARNING", 0), ("INFO", 7)])
def test_completed_items_log_a_line_only_at_ingest_log_level_info(api_env, client, unique, log_level,
                                                                  success_lines):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    items = [f"{unique}-{n}" for n in range(6)] + [f"{unique}-flaky#flaky=1"]
    result = run_batch(items, {**api_env, "VIDEO_INGEST_LOG_LEVEL": log_level})
    assert result["summary"]["succeeded"] == 7, result
    # The process flushed its logs before it exited.
    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[result["flow_run_id"]])))
    of_items = [log.message for log in logs if log.task_run_id]
    assert sum(m.startswith("Finished in state Completed") for m in of_items) == success_lines, of_items
    # The retry keeps its line either way, and so do the batch's summary and final state.
    assert sum("Retry 1/2" in m for m in of_items) == 1, of_items
    of_batch = [log.message for log in logs if not log.task_run_id]
    assert sum(m.startswith("batch done: 7 items") for m in of_batch) == 1, of_batch
    assert "Finished in state Completed('7 items succeeded')" in of_batch, of_batch
