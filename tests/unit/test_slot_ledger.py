import pytest

from video_ingest.ingestion.slots import AllSlots, Lease, SlotLedger


def test_no_slot_can_be_taken_before_a_lease():
    ledger = SlotLedger(cap=8, block=4)
    assert not ledger.take()


def test_slots_of_a_lease_are_handed_out_one_by_one():
    ledger = SlotLedger(cap=8, block=4)
    ledger.add(Lease("a", 4))
    assert [ledger.take() for _ in range(5)] == [True, True, True, True, False]
    assert (ledger.held, ledger.in_use, ledger.free) == (4, 4, 0)


def test_request_sizes_halve_down_to_one_and_respect_cap():
    ledger = SlotLedger(cap=10, block=16)
    assert ledger.request_sizes(wanted=100) == [10, 5, 2, 1]
    ledger.add(Lease("a", 8))
    assert ledger.request_sizes(wanted=100) == [2, 1]


def test_request_is_no_bigger_than_the_items_left():
    assert SlotLedger(cap=64, block=16).request_sizes(wanted=3) == [3, 1]


def test_leases_are_kept_while_items_wait_and_released_after():
    ledger = SlotLedger(cap=8, block=4)
    ledger.add(Lease("a", 4))
    ledger.add(Lease("b", 2))
    for _ in range(6):
        ledger.take()
    for _ in range(5):
        ledger.give_back()
    assert ledger.releasable(still_to_submit=3) == []
    released = ledger.releasable(still_to_submit=0)
    # 5 free slots cover the 2-slot and not also the 4-slot lease (2 + 4 > 5)
    assert [lease.id for lease in released] == ["b"]


def test_giving_back_more_than_taken_is_a_bug():
    with pytest.raises(RuntimeError):
        SlotLedger(cap=1, block=1).give_back()


class CountingSlots:
    """A slot source with `free` slots (a stand-in for LeasedSlots, without a server)."""

    def __init__(self, free: int, retry_after: float = 0.1):
        self.free, self.in_use, self.retry_after, self.closed = free, 0, retry_after, False

    def try_take(self, still_to_submit: int) -> bool:
        if self.in_use < self.free:
            self.in_use += 1
            return True
        return False

    def give_back(self, still_to_submit: int) -> None:
        self.in_use -= 1

    def close(self) -> None:
        self.closed = True


def test_an_item_needs_a_slot_of_every_source_and_a_refusal_gives_the_others_back():

    limit, tag = CountingSlots(free=5), CountingSlots(free=2, retry_after=1.5)
    both = AllSlots([limit, tag])
    assert [both.try_take(10) for _ in range(3)] == [True, True, False]
    assert (limit.in_use, tag.in_use) == (2, 2), "the refused item kept a slot of the first source"
    assert both.retry_after == 1.5
    both.give_back(9)
    assert (limit.in_use, tag.in_use) == (1, 1)
    both.close()
    assert limit.closed and tag.closed
