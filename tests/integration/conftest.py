"""A real Prefect server (SQLite) started once for the integration tests."""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench.local_services import process_batch_pool as batch_pool_with_worker  # noqa: F401  (the tests import it from here)
from video_ingest.prefect_api.connection import EmbeddedServer


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    server = EmbeddedServer(tmp_path_factory.mktemp("prefect-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_env(prefect_server, tmp_path):
    """Environment for a CLI subprocess pointed at the test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(
        PREFECT_API_URL=prefect_server.url,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        VIDEO_INGEST_SLOT_LIMIT="",
    )
    return env


@pytest.fixture
def client(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
        with get_client(sync_client=True) as prefect_client:
            yield prefect_client


@pytest.fixture
def unique():
    """A short random prefix that keeps one test's runs apart from another's."""
    return "t" + uuid.uuid4().hex[:8]


def video_ingest(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "video_ingest.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def start_cli(*args: str, env: dict) -> subprocess.Popen:
    """`video-ingest ARGS` in the background, its output piped.

    SIGINT is given its default action back, as in a terminal: a shell without job control
    (CI's) starts background commands with it ignored, and Python keeps it ignored.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "video_ingest.cli", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def start_run(ids_path, env, *extra) -> subprocess.Popen:
    """`video-ingest run` of synthetic items in the background (no retry delay)."""
    return start_cli("run", "--ids-file", str(ids_path), "--handler", "synthetic", "--retry-delay", "0", *extra,
                     env=env)


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids))
    return path
