"""Can a pod with these labels open a TCP connection to host:port? Asked from inside the
cluster, the way NetworkPolicies see it: a short-lived pod (Pod Security "restricted")
carrying exactly the labels the policies select on tries to connect and reports what
happened. A connection that is refused or times out is an answer (False); a pod that
never runs, fails, or cannot resolve the host is not, and raises ProbeFailed.
"""

from __future__ import annotations

import json
import os
import time
import uuid

from data_plane import RESTRICTED

PROJECT_IMAGE = os.environ.get("PROJECT_IMAGE", "video-ingest:dev")
# Waiting reasons of a container that will not start by itself.
STUCK = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError",
         "CreateContainerError", "InvalidImageName", "RunContainerError"}

# Retries until the deadline: a new pod's address reaches the policy engine a moment
# after the pod starts, so only "never within the timeout" counts as blocked.
PROBE = r"""
import json, socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
resolved, error = False, "no attempt"
while time.monotonic() < deadline:
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]
        resolved = True
        socket.create_connection(address[:2], timeout=max(0.1, min(3.0, deadline - time.monotonic()))).close()
        print(json.dumps({"connected": True, "resolved": True}))
        sys.exit(0)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
print(json.dumps({"connected": False, "resolved": resolved, "error": error}))
"""


class ProbeFailed(AssertionError):
    """The probe pod gave no answer: it did not start, failed, or could not resolve the host."""


def stops_connecting(kubectl, namespace: str, labels: dict[str, str], host: str, port: int,
                     within: float = 90.0) -> bool:
    """True once a pod labelled `labels` can no longer connect to host:port, asked again
    with a new probe pod until `within` seconds have passed: the policy engine applies a
    new NetworkPolicy some seconds after it is created, not at once."""
    deadline = time.monotonic() + within
    while can_connect(kubectl, namespace, labels, host, port):
        if time.monotonic() > deadline:
            return False
    return True


def can_connect(kubectl, namespace: str, labels: dict[str, str], host: str, port: int,
                timeout: float = 10.0, image: str = PROJECT_IMAGE, start_timeout: float = 120.0) -> bool:
    """True when a pod labelled `labels` in `namespace` connects to host:port within
    `timeout` seconds; False when every attempt was refused or timed out."""
    ns = kubectl.in_namespace(namespace)
    name = f"reach-{uuid.uuid4().hex[:10]}"
    ns.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": RESTRICTED["pod"],
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-c", PROBE, host, str(port), str(timeout)],
                "securityContext": RESTRICTED["container"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            }],
        },
    })
    try:
        pod = _wait_finished(ns, name, deadline=time.monotonic() + start_timeout + timeout)
        log = ns("logs", name, check=False)
        if pod["status"]["phase"] != "Succeeded":
            raise ProbeFailed(f"probe pod {name} failed:\n{log[-2000:]}")
        try:
            answer = json.loads(log.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise ProbeFailed(f"probe pod {name} printed no answer:\n{log[-2000:]}") from None
        if not answer["resolved"]:
            raise ProbeFailed(f"probe pod {name} could not resolve {host}: {answer['error']}")
        print(f"can_connect {labels} -> {host}:{port}: {answer}")
        return answer["connected"]
    finally:
        ns("delete", "pod", name, "--wait=false", "--ignore-not-found", check=False)


def _wait_finished(ns, name: str, deadline: float) -> dict:
    while True:
        pod = ns.json("get", "pod", name)
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            return pod
        for status in pod["status"].get("containerStatuses", []):
            reason = status.get("state", {}).get("waiting", {}).get("reason")
            if reason in STUCK:
                raise ProbeFailed(f"probe pod {name} cannot start: {reason}")
        if time.monotonic() > deadline:
            events = ns("get", "events", "--field-selector", f"involvedObject.name={name}", check=False)
            raise ProbeFailed(f"probe pod {name} did not finish: phase {pod['status'].get('phase')}\n{events}")
        time.sleep(1)
