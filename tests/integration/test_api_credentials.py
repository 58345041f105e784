"""A Prefect server that requires an auth string, as the chart's does by default.

The commands that talk to the API send PREFECT_API_AUTH_STRING; without it (or
with a wrong one) they stop with one line naming the setting, not a traceback.
"""

import os

import pytest
from conftest import video_ingest, write_ids

from video_ingest.prefect_api.connection import EmbeddedServer

AUTH = "admin:s3cret-for-tests"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    server = EmbeddedServer(tmp_path_factory.mktemp("guarded-server"),
                            server_env={"PREFECT_SERVER_API_AUTH_STRING": AUTH})
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: AUTH}):  # its readiness check sends it
        server.start()
    yield server
    server.stop()


def cli_env(server, tmp_path, auth_string: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(PREFECT_API_URL=server.url, PREFECT_HOME=str(tmp_path / "prefect-home"))
    if auth_string is not None:
        env["PREFECT_API_AUTH_STRING"] = auth_string
    return env


@pytest.mark.parametrize("auth_string", [None, "admin:wrong"], ids=["none", "wrong"])
@pytest.mark.parametrize("command", ["status", "submit"])
def test_commands_without_the_right_auth_string_stop_with_one_line_naming_it(
        guarded_server, tmp_path, command, auth_string):
    args = ["submit", "--ids-file", str(write_ids(tmp_path / "ids.txt", ["clip-1"]))] if command == "submit" \
        else ["status"]
    done = video_ingest(*args, env=cli_env(guarded_server, tmp_path, auth_string), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "refused our credentials (401)" in lines[0] and "PREFECT_API_AUTH_STRING" in lines[0]


def test_status_with_the_auth_string_reads_the_server(guarded_server, tmp_path):
    done = video_ingest("status", env=cli_env(guarded_server, tmp_path, AUTH), timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Prefect API: {guarded_server.url}" in done.stdout
