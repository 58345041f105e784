import pytest

from video_ingest.ingestion.batches import split_batches
from video_ingest.ingestion.summary import BatchSummary, ItemOutcome, OutcomeLedger


def test_summary_counts_only_completed_items_as_succeeded():
    summary = BatchSummary.from_outcomes([
        ItemOutcome("a", True, "Completed", detail="ingested"),
        ItemOutcome("b", True, "Completed", detail="skipped"),
        ItemOutcome("c", False, "Failed"),
        ItemOutcome("d", False, "Pending"),
    ])
    assert summary.to_json() == {"total": 4, "succeeded": 2, "failed": 2, "failed_ids": ["c", "d"]}
    assert summary.skipped == 1


def test_a_rerun_outcome_replaces_the_first_and_is_not_counted_twice():
    ledger = OutcomeLedger(["a", "b"])
    ledger.record(ItemOutcome("a", False, "Crashed"))
    ledger.record(ItemOutcome("a", True, "Completed"))
    ledger.record(ItemOutcome("b", True, "Completed"))
    assert ledger.summary().to_json() == {"total": 2, "succeeded": 2, "failed": 0, "failed_ids": []}


def test_items_that_never_finished_count_as_failed():
    ledger = OutcomeLedger(["a", "b", "c"])
    ledger.record(ItemOutcome("b", True, "Completed"))
    assert ledger.unfinished(["a", "b", "c"]) == ["a", "c"]
    assert ledger.summary().failed_ids == ["a", "c"]


def test_an_outcome_for_an_unknown_id_is_refused():
    with pytest.raises(KeyError):
        OutcomeLedger(["a"]).record(ItemOutcome("zzz", True, "Completed"))


def test_markdown_lists_failed_ids():
    text = BatchSummary(total=3, succeeded=1, failed=2, failed_ids=["x", "y"]).to_markdown("t")
    assert "`x`" in text and "`y`" in text and "| 3 | 1 | 2 |" in text


def test_batches_keep_order_and_cover_every_item():
    assert split_batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert split_batches([], 3) == []
    with pytest.raises(ValueError):
        split_batches([1], 0)


def test_a_crashed_or_cancelled_item_stays_unfinished_so_it_runs_again():
    ledger = OutcomeLedger(["a", "b", "c"])
    assert not ledger.record(ItemOutcome("a", ok=False, state="Crashed", detail="ConnectError"))
    assert not ledger.record(ItemOutcome("b", ok=False, state="Cancelled"))
    assert ledger.record(ItemOutcome("c", ok=False, state="Failed", detail="bad"))
    assert ledger.unfinished(["a", "b", "c"]) == ["a", "b"]
    assert ledger.record(ItemOutcome("a", ok=True, state="Completed"))
    summary = ledger.summary()  # b never got a final outcome: reported with its last state
    assert (summary.succeeded, summary.failed_ids) == (1, ["b", "c"])


def test_a_failed_items_reason_names_its_state_attempts_and_why():
    from video_ingest.cli import failure_reason

    assert failure_reason(ItemOutcome("a", ok=False, state="Failed", detail="boom", attempts=3)) == "Failed after 3 attempts: boom"
    assert failure_reason(ItemOutcome("a", ok=False, state="Failed", detail="not a video", attempts=1)) == "Failed after 1 attempt: not a video"
    # a batch that never ran its items: no attempt to speak of
    assert failure_reason(ItemOutcome("a", ok=False, state="NotRun", detail="pod did not start")) == "NotRun: pod did not start"


def test_an_outcome_read_back_from_the_server_counts_its_task_runs_run_count():
    from prefect.states import Completed, Failed, Running

    from video_ingest.ingestion.summary import outcome_from_state

    failed = outcome_from_state("a", Failed(message="source gone"), attempts=4)
    assert (failed.ok, failed.attempts, failed.detail) == (False, 4, "source gone")
    assert outcome_from_state("a", Completed(), attempts=1) == ItemOutcome("a", ok=True, state="Completed", attempts=1)
    stuck = outcome_from_state("a", Running(), attempts=1)
    assert (stuck.ok, stuck.detail) == (False, "ended Running without finishing")


def test_a_summary_survives_its_record_whole():
    summary = BatchSummary(total=5, succeeded=3, failed=2, failed_ids=["b", "d"], skipped=1)
    assert BatchSummary.from_record(summary.to_record()) == summary
    assert set(summary.to_json()) == {"total", "succeeded", "failed", "failed_ids"}  # the CLI's contract
