"""Retries of one item: how many, how long between them, and which failures get none. Pure."""

from video_ingest.ingestion.handlers import PermanentItemError
from video_ingest.ingestion.item_runs import RetryPolicy


def test_backoff_doubles_from_the_first_delay_and_the_last_delay_repeats():
    policy = RetryPolicy.exponential(retries=3, first_delay=2.0, jitter=None)
    assert policy.delays == [2.0, 4.0, 8.0]
    assert [policy.delay_after(attempt) for attempt in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 8.0]


def test_jitter_moves_a_delay_within_its_clamping_factor():
    policy = RetryPolicy.exponential(retries=2, first_delay=10.0, jitter=0.2)
    delays = [policy.delay_after(1) for _ in range(200)]
    assert all(8.0 <= delay <= 12.0 for delay in delays), (min(delays), max(delays))
    assert len(set(delays)) > 1, "no jitter at all"


def test_no_delay_means_an_immediate_retry_and_no_jitter():
    policy = RetryPolicy.exponential(retries=2, first_delay=0.0, jitter=0.2)
    assert policy.delay_after(1) == 0.0 and policy.jitter is None


def test_an_item_is_retried_until_its_retries_are_spent_but_a_permanent_failure_never():
    policy = RetryPolicy.exponential(retries=2, first_delay=0.0, jitter=None)
    assert [policy.retries_after(attempt, RuntimeError("x")) for attempt in (1, 2, 3)] == [True, True, False]
    assert not policy.retries_after(1, PermanentItemError("not a video"))
    assert not RetryPolicy.exponential(retries=0, first_delay=1.0, jitter=None).retries_after(1, RuntimeError())
