"""Throughput of N no-op items with a concurrency limit enforced: the seed pattern,
Prefect's `.map` and our `ingest-batch`, on one PostgreSQL-backed Prefect server.

    python -m bench.ingest_bench --sizes 2000,5000,20000      (make bench)
    python -m bench.ingest_bench --sizes 2000                 (make bench-quick)

For each size it runs every variant in a process of its own against the same server
and the same item IDs, then asks the server, not the variant, what happened:

* items/s: items over the time from the flow's start until the server had recorded
  every item Completed (task run states reach the server as events, so an item
  counts once it is observable there; the process's start-up is not counted). The
  flow call's own wall time is shown beside it. The ratio is ours over the seed
  pattern at the same size;
* peak RSS of the flow process (its ru_maxrss);
* max concurrent: the most task runs whose recorded [start, end] intervals overlap,
  read back from the server for that flow run: an observer independent of our slot
  counter;
* dropped events: lines in which the server says it dropped a message or an event,
  plus items whose Completed task run never reached the database.

The seed pattern and `.map` are capped by a `video-ingest` tag limit (their way);
ours by a `video-ingest` global limit that its batch leases in blocks. The tag limit
is removed while ours runs, since our items carry the tag for observability.

The last line is `ratio_vs_seed=R max_concurrent=M limit=L items_per_s=X` for the
worst size (lowest ratio), M the most any of our runs had at once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bench.local_services import Postgres, Redis, redis_messaging_env
from video_ingest.observer import max_concurrent, read_task_runs_of_flow_run, task_run_intervals
from video_ingest.prefect_api import EmbeddedServer

LIMIT_NAME = "video-ingest"
TAG_LIMIT_NAME = f"tag:{LIMIT_NAME}"
DROP_PATTERN = re.compile(r"dropping|dropped|refusing to publish", re.IGNORECASE)
RESULTS_DIR = Path(__file__).parent / "results"

# Prefect's task run recorder writes each task run event in a transaction of its own
# by default (batch size 1): three per item. Batched, the server keeps up with
# thousands of items; the chart sets the same (server.services in values.yaml).
SERVER_BATCHING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}


@dataclass
class Row:
    variant: str
    items: int
    seconds: float  # from the flow's start until the server had recorded every item
    flow_seconds: float  # the flow call alone, in the flow's process
    items_per_s: float
    peak_rss_mb: float
    max_concurrent: int
    recorded_completed: int
    dropped_log_lines: int
    flow_state: str
    reported_completed: int | None

    @property
    def dropped(self) -> int:
        return self.dropped_log_lines + (self.items - self.recorded_completed)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,5000,20000", help="item counts, comma-separated")
    parser.add_argument("--variants", default="seed,map,ours", help="which of seed, map, ours to run")
    parser.add_argument("--limit", type=int, default=200, help="the concurrency limit every variant runs under")
    parser.add_argument("--max-inflight", type=int, default=200, help="our in-flight window per batch")
    parser.add_argument(
        "--threads", type=int, default=8,
        help="our batch's task-run threads (VIDEO_INGEST_MAX_WORKERS); no-op items are CPU-bound: few threads win",
    )
    parser.add_argument("--slot-block", type=int, default=50, help="slots our batch leases per server call")
    parser.add_argument(
        "--redis", action=argparse.BooleanOptionalAction, default=True,
        help="server messaging on Redis (default) or in memory (Prefect's default, which drops under load)",
    )
    parser.add_argument(
        "--server-batching", action=argparse.BooleanOptionalAction, default=True,
        help="batched writes in the server's task run recorder and event persister (default) or Prefect's defaults",
    )
    parser.add_argument(
        "--separate-services", action=argparse.BooleanOptionalAction, default=True,
        help="the server's background services apart from its API, the task run recorder in a process of its own"
             " (default, as the chart's server.services.separate; needs --redis)",
    )
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",") if size]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs at least one positive item count")
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = set(args.variants) - {"seed", "map", "ours"}
    if unknown or not args.variants:
        parser.error(f"--variants takes seed, map and ours, not {','.join(sorted(unknown)) or 'nothing'}")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.separate_services and not args.redis:
        parser.error("--separate-services needs --redis: in-memory messaging does not reach another process")
    return args


def set_limit(api_url: str, name: str, limit: int | None) -> None:
    """Make the global concurrency limit `name` exist with `limit` slots, or not exist (None)."""
    with httpx.Client(base_url=api_url, timeout=30) as http:
        found = http.get(f"/v2/concurrency_limits/{name}")
        if found.status_code == 200:
            http.delete(f"/v2/concurrency_limits/{name}").raise_for_status()
        if limit is not None:
            http.post("/v2/concurrency_limits/", json={"name": name, "limit": limit}).raise_for_status()


def count_completed(api_url: str, flow_run_id: str) -> int:
    body = {
        "flow_runs": {"id": {"any_": [flow_run_id]}},
        "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    response = httpx.post(f"{api_url}/task_runs/count", json=body, timeout=60)
    response.raise_for_status()
    return int(response.json())


def settle(api_url: str, flow_run_id: str, expected: int, quiet_for: float = 30.0,
           timeout: float = 3600.0) -> tuple[int, float]:
    """Wait for the server to record the run's Completed task runs: all of them, or no
    progress for `quiet_for` s. Returns how many, and when (epoch s) the count last grew."""
    deadline = time.monotonic() + timeout
    last, changed_at = -1, time.time()
    while True:
        count = count_completed(api_url, flow_run_id)
        if count != last:
            last, changed_at = count, time.time()
        if count >= expected or time.time() - changed_at > quiet_for or time.monotonic() > deadline:
            return count, changed_at
        time.sleep(0.2)


def observed_max_concurrent(api_url: str, flow_run_id: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            runs = read_task_runs_of_flow_run(client, flow_run_id)
    return max_concurrent(task_run_intervals(runs))


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


def run_one(variant: str, count: int, api_url: str, args, workdir: Path, drops: DropCounter) -> Row:
    if variant == "ours":
        set_limit(api_url, TAG_LIMIT_NAME, None)
        set_limit(api_url, LIMIT_NAME, args.limit)
    else:
        set_limit(api_url, LIMIT_NAME, None)
        set_limit(api_url, TAG_LIMIT_NAME, args.limit)
    out = workdir / f"{variant}-{count}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(workdir / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
        VIDEO_INGEST_HANDLER="synthetic",
        VIDEO_INGEST_RETRIES="3",
        VIDEO_INGEST_SLOT_LIMIT=LIMIT_NAME,
        VIDEO_INGEST_MAX_INFLIGHT=str(args.max_inflight),
        VIDEO_INGEST_SLOT_BLOCK=str(args.slot_block),
        VIDEO_INGEST_MAX_WORKERS=str(args.threads),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    drops.new_drops()
    subprocess.run(
        [sys.executable, "-m", "bench.variants", variant, str(count), str(out)],
        env=env, check=True, stdout=sys.stderr,
    )
    result = json.loads(out.read_text())
    recorded, recorded_at = settle(api_url, result["flow_run_id"], count)
    seconds = recorded_at - result["started_at"]
    return Row(
        variant=variant,
        items=count,
        seconds=seconds,
        flow_seconds=result["flow_seconds"],
        items_per_s=count / seconds,
        peak_rss_mb=result["peak_rss_mb"],
        max_concurrent=observed_max_concurrent(api_url, result["flow_run_id"]),
        recorded_completed=recorded,
        dropped_log_lines=drops.new_drops(),
        flow_state=result["flow_state"],
        reported_completed=result["reported_completed"],
    )


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


def format_row(row: Row, seed: Row | None) -> str:
    ratio = f"{row.items_per_s / seed.items_per_s:6.2f}x" if seed else "      -"
    return (
        f"{row.variant:5} {row.items:>6} {row.items_per_s:9.1f} {ratio} {row.flow_seconds:7.1f}"
        f" {row.seconds:7.1f} {row.peak_rss_mb:8.0f}"
        f" {row.max_concurrent:8} {row.recorded_completed:>9} {row.dropped:>7}  {row.flow_state}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="video-ingest-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # PostgreSQL runs as its own user below it
    facts = machine()
    print(f"# {facts['cores']} cores, {facts['cpu']}, Python {facts['python']}, prefect {facts['prefect']},"
          f" load {facts['load_avg_at_start']:.2f}; limit {args.limit}; our threads {args.threads};"
          f" server messaging {'Redis' if args.redis else 'in memory'},"
          f" {'batched' if args.server_batching else 'default'} recorder writes,"
          f" services {'apart from the API, the task run recorder alone' if args.separate_services else 'in the API process'};"
          f" work in {workdir}", flush=True)
    postgres, redis, server = Postgres(workdir / "postgres"), None, None
    rows: list[Row] = []
    try:
        postgres.start()
        server_env = dict(SERVER_BATCHING) if args.server_batching else {}
        if args.redis:
            redis = Redis(workdir / "redis")
            redis.start()
            server_env.update(redis_messaging_env(redis))
        server = EmbeddedServer(workdir / "prefect-server", database_url=postgres.url, server_env=server_env,
                                separate_services=args.separate_services)
        server.start()
        drops = DropCounter(server.log_paths)
        print("variant  items   items/s  vs seed  flow s  total s  RSS(MB)  max run  recorded dropped  flow state",
              flush=True)
        for count in args.sizes:
            seed = None
            for variant in args.variants:
                row = run_one(variant, count, server.url, args, workdir, drops)
                rows.append(row)
                seed = row if variant == "seed" else seed
                print(format_row(row, seed if variant != "seed" else None), flush=True)
    finally:
        for service in (server, redis, postgres):
            if service:
                service.stop()
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"{stamp}.json").write_text(json.dumps(
        {"machine": facts, "args": {k: v for k, v in vars(args).items()},
         "rows": [{**asdict(row), "dropped": row.dropped} for row in rows]},
        indent=2,
    ))
    return print_verdict(rows, args.limit)


def print_verdict(rows: list[Row], limit: int) -> int:
    ours = [row for row in rows if row.variant == "ours"]
    seeds = {row.items: row for row in rows if row.variant == "seed"}
    if not ours:
        return 0
    if seeds:
        worst = min((row for row in ours if row.items in seeds),
                    key=lambda row: row.items_per_s / seeds[row.items].items_per_s)
        ratio = f"{worst.items_per_s / seeds[worst.items].items_per_s:.2f}"
    else:
        worst, ratio = ours[0], "nan"
    peak = max(row.max_concurrent for row in ours)
    print(f"ratio_vs_seed={ratio} max_concurrent={peak} limit={limit} items_per_s={worst.items_per_s:.1f}")
    return 1 if peak > limit else 0


if __name__ == "__main__":
    sys.exit(main())
