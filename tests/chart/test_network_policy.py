"""The chart's NetworkPolicies: on by default, one per component, each pod accepting
only the connections it needs and the pods that only call out reaching only what they
call. (That a cluster enforces them is proven on kind: tests/e2e.)"""

from __future__ import annotations

from pathlib import Path

from .rendering import CHART, find, helm, pod_specs, render
from .test_platform_config import flow_run_job

NAME, INSTANCE = "video-ingest", "video-ingest"
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
API_PORTS = [{"protocol": "TCP", "port": 4200}]
EXTERNAL_API = Path(__file__).parent / "values" / "external-api.yaml"


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": INSTANCE,
            "app.kubernetes.io/component": component}


def peer(component: str, namespace: str | None = None) -> dict:
    selected = {"podSelector": {"matchLabels": labels(component)}}
    if namespace:
        selected["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return selected


def policies(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


def policy_of(objects: list[dict], component: str) -> dict:
    """The one policy selecting the component's pods."""
    (policy,) = [p for p in policies(objects)
                 if p["spec"]["podSelector"]["matchLabels"].items() <= labels(component).items()]
    return policy["spec"]


def pods(objects: list[dict]) -> list[tuple[str, str, dict]]:
    """(what, namespace, labels) of every pod the release runs, the flow-run pods included."""
    found = []
    for obj in objects:
        if obj["kind"] == "Pod":
            found.append((obj["metadata"]["name"], obj["metadata"]["namespace"], obj["metadata"]["labels"]))
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            found.append((obj["metadata"]["name"], obj["metadata"]["namespace"],
                          obj["spec"]["template"]["metadata"]["labels"]))
    job = flow_run_job(objects)
    found.append(("flow-run", job["metadata"]["namespace"], job["spec"]["template"]["metadata"]["labels"]))
    return found


def test_every_pod_of_the_chart_has_exactly_one_policy_by_default(rendered_sets) -> None:
    """Secure by default: a pod no policy selects would accept anything."""
    assert render("--show-only", "templates/networkpolicy.yaml"), "networkPolicy.enabled is on by default"
    for set_name, objects in rendered_sets.items():
        assert len(pod_specs(objects)) + 1 == len(pods(objects))
        for what, namespace, pod_labels in pods(objects):
            selecting = [p["metadata"]["name"] for p in policies(objects)
                         if p["metadata"]["namespace"] == namespace
                         and p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()]
            assert len(selecting) == 1, f"{set_name}: {what} is selected by {selecting}"


def egress_beyond_dns_and_api(policy: dict) -> list[dict]:
    """A client pod's policy: no ingress; egress to DNS, then to the API; the rest returned."""
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy
    dns, api, *rest = policy["egress"]
    assert dns["ports"] == DNS_PORTS
    assert api == {"to": [peer("server", "video-ingest")], "ports": API_PORTS}
    return rest


def test_disabled_renders_no_policy() -> None:
    assert not policies(render("--set", "networkPolicy.enabled=false"))


def test_flow_run_pods_accept_nothing_and_reach_only_dns_the_api_and_data_endpoints(rendered_sets) -> None:
    (data,) = egress_beyond_dns_and_api(policy_of(rendered_sets["network-policy"], "flow-run"))
    assert data["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_worker_accepts_nothing_and_reaches_dns_the_api_and_the_kubernetes_api(rendered_sets) -> None:
    (kubernetes,) = egress_beyond_dns_and_api(policy_of(rendered_sets["default"], "worker"))
    assert kubernetes == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                          "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}
    narrowed = policy_of(rendered_sets["network-policy"], "worker")["egress"][2]
    assert narrowed == {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]}


def test_apply_and_test_pods_accept_nothing_and_reach_only_dns_and_the_api(rendered_sets) -> None:
    for component in ("apply", "test"):
        policy = policy_of(rendered_sets["default"], component)
        assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy
        dns, api = policy["egress"]
        assert dns["ports"] == DNS_PORTS
        assert api == {"to": [peer("server", "video-ingest")], "ports": API_PORTS}


def test_cleanup_pod_accepts_nothing_and_reaches_only_dns_and_the_kubernetes_api(rendered_sets) -> None:
    policy = policy_of(rendered_sets["default"], "cleanup")
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy
    dns, kubernetes = policy["egress"]
    assert dns["ports"] == DNS_PORTS
    assert kubernetes["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert not [p for p in policies(render("--set", "cleanup.enabled=false"))
                if p["metadata"]["name"] == "video-ingest-cleanup"]


def test_server_admits_the_pods_that_call_it_and_server_ingress_only(rendered_sets) -> None:
    (rule,) = policy_of(rendered_sets["network-policy"], "server")["ingress"]
    assert rule["ports"] == API_PORTS
    assert rule["from"] == [peer("worker"), peer("apply"), peer("test"), peer("flow-run", "video-ingest"),
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    # With its services apart, they call the API too (they wait for it) and accept nothing.
    objects = rendered_sets["everything"]
    (rule,) = policy_of(objects, "server")["ingress"]
    assert peer("server-services") in rule["from"]
    services = policy_of(objects, "server-services")
    assert services["policyTypes"] == ["Ingress"] and "ingress" not in services


def test_server_admits_flow_runs_from_their_own_namespace() -> None:
    objects = render("--set", "flowRuns.namespace=runs")
    (rule,) = policy_of(objects, "server")["ingress"]
    assert peer("flow-run", "runs") in rule["from"]
    assert find(objects, "NetworkPolicy", "video-ingest-flow-run")["metadata"]["namespace"] == "runs"


def test_kind_values_admit_the_host_through_the_node_port_but_no_pod(rendered_sets) -> None:
    """The host reaches the server from the kind network; pods come from 10.244.0.0/16."""
    (rule,) = policy_of(rendered_sets["kind"], "server")["ingress"]
    assert rule["from"][-1] == {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}}


def test_postgresql_admits_only_the_server(rendered_sets) -> None:
    (rule,) = policy_of(rendered_sets["default"], "postgresql")["ingress"]
    assert rule == {"from": [peer("server")], "ports": [{"protocol": "TCP", "port": 5432}]}


def test_external_api_needs_its_cidrs_and_every_caller_uses_them() -> None:
    failed = helm("template", "video-ingest", str(CHART), "--values", str(EXTERNAL_API),
                  "--set-json", "networkPolicy.prefectApi.cidrs=[]", check=False)
    assert failed.returncode != 0 and "needs networkPolicy.prefectApi.cidrs" in failed.stderr
    objects = render("--values", str(EXTERNAL_API))
    expected = {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    for component in ("flow-run", "worker", "apply", "test"):
        assert policy_of(objects, component)["egress"][1] == expected, component
    assert find(objects, "NetworkPolicy", "video-ingest-flow-run")["metadata"]["namespace"] == "video-ingest-runs"
    assert not [p for p in policies(objects) if p["metadata"]["name"] == "video-ingest-server"]


def test_bad_network_policy_values_fail_at_render() -> None:
    for args in (("--set-json", "networkPolicy.kubernetesApi.cidrs=[]"),
                 ("--set", "networkPolicy.kubernetesApi.cidrs={10.0.0.1}"),
                 ("--set-json", "networkPolicy.serverIngress=[\"10.0.0.0/8\"]")):
        failed = helm("template", "video-ingest", str(CHART), *args, check=False)
        assert failed.returncode != 0 and "networkPolicy" in failed.stderr, args
