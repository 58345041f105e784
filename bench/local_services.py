"""PostgreSQL and Redis servers on loopback, the benchmark's Prefect server on them, and
a process work pool standing in for the cluster's (also used by the integration tests).

PostgreSQL and Redis come from Debian's packages (`make bench-deps` installs them). Each runs from a
scratch directory for the length of the benchmark and is stopped at the end;
nothing is installed as a service and no system-wide data directory is touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.cpu_usage import stat_fields
from video_ingest.prefect_api.connection import EmbeddedServer, free_port, stop_process

REPO = Path(__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    """A local service could not be started; the message says which and why."""


def _wait_for_port(port: int, what: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited at start (status {process.returncode}); see {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s; see {log}")


class Postgres:
    """A throw-away PostgreSQL cluster in `workdir`, owned by the `postgres` user."""

    DATABASE = "prefect"

    def __init__(self, workdir: Path, max_connections: int = 200):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.max_connections = max_connections
        self.log_path = self.workdir / "postgres.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.DATABASE}"

    def start(self) -> None:
        bindir = _postgres_bindir()
        data = self.workdir / "pgdata"
        self.workdir.mkdir(parents=True, exist_ok=True)
        # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
        user = pwd.getpwnam("postgres")
        os.chown(self.workdir, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
        initdb = subprocess.run(
            [*as_postgres, f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            capture_output=True, text=True,
        )
        if initdb.returncode != 0:
            raise ServiceError(
                f"initdb as the postgres user failed in {data} (every parent directory must be"
                f" searchable by that user): {initdb.stderr.strip()[-500:]}"
            )
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [
                *as_postgres, f"{bindir}/postgres", "-D", str(data),
                "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-k", str(self.workdir),
                "-c", f"max_connections={self.max_connections}",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        _wait_for_port(self.port, "PostgreSQL", self._process, self.log_path)
        deadline = time.monotonic() + 30
        while True:
            created = subprocess.run(
                [*as_postgres, f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                 self.DATABASE],
                capture_output=True, text=True,
            )
            if created.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"createdb failed: {created.stderr.strip()}")
            time.sleep(0.5)

    def stop(self) -> None:
        stop_process(self._process, grace=20.0)
        self._process = None


class Redis:
    """A Redis server on loopback with persistence off."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.log_path = self.workdir / "redis.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise ServiceError("redis-server is not installed (make bench-deps installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        _wait_for_port(self.port, "Redis", self._process, self.log_path)

    def stop(self) -> None:
        stop_process(self._process, grace=20.0)
        self._process = None


def redis_messaging_env(redis: Redis) -> dict[str, str]:
    """Prefect server settings that move its messaging, event ordering and leases to Redis."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": str(redis.port),
        "PREFECT_REDIS_MESSAGING_DB": "0",
    }


def _postgres_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise ServiceError("the PostgreSQL server is not installed (make bench-deps installs it)")
    return str(Path(found[-1]).parent)


# Prefect's task run recorder writes each task run event in a transaction of its own
# by default (batch size 1): three per item. Batched, the server keeps up with
# thousands of items; the chart sets the same (server.services in values.yaml).
SERVER_BATCHING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}


@dataclass(frozen=True)
class ServerLayout:
    """How a benchmark's Prefect server is laid out: its database, its messaging, its
    recorder's writes and where its background services run."""

    postgres: bool = True
    redis: bool = True
    batching: bool = True
    separate_services: bool = True

    def describe(self) -> str:
        return (
            f"{'PostgreSQL' if self.postgres else 'SQLite'}, messaging {'on Redis' if self.redis else 'in memory'},"
            f" {'batched' if self.batching else 'one-event'} recorder writes, services"
            f" {'apart from the API, the task run recorder alone' if self.separate_services else 'in the API process'}"
        )


# Prefect's own defaults, and the layouts the chart offers (helm/video-ingest/values.yaml:
# server.messaging.broker, server.services.separate; PostgreSQL and batched writes always).
LAYOUTS = {
    "default": ServerLayout(postgres=False, redis=False, batching=False, separate_services=False),
    "chart-memory": ServerLayout(redis=False, separate_services=False),
    "chart-redis": ServerLayout(separate_services=False),
    "chart-separate": ServerLayout(),
}


# What a process from an image is given of its environment, by name prefix: Prefect's
# settings, ours and the S3 client's (PYTHONPATH too, which points at the repository
# for `bench.*`).
PASSED_TO_IMAGES = ("PREFECT_", "VIDEO_INGEST_", "AWS_")


@dataclass(frozen=True)
class ImagePython:
    """Python from a container image, for the benchmark's Prefect server and flow
    processes: `docker run` on the host's network (PostgreSQL and Redis stay the
    host's, on loopback), as root so it can write the scratch directory `workdir`,
    mounted at the same path, with the repository mounted read-only at its own path
    (for `bench.*`; the image's own video_ingest is what runs). Only the settings
    named in PASSED_TO_IMAGES (and PYTHONPATH) reach it. Each container carries the
    label `video-ingest-bench=<workdir>`, so the ones left after a kill can be found
    and removed (`remove_containers`)."""

    image: str
    workdir: Path

    def __call__(self, env: Mapping[str, str]) -> list[str]:
        passed = [arg for name in sorted(env) if name.startswith(PASSED_TO_IMAGES) or name == "PYTHONPATH"
                  for arg in ("-e", name)]
        return ["docker", "run", "--rm", "--init", "--network", "host", "--user", "0:0",
                "--label", f"video-ingest-bench={self.workdir}", "-v", f"{self.workdir}:{self.workdir}",
                "-v", f"{REPO}:{REPO}:ro", *passed, self.image, "python"]

    def remove_containers(self) -> None:
        found = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=video-ingest-bench={self.workdir}"],
                               capture_output=True, text=True, check=False).stdout.split()
        if found:
            subprocess.run(["docker", "rm", "-f", *found], capture_output=True, check=False)

    def version(self) -> str:
        """The image's Python version, e.g. "3.13.5"."""
        done = subprocess.run(["docker", "run", "--rm", self.image, "python", "-c",
                               "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"cannot run Python from image {self.image}: {done.stderr.strip()[-300:]}")
        return done.stdout.strip()


def python_command(python: ImagePython | None, env: Mapping[str, str]) -> list[str]:
    """How a benchmark process starts Python: this interpreter, or `python`'s image."""
    return python(env) if python else [sys.executable]


@contextlib.contextmanager
def running_server(layout: ServerLayout, workdir: Path, python: ImagePython | None = None) -> Iterator[EmbeddedServer]:
    """A Prefect server laid out as `layout`, with its PostgreSQL and Redis, under `workdir`;
    everything is stopped on the way out. With `python` (its workdir at or above
    `workdir`), the server's own processes run Python from its image, the rest from
    the host, and every container under its label is removed on the way out."""
    if layout.separate_services and not layout.redis:
        raise ServiceError("separate services need Redis messaging: in-memory messaging does not reach another process")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # PostgreSQL runs as its own user below it
    postgres = Postgres(workdir / "postgres") if layout.postgres else None
    redis = Redis(workdir / "redis") if layout.redis else None
    server = None
    try:
        server_env = dict(SERVER_BATCHING) if layout.batching else {}
        if postgres:
            postgres.start()
        if redis:
            redis.start()
            server_env.update(redis_messaging_env(redis))
        server = EmbeddedServer(workdir / "prefect-server", database_url=postgres.url if postgres else None,
                                server_env=server_env, separate_services=layout.separate_services, python=python)
        server.start()
        yield server
    finally:
        for service in (server, redis, postgres):
            if service:
                service.stop()
        if python:
            python.remove_containers()


@contextlib.contextmanager
def process_batch_pool(client, name: str, worker_env: dict, pool_env: dict | None = None,
                       pool_limit: int | None = None, worker_log: Path | None = None) -> Iterator[str]:
    """A process work pool (its job template env set to `pool_env`, its concurrency
    limit `pool_limit`), an ingest-batch deployment on it, and Prefect's process worker
    (environment `worker_env`, stderr to `worker_log`) running each batch run as a
    subprocess: the stand-in for the Kubernetes pool and its Jobs. Yields the
    deployment's name. On the way out, the worker's flow-run subprocesses are given up
    to 120 s to end on their own (they send their items' last events as they exit),
    then the worker and what is left are stopped, SIGKILL after 30 s, so a stand-in
    worker slow to shut down (seen once in CI, under load) fails nothing. After a
    failure inside the block, nothing is waited for."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from video_ingest.platform.reconcile import parameter_schemas

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = dict(pool_env or {})
    client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template,
                                           concurrency_limit=pool_limit))
    flow_id = client.create_flow_from_name("ingest-batch")
    client.create_deployment(
        flow_id=flow_id, name=name, entrypoint="video_ingest.ingestion.flows:ingest_batch", work_pool_name=name,
        parameter_openapi_schema=parameter_schemas()["ingest-batch"], pull_steps=[],
    )
    with open(worker_log or os.devnull, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", name, "--type", "process"],
            env=worker_env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
    try:
        yield f"ingest-batch/{name}"
        # A batch run is Completed on the server before its process has sent the
        # last of its items' events, which it does on its way out: stopping the
        # worker now would cut that short and lose them. Let its runs end first.
        wait_for_children(worker.pid, timeout=120)
    finally:
        stop_process(worker, 30, group=True)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc (Linux), whatever their session."""
    children = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = stat_fields(f.read())
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.split("/")[2]))
    return children


def wait_for_children(pid: int, timeout: float) -> bool:
    """Wait until `pid` has no child process, at most `timeout` s; whether it has none."""
    deadline = time.monotonic() + timeout
    while child_pids(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
