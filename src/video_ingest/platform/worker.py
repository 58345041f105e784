"""The chart's worker: prefect-kubernetes' worker, reading its work pool again before it starts runs.

Prefect's worker keeps a copy of its work pool (the job template: image, env with the
`ingest.*` settings, secrets, resources) and refreshes it when the server pushes a new
one over the worker's websocket, or on its heartbeat when that channel is down. After a
`helm upgrade` that restarts the server and changes the template in one step (say a
new `ingest.destination`), the channel is down while `video-ingest apply` writes the
new template, and the heartbeat loop is backing off from the restart: the worker went on
starting the next runs' Jobs with the old template for up to a minute (seen in CI: a
submit right after such an upgrade ran its batches with the previous handler).

This worker reads the pool from the server after it has found runs to start and
before it builds their Jobs. A run found there was created before that read, so a run
created after `apply` returned always gets the template `apply` wrote. The read costs
one API call per poll that found runs; when it fails the poll fails and the runs stay
Scheduled for the next one, as with any other failed poll.

It registers under Prefect's worker type "kubernetes" (the registry keeps the newest
class for a type), so `prefect worker start --type kubernetes` in this process starts it
with all of Prefect's options, health server and signal handling.
"""

from __future__ import annotations

import sys
import warnings

from prefect_kubernetes.worker import KubernetesWorker

with warnings.catch_warnings():
    # Prefect warns that this class takes over the type "kubernetes": that is the point.
    warnings.simplefilter("ignore", UserWarning)

    class FreshPoolKubernetesWorker(KubernetesWorker):
        """prefect-kubernetes' worker that reads its work pool after finding runs to start."""

        async def _get_scheduled_flow_runs(self):
            runs = await super()._get_scheduled_flow_runs()
            if runs:
                self._record_work_pool_snapshot(await self.client.read_work_pool(self._work_pool_name))
            return runs


def prefect_worker_args(pool: str, name: str | None) -> list[str]:
    """The `prefect` command line that starts this worker for `pool`. Pure."""
    args = ["worker", "start", "--type", FreshPoolKubernetesWorker.type, "--pool", pool, "--with-healthcheck"]
    return args + (["--name", name] if name else [])


def start(pool: str, name: str | None = None) -> None:
    """Run Prefect's `worker start` in this process, where the type resolves to this worker."""
    from prefect.cli import app

    sys.argv = ["prefect", *prefect_worker_args(pool, name)]
    app()
