"""The chart renders valid, consistently labelled Kubernetes objects."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from .rendering import CHART, REPO, VALUE_SETS, VALUES_DIR, find, helm, pod_specs, render

KUBERNETES_VERSIONS = ["1.30", "1.31", "1.32", "1.33", "1.34"]
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
SELECTOR_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}


@pytest.mark.parametrize(
    "values",
    [None, CHART / "ci" / "kind-values.yaml", *sorted(VALUES_DIR.glob("*.yaml"))],
    ids=lambda v: "default" if v is None else v.name,
)
def test_helm_lint_strict_passes(values) -> None:
    args = ["lint", "--strict", str(CHART)] + (["--values", str(values)] if values else [])
    result = helm(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_kubernetes_schemas_in_strict_mode(rendered_sets, version) -> None:
    problems = []
    for set_name, objects in rendered_sets.items():
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path) if hasattr(exc, "path") else ""
                problems.append(f"{set_name}: {obj['kind']}/{obj['metadata']['name']}: {path} {exc.message}")
    assert not problems, "\n".join(problems)


def test_every_object_carries_the_recommended_labels(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            missing = RECOMMENDED_LABELS - set(labels)
            assert not missing, f"{set_name}: {obj['kind']}/{obj['metadata']['name']} lacks {sorted(missing)}"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/instance"] == "video-ingest"


def test_pod_templates_carry_the_recommended_labels(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
                labels = obj["spec"]["template"]["metadata"]["labels"]
                assert RECOMMENDED_LABELS <= set(labels), f"{set_name}: {obj['metadata']['name']} pod template"


def test_selectors_use_only_name_instance_and_component(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                selector = obj["spec"]["selector"]["matchLabels"]
                template_labels = obj["spec"]["template"]["metadata"]["labels"]
            elif obj["kind"] == "Service":
                selector = obj["spec"]["selector"]
                template_labels = None
            elif obj["kind"] == "NetworkPolicy":
                selector = obj["spec"]["podSelector"]["matchLabels"]
                template_labels = None
            else:
                continue
            assert set(selector) <= SELECTOR_LABELS, f"{set_name}: {obj['kind']}/{obj['metadata']['name']}: {selector}"
            assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= set(selector)
            if template_labels is not None:
                assert selector.items() <= template_labels.items()


def test_services_select_the_pods_of_their_component(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
        for service in (o for o in objects if o["kind"] == "Service"):
            selector = service["spec"]["selector"].items()
            matched = [w for w in workloads if selector <= w["spec"]["template"]["metadata"]["labels"].items()]
            assert len(matched) == 1, f"{set_name}: Service {service['metadata']['name']} selects {len(matched)}"


CLUSTER_SCOPED = {"PriorityClass"}


def test_every_object_is_in_the_release_or_flow_run_namespace(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for obj in objects:
            if obj["kind"] in CLUSTER_SCOPED:
                assert "namespace" not in obj["metadata"], f"{set_name}: {obj['kind']} is cluster-scoped"
                continue
            assert obj["metadata"].get("namespace") in ("video-ingest", "video-ingest-runs"), (
                f"{set_name}: {obj['kind']}/{obj['metadata']['name']}"
            )


def test_pool_limit_is_also_a_quota_on_flow_run_pods(rendered_sets) -> None:
    objects = rendered_sets["default"]
    (quota,) = [o for o in objects if o["kind"] == "ResourceQuota"]
    (priority_class,) = [o for o in objects if o["kind"] == "PriorityClass"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert quota["spec"]["hard"] == {"pods": str(values["workPool"]["concurrencyLimit"])}
    (scope,) = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert scope == {"scopeName": "PriorityClass", "operator": "In", "values": [priority_class["metadata"]["name"]]}
    assert (priority_class["value"], priority_class["preemptionPolicy"]) == (0, "Never")
    config = yaml.safe_load(find(objects, "ConfigMap", "video-ingest-platform")["data"]["platform.yaml"])
    assert config["workPool"]["jobTemplate"]["priorityClassName"] == priority_class["metadata"]["name"]


def test_quota_follows_the_limit_and_goes_with_it() -> None:
    seven = render("--set", "workPool.concurrencyLimit=7")
    assert [o["spec"]["hard"]["pods"] for o in seven if o["kind"] == "ResourceQuota"] == ["7"]
    unlimited = render("--set", "workPool.concurrencyLimit=null")
    assert not [o for o in unlimited if o["kind"] in ("ResourceQuota", "PriorityClass")]
    off = render("--set", "flowRuns.podQuota.enabled=false")
    assert not [o for o in off if o["kind"] in ("ResourceQuota", "PriorityClass")]


def test_object_names_fit_in_63_characters_even_with_a_long_release_name() -> None:
    objects = [
        doc
        for doc in helm("template", "a" * 53, str(CHART), "--namespace", "ns").stdout.split("\n---\n")
        if doc.strip()
    ]
    for text in objects:
        obj = yaml.safe_load(text)
        if obj:
            assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]


def test_server_service_type_and_node_port_come_from_values() -> None:
    objects = render("--set", "server.service.type=NodePort", "--set", "server.service.nodePort=30420")
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "video-ingest-server")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30420
    default = next(
        o for o in render() if o["kind"] == "Service" and o["metadata"]["name"] == "video-ingest-server"
    )
    assert default["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in default["spec"]["ports"][0]


def test_value_sets_cover_every_template() -> None:
    """Each template renders an object in at least one values set (no dead template)."""
    rendered_sources = set()
    for args in VALUE_SETS.values():
        text = helm("template", "video-ingest", str(CHART), "--namespace", "video-ingest", *args).stdout
        rendered_sources |= set(re.findall(r"^# Source: video-ingest/templates/(\S+)$", text, re.M))
    templates = {
        str(p.relative_to(CHART / "templates"))
        for p in (CHART / "templates").rglob("*.yaml")
    }
    assert templates <= rendered_sources, f"never rendered: {sorted(templates - rendered_sources)}"


def test_workloads_exist_in_each_mode(rendered_sets) -> None:
    def kinds(objects):
        return {(o["kind"], o["metadata"]["name"]) for o in objects}

    default = kinds(rendered_sets["default"])
    assert ("Deployment", "video-ingest-worker") in default
    assert ("Deployment", "video-ingest-server") in default
    assert ("StatefulSet", "video-ingest-postgresql") in default
    external = kinds(rendered_sets["external-api"])
    assert ("Deployment", "video-ingest-worker") in external
    assert not {name for kind, name in external if "server" in name or "postgresql" in name}
    database = kinds(rendered_sets["external-database"])
    assert ("Deployment", "video-ingest-server") in database
    assert not {name for kind, name in database if "postgresql" in name}
    assert ("Deployment", "video-ingest-redis") in kinds(rendered_sets["everything"])
    assert ("Deployment", "video-ingest-server-services") in kinds(rendered_sets["everything"])
    assert len(pod_specs(rendered_sets["everything"])) == 8


def test_without_helm_the_chart_tests_fail_instead_of_skipping() -> None:
    """A machine without helm must not pass this tier by skipping it."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin"}
    assert subprocess.run(["sh", "-c", "command -v helm"], env=env, capture_output=True).returncode != 0, (
        "helm is in /usr/bin or /bin: this test cannot hide it"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header",
         "tests/chart/test_render.py::test_services_select_the_pods_of_their_component"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "helm is not on PATH" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout
    assert "skipped" not in result.stdout


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (the API
    server and kubectl do; PyYAML would silently keep the last one)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_rendered_yaml_has_no_duplicate_keys(set_name) -> None:
    text = helm("template", "video-ingest", str(CHART), "--namespace", "video-ingest", *VALUE_SETS[set_name]).stdout
    for document in yaml.load_all(text, Loader=_UniqueKeyLoader):
        assert document is None or "kind" in document
