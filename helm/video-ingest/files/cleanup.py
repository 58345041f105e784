"""Removes what `helm uninstall` would leave of a video-ingest release.

Run by the pre-delete hook Job (templates/job-cleanup.yaml) with the project
image's Python and kubernetes client, before Helm deletes the release's own
objects. Helm never deletes hook objects, and the flow-run Jobs are the
Prefect worker's, not the release's. In order:

1. scales the worker Deployment to 0 and waits until its pods are gone, so no
   flow-run Job starts while the others are deleted (a killed run frees a pool
   slot, which the worker would fill with the next scheduled run);
2. in every --namespace, deletes the Jobs and pods --selector selects
   (flow-run Jobs, running ones too; the apply hook Job; the test pod) and the
   Jobs owning selected pods (a deployment's job variables may replace a Job's
   labels, never its pods'), Jobs with propagationPolicy Background;
3. lists again until nothing selected is left, or exits 1 after --timeout
   seconds naming what is left.

The API calls, and so the hook's Role: deployments/scale patch (the worker's
Deployment only), jobs list and delete, pods list and delete.
"""

import argparse
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

POLL_SECONDS = 2


def log(message):
    print(message, flush=True)


def ignore_gone(call, *args, **kwargs):
    """Run an API call; an object already gone (404) is not an error."""
    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return None


def stop_worker(apps, core, namespace, deployment, selector, deadline):
    """Scale the worker to 0; True once none of its pods is left."""
    if ignore_gone(apps.patch_namespaced_deployment_scale, deployment, namespace, {"spec": {"replicas": 0}}):
        log(f"scaled Deployment {namespace}/{deployment} to 0 replicas")
    else:
        log(f"Deployment {namespace}/{deployment} is gone already")
    while True:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        if not pods:
            return True
        if time.monotonic() > deadline:
            log(f"worker pods still there: {', '.join(p.metadata.name for p in pods)}")
            return False
        time.sleep(POLL_SECONDS)


def delete_pass(batch, core, namespaces, selector, deleted):
    """Delete what is selected; return what is still there ("Job ns/name", ...)."""
    left = []
    for namespace in namespaces:
        listed = {j.metadata.name for j in batch.list_namespaced_job(namespace, label_selector=selector).items}
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        owners = {o.name for p in pods for o in p.metadata.owner_references or [] if o.kind == "Job"}
        for name in sorted(listed | owners):
            key = ("Job", namespace, name)
            if key not in deleted:
                ignore_gone(batch.delete_namespaced_job, name, namespace, propagation_policy="Background")
                deleted.add(key)
                log(f"deleted Job {namespace}/{name}")
        left += [f"Job {namespace}/{name}" for name in sorted(listed)]
        for pod in pods:
            key = ("Pod", namespace, pod.metadata.name)
            if key not in deleted and pod.metadata.deletion_timestamp is None:
                ignore_gone(core.delete_namespaced_pod, pod.metadata.name, namespace)
                deleted.add(key)
                log(f"deleted Pod {namespace}/{pod.metadata.name}")
            left.append(f"Pod {namespace}/{pod.metadata.name}")
    return left


def cleanup(apps, batch, core, args):
    """Exit status: 0 when nothing selected is left, 1 otherwise."""
    deadline = time.monotonic() + args.timeout
    if not stop_worker(apps, core, args.worker_namespace, args.worker_deployment, args.worker_selector, deadline):
        return 1
    deleted = set()
    while True:
        # Pods of deleted Jobs terminate for a while (their grace period):
        # stop only when a pass finds nothing at all.
        left = delete_pass(batch, core, args.namespace, args.selector, deleted)
        if not left:
            log(f"nothing left that matches {args.selector} in {', '.join(args.namespace)}")
            return 0
        if time.monotonic() > deadline:
            log(f"still there after {args.timeout}s: {', '.join(left)}")
            return 1
        time.sleep(POLL_SECONDS)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--worker-namespace", required=True)
    parser.add_argument("--worker-deployment", required=True)
    parser.add_argument("--worker-selector", required=True, help="label selector of the worker's pods")
    parser.add_argument("--namespace", required=True, action="append", help="where to delete (repeatable)")
    parser.add_argument("--selector", required=True, help="label selector of the Jobs and pods to delete")
    parser.add_argument("--timeout", type=float, required=True, help="seconds until giving up")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    config.load_incluster_config()
    try:
        return cleanup(client.AppsV1Api(), client.BatchV1Api(), client.CoreV1Api(), args)
    except ApiException as exc:
        log(f"cleanup failed: Kubernetes API answered {exc.status} {exc.reason}: {exc.body}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
