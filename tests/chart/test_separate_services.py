"""server.services.separate: the in-chart server's API without its services, and
the services in a Deployment of their own, the task run recorder in a container
apart from the rest. The containers' service settings are checked against
video_ingest.prefect_api.services, whose lists the unit tier checks against Prefect.
"""

from __future__ import annotations

from video_ingest.prefect_api import services as server_services

from .rendering import CHART, find, helm

SERVICES = "video-ingest-server-services"


def containers(objects: list[dict], deployment: str) -> dict[str, dict]:
    spec = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def env_values(container: dict) -> dict[str, str]:
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"{container['name']} sets a variable twice"
    return {e["name"]: e.get("value") for e in container["env"]}


def test_by_default_the_services_run_inside_the_server(rendered_sets) -> None:
    for name in ("default", "in-chart-redis"):
        objects = rendered_sets[name]
        assert not [o for o in objects if o["metadata"]["name"] == SERVICES], name
        assert "--no-services" not in containers(objects, "video-ingest-server")["server"]["command"]


def test_separate_runs_the_api_alone_and_the_services_in_two_containers(rendered_sets) -> None:
    objects = rendered_sets["everything"]
    assert containers(objects, "video-ingest-server")["server"]["command"][-1] == "--no-services"
    deployment = find(objects, "Deployment", SERVICES)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two schedulers
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-api"]  # the API migrates the database
    found = containers(objects, SERVICES)
    assert sorted(found) == ["services", "task-run-recorder"]
    for container in found.values():
        assert container["command"] == ["prefect", "server", "services", "start"]


def test_the_recorder_container_runs_the_task_run_recorder_alone(rendered_sets) -> None:
    env = env_values(containers(rendered_sets["everything"], SERVICES)["task-run-recorder"])
    wanted = server_services.task_run_recorder_env()
    assert {name: env.get(name) for name in wanted} == wanted


def test_the_services_container_runs_everything_but_the_recorder(rendered_sets) -> None:
    env = env_values(containers(rendered_sets["everything"], SERVICES)["services"])
    for name, value in server_services.other_services_env().items():
        assert env[name] == value
    # server.env still reaches it (everything.yaml switches the scheduler off).
    assert env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] == "false"


def test_services_share_the_servers_database_and_redis_settings(rendered_sets) -> None:
    objects = rendered_sets["everything"]
    api = {e["name"]: e for e in containers(objects, "video-ingest-server")["server"]["env"]}
    for container in containers(objects, SERVICES).values():
        env = {e["name"]: e for e in container["env"]}
        for name in ("PREFECT_SERVER_DATABASE_HOST", "PREFECT_SERVER_DATABASE_PASSWORD", "PREFECT_MESSAGING_BROKER",
                     "PREFECT_REDIS_MESSAGING_HOST", "PREFECT_REDIS_MESSAGING_PASSWORD",
                     "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"):
            assert env[name] == api[name], (container["name"], name)
        assert "PREFECT_SERVER_API_AUTH_STRING" not in env  # the API's alone


def test_postgresql_and_redis_admit_the_services_pod(rendered_sets) -> None:
    objects = rendered_sets["everything"]
    for policy in ("video-ingest-postgresql", "video-ingest-redis"):
        (rule,) = find(objects, "NetworkPolicy", policy)["spec"]["ingress"]
        components = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]}
        assert components == {"server", "server-services"}, policy


def test_separate_with_in_memory_messaging_fails_at_render() -> None:
    result = helm("template", "video-ingest", str(CHART), "--set", "server.services.separate=true", check=False)
    assert result.returncode != 0
    assert "server.services.separate needs server.messaging.broker=redis" in result.stderr
