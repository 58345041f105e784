"""Item slots against a real Prefect server: the limit stays exact through a server
restart, a lowered limit, a pause (limit 0) and a missing limit. The tests drive the
lease renewals themselves (`renew_once`), so each step happens in a known order.

The server here keeps leases in memory (Prefect's default), so a restart loses
them: the hardest case for the batch, which must notice, lease again before any new
item starts, and give back the slots the lost leases left counted.
"""

import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from video_ingest.ingestion.slots import LeasedSlots, SlotLimitError, item_slots
from video_ingest.prefect_api.connection import EmbeddedServer


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, which the test may stop and start again."""
    server = EmbeddedServer(tmp_path / "server")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(own_server):
    # Two client retries: a call to a stopped server fails after ~6 s instead of ~60 s,
    # and a brief "database is locked" (503) on SQLite is still retried.
    with temporary_settings(updates={PREFECT_API_URL: own_server.url, PREFECT_CLIENT_MAX_RETRIES: 2}):
        with get_client(sync_client=True) as client:
            yield client


def take_within(slots: LeasedSlots, seconds: float, still_to_submit: int) -> bool:
    """Whether a slot is taken within `seconds` (a refused lease is asked again after its Retry-After)."""
    deadline = time.monotonic() + seconds
    while not slots.try_take(still_to_submit=still_to_submit):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def active_slots(client, name: str) -> int:
    return client.read_global_concurrency_limit_by_name(name).active_slots


def test_server_restart_loses_no_slot_and_no_item_starts_until_leases_are_held_again(own_server, api, unique):
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=10))
    slots = LeasedSlots(api, unique, cap=8, block=4, lease_seconds=60, renew_in_background=False)
    try:
        assert all(slots.try_take(still_to_submit=10) for _ in range(3))
        assert active_slots(api, unique) == 4  # one block of 4, 3 of them in use

        own_server.stop()
        slots.renew_once(api)
        assert slots.renewal_failing
        assert not slots.try_take(still_to_submit=7), "an item started while the lease could not be renewed"

        own_server.start()  # same database; the in-memory leases are gone
        assert active_slots(api, unique) == 4, "the lost lease's slots should still be counted (orphaned)"
        slots.renew_once(api)
        assert not slots.renewal_failing
        assert slots.leases_lost == 1 and slots.orphans_returned == 4
        # the replacement lease covers the 3 items still running; the orphans are gone
        assert slots.ledger.held >= slots.ledger.in_use == 3
        assert active_slots(api, unique) == slots.ledger.held

        assert slots.try_take(still_to_submit=7)
        for _ in range(4):
            slots.give_back(still_to_submit=0)
    finally:
        slots.close()
    assert active_slots(api, unique) == 0, "slots left taken after every item gave its slot back"


def test_limit_lowered_below_the_block_then_paused_then_raised_makes_items_wait_not_fail(api, unique):
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=8))
    slots = LeasedSlots(api, unique, cap=8, block=8, lease_seconds=60, renew_in_background=False)
    try:
        api.update_global_concurrency_limit(unique, GlobalConcurrencyLimitUpdate(limit=2))
        assert slots.try_take(still_to_submit=8) and slots.try_take(still_to_submit=7)
        assert not slots.try_take(still_to_submit=6), "took a third slot of a limit of 2"
        assert active_slots(api, unique) == 2

        slots.give_back(still_to_submit=6)
        slots.give_back(still_to_submit=6)
        api.update_global_concurrency_limit(unique, GlobalConcurrencyLimitUpdate(limit=0))  # pause
        assert slots.try_take(still_to_submit=6)  # a slot already leased may still be used...
        assert slots.try_take(still_to_submit=5)
        assert not slots.try_take(still_to_submit=4)  # ...but no new one is leased
        slots.give_back(still_to_submit=4)
        slots.give_back(still_to_submit=0)  # nothing left to submit: the lease goes back...
        time.sleep(LeasedSlots.longest_lease_wait + 0.1)  # past the refused lease's Retry-After: the server is asked
        assert not slots.try_take(still_to_submit=4), "an item started while the limit was 0"
        # ...but Prefect 3.9 refuses to release slots of a limit of 0, so they stay counted
        assert active_slots(api, unique) == 2

        api.update_global_concurrency_limit(unique, GlobalConcurrencyLimitUpdate(limit=3))
        slots.renew_once(api)  # the refused release goes through now
        assert active_slots(api, unique) == 0
        assert take_within(slots, LeasedSlots.longest_lease_wait + 1, still_to_submit=4)  # after Retry-After
        assert active_slots(api, unique) <= 3
        slots.give_back(still_to_submit=0)
    finally:
        slots.close()
    assert active_slots(api, unique) == 0


def test_a_named_limit_that_does_not_exist_or_is_inactive_is_an_error_not_unlimited(api, unique):
    with pytest.raises(SlotLimitError, match="does not exist"):
        with item_slots(unique, cap=4, block=2, lease_seconds=60):
            pass
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=4, active=False))
    with pytest.raises(SlotLimitError, match="inactive"):
        with item_slots(unique, cap=4, block=2, lease_seconds=60):
            pass


def test_a_limit_deleted_mid_run_makes_items_wait(api, unique):
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=4))
    slots = LeasedSlots(api, unique, cap=4, block=2, lease_seconds=60, renew_in_background=False)
    try:
        api.delete_global_concurrency_limit_by_name(unique)
        assert not slots.try_take(still_to_submit=4), "an item started with no limit counting it"
    finally:
        slots.close()


def test_a_lowered_limit_stops_slots_already_leased_and_gives_free_blocks_back(api, unique):
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=8))
    slots = LeasedSlots(api, unique, cap=8, block=2, lease_seconds=60, renew_in_background=False)
    try:
        assert all(slots.try_take(still_to_submit=8) for _ in range(3))  # two leases of 2: 4 held, 3 in use
        assert active_slots(api, unique) == 4
        api.update_global_concurrency_limit(unique, GlobalConcurrencyLimitUpdate(limit=1))
        slots.renew_once(api)  # the renewal sees 4 counted against a limit of 1
        assert not slots.try_take(still_to_submit=5), "handed out a held slot while over the lowered limit"
        for _ in range(2):
            slots.give_back(still_to_submit=5)
        assert active_slots(api, unique) <= 2, "a lease whose slots were all free was kept while over the limit"
        slots.give_back(still_to_submit=5)
        slots.renew_once(api)
        assert active_slots(api, unique) == 0
        assert slots.try_take(still_to_submit=5), "items did not resume once the count was within the limit"
        assert active_slots(api, unique) == 1
        slots.give_back(still_to_submit=0)
    finally:
        slots.close()
    assert active_slots(api, unique) == 0


def test_background_renewal_talks_to_the_api_of_the_thread_that_leased(api, unique):
    # Prefect's temporary settings (an embedded server's URL) live in context variables,
    # which a new thread does not inherit by itself.
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=4))
    slots = LeasedSlots(api, unique, cap=4, block=2, lease_seconds=60, renew_every=0.5)
    try:
        assert slots.try_take(still_to_submit=4)
        deadline = time.monotonic() + 20
        while slots.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slots.renewals >= 2 and not slots.renewal_failing and slots.leases_lost == 0
        slots.give_back(still_to_submit=0)
    finally:
        slots.close()


def test_a_lease_lost_by_a_restart_just_before_its_release_still_gives_its_slots_back(own_server, api, unique):
    # The server answers a release of a lease it no longer knows with 204 and frees nothing.
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=10))
    slots = LeasedSlots(api, unique, cap=4, block=4, lease_seconds=60, renew_in_background=False)
    try:
        assert slots.try_take(still_to_submit=4)
        own_server.stop()
        own_server.start()
        assert active_slots(api, unique) == 4
        slots.give_back(still_to_submit=0)  # the last item: the lease goes back
    finally:
        slots.close()
    assert active_slots(api, unique) == 0 and slots.orphans_returned == 4


def test_a_full_limit_is_not_asked_again_before_its_retry_after(api, unique):
    """While the limit is full, items waiting for a slot cost no server call each: a
    refused lease is asked again only once the server's Retry-After (at most 2 s) has
    passed, and then gets the slots another holder gave back."""
    api.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=unique, limit=2))
    holder = LeasedSlots(api, unique, cap=2, block=2, lease_seconds=60, renew_in_background=False)
    waiter = LeasedSlots(api, unique, cap=2, block=2, lease_seconds=60, renew_in_background=False)
    try:
        assert holder.try_take(still_to_submit=10) and holder.try_take(still_to_submit=9)
        assert not waiter.try_take(still_to_submit=10)
        calls = waiter.lease_calls
        for _ in range(50):  # a busy loop of items waiting for a slot
            assert not waiter.try_take(still_to_submit=10)
        assert waiter.lease_calls == calls, "a full limit was asked again before its Retry-After"
        holder.give_back(still_to_submit=0)
        holder.give_back(still_to_submit=0)  # the holder has nothing left: its lease goes back
        assert take_within(waiter, LeasedSlots.longest_lease_wait + 1, still_to_submit=10), \
            "the waiter did not lease the freed slots after Retry-After"
        assert waiter.lease_calls > calls
    finally:
        holder.close()
        waiter.close()
