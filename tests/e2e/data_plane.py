"""The e2e tier's data endpoints: an S3-compatible object store (SeaweedFS, image from
hack/build-seaweedfs-image.sh) and an HTTP source serving real videos made in the
cluster at test time (tests/videos.py, run from the project image), plus a reader
that lists the bucket from inside the cluster, the way a person would check it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

VIDEOS_SCRIPT = Path(__file__).resolve().parents[1] / "videos.py"
BUCKET = "videos"
CREDENTIALS_SECRET = "ingest-credentials"
ACCESS_KEY, SECRET_KEY = "e2e-ingest", "e2e-ingest-secret-key"
SOURCE_URL = "http://video-source:8080/"
STORE_URL = "http://object-store:8333"
RESTRICTED = {  # the pod and container settings Pod Security "restricted" asks for
    "pod": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}},
    "container": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}},
}


def _deployment(name: str, image: str, args: list[str], port: int, volumes: list[dict], mounts: list[dict],
                command: list[str] | None = None, user: int = 10001) -> dict:
    container = {"name": name, "image": image, "args": args, "ports": [{"containerPort": port}],
                 "volumeMounts": mounts, "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
                 "securityContext": RESTRICTED["container"]}
    if command:
        container["command"] = command
    pod_security = {**RESTRICTED["pod"], "runAsUser": user, "runAsGroup": user, "fsGroup": user}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"e2e-data": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"e2e-data": name}},
                 "template": {"metadata": {"labels": {"e2e-data": name}},
                              "spec": {"securityContext": pod_security, "containers": [container],
                                       "volumes": volumes}}},
    }


def _service(name: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"e2e-data": name}, "ports": [{"port": port, "targetPort": port}]}}


def data_plane_objects(store_image: str, project_image: str) -> list[dict]:
    identities = {"identities": [{"name": "ingest", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "object-store-identities"},
         "stringData": {"s3.json": json.dumps(identities)}},
        # What the flow-run pods get (flowRuns.envFromSecrets): the S3 client's usual variables.
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDENTIALS_SECRET},
         "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                        "AWS_ENDPOINT_URL_S3": STORE_URL, "AWS_DEFAULT_REGION": "us-east-1"}},
        _deployment("object-store", store_image,
                    ["server", "-dir=/data", "-s3", "-s3.port=8333", "-s3.config=/etc/seaweedfs/s3.json",
                     "-master.volumeSizeLimitMB=64", "-volume.max=16", "-ip.bind=0.0.0.0"],
                    8333, user=1000,
                    volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                             {"name": "identities", "secret": {"secretName": "object-store-identities"}}],
                    mounts=[{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"},
                            {"name": "identities", "mountPath": "/etc/seaweedfs", "readOnly": True}]),
        _service("object-store", 8333),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "video-source-script"},
         "data": {"videos.py": VIDEOS_SCRIPT.read_text()}},
        _deployment("video-source", project_image,
                    ["python /scripts/videos.py make /srv/videos && exec python /scripts/videos.py serve /srv/videos 8080"],
                    8080, command=["sh", "-c"],
                    volumes=[{"name": "script", "configMap": {"name": "video-source-script"}},
                             {"name": "srv", "emptyDir": {}}],
                    mounts=[{"name": "script", "mountPath": "/scripts", "readOnly": True},
                            {"name": "srv", "mountPath": "/srv"}]),
        _service("video-source", 8080),
    ]


# Run inside the cluster with the credentials Secret: delete the keys given, then
# list what is in the bucket under the prefix, each object's size and sha256, and
# each sidecar.
BUCKET_REPORT = r"""
import hashlib, json, sys
import s3fs
fs = s3fs.S3FileSystem()
bucket, prefix, delete = sys.argv[1], sys.argv[2], sys.argv[3:]
for key in delete:
    fs.rm(f"{bucket}/{prefix}/{key}")
def sha(read):
    digest = hashlib.sha256()
    while chunk := read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()
report = {"objects": {}, "sidecars": {}}
for path in (fs.find(f"{bucket}/{prefix}") if fs.exists(f"{bucket}/{prefix}") else []):
    relative = path.split(f"{bucket}/{prefix}/", 1)[1]
    with fs.open(path, "rb") as handle:
        report["objects"][relative] = {"bytes": fs.size(path), "sha256": sha(handle.read)}
    if relative.endswith("/sidecar.json"):
        report["sidecars"][relative.split("/")[0]] = json.loads(fs.cat(path))
print(json.dumps(report))
"""


def wait_ready(kubectl, timeout: str = "300s") -> None:
    for name in ("object-store", "video-source"):
        kubectl("rollout", "status", f"deployment/{name}", f"--timeout={timeout}", timeout=330)


def create_bucket(kubectl) -> None:
    """`s3.bucket.create` through `weed shell` in the store's pod (its image has no shell of its own)."""
    deadline = time.monotonic() + 120
    while True:
        out = kubectl("exec", "-i", "deployment/object-store", "--", "weed", "shell", "-master=localhost:9333",
                      stdin=f"s3.bucket.create -name {BUCKET}\ns3.bucket.list\n", check=False)
        if BUCKET in out.split():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"could not create bucket {BUCKET}: {out}")
        time.sleep(3)


def in_cluster_python(kubectl, image: str, script: str, *args: str, secret: str | None = CREDENTIALS_SECRET) -> str:
    """Run `python -c script args` in a throwaway pod, with the credentials Secret as env."""
    return in_cluster_pod(kubectl, image, ["python", "-c", script, *args], secret=secret)


def in_cluster_pod(kubectl, image: str, command: list[str], secret: str | None = None,
                   claim: str | None = None) -> str:
    """Run `command` in a throwaway pod (Pod Security restricted), optionally with a
    Secret as env and a PersistentVolumeClaim at /data; its log once it succeeded. (A
    pod, a wait and its log: `kubectl run -i` loses the output of a pod that ends
    before it attaches.)"""
    name = f"e2e-pod-{time.monotonic_ns() % 10**9}"
    mounts, volumes = [{"name": "tmp", "mountPath": "/tmp"}], [{"name": "tmp", "emptyDir": {}}]
    if claim:
        mounts.append({"name": "data", "mountPath": "/data"})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
    container = {"name": name, "image": image, "command": command, "securityContext": RESTRICTED["container"],
                 "volumeMounts": mounts}
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    kubectl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                   "spec": {"restartPolicy": "Never", "securityContext": RESTRICTED["pod"],
                            "containers": [container], "volumes": volumes}})
    try:
        deadline = time.monotonic() + 240
        while (phase := kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}")) not in ("Succeeded", "Failed"):
            if time.monotonic() > deadline:
                raise AssertionError(f"pod {name} still {phase}")
            time.sleep(1)
        log = kubectl("logs", name)
        if phase != "Succeeded":
            raise AssertionError(f"pod {name} failed:\n{log[-3000:]}")
        return log
    finally:
        kubectl("delete", "pod", name, "--wait=false", check=False)


def bucket_report(kubectl, image: str, prefix: str, delete: list[str] = ()) -> dict:
    output = in_cluster_python(kubectl, image, BUCKET_REPORT, BUCKET, prefix, *delete)
    return json.loads(output.strip().splitlines()[-1])


SOURCE_HASHES = r"""
import hashlib, json, sys, urllib.request
out = {}
for name in sys.argv[2:]:
    out[name] = hashlib.sha256(urllib.request.urlopen(sys.argv[1] + name).read()).hexdigest()
print(json.dumps(out))
"""


def source_hashes(kubectl, image: str, names: list[str]) -> dict[str, str]:
    output = in_cluster_python(kubectl, image, SOURCE_HASHES, SOURCE_URL, *names, secret=None)
    return json.loads(output.strip().splitlines()[-1])
