"""The binding-limit benchmark's arithmetic: how much of a run was at the limit, its
last line, and the arguments it refuses."""

from argparse import Namespace
from datetime import datetime, timedelta, timezone

import pytest

from bench.binding_limit import Round, full_share, parse_args, share_at_or_above, verdict_line

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_share_at_the_limit_counts_only_the_time_that_many_ran_at_once():
    # two runs overlap from 2 s to 4 s of a 10 s span
    intervals = [(at(0), at(4)), (at(2), at(10))]
    assert share_at_or_above(intervals, 2) == pytest.approx(0.2)
    assert share_at_or_above(intervals, 1) == pytest.approx(1.0)
    assert share_at_or_above(intervals, 3) == 0.0
    # a run ending when another starts does not overlap it
    assert share_at_or_above([(at(0), at(5)), (at(5), at(10))], 2) == 0.0
    assert share_at_or_above([], 1) == 0.0


def test_last_line_names_the_limit_the_peak_and_the_cost():
    args = Namespace(processes=3, threads=8)
    limited = Round(limit=8, items=1800, seconds=60.0, max_concurrent=8, at_limit=0.9, recorded_completed=1800,
                    slots_full=0.95)
    unlimited = Round(limit=None, items=1800, seconds=40.0, max_concurrent=24, at_limit=0.5, recorded_completed=1800)
    assert verdict_line(limited, unlimited, args) == (
        "limit=8 processes=3 threads=8 items=1800 max_concurrent=8 slots_full=0.95 at_limit=0.90 items_per_s=30.0"
        " nolimit_items_per_s=45.0 nolimit_max_concurrent=24 cost=0.33"
    )


@pytest.mark.parametrize("bad", [["--limit", "0"], ["--processes", "0"], ["--ms", "-1"], ["--slot-block", "0"]])
def test_bad_arguments_are_refused(bad, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(bad)
    assert stopped.value.code == 2


def test_slots_full_is_the_share_of_samples_with_every_slot_taken():
    assert full_share([8, 8, 7, 8], 8) == 0.75
    assert full_share([], 8) == 0.0


def test_the_comparison_round_holds_the_limits_concurrency_with_threads_alone():
    from bench.binding_limit import same_concurrency_threads

    assert same_concurrency_threads(8, 2) == 4
    assert same_concurrency_threads(8, 3) == 2
    with pytest.raises(SystemExit):
        parse_args(["--limit", "2", "--processes", "3"])
