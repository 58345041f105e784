"""The product on kind: a Helm release of helm/video-ingest and what the tests observe.

`Release` installs the chart (in-chart Prefect server on PostgreSQL, our worker),
upgrades and uninstalls it; `JobPodWatch` follows flow-run pods through the
Kubernetes watch API; the Prefect-side observers read flow-run and task-run state
histories from the server. Nothing here counts with the product's own counters.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "video-ingest"
KIND_VALUES = CHART / "ci" / "kind-values.yaml"
E2E_VALUES = Path(__file__).with_name("values-e2e.yaml")
API_URL = "http://127.0.0.1:4200/api"  # kind-config.yaml maps it to the server's NodePort
FLOW_RUN_SELECTOR = "app.kubernetes.io/component=flow-run"


def run(cmd: list[str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@dataclass
class Release:
    name: str
    namespace: str
    context: str
    sets: dict = field(default_factory=dict)

    def helm(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        return run(["helm", "--kube-context", self.context, "--namespace", self.namespace, *args],
                   timeout=timeout, check=check)

    def _set_args(self, sets: dict) -> list[str]:
        args = []
        for key, value in sets.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return args

    def install(self) -> None:
        self.helm("upgrade", "--install", self.name, str(CHART), "--create-namespace",
                  "--values", str(KIND_VALUES), "--values", str(E2E_VALUES),
                  *self._set_args(self.sets), "--wait", "--timeout", "10m")

    def upgrade(self, **sets) -> None:
        """`helm upgrade` as a platform engineer with values in git runs it: the same values
        files, the sets so far plus these; a set to None goes back to the values files'.
        (Not `--reuse-values`: Helm merges maps with the release's old values, so a map such
        as flowRuns.nodeSelector could never be cleared that way.)"""
        self.sets.update(sets)
        self.sets = {key: value for key, value in self.sets.items() if value is not None}
        self.helm("upgrade", self.name, str(CHART), "--values", str(KIND_VALUES), "--values", str(E2E_VALUES),
                  *self._set_args(self.sets), "--wait", "--timeout", "5m")

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--wait", "--cascade", "foreground", "--timeout", "5m", check=False)


def wait_for_api(url: str = API_URL, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"Prefect API at {url} never answered")


class JobPodWatch:
    """Running intervals of flow-run pods, from a Kubernetes watch in a thread."""

    def __init__(self, context: str, namespace: str):
        from kubernetes import client, config, watch

        self._api = client.CoreV1Api(api_client=config.new_client_from_config(context=context))
        self._watch = watch.Watch()
        self.namespace = namespace
        self.started: dict[str, datetime] = {}
        self.intervals: list[tuple[datetime, datetime]] = []
        self.pods_seen: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "JobPodWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping = True
        self._watch.stop()
        self._thread.join(timeout=10)
        now = datetime.now(timezone.utc)
        with self._lock:
            for start in self.started.values():
                self.intervals.append((start, now))
            self.started.clear()

    def _run(self) -> None:
        from urllib3.exceptions import ProtocolError

        while not self._stopping:
            try:
                self._follow()
            except ProtocolError:  # the API server closed the stream: watch again (a list comes first)
                continue

    def _follow(self) -> None:
        for event in self._watch.stream(self._api.list_namespaced_pod, self.namespace,
                                        label_selector=FLOW_RUN_SELECTOR, timeout_seconds=3600):
            pod = event["object"]
            name, phase = pod.metadata.name, pod.status.phase
            now = datetime.now(timezone.utc)
            with self._lock:
                self.pods_seen.add(name)
                running = phase == "Running" and event["type"] != "DELETED"
                if running and name not in self.started:
                    self.started[name] = now
                elif not running and name in self.started:
                    self.intervals.append((self.started.pop(name), now))

    @property
    def running_now(self) -> int:
        with self._lock:
            return len(self.started)


def auth_string(release: Release) -> str:
    """The auth string the release's server requires, read from its Secret as the README does."""
    encoded = run(["kubectl", "--context", release.context, "--namespace", release.namespace, "get", "secret",
                   f"{release.name}-video-ingest-api-auth", "-o", "jsonpath={.data.auth-string}"]).stdout
    return base64.b64decode(encoded).decode()


def prefect_client():
    """A sync Prefect client of the kind install, with the auth string the release fixture exported."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    class _Scoped:
        def __enter__(self):
            self._settings = temporary_settings(updates={
                PREFECT_API_URL: API_URL, PREFECT_API_AUTH_STRING: os.environ.get("PREFECT_API_AUTH_STRING"),
            })
            self._settings.__enter__()
            self._client = get_client(sync_client=True)
            return self._client.__enter__()

        def __exit__(self, *exc):
            self._client.__exit__(*exc)
            self._settings.__exit__(*exc)

    return _Scoped()


