"""A limit that binds: several of our batch processes at once, each with more threads
than the limit has slots, items of a few ms, one global limit between them all.

    python -m bench.binding_limit                  (make bench-binding)

It runs the same number of items twice on one server (the chart's layout:
PostgreSQL, Redis, services apart), `--processes` batch processes at once each time:
first with `--threads` threads each under the `video-ingest` global limit of
`--limit` slots; then with no limit and the limit's concurrency made by threads
instead (limit / processes threads each): what an ideal limiter would allow. Then it
asks the server, not our slot counter, how many task runs were Running at once across
all the processes (their recorded [start, end] intervals).

While the limited round runs, the limit's slots in use are sampled from the server
every 0.1 s: the share of samples with every slot taken says how much the limit bound.

A limit held exactly binds (its slots are all taken most of the time) and is never
passed: max_concurrent, from the task runs' own intervals, is at most the limit. What
it costs is the limited round's items/s against the round whose threads alone hold
the same concurrency.

The last line is `limit=L processes=P threads=T items=N max_concurrent=M
slots_full=F at_limit=S items_per_s=X nolimit_items_per_s=Y nolimit_max_concurrent=K
cost=C`, S the share of the run with L task runs Running at once; the exit status
is 1 when M passed L or an item was not recorded.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.ingest_bench import LIMIT_NAME, TAG_LIMIT_NAME, observed_intervals, set_limit, variant_env
from bench.local_services import LAYOUTS, running_server
from bench.records import RESULTS_DIR, machine, utc_stamp
from bench.server_readback import settle
from video_ingest.prefect_api.observer import max_concurrent


@dataclass
class Round:
    limit: int | None
    items: int
    seconds: float  # from the first process's flow start until the server had recorded every item
    max_concurrent: int
    at_limit: float  # share of the run with `limit` (or, unlimited, max_concurrent) task runs Running
    recorded_completed: int
    slots_full: float | None = None  # share of the server's samples with every slot of the limit taken

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=8,
                        help="slots of the global limit (well below processes x threads)")
    parser.add_argument("--processes", type=int, default=2, help="batch processes running at once")
    parser.add_argument("--items", type=int, default=600, help="items per process")
    parser.add_argument("--threads", type=int, default=8, help="task-run threads per process")
    parser.add_argument("--ms", type=int, default=5, help="synthetic work per item, ms")
    parser.add_argument("--slot-block", type=int, default=4, help="slots a batch leases per server call")
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.limit < args.processes:
        parser.error("--limit must be at least --processes (the comparison round runs limit / processes threads each)")
    for name in ("limit", "processes", "items", "threads", "slot_block"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.ms < 0:
        parser.error("--ms must be 0 or more")
    return args


def share_at_or_above(intervals: list[tuple[datetime, datetime]], level: int) -> float:
    """The share of the time from the first start to the last end during which at least
    `level` intervals were open. Pure."""
    if not intervals:
        return 0.0
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    running, since, held = 0, None, 0.0
    for at, step in events:
        before = running
        running += step
        if before < level <= running:
            since = at
        elif running < level <= before and since is not None:
            held += (at - since).total_seconds()
            since = None
    span = (events[-1][0] - events[0][0]).total_seconds()
    return held / span if span > 0 else 0.0


def run_round(api_url: str, limit: int | None, threads: int, args, workdir: Path, tag: str) -> Round:
    set_limit(api_url, TAG_LIMIT_NAME, None)
    set_limit(api_url, LIMIT_NAME, limit)
    env = variant_env(api_url, workdir, limited=limit is not None, max_inflight=threads * 4,
                      slot_block=args.slot_block, threads=threads)
    outs = [workdir / f"{tag}-{n}.json" for n in range(args.processes)]
    sampler = SlotSampler(api_url, LIMIT_NAME, limit) if limit is not None else None
    processes = [
        subprocess.Popen([sys.executable, "-m", "bench.variants", "ours", str(args.items), str(out),
                          f"{tag}{n}", str(args.ms)], env=env, stdout=sys.stderr)
        for n, out in enumerate(outs)
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a batch process exited {process.returncode}")
    slots_full = sampler.stop() if sampler else None
    results = [json.loads(out.read_text()) for out in outs]
    recorded, last_at = 0, 0.0
    intervals = []
    for result in results:
        count, at = settle(api_url, result["flow_run_id"], args.items)
        recorded, last_at = recorded + count, max(last_at, at)
        intervals += observed_intervals(api_url, result["flow_run_id"])
    peak = max_concurrent(intervals)
    return Round(
        limit=limit,
        items=args.items * args.processes,
        seconds=last_at - min(result["started_at"] for result in results),
        max_concurrent=peak,
        at_limit=share_at_or_above(intervals, limit if limit is not None else peak),
        recorded_completed=recorded,
        slots_full=slots_full,
    )


class SlotSampler:
    """Samples a global limit's active slots from the server every `every` s, in a thread."""

    def __init__(self, api_url: str, name: str, limit: int, every: float = 0.1):
        import threading

        self.samples: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api_url, name, every), daemon=True)
        self.limit = limit
        self._thread.start()

    def _run(self, api_url: str, name: str, every: float) -> None:
        import httpx

        with httpx.Client(base_url=api_url, timeout=10) as http:
            while not self._done.wait(every):
                try:
                    self.samples.append(int(http.get(f"/v2/concurrency_limits/{name}").json()["active_slots"]))
                except (httpx.HTTPError, KeyError, ValueError):
                    continue

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return full_share(self.samples, self.limit)


def full_share(samples: list[int], limit: int) -> float:
    """The share of samples with every slot taken. Pure."""
    return sum(1 for used in samples if used >= limit) / len(samples) if samples else 0.0


def verdict_line(limited: Round, unlimited: Round, args) -> str:
    cost = 1 - limited.items_per_s / unlimited.items_per_s if unlimited.items_per_s else float("nan")
    return (f"limit={limited.limit} processes={args.processes} threads={args.threads} items={limited.items}"
            f" max_concurrent={limited.max_concurrent} slots_full={limited.slots_full or 0.0:.2f}"
            f" at_limit={limited.at_limit:.2f}"
            f" items_per_s={limited.items_per_s:.1f} nolimit_items_per_s={unlimited.items_per_s:.1f}"
            f" nolimit_max_concurrent={unlimited.max_concurrent} cost={cost:.2f}")


def same_concurrency_threads(limit: int, processes: int) -> int:
    """Threads per process that hold `limit` task runs at most across `processes`, without a limit. Pure."""
    return max(1, limit // processes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="video-ingest-binding-"))
    layout = LAYOUTS["chart-separate"]
    facts = machine()
    print(f"# {facts['cores']} cores, {facts['cpu']}, Python {facts['python']}, prefect {facts['prefect']},"
          f" load {facts['load_avg_at_start']:.2f}; {args.processes} processes x {args.threads} threads,"
          f" {args.items} items of {args.ms} ms each; server: {layout.describe()}; work in {workdir}", flush=True)
    with running_server(layout, workdir) as server:
        limited = run_round(server.url, args.limit, args.threads, args, workdir, "bound")
        print(f"limit {args.limit}: {limited.items_per_s:.1f} items/s, max {limited.max_concurrent} running,"
              f" every slot taken in {limited.slots_full or 0.0:.0%} of the samples,"
              f" {limited.at_limit:.0%} of the run with {args.limit} running, {limited.recorded_completed} recorded",
              flush=True)
        threads = same_concurrency_threads(args.limit, args.processes)
        unlimited = run_round(server.url, None, threads, args, workdir, "free")
        print(f"no limit, {threads} threads each: {unlimited.items_per_s:.1f} items/s,"
              f" max {unlimited.max_concurrent} running, {unlimited.recorded_completed} recorded", flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{utc_stamp()}-binding.json").write_text(json.dumps(
        {"machine": facts, "args": vars(args), "rounds": [vars(limited), vars(unlimited)]}, indent=2, default=str))
    print(verdict_line(limited, unlimited, args))
    dropped = limited.items - limited.recorded_completed + unlimited.items - unlimited.recorded_completed
    return 1 if limited.max_concurrent > args.limit or dropped else 0


if __name__ == "__main__":
    sys.exit(main())
