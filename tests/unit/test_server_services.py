"""The server's services split over processes: which services each process runs,
asked of the installed Prefect in a fresh interpreter with that process's settings."""

import json
import os
import subprocess
import sys

from video_ingest.prefect_api import services as server_services

ENABLED_SERVICES = """
import json
from prefect.server.services.base import Service
from prefect.server.services.perpetual_services import get_enabled_perpetual_services
import prefect.server.api.background_workers  # registers every perpetual service
print(json.dumps({
    "services": sorted(s.__name__ for s in Service.enabled_services()),
    "perpetual": sorted(c.function.__name__ for c in get_enabled_perpetual_services(False, False)),
}))
"""


def enabled_with(settings: dict[str, str]) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "true", **settings})
    out = subprocess.run([sys.executable, "-c", ENABLED_SERVICES], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_recorder_process_runs_the_task_run_recorder_and_nothing_else():
    assert enabled_with(server_services.task_run_recorder_env()) == {"services": ["TaskRunRecorder"], "perpetual": []}


def test_the_other_process_runs_every_default_service_but_the_recorder():
    everything = enabled_with({})
    others = enabled_with(server_services.other_services_env())
    assert "TaskRunRecorder" in everything["services"]
    assert others["services"] == [s for s in everything["services"] if s != "TaskRunRecorder"]
    assert others["perpetual"] == everything["perpetual"] and others["perpetual"]
