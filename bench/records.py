"""What a benchmark run records beside its numbers: the machine it ran on, and where
its results go (bench/results/, one JSON file a run)."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "prefect": version("prefect"),
        "load_avg_at_start": os.getloadavg()[0],
    }


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def last_json_line(stdout: str) -> dict:
    """The JSON object a child process printed last (our CLI's --json summary, a
    variant's result), or {} when it printed nothing."""
    lines = stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}
