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
