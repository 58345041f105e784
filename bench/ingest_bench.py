"""Throughput of N no-op items: the seed pattern, Prefect's `.map` and our
`ingest-batch`, with a concurrency limit enforced and without one, on one
PostgreSQL-backed Prefect server.

    python -m bench.ingest_bench --sizes 2000,5000,20000      (make bench)
    python -m bench.ingest_bench --sizes 2000                 (make bench-quick)

For each size it runs every variant in a process of its own against the same server
and the same item IDs, then asks the server, not the variant, what happened:

* items/s: items over the time from the flow's start until the server had recorded
  every item Completed (task run states reach the server as events, so an item
  counts once it is observable there; the process's start-up is not counted). The
  flow call's own wall time is shown beside it. The ratio is ours over the seed
  pattern at the same size;
* sent s: from the flow's start until its process had sent its last event (the flow
  returns before its events are all sent; the gap is the backlog it still held);
* peak RSS of the flow process (its ru_maxrss);
* max concurrent: the most task runs whose recorded [start, end] intervals overlap,
  read back from the server for that flow run: an observer independent of our slot
  counter;
* dropped events: lines in which the server says it dropped a message or an event,
  plus items whose Completed task run never reached the database.

The seed pattern and `.map` are capped by a `video-ingest` tag limit (their way);
ours by a `video-ingest` global limit that its batch leases in blocks. The tag limit
is removed while ours runs: its items carry the tag, and would lease from it too. Two
variants run with no limit at all, for what a limit costs: `map-nolimit` (`.map`
over the same task without its tag: no limit, no concurrency call) and
`ours-nolimit` (ours with VIDEO_INGEST_SLOT_LIMIT empty: no global limit; its items
keep the tag, with no tag limit on it).

A sixth, `events-only` (bench/events_only.py), runs no task engine and no handler:
each item's three task-run events, made with Prefect's function and sent over the
flow's own websockets. It is the floor under any client that records an item in
Prefect's engine's three events: what the server records while a client makes and
sends nothing but the events. An `events_floor` line before the last one gives it as
a share of the ceiling, and ours and `map-nolimit` as shares of it. Ours records an
item that succeeds at once in two events (no Pending state; item_runs.py), so it can
pass that floor; an `ours_events` line gives the events it sent per second, as a
share of the ceiling.

After the variants, on the same server, the server's ceiling is measured
(bench/server_ceiling.py, `--ceiling-items` task runs sent as events with no flow):
the most task-run events per second it records, three per item.

`--python-image IMAGE` runs the Prefect server and every variant's flow on Python from
a container image instead of this interpreter (the project's image on 3.11 and on 3.13
for `make bench-python`); PostgreSQL, Redis, the ceiling's sender and the readback stay
on this machine.

The last line is `ratio_vs_seed=R max_concurrent=M limit=L items_per_s=X
vs_map_nolimit=R2 of_server_ceiling=F` for the worst size (lowest ratio vs seed),
M the most any of our runs had at once, R2 ours (with the limit) over `map-nolimit`
at that size, F ours' items/s x 3 events over the ceiling's events/s; `nan` where a
variant or the ceiling was not run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.local_services import ImagePython, ServerLayout, python_command, running_server
from bench.records import RESULTS_DIR, machine, utc_stamp
from bench.server_ceiling import EVENTS_PER_ITEM, HOST, format_ceiling, measure_ceiling
from bench.server_readback import DropCounter, settle
from video_ingest.prefect_api.observer import max_concurrent, read_task_runs_of_flow_run, task_run_intervals

LIMIT_NAME = "video-ingest"
TAG_LIMIT_NAME = f"tag:{LIMIT_NAME}"
VARIANTS = ("seed", "map", "map-nolimit", "ours", "ours-nolimit", "events-only")


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
    sent_seconds: float | None = None  # from the flow's start until its process had sent every event

    @property
    def dropped(self) -> int:
        return self.dropped_log_lines + (self.items - self.recorded_completed)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,5000,20000", help="item counts, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"which of {', '.join(VARIANTS)} to run")
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
    parser.add_argument(
        "--ceiling-items", type=int, default=2000,
        help="task runs the server's ceiling is measured with, after the variants (0: not measured)",
    )
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument(
        "--python-image", default=None,
        help="run the Prefect server and every variant's flow on Python from this container image (e.g. the"
             " project's); PostgreSQL, Redis and the readback stay on this machine (default: this interpreter)",
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",") if size]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs at least one positive item count")
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown or not args.variants:
        parser.error(f"--variants takes {', '.join(VARIANTS)}, not {','.join(sorted(unknown)) or 'nothing'}")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.ceiling_items < 0:
        parser.error("--ceiling-items must be 0 or more")
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


def observed_intervals(api_url: str, flow_run_id: str) -> list:
    """The [start, end] of every task run the server recorded for one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            return task_run_intervals(read_task_runs_of_flow_run(client, flow_run_id))


def observed_max_concurrent(api_url: str, flow_run_id: str) -> int:
    return max_concurrent(observed_intervals(api_url, flow_run_id))


def variant_env(api_url: str, workdir: Path, limited: bool, max_inflight: int, slot_block: int,
                threads: int) -> dict[str, str]:
    """The environment of one variant's process: our settings for it, nothing inherited
    from this shell's PREFECT_* or VIDEO_INGEST_*; `limited`: items hold slots of LIMIT_NAME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(workdir / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
        VIDEO_INGEST_HANDLER="synthetic",
        VIDEO_INGEST_RETRIES="3",
        VIDEO_INGEST_SLOT_LIMIT=LIMIT_NAME if limited else "",
        VIDEO_INGEST_MAX_INFLIGHT=str(max_inflight),
        VIDEO_INGEST_SLOT_BLOCK=str(slot_block),
        VIDEO_INGEST_MAX_WORKERS=str(threads),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    return env


def limits_of(variant: str, limit: int) -> dict[str, int | None]:
    """The concurrency limits the server holds while `variant` runs (None: none)."""
    return {
        TAG_LIMIT_NAME: limit if variant in ("seed", "map") else None,
        LIMIT_NAME: limit if variant == "ours" else None,
    }


def run_one(variant: str, count: int, api_url: str, args, workdir: Path, drops: DropCounter,
            python: ImagePython | None = None) -> Row:
    for name, limit in limits_of(variant, args.limit).items():
        set_limit(api_url, name, limit)
    out = workdir / f"{variant}-{count}.json"
    env = variant_env(api_url, workdir, limited=variant == "ours", max_inflight=args.max_inflight,
                      slot_block=args.slot_block, threads=args.threads)
    drops.new_drops()
    subprocess.run(
        [*python_command(python, env), "-m", "bench.variants", variant, str(count), str(out)],
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
        sent_seconds=result["drained_seconds"],
        items_per_s=count / seconds,
        peak_rss_mb=result["peak_rss_mb"],
        max_concurrent=observed_max_concurrent(api_url, result["flow_run_id"]),
        recorded_completed=recorded,
        dropped_log_lines=drops.new_drops(),
        flow_state=result["flow_state"],
        reported_completed=result["reported_completed"],
    )


def format_row(row: Row, seed: Row | None) -> str:
    ratio = f"{row.items_per_s / seed.items_per_s:6.2f}x" if seed else "      -"
    sent = f"{row.sent_seconds:7.1f}" if row.sent_seconds is not None else "      -"
    return (
        f"{row.variant:12} {row.items:>6} {row.items_per_s:9.1f} {ratio} {row.flow_seconds:7.1f} {sent}"
        f" {row.seconds:7.1f} {row.peak_rss_mb:8.0f}"
        f" {row.max_concurrent:8} {row.recorded_completed:>9} {row.dropped:>7}  {row.flow_state}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="video-ingest-bench-"))
    layout = ServerLayout(redis=args.redis, batching=args.server_batching, separate_services=args.separate_services)
    facts = machine()
    print(f"# {facts['cores']} cores, {facts['cpu']}, Python {facts['python']}, prefect {facts['prefect']},"
          f" load {facts['load_avg_at_start']:.2f}; limit {args.limit}; our threads {args.threads};"
          f" server: {layout.describe()}; work in {workdir}", flush=True)
    rows: list[Row] = []
    ceiling = None
    python = ImagePython(args.python_image, workdir) if args.python_image else None
    server_python = python.version() if python else facts["python"]
    if python:
        print(f"# the server and the flows on Python {server_python} from {args.python_image}", flush=True)
    with running_server(layout, workdir, python) as server:
        drops = DropCounter(server.log_paths)
        print("variant       items   items/s  vs seed  flow s  sent s total s  RSS(MB)  max run  recorded dropped"
              "  flow state", flush=True)
        for count in args.sizes:
            seed = None
            for variant in args.variants:
                row = run_one(variant, count, server.url, args, workdir, drops, python)
                rows.append(row)
                seed = row if variant == "seed" else seed
                print(format_row(row, seed if variant != "seed" else None), flush=True)
        if args.ceiling_items:
            ceiling = measure_ceiling(server.url, "this-server", args.ceiling_items, senders=4, drops=drops)
            ceiling.server, ceiling.python = args.python_image or HOST, server_python
            print(format_ceiling(ceiling), flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{utc_stamp()}.json").write_text(json.dumps(
        {"machine": facts, "args": {k: v for k, v in vars(args).items()},
         "rows": [{**asdict(row), "dropped": row.dropped} for row in rows],
         "ceiling": {**asdict(ceiling), "events_per_s": ceiling.events_per_s} if ceiling else None},
        indent=2,
    ))
    return print_verdict(rows, args.limit, ceiling.events_per_s if ceiling else None)


def verdict_line(rows: list[Row], limit: int, ceiling_events_per_s: float | None = None) -> str | None:
    """The last line CI reads, for the worst size (lowest ratio of ours to the seed
    pattern); None when ours did not run."""
    ours = [row for row in rows if row.variant == "ours"]
    if not ours:
        return None
    seeds = {row.items: row for row in rows if row.variant == "seed"}
    maps = {row.items: row for row in rows if row.variant == "map-nolimit"}
    if seeds and any(row.items in seeds for row in ours):
        worst = min((row for row in ours if row.items in seeds),
                    key=lambda row: row.items_per_s / seeds[row.items].items_per_s)
        ratio = f"{worst.items_per_s / seeds[worst.items].items_per_s:.2f}"
    else:
        worst, ratio = ours[0], "nan"
    vs_map = f"{worst.items_per_s / maps[worst.items].items_per_s:.2f}" if worst.items in maps else "nan"
    of_ceiling = (f"{worst.items_per_s * EVENTS_PER_ITEM / ceiling_events_per_s:.2f}"
                  if ceiling_events_per_s else "nan")
    peak = max(row.max_concurrent for row in ours)
    return (f"ratio_vs_seed={ratio} max_concurrent={peak} limit={limit} items_per_s={worst.items_per_s:.1f}"
            f" vs_map_nolimit={vs_map} of_server_ceiling={of_ceiling}")


def floor_lines(rows: list[Row], ceiling_events_per_s: float | None = None) -> list[str]:
    """Per size with an `events-only` run: how fast the floor under any client went,
    as a share of the ceiling, and ours and `.map` with no limit as shares of it."""
    lines = []
    for floor in (row for row in rows if row.variant == "events-only"):
        shares = [f"{variant}_of_floor={row.items_per_s / floor.items_per_s:.2f}"
                  for variant in ("ours", "map-nolimit")
                  for row in rows if row.variant == variant and row.items == floor.items]
        of_ceiling = (f"{floor.items_per_s * EVENTS_PER_ITEM / ceiling_events_per_s:.2f}"
                      if ceiling_events_per_s else "nan")
        lines.append(" ".join([f"events_floor items={floor.items} items_per_s={floor.items_per_s:.1f}",
                               f"of_server_ceiling={of_ceiling}", *shares]))
    return lines


def ours_events_lines(rows: list[Row], ceiling_events_per_s: float | None = None) -> list[str]:
    """Per size, the events ours really sent the server: an item that succeeds at once
    is two (Running, Completed; item_runs.py), not Prefect's engine's three; as a share
    of the ceiling."""
    from video_ingest.ingestion.item_runs import EVENTS_PER_CLEAN_ITEM

    return [f"ours_events items={row.items} events_per_item={EVENTS_PER_CLEAN_ITEM}"
            f" events_per_s={row.items_per_s * EVENTS_PER_CLEAN_ITEM:.0f} of_server_ceiling="
            + (f"{row.items_per_s * EVENTS_PER_CLEAN_ITEM / ceiling_events_per_s:.2f}" if ceiling_events_per_s else "nan")
            for row in rows if row.variant == "ours"]


def print_verdict(rows: list[Row], limit: int, ceiling_events_per_s: float | None = None) -> int:
    """Print the floor lines, ours' own events and the verdict line; non-zero when any
    of our runs with the limit went over it."""
    for line in floor_lines(rows, ceiling_events_per_s) + ours_events_lines(rows, ceiling_events_per_s):
        print(line)
    line = verdict_line(rows, limit, ceiling_events_per_s)
    if line is None:
        return 0
    print(line)
    return 1 if max(row.max_concurrent for row in rows if row.variant == "ours") > limit else 0


if __name__ == "__main__":
    sys.exit(main())
