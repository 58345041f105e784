"""The benchmark's report: what it counts as dropped, and the verdict line CI reads."""

import pytest

from bench.ingest_bench import DropCounter, Row, parse_args, print_verdict


def row(variant: str, items: int, items_per_s: float, max_run: int = 10, recorded: int | None = None) -> Row:
    return Row(
        variant=variant, items=items, seconds=items / items_per_s, flow_seconds=items / items_per_s,
        items_per_s=items_per_s, peak_rss_mb=100,
        max_concurrent=max_run, recorded_completed=items if recorded is None else recorded,
        dropped_log_lines=0, flow_state="Completed", reported_completed=items,
    )


def test_verdict_reports_the_worst_ratio_and_the_highest_concurrency(capsys):
    rows = [
        row("seed", 2000, 20.0), row("ours", 2000, 200.0, max_run=30),
        row("seed", 5000, 20.0), row("ours", 5000, 150.0, max_run=60),
    ]
    assert print_verdict(rows, limit=200) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "ratio_vs_seed=7.50 max_concurrent=60 limit=200 items_per_s=150.0 vs_map_nolimit=nan of_server_ceiling=nan"
    )


def test_verdict_fails_when_any_of_our_runs_went_over_the_limit(capsys):
    rows = [row("seed", 100, 10.0), row("ours", 100, 50.0, max_run=201)]
    assert print_verdict(rows, limit=200) == 1
    assert "max_concurrent=201 limit=200" in capsys.readouterr().out


def test_the_floor_and_ours_own_events_come_as_shares_of_the_ceiling_before_the_verdict(capsys):
    rows = [row("map-nolimit", 2000, 60.0), row("ours", 2000, 90.0, max_run=8), row("events-only", 2000, 120.0)]
    assert print_verdict(rows, limit=200, ceiling_events_per_s=450.0) == 0
    assert capsys.readouterr().out.strip().splitlines() == [
        "events_floor items=2000 items_per_s=120.0 of_server_ceiling=0.80 ours_of_floor=0.75 map-nolimit_of_floor=0.50",
        "ours_events items=2000 events_per_item=1 events_per_s=90 of_server_ceiling=0.20",
        "ratio_vs_seed=nan max_concurrent=8 limit=200 items_per_s=90.0 vs_map_nolimit=1.50 of_server_ceiling=0.60",
    ]


def test_items_missing_from_the_database_count_as_dropped():
    lost = row("ours", 5000, 100.0, recorded=4999)
    lost.dropped_log_lines = 2
    assert lost.dropped == 3


def test_drop_counter_counts_only_lines_written_since_the_last_call(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("Subscription queue is full, dropping message for topic='events'\nall good\n")
    counter = DropCounter([log])
    assert counter.new_drops() == 1
    with open(log, "a") as handle:
        handle.write("Event queue full (50000/50000), dropping event id=1\nDropping event 2 after 5 failed attempts\n")
    assert counter.new_drops() == 2
    assert counter.new_drops() == 0


def test_drop_counter_reads_every_server_process_log(tmp_path):
    api, services = tmp_path / "server.log", tmp_path / "services.log"
    api.write_text("Subscription queue is full, dropping message\n")
    counter = DropCounter([api, services])  # services.log is written once its process starts
    assert counter.new_drops() == 1
    services.write_text("Event queue full (50000/50000), dropping event id=1\n")
    assert counter.new_drops() == 1


@pytest.mark.parametrize("argv", [
    ["--sizes", "2k"], ["--sizes", "0"], ["--variants", "seed,fast"], ["--limit", "0"],
    ["--no-redis"],  # separate services (the default) need Redis
])
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err
