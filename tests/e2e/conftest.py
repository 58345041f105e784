"""Fixtures for the end-to-end tier: a real kind cluster, built by hack/.

The session's first e2e test brings the cluster up through
``hack/cluster-up.sh`` (which reuses a healthy running cluster and builds
nothing that its caches already hold), so ``pytest -m e2e tests/e2e`` works
from a fresh clone as long as the machine can build or pull the images.

A missing prerequisite (no Docker, a toolchain build that fails, no
Dockerfile for the project image) FAILS the tests. Set
``VIDEO_INGEST_E2E_SKIP_UNAVAILABLE=1`` to have them skipped instead, with the
reason printed by ``-ra``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK = REPO_ROOT / "hack"
CLUSTER_NAME = os.environ.get("CLUSTER_NAME", "video-ingest")
KUBE_CONTEXT = f"kind-{CLUSTER_NAME}"
PROJECT_IMAGE = os.environ.get("PROJECT_IMAGE", "video-ingest:dev")
SKIP_UNAVAILABLE = os.environ.get("VIDEO_INGEST_E2E_SKIP_UNAVAILABLE") == "1"


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml registers the same marker; registering it here too lets
    # this folder run on its own (`pytest tests/e2e`) under --strict-markers.
    config.addinivalue_line("markers", "e2e: a real kind cluster, built by hack/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def unavailable(reason: str) -> None:
    """Fail (default) or, when asked to, skip: never pass silently."""
    if SKIP_UNAVAILABLE:
        pytest.skip(f"e2e prerequisite unavailable: {reason}")
    pytest.fail(f"e2e prerequisite unavailable: {reason}", pytrace=False)


def run_hack(script: str, *args: str, timeout: float = 3600) -> str:
    """Run a hack/ script; its log goes to the terminal, stdout is returned."""
    result = subprocess.run(
        [str(HACK / script), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        unavailable(f"hack/{script} exited {result.returncode}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to the kind cluster's context (and optionally a namespace)."""

    context: str
    namespace: str | None = None

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
        cmd = ["kubectl", "--context", self.context]
        if self.namespace:
            cmd += ["--namespace", self.namespace]
        result = subprocess.run(
            [*cmd, *args], input=stdin, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return result.stdout

    def apply(self, *objects: dict) -> None:
        self("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json"))

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.context, namespace)

    def diagnostics(self) -> str:
        """What a person would look at when a workload does not finish."""
        return "\n".join(
            self(*args, check=False)
            for args in (
                ("get", "all,pvc,events", "-o", "wide"),
                ("describe", "pods"),
                ("logs", "--all-containers", "--prefix", "-l", "e2e-smoke", "--tail", "50"),
            )
        )


@pytest.fixture(scope="session")
def kind_cluster() -> Kubectl:
    """The running kind cluster (created, or reused when healthy)."""
    run_hack("cluster-up.sh")
    kubectl = Kubectl(KUBE_CONTEXT)
    nodes = kubectl.json("get", "nodes")["items"]
    assert nodes, "the cluster has no nodes"
    return kubectl


@pytest.fixture(scope="session")
def python_base_image(kind_cluster: Kubectl) -> str:
    """The Python base image for this machine, loaded into the kind nodes."""
    image = run_hack("build-python-image.sh").splitlines()[-1]
    load_image(image)
    return image


def load_image(image: str) -> None:
    result = subprocess.run(
        ["kind", "load", "docker-image", image, "--name", CLUSTER_NAME],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        unavailable(f"kind load docker-image {image} failed: {result.stderr.strip()}")


def build_project_image() -> str:
    """Build the project's image from the Dockerfile and load it into kind.

    WIRE-UP: this is the one place the e2e tier gets the real image.
    hack/build-project-image.sh runs `docker build --build-arg
    PYTHON_IMAGE=<python base> -t $PROJECT_IMAGE .` and `kind load`s it.
    """
    if not (REPO_ROOT / "Dockerfile").is_file():
        unavailable("no Dockerfile at the repository root yet: the project image cannot be built")
    run_hack("build-project-image.sh")
    return PROJECT_IMAGE


@pytest.fixture(scope="session")
def project_image(kind_cluster: Kubectl) -> str:
    return build_project_image()


@pytest.fixture
def namespace(kind_cluster: Kubectl) -> Kubectl:
    """A fresh namespace, deleted (and waited for) after the test."""
    name = f"e2e-smoke-{uuid.uuid4().hex[:8]}"
    kind_cluster("create", "namespace", name)
    # New namespaces get their default ServiceAccount asynchronously.
    deadline = time.monotonic() + 60
    while kind_cluster("get", "serviceaccount", "default", "-n", name, check=False).strip() == "":
        assert time.monotonic() < deadline, f"namespace {name} got no default ServiceAccount"
        time.sleep(1)
    yield kind_cluster.in_namespace(name)
    kind_cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)


# --- the product on kind: images the chart uses, and diagnostics on failure --------


@pytest.fixture(scope="session")
def postgres_image(kind_cluster: Kubectl) -> str:
    """The PostgreSQL image of the chart's kind values, built or pulled, loaded into kind."""
    return run_hack("build-postgres-image.sh").splitlines()[-1]


@pytest.fixture(scope="session")
def seaweedfs_image(kind_cluster: Kubectl) -> str:
    """The e2e tier's S3-compatible object store (hack/build-seaweedfs-image.sh), loaded into kind."""
    return run_hack("build-seaweedfs-image.sh").splitlines()[-1]


@pytest.fixture(scope="session")
def redis_image(kind_cluster: Kubectl) -> str:
    """The Redis image of the chart's kind values, built or pulled, loaded into kind."""
    return run_hack("build-redis-image.sh").splitlines()[-1]


DIAGNOSTICS_DIR = REPO_ROOT / "e2e-diagnostics"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call") and item.get_closest_marker("e2e"):
        folder = DIAGNOSTICS_DIR / item.name
        try:
            save_diagnostics(folder)
            report.sections.append(("e2e diagnostics", f"saved to {folder}"))
            print(f"\n*** e2e diagnostics for {item.name}: {folder}", flush=True)
        except Exception as exc:  # diagnostics must never hide the failure itself
            print(f"\n*** could not save e2e diagnostics: {exc}", flush=True)


def save_diagnostics(folder: Path) -> None:
    """Pod logs, events and object states from the cluster; flow and task run states from Prefect."""
    folder.mkdir(parents=True, exist_ok=True)
    kubectl = Kubectl(KUBE_CONTEXT)

    def save(name: str, *args: str) -> None:
        (folder / name).write_text(kubectl(*args, check=False, timeout=120))

    save("all.txt", "get", "all,pvc,configmaps,events", "-A", "-o", "wide")
    save("events.txt", "get", "events", "-A", "--sort-by=.lastTimestamp")
    save("describe-pods.txt", "describe", "pods", "-A")
    pods = kubectl("get", "pods", "-A", "-o", "json", check=False)
    for pod in json.loads(pods or '{"items": []}')["items"]:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if namespace == "kube-system":
            continue
        save(f"logs-{namespace}-{name}.txt", "logs", "-n", namespace, name, "--all-containers", "--tail", "500")
        save(f"logs-{namespace}-{name}-previous.txt", "logs", "-n", namespace, name, "--all-containers",
             "--previous", "--tail", "200")
    try:
        from kind_release import prefect_client

        with prefect_client() as client:
            runs = client.read_flow_runs(limit=200)
            lines = [f"{run.name}\t{run.state_name}\t{run.state.message if run.state else ''}" for run in runs]
            tasks = client.read_task_runs(limit=200)
            lines += [f"task {run.name}\t{run.state_name}\trun_count={run.run_count}" for run in tasks]
        (folder / "prefect-runs.txt").write_text("\n".join(lines))
    except Exception as exc:
        (folder / "prefect-runs.txt").write_text(f"Prefect API not readable: {exc}")
