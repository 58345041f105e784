"""The kind cluster does what the rest of the e2e tier relies on.

Each test runs real workloads in a namespace of its own: a Job from our
images runs to completion, storage binds through kind's local-path
provisioner, Service names resolve and route through cluster DNS, and
NetworkPolicies are enforced (hack/cluster-up.sh deploys the engine).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from reachability import can_connect, stops_connecting

if TYPE_CHECKING:
    from conftest import Kubectl

pytestmark = pytest.mark.e2e

WAIT = "180s"
# Every container the smoke tests start: non-root, nothing extra allowed.
SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def job(name: str, image: str, command: list[str], container_extra: dict | None = None, **pod_spec: object) -> dict:
    """A Job running `command` once in `image`; pod_spec adds to the pod's spec."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"e2e-smoke": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "securityContext": SECURITY_CONTEXT,
                            **(container_extra or {}),
                        }
                    ],
                    **pod_spec,
                },
            },
        },
    }


def wait_job_complete(ns: Kubectl, name: str) -> str:
    """Wait for the Job to succeed; return its pod's log."""
    result = ns("wait", "--for=condition=complete", f"job/{name}", f"--timeout={WAIT}", check=False)
    if "condition met" not in result:
        pytest.fail(f"job {name} did not complete:\n{ns.diagnostics()}", pytrace=False)
    return ns("logs", f"job/{name}")


def test_job_from_python_base_image_succeeds(namespace: Kubectl, python_base_image: str) -> None:
    namespace.apply(
        job("python-base", python_base_image, ["python3", "-c", "import ssl, venv; print('python-ok')"])
    )
    assert wait_job_complete(namespace, "python-base").strip() == "python-ok"


def test_job_from_project_image_imports_prefect_and_video_ingest(
    namespace: Kubectl, project_image: str
) -> None:
    namespace.apply(
        job(
            "project-image",
            project_image,
            ["python3", "-c", "import prefect, video_ingest; print('imports-ok', prefect.__version__)"],
        )
    )
    assert wait_job_complete(namespace, "project-image").startswith("imports-ok ")


def test_pvc_binds_through_local_path_provisioner(namespace: Kubectl, python_base_image: str) -> None:
    namespace.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            # No storageClassName: kind's default class ("standard") must serve it.
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
        },
        job(
            "writer",
            python_base_image,
            ["sh", "-c", "echo written-by-pod > /data/proof && cat /data/proof"],
            container_extra={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            securityContext={"fsGroup": 10001},
            volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        ),
    )
    assert wait_job_complete(namespace, "writer").strip() == "written-by-pod"
    pvc = namespace.json("get", "pvc", "data")
    assert pvc["status"]["phase"] == "Bound"
    volume = namespace.json("get", "pv", pvc["spec"]["volumeName"])
    assert volume["spec"]["storageClassName"] == "standard"


def test_service_name_resolves_and_routes_in_cluster_dns(namespace: Kubectl, python_base_image: str) -> None:
    ns_name = namespace.namespace
    namespace.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "echo", "labels": {"app": "echo", "e2e-smoke": "echo"}},
            "spec": {
                "containers": [
                    {
                        "name": "http",
                        "image": python_base_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", "mkdir -p /tmp/www && echo echo-ok > /tmp/www/index.html"
                                    " && exec python3 -m http.server 8080 --directory /tmp/www"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        "securityContext": SECURITY_CONTEXT,
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    if "condition met" not in namespace("wait", "--for=condition=Ready", "pod/echo", f"--timeout={WAIT}", check=False):
        pytest.fail(f"echo pod not Ready:\n{namespace.diagnostics()}", pytrace=False)
    cluster_ip = namespace.json("get", "service", "echo")["spec"]["clusterIP"]

    # kube-proxy programs a new Service's rules some moments after its pod is Ready: a
    # CI run's probe got "Connection refused" 2 s after; refused is asked again for 30 s.
    probe = (
        "import json, socket, time, urllib.error, urllib.request\n"
        f"name = 'echo.{ns_name}.svc.cluster.local'\n"
        "addr = socket.gethostbyname(name)\n"
        "for attempt in range(30):\n"
        "    try:\n"
        "        body = urllib.request.urlopen('http://echo/', timeout=10).read().decode().strip()\n"
        "        break\n"
        "    except urllib.error.URLError as exc:\n"
        "        if 'refused' not in str(exc) or attempt == 29:\n"
        "            raise\n"
        "        time.sleep(1)\n"
        "print(json.dumps({'addr': addr, 'body': body}))\n"
    )
    namespace.apply(job("dns-probe", python_base_image, ["python3", "-c", probe]))
    answer = json.loads(wait_job_complete(namespace, "dns-probe").strip().splitlines()[-1])
    assert answer == {"addr": cluster_ip, "body": "echo-ok"}


def test_network_policies_are_enforced(namespace: Kubectl, project_image: str) -> None:
    """A listener a client reaches stops answering it under a default-deny ingress policy,
    and answers it again once a policy admits the client's label (and only that label)."""
    listener = {"app": "listener"}
    namespace.apply({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "listener", "labels": {**listener, "e2e-smoke": "listener"}},
        "spec": {
            "containers": [{
                "name": "http",
                "image": project_image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-m", "http.server", "8080", "--directory", "/"],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                "securityContext": SECURITY_CONTEXT,
            }],
        },
    })
    if "condition met" not in namespace("wait", "--for=condition=Ready", "pod/listener", f"--timeout={WAIT}", check=False):
        pytest.fail(f"listener pod not Ready:\n{namespace.diagnostics()}", pytrace=False)
    address = namespace.json("get", "pod", "listener")["status"]["podIP"]
    ns, client = namespace.namespace, {"role": "client"}

    assert can_connect(namespace, ns, client, address, 8080), "no policy yet: the client must connect"

    namespace.apply(network_policy("deny-ingress", listener, ingress=[]))
    assert stops_connecting(namespace, ns, client, address, 8080), "default-deny ingress is not enforced in 90 s"

    namespace.apply(network_policy("admit-client", listener, ingress=[
        {"from": [{"podSelector": {"matchLabels": client}}], "ports": [{"protocol": "TCP", "port": 8080}]},
    ]))
    assert can_connect(namespace, ns, client, address, 8080, timeout=60), "the allow policy does not admit the client"
    assert not can_connect(namespace, ns, {"role": "other"}, address, 8080), "the allow policy admits any pod"


def network_policy(name: str, selector: dict, ingress: list[dict]) -> dict:
    """An ingress NetworkPolicy on the pods matching `selector`; no rules means deny all."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def test_namespace_deletion_completes(kind_cluster: Kubectl) -> None:
    name = "e2e-smoke-cleanup"
    kind_cluster("delete", "namespace", name, "--wait=true", "--ignore-not-found", "--timeout=120s")
    kind_cluster("create", "namespace", name)
    ns = kind_cluster.in_namespace(name)
    ns("create", "configmap", "marker", "--from-literal=a=b")
    kind_cluster("delete", "namespace", name, "--wait=true", "--timeout=120s")
    assert kind_cluster("get", "namespace", name, "--ignore-not-found").strip() == ""
