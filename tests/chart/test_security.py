"""Secure by default: hardened pods, least-privilege RBAC, credentials only
from Secrets, and checkov agreeing (network isolation: test_network_policy.py)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .rendering import (
    CHART,
    REPO,
    VALUE_SETS,
    checkov_binary,
    find,
    grants,
    helm,
    pod_specs,
    render,
    render_notes,
    render_text,
)

CHECKOV_CONFIG = Path(__file__).with_name("checkov.yaml")

# What the prefect-kubernetes 0.8 worker calls (worker.py, observer.py):
# create_namespaced_job, delete_namespaced_job, read_namespaced_job,
# list_namespaced_job and kopf's list+watch of jobs; list_namespaced_pod and
# kopf's list+watch of pods; read_namespaced_pod_log.
WORKER_RULES = {
    ("batch", "jobs"): {"create", "delete", "get", "list", "watch"},
    ("", "pods"): {"list", "watch"},
    ("", "pods/log"): {"get"},
}


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def test_every_pod_runs_hardened(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for label, spec in pod_specs(objects):
            pod_sc = spec["securityContext"]
            assert pod_sc["runAsNonRoot"] is True, f"{set_name} {label}"
            assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, f"{set_name} {label}"
            for container in containers(spec):
                where = f"{set_name} {label} container {container['name']}"
                sc = container["securityContext"]
                assert sc["runAsNonRoot"] is True, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc.get("privileged", False) is False, where
                assert sc["capabilities"] == {"drop": ["ALL"]}, where
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_project_image_pods_run_as_uid_10001_with_writable_tmp_and_prefect_home(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for label, spec in pod_specs(objects):
            if "postgresql" in label or "redis" in label:
                continue
            assert spec["securityContext"]["runAsUser"] == 10001, f"{set_name} {label}"
            volumes = {v["name"]: v for v in spec["volumes"]}
            for container in spec["containers"]:
                assert container["securityContext"]["runAsUser"] == 10001
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                for path in ("/tmp", "/home/app/.prefect"):
                    assert path in mounts, f"{set_name} {label}: {path} not mounted"
                    assert "emptyDir" in volumes[mounts[path]], f"{set_name} {label}: {path} is not an emptyDir"


def test_server_writes_its_ui_build_to_a_writable_volume(rendered_sets) -> None:
    """Prefect writes the UI's static files at start; under a read-only root it serves no UI."""
    for set_name, objects in rendered_sets.items():
        for label, spec in pod_specs(objects):
            for container in spec["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                if env.get("PREFECT_UI_ENABLED") != "true":
                    continue
                directory = env.get("PREFECT_UI_STATIC_DIRECTORY")
                assert directory, f"{set_name} {label}: the UI build would go to the read-only image"
                volumes = {v["name"]: v for v in spec["volumes"]}
                mounted = [m for m in container["volumeMounts"] if directory.startswith(m["mountPath"] + "/")]
                assert mounted and "emptyDir" in volumes[mounted[0]["name"]], f"{set_name} {label}: {directory}"


def test_postgresql_runs_as_the_postgres_user_with_writable_socket_dir() -> None:
    statefulset = find(render(), "StatefulSet", "video-ingest-postgresql")
    spec = statefulset["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 999
    assert spec["securityContext"]["fsGroup"] == 999
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert {"/var/run/postgresql", "/tmp", "/var/lib/postgresql/data"} <= mounts


def test_every_container_sets_requests_and_limits(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        for label, spec in pod_specs(objects):
            for container in containers(spec):
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(kind, {})), (
                        f"{set_name} {label} {container['name']}: {kind}"
                    )


def component(obj: dict) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def test_the_only_roles_are_namespaced_ones_of_the_worker_and_the_cleanup_hook(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole", "ClusterRoleBinding")]
        assert {(r["kind"], component(r)) for r in roles} == {("Role", "worker"), ("Role", "cleanup")}, set_name


def test_worker_role_grants_exactly_the_verbs_the_worker_uses(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        (role,) = [o for o in objects if o["kind"] == "Role" and component(o) == "worker"]
        assert all("resourceNames" not in rule for rule in role["rules"])
        assert grants(role) == WORKER_RULES, set_name


def test_the_role_is_bound_to_the_worker_only_in_the_flow_run_namespace(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        role = next(o for o in objects if o["kind"] == "Role" and component(o) == "worker")
        binding = next(o for o in objects if o["kind"] == "RoleBinding" and component(o) == "worker")
        flow_ns = "video-ingest-runs" if set_name == "external-api" else "video-ingest"
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == flow_ns
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "video-ingest-worker", "namespace": "video-ingest"}
        ]
        worker = find(objects, "Deployment", "video-ingest-worker")
        env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == flow_ns


def test_only_the_worker_and_the_cleanup_hook_mount_a_kubernetes_api_token(rendered_sets) -> None:
    with_token = {
        "Deployment/video-ingest-worker": "video-ingest-worker",
        "Job/video-ingest-cleanup": "video-ingest-cleanup",
    }
    for set_name, objects in rendered_sets.items():
        accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
        for label, spec in pod_specs(objects):
            if label in with_token:
                assert spec["serviceAccountName"] == with_token[label]
                assert spec["automountServiceAccountToken"] is True
            else:
                assert spec["automountServiceAccountToken"] is False, f"{set_name} {label}"
                assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False


def test_flow_run_service_account_has_no_token_and_no_role(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        account = find(objects, "ServiceAccount", "video-ingest-flow-run")
        assert account["automountServiceAccountToken"] is False
        for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
            assert all(s["name"] != "video-ingest-flow-run" for s in binding["subjects"]), set_name


def test_prefect_credentials_come_only_from_secrets(rendered_sets) -> None:
    objects = rendered_sets["external-api"]
    for _label, spec in pod_specs(objects):
        for container in containers(spec):
            env = {e["name"]: e for e in container.get("env", [])}
            if container["name"] in ("wait-for-api", "cleanup"):
                # They never call the Prefect API with credentials.
                assert not {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"} & set(env), container["name"]
                continue
            assert env["PREFECT_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "prefect-cloud", "key": "api-key"}}
            assert env["PREFECT_API_AUTH_STRING"]["valueFrom"] == {
                "secretKeyRef": {"name": "prefect-basic-auth", "key": "auth"}
            }
    worker = find(objects, "Deployment", "video-ingest-worker")
    env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The worker hands flow-run pods references to these Secrets, not values.
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_KEY_SECRET_NAME"] == "prefect-cloud"
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_KEY_SECRET_KEY"] == "api-key"
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"] == "prefect-basic-auth"
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"] == "auth"
    # No secret value appears anywhere in the render.
    for set_name, args in VALUE_SETS.items():
        text = render_text(*args)
        assert "pnu_" not in text
        assert not re.search(r"name: PREFECT_API_(KEY|AUTH_STRING)\n\s+value:", text), set_name


def test_in_chart_server_requires_the_auth_string_when_one_is_configured(rendered_sets) -> None:
    server = find(rendered_sets["everything"], "Deployment", "video-ingest-server")
    env = {e["name"]: e for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PREFECT_SERVER_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]["name"] == "prefect-basic-auth"


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_in_chart_server_requires_a_generated_auth_string_that_every_client_reads_from_its_secret(rendered_sets):
    objects = rendered_sets["default"]
    secret = find(objects, "Secret", "video-ingest-api-auth")
    user, _, password = base64.b64decode(secret["data"]["auth-string"]).decode().partition(":")
    assert user == "admin" and re.fullmatch(r"[A-Za-z0-9]{32}", password)
    reference = {"secretKeyRef": {"name": "video-ingest-api-auth", "key": "auth-string"}}
    server = find(objects, "Deployment", "video-ingest-server")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(server)["PREFECT_SERVER_API_AUTH_STRING"]["valueFrom"] == reference
    clients = 0
    for label, spec in pod_specs(objects):
        for container in containers(spec):
            if container["name"] in ("wait-for-api", "wait-for-database", "cleanup", "server", "postgresql"):
                continue
            assert env_of(container)["PREFECT_API_AUTH_STRING"]["valueFrom"] == reference, (label, container["name"])
            clients += 1
    assert clients == 4, "the worker, its job reaper, the apply hook and the test pod"
    worker = env_of(find(objects, "Deployment", "video-ingest-worker")["spec"]["template"]["spec"]["containers"][0])
    # ... and hands flow-run pods a reference to the Secret, not its value.
    assert worker["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"]["value"] == "video-ingest-api-auth"
    assert worker["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"]["value"] == "auth-string"


def test_a_named_auth_string_secret_replaces_the_generated_one(rendered_sets) -> None:
    objects = rendered_sets["everything"]
    assert not [o for o in objects if o["kind"] == "Secret"]
    server = find(objects, "Deployment", "video-ingest-server")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(server)["PREFECT_SERVER_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]["name"] == "prefect-basic-auth"


def test_auth_switched_off_leaves_no_credential_anywhere_and_the_notes_warn(tmp_path) -> None:
    text = render_text("--set", "server.auth.enabled=false")
    assert "AUTH_STRING" not in text and "api-auth" not in text
    assert "WARNING: server.auth.enabled is false" in render_notes("--set", "server.auth.enabled=false", tmp=tmp_path)
    assert "server.auth.enabled is false" not in render_notes(tmp=tmp_path / "default")


def test_an_auth_string_secret_with_auth_switched_off_is_refused() -> None:
    result = helm("template", "video-ingest", str(CHART), "--set", "server.auth.enabled=false",
                  "--set", "prefect.authStringSecret.name=mine", check=False)
    assert result.returncode != 0
    assert "prefect.authStringSecret.name is \"mine\" but server.auth.enabled is false" in result.stderr


def test_renders_are_identical_when_every_credential_comes_from_a_named_secret() -> None:
    """The GitOps path: `helm template` twice gives the same manifests (no generated password)."""
    sets = ("--set", "prefect.authStringSecret.name=api-auth", "--set", "postgresql.auth.existingSecret=db",
            "--set", "server.messaging.broker=redis", "--set", "redis.enabled=true",
            "--set", "server.messaging.redis.existingSecret=redis")
    first = subprocess.run(["helm", "template", "video-ingest", str(CHART), *sets], capture_output=True, text=True)
    second = subprocess.run(["helm", "template", "video-ingest", str(CHART), *sets], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert "kind: Secret" not in first.stdout
    # Without them, each render generates new credentials: why the README names this path.
    plain = [subprocess.run(["helm", "template", "video-ingest", str(CHART)], capture_output=True, text=True).stdout
             for _ in range(2)]
    assert plain[0] != plain[1]


def test_database_password_never_appears_as_a_value(rendered_sets) -> None:
    objects = rendered_sets["default"]
    server = find(objects, "Deployment", "video-ingest-server")
    env = {e["name"]: e for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PREFECT_SERVER_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "video-ingest-postgresql", "key": "password"
    }
    postgres = find(objects, "StatefulSet", "video-ingest-postgresql")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in postgres["containers"][0]["env"]}
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"]["value"] == "/etc/postgresql-auth/password"
    secret_volume = next(v for v in postgres["volumes"] if v["name"] == "auth")
    assert secret_volume["secret"]["secretName"] == "video-ingest-postgresql"
    database = find(rendered_sets["external-database"], "Deployment", "video-ingest-server")
    env = {e["name"]: e for e in database["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "prefect-database", "key": "url"
    }


def test_generated_postgres_password_is_kept_across_uninstall(rendered_sets) -> None:
    secret = find(rendered_sets["default"], "Secret", "video-ingest-postgresql")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(secret["data"]["password"]) >= 32
    assert not [o for o in rendered_sets["everything"] if o["kind"] == "Secret"], "existingSecret: none generated"


# ---------------------------------------------------------------- checkov


def checkov_skips() -> list[tuple[str, str]]:
    """(check id, the comment justifying it) from tests/chart/checkov.yaml."""
    skips = []
    lines = CHECKOV_CONFIG.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^\s+- (CKV2?_K8S_\d+)\s*$", line)
        if match:
            comment = []
            back = index - 1
            while back >= 0 and lines[back].strip().startswith("#"):
                comment.insert(0, lines[back].strip("# ").strip())
                back -= 1
            skips.append((match.group(1), " ".join(comment)))
    return skips


@pytest.fixture(scope="module")
def checkov_report(rendered_sets, tmp_path_factory) -> dict:
    """One checkov run over every values set's render (it is slow to start)."""
    directory = tmp_path_factory.mktemp("checkov")
    for set_name, objects in rendered_sets.items():
        (directory / f"{set_name}.yaml").write_text(yaml.safe_dump_all(objects))
    result = subprocess.run(
        [checkov_binary(), "--config-file", str(CHECKOV_CONFIG), "--directory", str(directory),
         "--output", "json"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_no_failed_check(checkov_report) -> None:
    results = checkov_report["results"]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in results["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 1000, "checkov checked far fewer things than expected"


def test_every_checkov_skip_is_justified(checkov_report) -> None:
    skips = checkov_skips()
    assert skips, "tests/chart/checkov.yaml lists no skip-check entries"
    for check, reason in skips:
        assert len(reason) > 40, f"{check}: the comment above it must say why it is skipped"
    for skipped in checkov_report["results"]["skipped_checks"]:
        if skipped["check_id"] in dict(skips):
            continue
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 30, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
