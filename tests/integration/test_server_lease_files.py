"""Prefect's tag-limit leases across a server restart, with the lease storage the chart
gives its in-chart server when it has no Redis (`server.leases.persistence`: Prefect's
filesystem lease storage on a claim), against Prefect's default (in memory).

A tag limit's slots are held by leases that Prefect's task engine takes, renews and
releases itself (`tag:<name>` global limits); we cannot re-lease them as our own slots
do. So the server must still know the lease after a restart, or the slot stays taken
with nothing to free it. The calls below are the task engine's own client calls.
"""

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from video_ingest.prefect_api.connection import EmbeddedServer

FILESYSTEM_LEASES = "prefect.server.concurrency.lease_storage.filesystem"  # the chart's server env


def restarted_tag_slots(tmp_path, lease_storage: str | None) -> tuple[int, int, int]:
    """Take 2 slots of a tag limit by lease, restart the server on the same database
    and PREFECT_HOME, then renew and release that lease as the task engine would.
    Returns (renewal status, release status, active slots after)."""
    server_env = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    if lease_storage:
        server_env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] = lease_storage
    server = EmbeddedServer(tmp_path / "server", server_env=server_env)
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.url, PREFECT_CLIENT_MAX_RETRIES: 2}):
            with get_client(sync_client=True) as client:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="tag:restart", limit=2))
                taken = client.increment_concurrency_slots_with_lease(
                    names=["tag:restart"], slots=2, mode="concurrency", lease_duration=300)
                lease_id = taken.json()["lease_id"]
                assert client.read_global_concurrency_limit_by_name("tag:restart").active_slots == 2

                server.stop()
                server.start()

                # The task engine's renew and release, read as statuses (Prefect's client raises on a refusal).
                with httpx.Client(base_url=server.url, timeout=30) as http:
                    renewed = http.post(f"/v2/concurrency_limits/leases/{lease_id}/renew",
                                        json={"lease_duration": 300}).status_code
                    released = http.post("/v2/concurrency_limits/decrement-with-lease",
                                         json={"lease_id": lease_id}).status_code
                left = client.read_global_concurrency_limit_by_name("tag:restart").active_slots
    finally:
        server.stop()
    return renewed, released, left


def test_lease_files_keep_a_tag_limits_leases_through_a_server_restart(tmp_path):
    renewed, released, left = restarted_tag_slots(tmp_path, FILESYSTEM_LEASES)
    assert renewed < 300, f"the restarted server forgot the lease ({renewed})"
    assert released < 300
    assert left == 0, "the released lease's slots are still taken"


def test_in_memory_leases_are_forgotten_by_a_restart_and_their_slots_stay_taken(tmp_path):
    """Why the chart does not leave the default in place: this is the wedge it prevents."""
    renewed, _, left = restarted_tag_slots(tmp_path, None)
    assert renewed >= 400  # 410 Gone in Prefect 3.9
    assert left == 2


@pytest.fixture(autouse=True)
def _no_api_url_from_outside(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
