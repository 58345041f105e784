"""The scale run's accounting: the three accounts of one submission must agree item
for item, and its last line says what each one counted."""

from bench.submit_scale import Accounts, verdict_line

GOOD_SUMMARY = {"total": 1000, "succeeded": 1000, "failed": 0, "failed_ids": []}


def accounts(**changes) -> Accounts:
    fields = dict(items=1000, summary=GOOD_SUMMARY, task_runs=1000, distinct_items=1000, run_once=1000,
                  completed=1000, batch_states={"COMPLETED": 2})
    fields.update(changes)
    return Accounts(**fields)


def test_accounts_that_agree_item_for_item_have_no_problem():
    assert accounts().problems() == []


def test_an_item_run_twice_lost_or_unfinished_is_named():
    assert accounts(task_runs=1001, run_once=999).problems() == [
        "task runs 1001 != 1000", "task runs run once 999 != 1000"]
    assert "distinct items 999 != 1000" in accounts(distinct_items=999).problems()
    assert accounts(completed=998).problems() == ["task runs Completed 998 != 1000"]


def test_a_summary_that_counts_other_items_or_a_batch_not_completed_is_named():
    short = {"total": 1000, "succeeded": 999, "failed": 1}
    assert accounts(summary=short).problems() == ["summary succeeded 999 != 1000"]
    assert accounts(summary={}).problems() == ["summary total None != 1000 items", "summary succeeded None != 1000"]
    crashed = {"COMPLETED": 1, "CRASHED": 1}
    assert accounts(batch_states=crashed).problems() == ["batch runs not Completed: {'CRASHED': 1}"]


def test_last_line_counts_every_account_and_the_rate():
    line = verdict_line(accounts(batch_states={"COMPLETED": 2, "FAILED": 1}), seconds=50)
    assert line == ("items=1000 succeeded=1000 failed=0 task_runs=1000 distinct_items=1000 run_once=1000"
                    " batch_runs=3 batches_completed=2 seconds=50 items_per_s=20.0")
