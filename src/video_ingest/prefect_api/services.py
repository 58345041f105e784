"""The Prefect server's background services, split over processes.

A Prefect server runs its API and its background services (the task run recorder,
the event persister, triggers, the scheduler and the rest) in one process by
default. Under a burst of task-run events that one process is the ceiling: every
event is taken in by the API and then parsed and written by the recorder and the
persister, on one core. With messaging that reaches other processes (Redis),
Prefect runs the API alone (`prefect server start --no-services`) and the services
elsewhere (`prefect server services start`). We go one step further and give the
task run recorder, which makes task runs visible, a process of its own, so that it
keeps up while the event persister (the UI's event feed) takes its time.

Which services run is chosen through Prefect's own settings: one
`PREFECT_SERVER_SERVICES_<NAME>_ENABLED` per service. The list is read from the
installed Prefect's settings model, so a service added in a later Prefect is
switched off in the recorder's process rather than run twice. The chart carries
the same lists (tests/chart check them against this module).
"""

from __future__ import annotations

# The API's own switch for its services (`prefect server start --no-services` sets it).
WEBSERVER_ONLY = {"PREFECT__SERVER_WEBSERVER_ONLY": "1"}

RECORDER_SETTING = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"

# Services switched by settings outside `server.services`: streaming events and
# logs out to websocket subscribers, and usage telemetry.
_OTHER_SERVICE_SETTINGS = (
    "PREFECT_API_EVENTS_STREAM_OUT_ENABLED",
    "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
)


def service_settings() -> list[str]:
    """Every setting that enables one of the server's background services."""
    from prefect.settings.models.server.services import ServerServicesSettings

    names = []
    for field in ServerServicesSettings.model_fields.values():
        model = field.annotation
        if "enabled" in getattr(model, "model_fields", {}):
            names.append(f"{model.model_config['env_prefix']}ENABLED")
    return sorted(names) + list(_OTHER_SERVICE_SETTINGS)


def task_run_recorder_env() -> dict[str, str]:
    """Settings for a process running `prefect server services start` with the task run recorder alone."""
    return {name: ("true" if name == RECORDER_SETTING else "false") for name in service_settings()}


def other_services_env() -> dict[str, str]:
    """Settings for a process running every other enabled service."""
    return {RECORDER_SETTING: "false"}
