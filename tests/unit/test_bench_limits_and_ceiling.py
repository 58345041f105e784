"""The benchmark's variants without a limit, and the server's ceiling: which limits
each variant runs under, the two fields they add to the verdict line, and how the
ceiling counts what the server recorded."""

import pytest

from bench.ingest_bench import LIMIT_NAME, TAG_LIMIT_NAME, Row, limits_of, parse_args, verdict_line
from bench.local_services import LAYOUTS, REPO, ImagePython, ServerLayout, ServiceError, running_server
from bench.server_ceiling import CeilingResult, format_ceiling, format_image_ratio
from bench.server_ceiling import parse_args as parse_ceiling_args


def row(variant: str, items: int, items_per_s: float, max_run: int = 8) -> Row:
    return Row(
        variant=variant, items=items, seconds=items / items_per_s, flow_seconds=items / items_per_s,
        items_per_s=items_per_s, peak_rss_mb=100, max_concurrent=max_run, recorded_completed=items,
        dropped_log_lines=0, flow_state="Completed", reported_completed=items,
    )


def test_verdict_line_adds_ours_over_map_without_limit_and_share_of_the_server_ceiling():
    rows = [row("seed", 2000, 14.0), row("map-nolimit", 2000, 100.0), row("ours", 2000, 120.0),
            row("ours-nolimit", 2000, 130.0)]
    assert verdict_line(rows, limit=200, ceiling_events_per_s=400.0) == (
        "ratio_vs_seed=8.57 max_concurrent=8 limit=200 items_per_s=120.0 vs_map_nolimit=1.20 of_server_ceiling=0.90"
    )


def test_verdict_line_compares_against_map_at_the_size_of_the_worst_seed_ratio():
    rows = [row("seed", 2000, 10.0), row("map-nolimit", 2000, 50.0), row("ours", 2000, 100.0),
            row("seed", 5000, 10.0), row("map-nolimit", 5000, 80.0), row("ours", 5000, 60.0)]
    assert " items_per_s=60.0 vs_map_nolimit=0.75 " in verdict_line(rows, limit=200, ceiling_events_per_s=360.0)


def test_verdict_line_says_nan_for_what_was_not_measured():
    line = verdict_line([row("ours", 2000, 100.0)], limit=200)
    assert line.endswith("vs_map_nolimit=nan of_server_ceiling=nan")
    assert line.startswith("ratio_vs_seed=nan ")


def test_ours_without_the_limit_does_not_count_towards_the_verdicts_concurrency():
    rows = [row("ours", 2000, 100.0, max_run=8), row("ours-nolimit", 2000, 110.0, max_run=300)]
    assert "max_concurrent=8 limit=200" in verdict_line(rows, limit=200)


@pytest.mark.parametrize("variant, tag_limit, global_limit", [
    ("seed", 200, None), ("map", 200, None), ("ours", None, 200),
    ("map-nolimit", None, None), ("ours-nolimit", None, None), ("events-only", None, None),
])
def test_only_the_limited_variants_run_under_a_limit(variant, tag_limit, global_limit):
    assert limits_of(variant, 200) == {TAG_LIMIT_NAME: tag_limit, LIMIT_NAME: global_limit}


def test_every_variant_runs_by_default():
    assert parse_args([]).variants == ["seed", "map", "map-nolimit", "ours", "ours-nolimit", "events-only"]


def test_ceiling_counts_three_events_for_each_task_run_the_server_recorded_completed():
    result = CeilingResult(layout="chart-separate", items=2000, senders=4, send_seconds=5.0, seconds=20.0,
                           recorded_completed=1800, dropped_log_lines=1)
    assert result.events_per_s == 270.0
    assert result.dropped == 201
    assert format_ceiling(result) == (
        "server_ceiling layout=chart-separate events_per_s=270 items=2000 recorded=1800 dropped=201"
        " seconds=20.0 sent_in=5.0 senders=4 server=host python="
    )


def test_image_ratio_is_the_second_servers_events_per_s_over_the_first():
    common = dict(layout="chart-separate", items=2000, senders=4, send_seconds=5.0, recorded_completed=2000,
                  dropped_log_lines=0)
    before = CeilingResult(seconds=20.0, server="video-ingest:py311", python="3.11.2", **common)  # 300 events/s
    after = CeilingResult(seconds=15.0, server="video-ingest:dev", python="3.13.5", **common)  # 400 events/s
    assert format_image_ratio(before, after) == (
        "server_image_ratio layout=chart-separate before=video-ingest:py311 python_before=3.11.2"
        " after=video-ingest:dev python_after=3.13.5 ratio=1.33"
    )


def test_python_from_an_image_gets_our_settings_by_name_on_the_hosts_network(tmp_path):
    command = ImagePython("video-ingest:dev", tmp_path)({"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql://x",
                                                        "VIDEO_INGEST_HANDLER": "synthetic", "PYTHONPATH": "/repo",
                                                        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:8333",
                                                        "HOME": "/root", "PATH": "/usr/bin"})
    assert command[:2] == ["docker", "run"] and command[-2:] == ["video-ingest:dev", "python"]
    assert "--network" in command and command[command.index("--network") + 1] == "host"
    # values stay in the environment docker inherits; only names are passed, and never the host's HOME or PATH
    passed = [command[i + 1] for i, arg in enumerate(command) if arg == "-e"]
    assert passed == ["AWS_ENDPOINT_URL_S3", "PREFECT_API_DATABASE_CONNECTION_URL", "PYTHONPATH",
                      "VIDEO_INGEST_HANDLER"]
    assert f"{tmp_path}:{tmp_path}" in command  # the scratch directory at the same path
    assert f"{REPO}:{REPO}:ro" in command  # bench.* read from the repository, never written
    assert f"video-ingest-bench={tmp_path}" in command  # the label remove_containers finds


def test_prefect_defaults_layout_is_sqlite_in_memory_unbatched_in_one_process():
    assert LAYOUTS["default"] == ServerLayout(postgres=False, redis=False, batching=False, separate_services=False)


def test_separate_services_without_redis_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(ServiceError, match="need Redis"):
        with running_server(ServerLayout(redis=False, separate_services=True), tmp_path / "server"):
            pass
    assert not (tmp_path / "server").exists()


@pytest.mark.parametrize("argv", [["--layouts", "default,fastest"], ["--layouts", ","], ["--items", "0"],
                                  ["--senders", "0"], ["--server-images", ","],
                                  ["--server-images", "video-ingest:dev,video-ingest:dev"]])
def test_ceiling_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_ceiling_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err
