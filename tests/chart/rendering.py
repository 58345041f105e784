"""Rendering the chart with the real helm binary, and reading what it renders.

helm must be on PATH (hack/build-tools.sh builds the pinned one): without it
the chart tests FAIL with that message, they are never skipped. checkov runs
from its own virtualenv (`make checkov`), because its pinned dependencies
conflict with the project's.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "video-ingest"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "video-ingest"
NAMESPACE = "video-ingest"

# The values sets every structural test renders. Each is a list of helm
# arguments; together they switch every optional part of the chart on.
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "default": (),
    "kind": ("--values", str(CHART / "ci" / "kind-values.yaml")),
    "external-api": ("--values", str(VALUES_DIR / "external-api.yaml")),
    "external-database": ("--values", str(VALUES_DIR / "external-database.yaml")),
    "network-policy": ("--values", str(VALUES_DIR / "network-policy.yaml")),
    "in-chart-redis": ("--values", str(VALUES_DIR / "in-chart-redis.yaml")),
    "external-redis": ("--values", str(VALUES_DIR / "external-redis.yaml")),
    "everything": ("--values", str(VALUES_DIR / "everything.yaml")),
}


def tool(name: str, hint: str) -> str:
    """A command-line tool: beside this Python first (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {hint}", pytrace=False)
    return found


def helm_binary() -> str:
    found = shutil.which("helm")
    if not found:
        pytest.fail(
            "helm is not on PATH: the chart tests need the real helm binary; "
            "build the pinned one with hack/build-tools.sh (or `make tools`)",
            pytrace=False,
        )
    return found


def checkov_binary() -> str:
    for candidate in (os.environ.get("CHECKOV"), str(REPO / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("checkov")
    if not found:
        pytest.fail("checkov is not installed: run `make checkov` (its own virtualenv, .venv-checkov)", pytrace=False)
    return found


@functools.cache
def _helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run helm (results cached: the same render is asked for by many tests)."""
    result = _helm(*args)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def render_text(*args: str) -> str:
    """`helm template` of the chart as the release video-ingest in namespace video-ingest."""
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args).stdout


def render_notes(*args: str, tmp: Path) -> str:
    """The chart's NOTES.txt as `helm install` prints them, with no cluster: `helm
    template` leaves NOTES out, and `helm install --dry-run=client` wants a reachable
    cluster. A copy of the chart renders them through `tpl` in a template of its own."""
    chart = tmp / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "{{- $notes := tpl (.Files.Get \"notes.txt\") . }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rendered-notes}\n"
        "data:\n  notes: {{ $notes | quote }}\n")
    text = helm("template", RELEASE, str(chart), "--namespace", NAMESPACE, "--show-only", "templates/zz-notes.yaml",
                *args).stdout
    return yaml.safe_load(text)["data"]["notes"]


def render(*args: str) -> list[dict]:
    """The rendered objects, hooks and test pod included."""
    return [doc for doc in yaml.safe_load_all(render_text(*args)) if doc]


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """(label, pod spec) of every workload object."""
    specs = []
    for obj in objects:
        label = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            specs.append((label, obj["spec"]))
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
            specs.append((label, obj["spec"]["template"]["spec"]))
        elif obj["kind"] == "CronJob":
            specs.append((label, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return specs


def platform_config(objects: list[dict]) -> dict:
    configmap = find(objects, "ConfigMap", f"{RELEASE}-platform")
    return yaml.safe_load(configmap["data"]["platform.yaml"])


def grants(role: dict) -> dict[tuple[str, str], set[str]]:
    """(api group, resource) -> verbs of a Role; resourceNames are checked apart."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted
