import pytest

from video_ingest.platform.config import ConfigError, load_config, parse_config

VALID = {
    "workPool": {
        "name": "video-ingest",
        "concurrencyLimit": 4,
        "queues": [{"name": "default", "priority": 1}, {"name": "bulk", "concurrencyLimit": 1}],
        "jobTemplate": {"image": "video-ingest:0.1.0", "finishedJobTtl": 600},
    },
    "concurrencyLimits": {"tags": {"video-ingest": 200}, "global": {"partner-api": {"limit": 5, "slotDecayPerSecond": 1}}},
    "deployments": [{"name": "ingest-batch", "flow": "ingest-batch", "workQueue": "default"}],
}


def with_change(path: list, value):
    import copy

    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_valid_config_parses():
    config = parse_config(VALID)
    assert config.work_pool.concurrency_limit == 4
    assert config.concurrency_limits.global_["partner-api"].slot_decay_per_second == 1.0


@pytest.mark.parametrize("value", [-1, "7", "abc", 1.5, True])
def test_pool_limit_must_be_a_non_negative_integer(value):
    with pytest.raises(ConfigError, match="workPool.concurrencyLimit"):
        parse_config(with_change(["workPool", "concurrencyLimit"], value))


@pytest.mark.parametrize("value", [-1, "abc", True])
def test_tag_limit_must_be_a_non_negative_integer(value):
    with pytest.raises(ConfigError, match="concurrencyLimits.tags"):
        parse_config(with_change(["concurrencyLimits", "tags"], {"video-ingest": value}))


def test_null_limits_are_allowed_to_clear():
    config = parse_config(with_change(["workPool", "concurrencyLimit"], None))
    assert config.work_pool.concurrency_limit is None


def test_unknown_key_is_refused_by_name():
    with pytest.raises(ConfigError, match="workPool.concurrencyLimt: unknown key"):
        parse_config(with_change(["workPool", "concurrencyLimt"], 3))


def test_deployment_queue_must_exist():
    data = with_change(["deployments"], [{"name": "x", "flow": "ingest-batch", "workQueue": "nope"}])
    with pytest.raises(ConfigError, match="queue 'nope'"):
        parse_config(data)


def test_duplicate_queue_names_are_refused():
    with pytest.raises(ConfigError, match="unique"):
        parse_config(with_change(["workPool", "queues"], [{"name": "a"}, {"name": "a"}]))


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("workPool:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "none.yaml")


def test_crash_after_must_be_at_least_twice_the_flow_runs_heartbeat():
    at_default = with_change(["unresponsiveRuns"], {"crashAfterSeconds": 359})
    with pytest.raises(ConfigError, match="at least twice their heartbeat, 180 s"):
        parse_config(at_default)
    assert parse_config(with_change(["unresponsiveRuns"], {"crashAfterSeconds": 360})).unresponsive_runs
    faster = with_change(["workPool", "jobTemplate", "env"], {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"})
    faster["unresponsiveRuns"] = {"crashAfterSeconds": 60}
    assert parse_config(faster).heartbeat_seconds == 30
    faster["unresponsiveRuns"] = {"crashAfterSeconds": 59}
    with pytest.raises(ConfigError, match="unresponsiveRuns.crashAfterSeconds"):
        parse_config(faster)


@pytest.mark.parametrize("value", ["29", "thirty", "-60", "60.5", ""])
def test_flow_run_heartbeat_must_be_whole_seconds_of_at_least_thirty(value):
    data = with_change(["workPool", "jobTemplate", "env"], {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": value})
    with pytest.raises(ConfigError, match="PREFECT_FLOWS_HEARTBEAT_FREQUENCY must be a whole number"):
        parse_config(data)


def test_unresponsive_runs_may_be_null_to_remove_and_absent_to_leave_alone():
    assert parse_config(VALID).unresponsive_runs is None
    removed = parse_config(with_change(["unresponsiveRuns"], {"crashAfterSeconds": None}))
    assert removed.unresponsive_runs.crash_after_seconds is None
    with pytest.raises(ConfigError, match="unresponsiveRuns.crashAfterSeconds: Field required"):
        parse_config(with_change(["unresponsiveRuns"], {}))
