"""What the benchmarks read back from the server: the task runs it has recorded
Completed, and the lines in its logs about events it dropped."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

DROP_PATTERN = re.compile(r"dropping|dropped|refusing to publish", re.IGNORECASE)


def count_completed(api_url: str, flow_run_id: str | None, name_like: str | None = None) -> int:
    """Completed task runs of the flow run `flow_run_id` (None: of any), with `name_like`
    in their names if given."""
    body: dict = {"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    if flow_run_id:
        body["flow_runs"] = {"id": {"any_": [flow_run_id]}}
    if name_like:
        body["task_runs"]["name"] = {"like_": name_like}
    response = httpx.post(f"{api_url}/task_runs/count", json=body, timeout=60)
    response.raise_for_status()
    return int(response.json())


def settle(api_url: str, flow_run_id: str | None, expected: int, quiet_for: float = 30.0,
           timeout: float = 3600.0, name_like: str | None = None) -> tuple[int, float]:
    """Wait for the server to record the run's Completed task runs (count_completed's
    selection): all of them, or no progress for `quiet_for` s. Returns how many, and
    when (epoch s) the count last grew."""
    deadline = time.monotonic() + timeout
    last, changed_at = -1, time.time()
    while True:
        count = count_completed(api_url, flow_run_id, name_like)
        if count != last:
            last, changed_at = count, time.time()
        if count >= expected or time.time() - changed_at > quiet_for or time.monotonic() > deadline:
            return count, changed_at
        time.sleep(0.2)


class DropCounter:
    """Counts the server logs' lines about dropped messages or events since the last call."""

    def __init__(self, log_paths: list[Path]):
        self.offsets = {path: 0 for path in log_paths}

    def new_drops(self) -> int:
        found = 0
        for path, offset in self.offsets.items():
            if not path.exists():
                continue
            with open(path, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
                self.offsets[path] = log.tell()
            found += sum(1 for line in text.splitlines() if DROP_PATTERN.search(line))
        return found
