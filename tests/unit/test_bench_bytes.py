"""The bytes benchmark's arguments: its Prefect server is laid out as the chart's
default unless told otherwise, and a layout it does not know is refused."""

from pathlib import Path

import pytest
import yaml

from bench.bytes_bench import parse_args
from bench.local_services import LAYOUTS

VALUES = Path(__file__).resolve().parents[2] / "helm" / "video-ingest" / "values.yaml"


def test_default_server_layout_is_the_charts_default():
    server = yaml.safe_load(VALUES.read_text())["server"]
    layout = LAYOUTS[parse_args([]).layout]
    assert layout.redis == (server["messaging"]["broker"] == "redis")
    assert layout.separate_services == server["services"]["separate"]
    assert layout.postgres and layout.batching  # the chart's server always has both


def test_unknown_layout_exits_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--layout", "fastest"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cpu_line_shows_what_the_machine_spent_beyond_the_benchmarks_own_processes():
    from bench.bytes_bench import describe_cpu

    line = describe_cpu({"own": 31.6, "prefect server": 0.7, "postgres": 0.1, "s3": 24.5, "this process": 6.8,
                         "machine": 69.2, "available": 83.7})
    assert "own 31.6, prefect server 0.7, postgres 0.1, s3 24.5, HTTP source (this process) 6.8" in line
    assert "anything else 5.5; machine busy 69.2 of 83.7" in line
