"""`helm uninstall` leaves no Job or pod of ours: the pre-delete cleanup hook
stops the worker, deletes this release's flow-run Jobs, apply Job and test pod,
and waits until they are gone, with only the permissions it uses.

The cleanup program (files/cleanup.py) is taken from the rendered Job, exactly
as the pod runs it, and driven against a fake Kubernetes API."""

from __future__ import annotations

import datetime
import re
from types import SimpleNamespace

import pytest
from kubernetes.client import V1Job, V1ObjectMeta, V1OwnerReference, V1Pod
from kubernetes.client.rest import ApiException

from .rendering import CHART, find, grants, helm, pod_specs, render
from .test_platform_config import flow_run_job

CLEANUP = "video-ingest-cleanup"
WORKER = "video-ingest-worker"
HOOK_KINDS = ("ServiceAccount", "Role", "RoleBinding", "Job")
# Every Kubernetes API call the cleanup program may make, and the permission
# it needs. A call missing here fails test_cleanup_role_grants_exactly_the_calls_its_program_makes.
API_CALLS = {
    "patch_namespaced_deployment_scale": ("apps", "deployments/scale", "patch"),
    "list_namespaced_job": ("batch", "jobs", "list"),
    "delete_namespaced_job": ("batch", "jobs", "delete"),
    "list_namespaced_pod": ("", "pods", "list"),
    "delete_namespaced_pod": ("", "pods", "delete"),
}
# What Helm waits for a hook by default (`helm uninstall --timeout`).
HELM_DEFAULT_TIMEOUT = 300


def matches(selector: str, labels: dict) -> bool:
    """A Kubernetes label selector of `k=v` and `k in (a,b)` terms, as the API server reads it."""
    terms = re.findall(r"([\w./-]+)\s+in\s+\(([^)]*)\)|([\w./-]+)=([\w.-]*)", selector)
    assert terms, selector
    for key_in, values, key, value in terms:
        if key_in and labels.get(key_in) not in {v.strip() for v in values.split(",")}:
            return False
        if key and labels.get(key) != value:
            return False
    return True


def cleanup_objects(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/component"] == "cleanup"]


def cleanup_command(objects: list[dict]) -> tuple[str, list[str]]:
    """The program and the arguments of the cleanup container."""
    container = find(objects, "Job", CLEANUP)["spec"]["template"]["spec"]["containers"][0]
    python, flag, program, *args = container["command"]
    assert (python, flag) == ("python3", "-c")
    return program, args


def arg(args: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]


# ------------------------------------------------------------ the objects


def test_cleanup_hook_objects_run_before_helm_deletes_anything_and_go_once_it_succeeds(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        # Its NetworkPolicy is no hook: it exists from install on, so it holds when the Job runs.
        hooks = [o for o in cleanup_objects(objects) if o["kind"] != "NetworkPolicy"]
        assert {o["kind"] for o in hooks} == set(HOOK_KINDS), set_name
        for obj in hooks:
            annotations = obj["metadata"]["annotations"]
            assert annotations["helm.sh/hook"] == "pre-delete"
            assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
                "before-hook-creation", "hook-succeeded"
            }, f"{set_name} {obj['kind']}: a failed Job stays for its log, a successful one goes"
        weight = {o["kind"]: int(o["metadata"]["annotations"]["helm.sh/hook-weight"]) for o in hooks}
        # Helm creates hooks in weight order: the pod's ServiceAccount and its
        # permissions exist before the Job starts it.
        assert max(weight["ServiceAccount"], weight["Role"], weight["RoleBinding"]) < weight["Job"], set_name


def test_cleanup_job_is_bounded_so_a_failure_cannot_block_uninstall(rendered_sets) -> None:
    job = find(rendered_sets["default"], "Job", CLEANUP)
    _program, args = cleanup_command(rendered_sets["default"])
    (timeout,) = arg(args, "timeout")
    assert job["spec"]["backoffLimit"] <= 1
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The program gives up (and says what is left) before Kubernetes kills it,
    # and Kubernetes kills it before Helm stops waiting.
    assert int(timeout) < job["spec"]["activeDeadlineSeconds"] < HELM_DEFAULT_TIMEOUT
    job = find(render("--set", "cleanup.timeoutSeconds=30", "--set", "cleanup.backoffLimit=0"), "Job", CLEANUP)
    assert (job["spec"]["activeDeadlineSeconds"], job["spec"]["backoffLimit"]) == (90, 0)


def test_cleanup_pod_is_hardened_like_the_others(rendered_sets) -> None:
    # test_security's hardening, resources and UID tests walk every pod spec:
    # make sure the cleanup Job's is one of them in every values set.
    for set_name, objects in rendered_sets.items():
        assert f"Job/{CLEANUP}" in [label for label, _spec in pod_specs(objects)], set_name
    spec = find(rendered_sets["everything"], "Job", CLEANUP)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "registry.example.com/media/video-ingest:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == spec["securityContext"]["runAsUser"] == 10001
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/home/app/.prefect"}


def test_cleanup_role_grants_exactly_the_calls_its_program_makes(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        program, args = cleanup_command(objects)
        calls = set(re.findall(r"\.(\w+_namespaced_\w+)\b", program))
        unknown = calls - set(API_CALLS)
        assert not unknown, f"the cleanup calls {unknown}: add them to API_CALLS and to its Role"
        needed: dict[tuple[str, str], set[str]] = {}
        for call in calls:
            group, resource, verb = API_CALLS[call]
            needed.setdefault((group, resource), set()).add(verb)
        roles = {r["metadata"]["namespace"]: r for r in cleanup_objects(objects) if r["kind"] == "Role"}
        assert sorted(roles) == sorted(arg(args, "namespace")), set_name
        for namespace, role in roles.items():
            expected = dict(needed)
            if namespace != "video-ingest":
                # The worker runs in the release namespace only.
                expected.pop(("apps", "deployments/scale"))
            assert grants(role) == expected, f"{set_name} {namespace}"
            for rule in role["rules"]:
                if rule["resources"] == ["deployments/scale"]:
                    assert rule["resourceNames"] == [WORKER] == arg(args, "worker-deployment")
                else:
                    assert "resourceNames" not in rule


def test_cleanup_role_is_bound_to_the_cleanup_service_account_only(rendered_sets) -> None:
    for set_name, objects in rendered_sets.items():
        account = find(objects, "ServiceAccount", CLEANUP)
        assert account["metadata"]["namespace"] == "video-ingest"
        for binding in (o for o in objects if o["kind"] == "RoleBinding"):
            bound = [s for s in binding["subjects"] if s["name"] == CLEANUP]
            if binding["metadata"]["name"] == CLEANUP:
                assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": CLEANUP}
                assert binding["subjects"] == [{"kind": "ServiceAccount", "name": CLEANUP, "namespace": "video-ingest"}]
            else:
                assert not bound, f"{set_name}: {binding['metadata']['name']} binds the cleanup account"


def test_cleanup_deletes_in_the_flow_run_namespace_too(rendered_sets) -> None:
    _program, args = cleanup_command(rendered_sets["external-api"])
    assert arg(args, "namespace") == ["video-ingest", "video-ingest-runs"]
    _program, args = cleanup_command(rendered_sets["default"])
    assert arg(args, "namespace") == ["video-ingest"]


@pytest.mark.parametrize("set_name", ["default", "everything"])
def test_cleanup_selector_matches_exactly_the_jobs_and_pods_helm_leaves_behind(set_name, rendered_sets) -> None:
    objects = rendered_sets[set_name]
    _program, args = cleanup_command(objects)
    (selector,) = arg(args, "selector")
    (worker_selector,) = arg(args, "worker-selector")
    # The flow-run Job and pod the worker creates from the pool's template.
    job = flow_run_job(objects)
    assert matches(selector, job["metadata"]["labels"]), job["metadata"]["labels"]
    assert matches(selector, job["spec"]["template"]["metadata"]["labels"])
    # Helm's hook objects.
    apply = find(objects, "Job", "video-ingest-apply")
    assert matches(selector, apply["metadata"]["labels"])
    assert matches(selector, apply["spec"]["template"]["metadata"]["labels"])
    assert matches(selector, find(objects, "Pod", "video-ingest-test")["metadata"]["labels"])
    # Never its own pod, nor the release's workloads (Helm deletes those).
    for kind, name in [("Job", CLEANUP), ("Deployment", WORKER), ("Deployment", "video-ingest-server"),
                       ("StatefulSet", "video-ingest-postgresql")]:
        labels = find(objects, kind, name)["spec"]["template"]["metadata"]["labels"]
        assert not matches(selector, labels), name
    worker = find(objects, "Deployment", WORKER)["spec"]["template"]["metadata"]["labels"]
    assert matches(worker_selector, worker)
    assert not matches(worker_selector, find(objects, "Deployment", "video-ingest-server")["spec"]["template"]
                       ["metadata"]["labels"])


def test_flow_run_labels_cannot_take_jobs_out_of_the_cleanup_selector() -> None:
    objects = render("--set-json", 'flowRuns.labels={"app.kubernetes.io/instance": "other", '
                                   '"app.kubernetes.io/component": "x", "team": "media"}')
    job = flow_run_job(objects)
    (selector,) = arg(cleanup_command(objects)[1], "selector")
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert matches(selector, labels) and labels["team"] == "media"


def test_cleanup_disabled_renders_none_of_its_objects() -> None:
    objects = render("--set", "cleanup.enabled=false")
    assert not cleanup_objects(objects)
    assert not [o for o in objects if "delete" in (o["metadata"].get("annotations") or {}).get("helm.sh/hook", "")]
    assert find(objects, "Deployment", WORKER)


@pytest.mark.parametrize(
    "bad", ["cleanup.enabled=maybe", "cleanup.timeoutSeconds=0", "cleanup.backoffLimit=-1", "cleanup.wait=1"]
)
def test_schema_refuses_a_bad_cleanup_value(bad) -> None:
    result = helm("template", "video-ingest", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr, bad


# ----------------------------------------------------- the program itself


class FakeCluster:
    """The Kubernetes API calls the cleanup makes, on objects in memory.

    A deleted pod (or a pod of a deleted Job, or of the scaled-down worker)
    is listed once more as terminating, then it is gone, unless it is stuck.
    """

    def __init__(self, worker_exists: bool = True) -> None:
        self.jobs: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.worker_exists = worker_exists
        self.calls: list[tuple] = []

    def add_job(self, namespace: str, name: str, labels: dict, pod_labels: dict | None = None) -> None:
        self.jobs[(namespace, name)] = labels
        self.add_pod(namespace, f"{name}-pod", pod_labels or labels, owner=name)

    def add_pod(self, namespace: str, name: str, labels: dict, owner: str | None = None, stuck: bool = False) -> None:
        self.pods[(namespace, name)] = {"labels": labels, "owner": owner, "terminating": None, "stuck": stuck}

    def _terminate(self, key: tuple[str, str]) -> None:
        if self.pods[key]["terminating"] is None:
            self.pods[key]["terminating"] = 1

    # apps/v1
    def patch_namespaced_deployment_scale(self, name, namespace, body):
        self.calls.append(("scale", namespace, name, body["spec"]["replicas"]))
        if not self.worker_exists:
            raise ApiException(status=404, reason="Not Found")
        for key, pod in self.pods.items():
            if pod["labels"].get("app.kubernetes.io/component") == "worker":
                self._terminate(key)
        return SimpleNamespace(spec=SimpleNamespace(replicas=0))

    # batch/v1
    def list_namespaced_job(self, namespace, label_selector):
        return SimpleNamespace(items=[
            V1Job(metadata=V1ObjectMeta(name=name, namespace=ns, labels=labels))
            for (ns, name), labels in self.jobs.items() if ns == namespace and matches(label_selector, labels)
        ])

    def delete_namespaced_job(self, name, namespace, propagation_policy):
        self.calls.append(("delete job", namespace, name, propagation_policy))
        assert propagation_policy in ("Background", "Foreground"), "its pods must go too"
        if self.jobs.pop((namespace, name), None) is None:
            raise ApiException(status=404, reason="Not Found")
        for key, pod in self.pods.items():
            if key[0] == namespace and pod["owner"] == name:
                self._terminate(key)

    # v1
    def list_namespaced_pod(self, namespace, label_selector):
        for key, pod in list(self.pods.items()):
            if pod["terminating"] is not None and not pod["stuck"]:
                pod["terminating"] -= 1
                if pod["terminating"] < 0:
                    del self.pods[key]
        items = []
        for (ns, name), pod in self.pods.items():
            if ns == namespace and matches(label_selector, pod["labels"]):
                owners = [V1OwnerReference(api_version="batch/v1", kind="Job", name=pod["owner"], uid="uid")
                          ] if pod["owner"] else None
                deleting = datetime.datetime.now(datetime.UTC) if pod["terminating"] is not None else None
                items.append(V1Pod(metadata=V1ObjectMeta(name=name, namespace=ns, labels=pod["labels"],
                                                         owner_references=owners, deletion_timestamp=deleting)))
        return SimpleNamespace(items=items)

    def delete_namespaced_pod(self, name, namespace):
        self.calls.append(("delete pod", namespace, name))
        if (namespace, name) not in self.pods:
            raise ApiException(status=404, reason="Not Found")
        self._terminate((namespace, name))


def labels_of(component: str, instance: str = "video-ingest") -> dict:
    return {"app.kubernetes.io/name": "video-ingest", "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": component}


def run_cleanup(objects: list[dict], cluster: FakeCluster, timeout: float | None = None) -> int:
    """Run the rendered program's cleanup() against the fake cluster."""
    program, args = cleanup_command(objects)
    module: dict = {"__name__": "cleanup"}
    exec(compile(program, "files/cleanup.py", "exec"), module)  # noqa: S102 - the chart's own program
    module["POLL_SECONDS"] = 0.01
    parsed = module["parse_args"](args)
    if timeout is not None:
        parsed.timeout = timeout
    return module["cleanup"](cluster, cluster, cluster, parsed)


@pytest.mark.parametrize("set_name", ["default", "external-api"])
def test_cleanup_stops_the_worker_then_deletes_every_job_and_pod_of_the_release(set_name, rendered_sets, capsys):
    flow_ns = "video-ingest-runs" if set_name == "external-api" else "video-ingest"
    cluster = FakeCluster()
    cluster.add_pod("video-ingest", "worker-abc", labels_of("worker"))
    cluster.add_pod("video-ingest", "server-abc", labels_of("server"))
    cluster.add_pod("video-ingest", "video-ingest-cleanup-xyz", labels_of("cleanup"), owner=CLEANUP)
    cluster.add_job("video-ingest", "video-ingest-apply", labels_of("apply"))
    cluster.add_pod("video-ingest", "video-ingest-test", labels_of("test"))
    cluster.add_job(flow_ns, "ingest-batch-running", labels_of("flow-run"))
    cluster.add_job(flow_ns, "ingest-batch-finished", labels_of("flow-run"))
    # A deployment's job variables replaced this Job's labels; its pod's stay.
    cluster.add_job(flow_ns, "ingest-batch-relabelled", {"team": "media"}, pod_labels=labels_of("flow-run"))
    cluster.add_job(flow_ns, "other-release-run", labels_of("flow-run", instance="other"))

    assert run_cleanup(rendered_sets[set_name], cluster) == 0

    assert sorted(cluster.jobs) == [(flow_ns, "other-release-run")]
    assert sorted(cluster.pods) == sorted([
        ("video-ingest", "server-abc"), ("video-ingest", "video-ingest-cleanup-xyz"),
        (flow_ns, "other-release-run-pod"),
    ])
    # The worker is stopped before anything is deleted, so it starts no new Job.
    assert cluster.calls[0] == ("scale", "video-ingest", WORKER, 0)
    deleted_jobs = {(c[1], c[2]) for c in cluster.calls if c[0] == "delete job"}
    assert deleted_jobs == {("video-ingest", "video-ingest-apply"), (flow_ns, "ingest-batch-running"),
                            (flow_ns, "ingest-batch-finished"), (flow_ns, "ingest-batch-relabelled")}
    assert "nothing left that matches" in capsys.readouterr().out


def test_cleanup_goes_on_when_the_worker_is_gone_already(rendered_sets) -> None:
    cluster = FakeCluster(worker_exists=False)
    cluster.add_job("video-ingest", "ingest-batch-a", labels_of("flow-run"))
    assert run_cleanup(rendered_sets["default"], cluster) == 0
    assert not cluster.jobs and not cluster.pods


def test_cleanup_fails_naming_what_is_left_after_its_timeout(rendered_sets, capsys) -> None:
    cluster = FakeCluster()
    cluster.add_job("video-ingest", "ingest-batch-a", labels_of("flow-run"))
    cluster.add_pod("video-ingest", "ingest-batch-b-pod", labels_of("flow-run"), stuck=True)
    assert run_cleanup(rendered_sets["default"], cluster, timeout=0.3) == 1
    out = capsys.readouterr().out
    assert "still there after 0.3s: Pod video-ingest/ingest-batch-b-pod" in out
    # Asked once, not on every poll.
    assert [c for c in cluster.calls if c[0] == "delete pod" and c[2] == "ingest-batch-b-pod"] == [
        ("delete pod", "video-ingest", "ingest-batch-b-pod")
    ]
