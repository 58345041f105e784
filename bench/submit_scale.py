"""A very large submission through `video-ingest submit`, accounted to the item.

    python -m bench.submit_scale --items 100001          (make scale-submit)

The cluster's parts stand in on one machine, as in the integration tests: a Prefect
server laid out as the chart's (PostgreSQL, Redis, services apart), the items' global
limit, a process work pool whose job template env holds the cluster's ingest settings,
the ingest-batch deployment on it, and Prefect's process worker, which runs each batch
run as a subprocess where the Kubernetes worker starts a Job. The submitter runs the
README's command with nothing set but the API URL and the deployment's name.

Three accounts of one run are then compared:
  * submit's JSON summary;
  * the server's task runs: one per item, each run once and Completed;
  * the batch runs: all Completed, and how many there were.

The last line is `items=N succeeded=S failed=F task_runs=T distinct_items=D
run_once=R batch_runs=B batches_completed=C seconds=X items_per_s=Y`; the exit status
is 1 unless S = D = R = T = N and every batch run Completed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.ingest_bench import LIMIT_NAME
from bench.local_services import LAYOUTS, process_batch_pool, running_server
from bench.records import RESULTS_DIR, last_json_line, machine, utc_stamp
from bench.server_readback import settle
from video_ingest.prefect_api.connection import ensure_global_limit


@dataclass(frozen=True)
class Accounts:
    items: int
    summary: dict
    task_runs: int
    distinct_items: int
    run_once: int
    completed: int
    batch_states: dict[str, int]

    @property
    def batch_runs(self) -> int:
        return sum(self.batch_states.values())

    def problems(self) -> list[str]:
        """What does not add up, in words; empty when every account agrees. Pure."""
        found = []
        if self.summary.get("total") != self.items:
            found.append(f"summary total {self.summary.get('total')} != {self.items} items")
        if self.summary.get("succeeded") != self.items:
            found.append(f"summary succeeded {self.summary.get('succeeded')} != {self.items}")
        for name, value in (("task runs", self.task_runs), ("distinct items", self.distinct_items),
                            ("task runs run once", self.run_once), ("task runs Completed", self.completed)):
            if value != self.items:
                found.append(f"{name} {value} != {self.items}")
        not_completed = {state: n for state, n in self.batch_states.items() if state != "COMPLETED"}
        if not_completed:
            found.append(f"batch runs not Completed: {not_completed}")
        return found


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_001)
    parser.add_argument("--batch-size", type=int, default=500, help="the chart's ingest.batchSize")
    parser.add_argument("--pool-limit", type=int, default=3, help="batch runs at once (the work pool's limit)")
    parser.add_argument("--limit", type=int, default=200, help="the items' global limit")
    parser.add_argument("--layout", default="chart-separate", choices=sorted(LAYOUTS))
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds the submission may take")
    return parser.parse_args(argv)


def read_accounts(client, items: int, prefix: str, summary: dict) -> Accounts:
    """The server's task runs named `prefix...` and the batch runs, read page by page."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterName

    from video_ingest.prefect_api.observer import read_all_task_runs

    runs = read_all_task_runs(client, task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=prefix)))
    batches, offset = [], 0
    while True:
        page = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="-batch-")),
                                     limit=200, offset=offset)
        batches += page
        offset += len(page)
        if len(page) < 200:
            break
    return Accounts(
        items=items, summary=summary, task_runs=len(runs), distinct_items=len({run.name for run in runs}),
        run_once=sum(1 for run in runs if run.run_count == 1),
        completed=sum(1 for run in runs if run.state and run.state.is_completed()),
        batch_states=dict(collections.Counter(run.state.type.value for run in batches if run.state)),
    )


def verdict_line(accounts: Accounts, seconds: float) -> str:
    return (f"items={accounts.items} succeeded={accounts.summary.get('succeeded')}"
            f" failed={accounts.summary.get('failed')} task_runs={accounts.task_runs}"
            f" distinct_items={accounts.distinct_items} run_once={accounts.run_once}"
            f" batch_runs={accounts.batch_runs} batches_completed={accounts.batch_states.get('COMPLETED', 0)}"
            f" seconds={seconds:.0f} items_per_s={accounts.items / seconds if seconds > 0 else 0:.1f}")


def main(argv: list[str] | None = None) -> int:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="video-ingest-scale-"))
    workdir.chmod(0o755)  # PostgreSQL runs as its own user below it
    prefix = f"scale{int(time.time()) % 100000}-"
    with running_server(LAYOUTS[args.layout], workdir / "server") as server:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIDEO_INGEST_"))}
        pool_env = {"VIDEO_INGEST_HANDLER": "synthetic", "VIDEO_INGEST_BATCH_SIZE": str(args.batch_size),
                    "VIDEO_INGEST_RETRY_DELAY": "0", "VIDEO_INGEST_LOG_LEVEL": "WARNING"}
        worker_env = {**base, "PREFECT_API_URL": server.url, "PREFECT_HOME": str(workdir / "worker-home"), **pool_env}
        with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
            ensure_global_limit(LIMIT_NAME, args.limit)
            with process_batch_pool(client, "scale", worker_env, pool_env, pool_limit=args.pool_limit,
                                    worker_log=workdir / "worker.log") as deployment:
                ids_file = workdir / "ids.txt"
                ids_file.write_text("".join(f"{prefix}{n:06d}\n" for n in range(args.items)))
                submitter_env = {**base, "PREFECT_API_URL": server.url,
                                 "PREFECT_HOME": str(workdir / "submit-home"),
                                 "VIDEO_INGEST_BATCH_DEPLOYMENT": deployment}
                began = time.monotonic()
                with open(workdir / "submit.err", "w") as err:
                    done = subprocess.run([sys.executable, "-m", "video_ingest.cli", "submit", "--ids-file",
                                           str(ids_file), "--json"], env=submitter_env, stdout=subprocess.PIPE,
                                          stderr=err, text=True, timeout=args.timeout)
                seconds = time.monotonic() - began
                summary = last_json_line(done.stdout)
                # submit returns once the batch runs are Completed, while their processes
                # may still be sending their items' last events (Prefect drains them at
                # exit): read once the server has them all, before the worker and its
                # processes are stopped.
                settle(server.url, None, args.items, name_like=prefix)
                accounts = read_accounts(client, args.items, prefix, summary)
    line = verdict_line(accounts, seconds)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"submit-scale-{utc_stamp()}.json").write_text(json.dumps(
        {"machine": machine(), "args": vars(args), "exit": done.returncode, "summary": summary,
         "batch_states": accounts.batch_states, "verdict": line}, indent=2))
    problems = accounts.problems()
    for problem in problems:
        print(f"submit-scale: {problem}", file=sys.stderr)
    print(f"submit exited {done.returncode}; its progress and errors: {workdir / 'submit.err'}", file=sys.stderr)
    print(line)
    return 1 if problems or done.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
