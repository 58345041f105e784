"""Holding items back while Prefect events wait to be sent, and never hanging on it."""

import concurrent.futures

from video_ingest.ingestion.event_backlog import EventBacklog
from video_ingest.ingestion.flows import run_items
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.slots import UnlimitedSlots
from video_ingest.ingestion.summary import ItemOutcome
from video_ingest.ingestion.window import InflightWindow


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backlog_is_too_high_only_above_its_limit():
    waiting = [0]
    backlog = EventBacklog(100, probe=lambda: waiting[0])
    assert not backlog.too_high()
    waiting[0] = 100
    assert not backlog.too_high()
    waiting[0] = 101
    assert backlog.too_high()
    assert backlog.held_back == 1


def test_a_limit_of_zero_never_holds_back():
    assert not EventBacklog(0, probe=lambda: 10**6).too_high()


def test_a_shrinking_backlog_keeps_holding_back_however_long_it_takes():
    clock, waiting = Clock(), [5000]
    backlog = EventBacklog(100, probe=lambda: waiting[0], stall_seconds=60, clock=clock)
    for _ in range(100):
        clock.now += 10
        waiting[0] -= 10
        assert backlog.too_high()
    assert not backlog.gave_up


def test_a_backlog_that_stops_shrinking_is_given_up_on_once():
    clock = Clock()
    backlog = EventBacklog(100, probe=lambda: 5000, stall_seconds=60, clock=clock)
    assert backlog.too_high()
    clock.now = 59
    assert backlog.too_high()
    clock.now = 61
    assert not backlog.too_high()
    assert backlog.gave_up
    clock.now = 1000
    assert not backlog.too_high()


def done_future(item_id: str) -> concurrent.futures.Future:
    """A finished item: a future of its outcome, as the batch's item threads give."""
    future = concurrent.futures.Future()
    future.set_result(ItemOutcome(item_id, ok=True, state="Completed", attempts=1, detail="ingested"))
    return future


def test_items_wait_while_events_are_backlogged_and_all_run_once_it_drains():
    submitted = []
    backlog_checks = iter([True] * 5 + [False] * 1000)  # backlogged for the first five checks

    def submit(item: VideoItem):
        submitted.append(item.id)
        return done_future(item.id)

    def backlogged() -> bool:
        blocked = next(backlog_checks)
        if blocked:
            assert not submitted, "an item was submitted while events were backlogged"
        return blocked

    outcomes = run_items(
        [VideoItem(f"v{n}") for n in range(20)], submit, InflightWindow(4), UnlimitedSlots(),
        on_outcome=lambda outcome: None, events_backlogged=backlogged,
    )
    assert submitted == [f"v{n}" for n in range(20)]
    assert all(outcome.ok for outcome in outcomes) and len(outcomes) == 20
