"""Reaching a Prefect API: the configured one, or an embedded local server.

With `PREFECT_API_URL` set we check that it answers before doing anything. Without
it we start a Prefect server of our own in a subprocess (SQLite in the state
directory, its log beside it) for the lifetime of the command: one command, no
set-up, and the runs stay in that database for a later `prefect server start` to
show.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping

import httpx

from video_ingest.prefect_api import services

STARTUP_TIMEOUT_SECONDS = 90.0


class ApiUnreachable(RuntimeError):
    """The Prefect API does not answer; the message says which URL and why."""


def _credentials() -> tuple[dict[str, str], tuple[str, str] | None]:
    """Prefect's own credential settings: an API key (Prefect Cloud) or a basic-auth string."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    headers: dict[str, str] = {}
    auth = None
    api_key = PREFECT_API_KEY.value()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value() if hasattr(api_key, 'get_secret_value') else api_key}"
    auth_string = PREFECT_API_AUTH_STRING.value()
    if auth_string:
        raw = auth_string.get_secret_value() if hasattr(auth_string, "get_secret_value") else auth_string
        user, _, password = raw.partition(":")
        auth = (user, password)
    return headers, auth


def check_api(url: str, timeout: float = 10.0) -> None:
    """Raise ApiUnreachable unless the API at `url` answers and takes Prefect's credentials.

    /health answers without credentials (probes use it), so the credentials are
    tried on a one-row read as well.
    """
    base = url.rstrip("/")
    headers, auth = _credentials()
    try:
        response = httpx.get(base + "/health", timeout=timeout, headers=headers, auth=auth)
        if response.status_code == 200:
            response = httpx.post(base + "/flows/filter", json={"limit": 1}, timeout=timeout, headers=headers,
                                  auth=auth)
    except httpx.HTTPError as exc:
        raise ApiUnreachable(f"Prefect API at {url} is unreachable: {exc.__class__.__name__}: {exc}") from None
    if response.status_code in (401, 403):
        raise ApiUnreachable(
            f"Prefect API at {url} refused our credentials ({response.status_code}): set PREFECT_API_AUTH_STRING"
            " (the chart's server keeps it in Secret <release>-api-auth; README \"On Kubernetes\") or PREFECT_API_KEY"
        )
    if response.status_code != 200:
        raise ApiUnreachable(f"Prefect API at {url} answered {response.status_code} on {response.request.url.path}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    """A Prefect server subprocess on 127.0.0.1 with a SQLite database in `state_dir`.

    `database_url` and `server_env` (Prefect server settings, e.g. its messaging
    broker) let the benchmark run the same server on PostgreSQL and Redis.
    `separate_services` runs the server's background services in processes of their
    own, the task run recorder apart from the rest (see services.py), as the
    chart's `server.services.separate` does; it needs messaging that reaches other
    processes (Redis in `server_env`). `python` gives the command that runs Python
    for each of the server's processes, from their environment (default: this
    interpreter); the benchmark uses it to run the server from an image.
    """

    def __init__(
        self,
        state_dir: str | Path,
        port: int | None = None,
        database_url: str | None = None,
        server_env: dict[str, str] | None = None,
        separate_services: bool = False,
        python: Callable[[Mapping[str, str]], list[str]] | None = None,
    ):
        self.python = python or (lambda env: [sys.executable])
        self.state_dir = Path(state_dir).expanduser()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = self.state_dir / "server.log"
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.state_dir / 'prefect.db'}"
        self.server_env = dict(server_env or {})
        self.separate_services = separate_services
        self.recorder_log_path = self.state_dir / "task-run-recorder.log"
        self.services_log_path = self.state_dir / "services.log"
        self._process: subprocess.Popen | None = None
        self._services: list[subprocess.Popen] = []

    def start(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ApiUnreachable(
                f"cannot start an embedded Prefect server: state directory {self.state_dir}: {exc.strerror}"
                " (set VIDEO_INGEST_STATE_DIR, or PREFECT_API_URL to use a running server)"
            ) from None
        env = {
            **os.environ,
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            **self.server_env,
        }
        env.pop("PREFECT_API_URL", None)
        api_env = {**env, **services.WEBSERVER_ONLY} if self.separate_services else env
        self._process = _spawn(
            [
                *self.python(api_env), "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--lifespan", "on",
            ],
            api_env, self.log_path,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ApiUnreachable(f"embedded Prefect server exited at start; see {self.log_path}")
            try:
                check_api(self.url, timeout=2)
                if self.separate_services:
                    self._start_services(env)  # after the API is up: it has migrated the database
                return
            except ApiUnreachable:
                time.sleep(0.3)
        self.stop()
        raise ApiUnreachable(f"embedded Prefect server did not start in {STARTUP_TIMEOUT_SECONDS:.0f}s; see {self.log_path}")

    def _start_services(self, env: dict[str, str]) -> None:
        command = ["-m", "prefect", "server", "services", "start"]
        recorder_env = {**env, **services.task_run_recorder_env()}
        others_env = {**env, **services.other_services_env()}
        self._services = [
            _spawn([*self.python(recorder_env), *command], recorder_env, self.recorder_log_path),
            _spawn([*self.python(others_env), *command], others_env, self.services_log_path),
        ]

    @property
    def log_paths(self) -> list[Path]:
        """The server's logs: the API's, and with separate services theirs."""
        if not self.separate_services:
            return [self.log_path]
        return [self.log_path, self.recorder_log_path, self.services_log_path]

    def stop(self, grace: float = 15.0) -> None:
        for process in (*self._services, self._process):
            stop_process(process, grace)
        self._process, self._services = None, []


def stop_process(process: subprocess.Popen | None, grace: float, group: bool = False) -> None:
    """Terminate a child process (with `group`, its whole process group: one started
    with start_new_session), killing it if it is still there after `grace` seconds."""
    if process is None or (process.poll() is not None and not group):
        return
    send = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
    send(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@contextlib.contextmanager
def prefect_api(api_url: str | None, state_dir: str) -> Iterator[str]:
    """Yield a reachable API URL, with Prefect's client settings pointed at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if api_url:
        check_api(api_url)
        yield api_url
        return
    server = EmbeddedServer(state_dir)
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.url}):
            try:
                yield server.url
            finally:
                drain_client_workers()
    finally:
        server.stop()


def ensure_global_limit(name: str, limit: int) -> bool:
    """Create the global concurrency limit `name` with `limit` slots unless the server
    has one by that name (then it is left as it is). True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            return True


def drain_client_workers(timeout: float = 30.0) -> None:
    """Send the events and logs this process still holds before its server goes away."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(timeout=timeout, at_exit=False)
    APILogWorker.drain_all(timeout=timeout, at_exit=False)
