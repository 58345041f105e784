import json

import pytest

from video_ingest.ingestion.handlers import PermanentItemError
from video_ingest.ingestion.handlers.synthetic import SyntheticFailure, SyntheticHandler, parse_directives
from video_ingest.ingestion.manifest import VideoItem


def test_flaky_item_fails_its_first_k_attempts_then_succeeds():
    handler = SyntheticHandler()
    item = VideoItem("clip-7#flaky=2")
    for attempt in (1, 2):
        with pytest.raises(SyntheticFailure):
            handler.process(item, attempt)
    assert handler.process(item, 3).action == "processed"


def test_fail_item_fails_on_every_attempt():
    handler = SyntheticHandler()
    for attempt in range(1, 6):
        with pytest.raises(SyntheticFailure):
            handler.process(VideoItem("clip-8#fail"), attempt)


def test_directives_combine():
    assert parse_directives("flaky=1,ms=250") == parse_directives("ms=250,flaky=1")
    assert parse_directives("flaky=1,ms=250").ms == 250


@pytest.mark.parametrize("bad", ["flaky=x", "explode", "ms=", "fail=1"])
def test_unknown_directives_are_caught_before_running(bad):
    handler = SyntheticHandler()
    assert handler.check(VideoItem(f"c#{bad}")) is not None
    with pytest.raises(PermanentItemError):
        handler.process(VideoItem(f"c#{bad}"), 1)


def test_with_a_destination_each_item_is_recorded_once_and_then_skipped(tmp_path):
    handler = SyntheticHandler(destination=str(tmp_path))
    assert handler.process(VideoItem("clip-1"), 1).action == "ingested"
    assert handler.process(VideoItem("clip-1"), 1).action == "skipped"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip-1.attempts", "clip-1.done"]
    assert len((tmp_path / "clip-1.attempts").read_text().splitlines()) == 1


def test_two_attempts_that_both_did_the_work_leave_two_attempt_lines(tmp_path):
    # Two pods racing on one item: both pass the "already done?" check, both work;
    # only one gets the .done record, but the attempts file shows both.
    first, second = SyntheticHandler(destination=str(tmp_path)), SyntheticHandler(destination=str(tmp_path))
    assert first._record(VideoItem("clip-2"), 1).action == "ingested"
    assert second._record(VideoItem("clip-2"), 1).action == "skipped"
    lines = [json.loads(line) for line in (tmp_path / "clip-2.attempts").read_text().splitlines()]
    assert [line["attempt"] for line in lines] == [1, 1]


def test_mem_holds_that_much_resident_memory_while_it_works():
    from video_ingest.ingestion.handlers.synthetic import _hold_memory

    def resident_mib() -> float:
        status = open("/proc/self/status").read()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    assert parse_directives("mem=64,ms=5").mem == 64
    before = resident_mib()
    held = _hold_memory(200)
    grown = resident_mib() - before
    del held
    assert grown >= 190, f"resident memory grew by {grown:.0f} MiB for mem=200"
