"""The in-chart server's concurrency leases without Redis: in files on a claim.

With broker `memory` the chart sets Prefect's filesystem lease storage and mounts a
ReadWriteOnce claim where that storage writes (PREFECT_HOME/concurrency_leases), so
a restarted server still holds every lease (tests/integration/test_server_lease_files.py
proves what that buys on a real server). With broker `redis` the leases are in Redis
and no claim is made; `server.leases.persistence.enabled=false` is Prefect's default.
"""

from __future__ import annotations

from pathlib import Path

from prefect.server.concurrency.lease_storage import get_concurrency_lease_storage
from prefect.settings import PREFECT_HOME, PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE, temporary_settings

from .rendering import VALUES_DIR, find, render
from .test_redis_messaging import server_container, server_env

CLAIM = "video-ingest-server-leases"


def lease_claims(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == CLAIM]


def test_default_server_keeps_its_leases_in_files_on_a_claim_prefect_writes_to(rendered_sets) -> None:
    objects = rendered_sets["default"]
    (claim,) = lease_claims(objects)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "64Mi"
    deployment = find(objects, "Deployment", "video-ingest-server")["spec"]
    assert deployment["strategy"]["type"] == "Recreate"  # never two pods on the claim
    volumes = {v["name"]: v for v in deployment["template"]["spec"]["volumes"]}
    assert volumes["leases"]["persistentVolumeClaim"]["claimName"] == CLAIM
    mounts = {m["name"]: m["mountPath"] for m in server_container(objects)["volumeMounts"]}

    # The path is where Prefect's own settings put the filesystem storage, in this pod.
    storage_setting = server_env(objects)["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"]["value"]
    assert storage_setting == "prefect.server.concurrency.lease_storage.filesystem"
    with temporary_settings(updates={PREFECT_HOME: mounts["prefect-home"],
                                     PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE: storage_setting}):
        storage = get_concurrency_lease_storage()
    assert Path(mounts["leases"]) == storage.storage_path


def test_leases_in_redis_or_kept_in_memory_on_request_get_no_claim() -> None:
    for args in (("--values", str(VALUES_DIR / "in-chart-redis.yaml")),
                 ("--set", "server.leases.persistence.enabled=false")):
        objects = render(*args)
        assert not lease_claims(objects), args
        mounts = [m["name"] for m in server_container(objects)["volumeMounts"]]
        assert "leases" not in mounts
        storage = server_env(objects).get("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", {}).get("value")
        assert storage in (None, "prefect_redis.lease_storage"), args


def test_lease_claim_takes_a_storage_class_and_size() -> None:
    objects = render("--set", "server.leases.persistence.storageClassName=fast",
                     "--set", "server.leases.persistence.size=1Gi")
    (claim,) = lease_claims(objects)
    assert (claim["spec"]["storageClassName"], claim["spec"]["resources"]["requests"]["storage"]) == ("fast", "1Gi")


def test_no_server_no_lease_claim() -> None:
    assert not lease_claims(render("--values", str(VALUES_DIR / "external-api.yaml")))
