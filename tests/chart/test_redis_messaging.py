"""The server's messaging: in memory by default, Redis (prefect-redis) on request.

With `server.messaging.broker=redis` the in-chart server gets the settings that
move Prefect's broker, cache, causal ordering and concurrency leases to Redis:
the in-chart Redis (`redis.enabled`, hardened, password generated) or an
existing one (`server.messaging.redis.host`, password from a Secret). Settings
that name no Redis, or one that nothing would use, fail at render time.
"""

from __future__ import annotations

import base64
import importlib

import pytest
import yaml

from .rendering import CHART, VALUES_DIR, find, helm, render

REDIS_MESSAGING_MODULES = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}


def server_container(objects: list[dict]) -> dict:
    spec = find(objects, "Deployment", "video-ingest-server")["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "server"]
    return container


def server_env(objects: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in server_container(objects)["env"]}


def init_containers(objects: list[dict]) -> dict[str, dict]:
    spec = find(objects, "Deployment", "video-ingest-server")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", [])}


def redis_objects(objects: list[dict]) -> list[tuple[str, str]]:
    return [
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"
    ]


def redis_pod(objects: list[dict]) -> dict:
    return find(objects, "Deployment", "video-ingest-redis")["spec"]["template"]["spec"]


def render_failure(*args: str) -> str:
    result = helm("template", "video-ingest", str(CHART), "--namespace", "video-ingest", *args, check=False)
    assert result.returncode != 0, f"helm template {' '.join(args)} rendered"
    return result.stderr


def test_default_keeps_messaging_in_memory_with_no_redis(rendered_sets) -> None:
    """(Its concurrency leases are in files on a claim: test_server_lease_files.py.)"""
    objects = rendered_sets["default"]
    assert not redis_objects(objects)
    env = server_env(objects)
    assert not [name for name in env if "MESSAGING" in name or "REDIS" in name]
    assert "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING" not in env
    assert set(init_containers(objects)) == {"wait-for-database"}


def test_in_chart_redis_runs_hardened_and_keeps_its_leases_in_an_append_only_file_on_a_claim(rendered_sets) -> None:
    objects = rendered_sets["in-chart-redis"]
    assert sorted(redis_objects(objects)) == [
        ("Deployment", "video-ingest-redis"),
        ("NetworkPolicy", "video-ingest-redis"),
        ("PersistentVolumeClaim", "video-ingest-redis"),
        ("Secret", "video-ingest-redis"),
        ("Service", "video-ingest-redis"),
    ]
    deployment = find(objects, "Deployment", "video-ingest-redis")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = redis_pod(objects)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["image"] == "redis:7-bookworm"
    assert container["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    # Every write in the append-only file before Redis answers (no RDB snapshots), on the claim:
    # a restarted Redis still holds every lease.
    assert ' --save "" --appendonly yes --appendfsync always "$@" - <<EOF' in container["command"][2]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (data,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
    assert volumes[data["name"]]["persistentVolumeClaim"] == {"claimName": "video-ingest-redis"}
    claim = find(objects, "PersistentVolumeClaim", "video-ingest-redis")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "helm.sh/resource-policy" not in (claim["metadata"].get("annotations") or {})


def test_in_chart_redis_without_persistence_keeps_nothing_on_disk() -> None:
    objects = render("--values", str(VALUES_DIR / "in-chart-redis.yaml"), "--set", "redis.persistence.enabled=false")
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim" and "redis" in o["metadata"]["name"]]
    (container,) = redis_pod(objects)["containers"]
    assert ' --save "" --appendonly no "$@" - <<EOF' in container["command"][2]
    volumes = {v["name"]: v for v in redis_pod(objects)["volumes"]}
    assert "emptyDir" in volumes["data"]
    for probe in ("livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[0] == "redis-cli" and command[-1] == "ping" and "-e" in command, probe


def test_server_messaging_uses_the_in_chart_redis_with_its_generated_password(rendered_sets) -> None:
    objects = rendered_sets["in-chart-redis"]
    env = server_env(objects)
    for name, module in REDIS_MESSAGING_MODULES.items():
        assert env[name]["value"] == module
    assert env["PREFECT_REDIS_MESSAGING_HOST"]["value"] == "video-ingest-redis"
    assert env["PREFECT_REDIS_MESSAGING_PORT"]["value"] == "6379"
    assert env["PREFECT_REDIS_MESSAGING_DB"]["value"] == "0"
    secret_ref = {"name": "video-ingest-redis", "key": "password"}
    assert env["PREFECT_REDIS_MESSAGING_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret_ref
    # Redis requires the same password, by reference: the pod spec never holds it.
    (container,) = redis_pod(objects)["containers"]
    redis_env = {e["name"]: e for e in container["env"]}
    assert redis_env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == secret_ref
    # ... and reads it on its standard input: no command line holds it, nor a $(VAR) that
    # Kubernetes would expand into the container's runtime spec.
    script = container["command"][2]
    assert container["command"][:2] == ["/bin/sh", "-c"] and "requirepass $REDISCLI_AUTH\nEOF" in script
    assert script.startswith("exec redis-server ") and script.splitlines()[0].endswith(" - <<EOF")
    assert "REDISCLI_AUTH" not in " ".join(container["command"][3:] + container.get("args", []))
    assert "$(" not in yaml.safe_dump(container)
    secret = find(objects, "Secret", "video-ingest-redis")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) >= 32
    assert "helm.sh/resource-policy" not in (secret["metadata"].get("annotations") or {})
    # Each render generates a new password: look for this one in this render.
    text = yaml.safe_dump_all(objects)
    assert text.count(password) == 0 and text.count(secret["data"]["password"]) == 1
    service = find(objects, "Service", "video-ingest-redis")
    assert service["spec"]["ports"] == [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "redis"
    wait = init_containers(objects)["wait-for-redis"]
    assert 'host, port = "video-ingest-redis", 6379' in wait["command"][-1]
    assert wait["securityContext"]["readOnlyRootFilesystem"] is True


def set_server_env(objects: list[dict], monkeypatch) -> None:
    """The server container's plain PREFECT_* values, and a stand-in for the Secret's password."""
    for name, entry in server_env(objects).items():
        if name.startswith("PREFECT_") and "value" in entry:
            monkeypatch.setenv(name, entry["value"])
    monkeypatch.setenv("PREFECT_REDIS_MESSAGING_PASSWORD", "from-the-secret")


def test_server_env_selects_redis_in_prefects_own_settings(rendered_sets, monkeypatch) -> None:
    """The names are checked against Prefect's settings, not against a copy of them."""
    set_server_env(rendered_sets["external-redis"], monkeypatch)
    from prefect.settings import Settings

    settings = Settings()
    assert settings.server.events.messaging_broker == "prefect_redis.messaging"
    assert settings.server.events.messaging_cache == "prefect_redis.messaging"
    assert settings.server.events.causal_ordering == "prefect_redis.ordering"
    assert settings.server.concurrency.lease_storage == "prefect_redis.lease_storage"


def test_server_env_is_the_connection_prefect_redis_reads(rendered_sets, monkeypatch) -> None:
    set_server_env(rendered_sets["external-redis"], monkeypatch)
    from prefect_redis.client import RedisMessagingSettings

    redis = RedisMessagingSettings()
    assert (redis.host, redis.port, redis.db, redis.password) == ("redis.example.com", 6380, 2, "from-the-secret")
    for module in set(REDIS_MESSAGING_MODULES.values()):
        importlib.import_module(module)


def test_existing_redis_gets_its_password_from_the_secret_and_no_in_chart_redis(rendered_sets) -> None:
    objects = rendered_sets["external-redis"]
    assert not redis_objects(objects)
    env = server_env(objects)
    assert env["PREFECT_MESSAGING_BROKER"]["value"] == "prefect_redis.messaging"
    assert env["PREFECT_REDIS_MESSAGING_HOST"]["value"] == "redis.example.com"
    assert env["PREFECT_REDIS_MESSAGING_PORT"]["value"] == "6380"
    assert env["PREFECT_REDIS_MESSAGING_DB"]["value"] == "2"
    assert env["PREFECT_REDIS_MESSAGING_PASSWORD"] == {
        "name": "PREFECT_REDIS_MESSAGING_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "prefect-redis", "key": "redis-password"}},
    }
    assert "wait-for-redis" not in init_containers(objects)


def test_existing_redis_without_a_password_secret_gets_no_password() -> None:
    objects = render("--set", "server.messaging.broker=redis", "--set", "server.messaging.redis.host=10.0.0.7")
    env = server_env(objects)
    assert env["PREFECT_REDIS_MESSAGING_HOST"]["value"] == "10.0.0.7"
    assert "PREFECT_REDIS_MESSAGING_PASSWORD" not in env


def test_in_chart_redis_takes_an_existing_password_secret_and_extra_options(rendered_sets) -> None:
    objects = rendered_sets["everything"]
    assert not [o for o in objects if o["kind"] == "Secret"], "existingSecret: none generated"
    secret_ref = {"name": "media-redis", "key": "password"}
    assert server_env(objects)["PREFECT_REDIS_MESSAGING_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret_ref
    (container,) = redis_pod(objects)["containers"]
    assert {e["name"]: e for e in container["env"]}["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == secret_ref
    # redis.extraArgs reach redis-server as "$@", after the chart's options and before `-`.
    assert container["command"][3:] == ["redis", "--maxmemory", "400mb", "--maxmemory-policy", "noeviction"]


def test_network_policy_lets_only_the_server_reach_redis(rendered_sets) -> None:
    policy = find(rendered_sets["in-chart-redis"], "NetworkPolicy", "video-ingest-redis")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "video-ingest",
        "app.kubernetes.io/instance": "video-ingest",
        "app.kubernetes.io/component": "redis",
    }
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "video-ingest",
        "app.kubernetes.io/instance": "video-ingest",
        "app.kubernetes.io/component": "server",
    }}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    without = render("--set", "server.messaging.broker=redis", "--set", "redis.enabled=true",
                     "--set", "networkPolicy.enabled=false")
    assert not [o for o in without if o["kind"] == "NetworkPolicy"], "networkPolicy.enabled is off"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "server.messaging.broker=kafka"),
         "at '/server/messaging/broker': value must be one of 'memory', 'redis'"),
        (("--set", "server.messaging.broker=redis"),
         "server.messaging.broker=redis needs a Redis: set redis.enabled=true (the in-chart one) "
         "or server.messaging.redis.host (an existing one)"),
        (("--set", "redis.enabled=true"),
         "redis.enabled=true needs server.messaging.broker=redis"),
        (("--set", "server.messaging.broker=redis", "--set", "redis.enabled=true",
          "--set", "server.messaging.redis.host=redis.example.com"),
         "set either redis.enabled=true (the in-chart Redis) or server.messaging.redis.host"),
        (("--set", "server.messaging.broker=redis", "--set", "redis.enabled=true",
          "--set", "server.messaging.redis.db=16"),
         "server.messaging.redis.db is 16: the in-chart Redis has databases 0 to 15"),
        (("--set", "server.messaging.broker=redis", "--set", "server.messaging.redis.host=redis://cache:6379"),
         "at '/server/messaging/redis/host'"),
        (("--set", "server.messaging.redis.port=70000"), "at '/server/messaging/redis/port'"),
        (("--set", "server.messaging.redis.db=-1"), "at '/server/messaging/redis/db'"),
        (("--set", "redis.image.tag=latest"), "at '/redis/image/tag'"),
    ],
    ids=["unknown-broker", "redis-broker-without-redis", "redis-without-redis-broker", "host-and-in-chart",
         "db-beyond-15", "host-is-a-url", "port-out-of-range", "negative-db", "latest-tag"],
)
def test_bad_messaging_settings_fail_at_render_with_a_clear_message(args, message) -> None:
    assert message in render_failure(*args)


def test_server_writes_task_run_and_event_batches_as_values_say(monkeypatch) -> None:
    """Batched consumers by default; the env names are checked against Prefect's settings."""
    objects = render("--set", "server.services.taskRunRecorder.batchSize=500",
                     "--set-json", "server.services.eventPersister.flushIntervalSeconds=0.5")
    set_server_env(objects, monkeypatch)
    from prefect.settings import Settings

    services = Settings().server.services
    recorder, persister = services.task_run_recorder, services.event_persister
    assert (recorder.batch_size, recorder.read_batch_size, recorder.flush_interval) == (500, 100, 1)
    assert (persister.batch_size, persister.read_batch_size, persister.flush_interval) == (200, 100, 0.5)
