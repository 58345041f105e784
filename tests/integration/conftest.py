"""A real Prefect server (SQLite) started once for the integration tests."""

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from video_ingest.prefect_api.connection import EmbeddedServer, stop_process


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


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


@contextlib.contextmanager
def batch_pool_with_worker(client, name: str, env: dict, pool_env: dict | None = None):
    """A process work pool (its job template env set to `pool_env`), an ingest-batch
    deployment on it, and Prefect's process worker running each batch as a subprocess:
    the stand-in for the Kubernetes pool and its Jobs. Yields the deployment's name."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from video_ingest.platform.reconcile import parameter_schemas

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = dict(pool_env or {})
    client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
    flow_id = client.create_flow_from_name("ingest-batch")
    client.create_deployment(
        flow_id=flow_id, name=name, entrypoint="video_ingest.ingestion.flows:ingest_batch", work_pool_name=name,
        parameter_openapi_schema=parameter_schemas()["ingest-batch"], pull_steps=[],
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", name, "--type", "process"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        yield f"ingest-batch/{name}"
    finally:
        # the worker and its flow-run subprocesses; SIGKILL after 30 s, so a stand-in
        # worker slow to shut down (seen once in CI, under load) fails no test
        stop_process(worker, 30, group=True)
