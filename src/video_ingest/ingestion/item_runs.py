"""One Prefect task run per item, recorded through its state events, without Prefect's task engine.

A Prefect 3 server learns of a task run only from the events its client emits for
each state change; Prefect's task engine makes those events with
`emit_task_run_state_change_event` and hands them to the process's events worker.
`ItemRuns` makes the same events with the same function for each item of a batch,
and runs the item's work itself: Running, then per failed attempt that is retried
AwaitingRetry (with the backoff delay and jitter) and Retrying, then Completed or
Failed. On the server each item is a task run like the engine's: named after its
ID, tagged, with its run count, start and end times, retry policy and final state.

Log lines of the item's run (its retries, its failure, at INFO its success) belong
to its task run; a handler's own log lines (video_ingest.*) to the batch's flow run.

An item's first Running state is recorded once the item has run `running_after`
seconds (1 by default), or just before any later state but Completed: an item that
succeeds sooner at its first attempt is one event, Completed, whose task run still
carries its start and end times and run count. Its Running state said nothing the
Completed one does not, and cost the server almost half its work per item (measured
with real bytes on 2 cores). A slow item shows Running in the UI while it runs; a
failed or retried one keeps its whole history.

What it leaves out is what a batch never used: a Pending state (an item starts the
moment it has its slot, so Pending said nothing), result persistence, caching,
hooks, timeouts, and a tag limit's per-item lease (the batch leases tag limit slots
in blocks instead, see slots.py). Measured on 2 cores, the engine's own work per
item cost more than the whole item's events.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from prefect.client.schemas.objects import TaskRun, TaskRunPolicy
from prefect.logging.loggers import task_run_logger
from prefect.states import AwaitingRetry, Completed, Crashed, Failed, Retrying, Running, format_exception
from prefect.tasks import exponential_backoff
from prefect.utilities.engine import emit_task_run_state_change_event
from prefect.utilities.math import clamped_poisson_interval

from video_ingest.ingestion.handlers import PermanentItemError
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.ingestion.summary import ItemOutcome

TASK_NAME = "process-video"
TASK_KEY = "video_ingest.process_video"
EVENTS_PER_CLEAN_ITEM = 1  # an item that succeeds at its first attempt within RUNNING_AFTER: Completed
RUNNING_AFTER = 1.0  # seconds an item runs before its first Running state is recorded


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and Prefect's clamped-Poisson jitter. Pure but for the jitter."""

    retries: int = 0
    delays: list[float] = field(default_factory=list)  # before retry 1, 2, ...; the last repeats
    jitter: float | None = None

    @classmethod
    def exponential(cls, retries: int, first_delay: float, jitter: float | None) -> "RetryPolicy":
        delays = exponential_backoff(backoff_factor=first_delay)(retries) if retries > 0 else []
        return cls(retries=max(retries, 0), delays=delays, jitter=jitter if first_delay > 0 else None)

    def retries_after(self, failed_attempt: int, error: BaseException) -> bool:
        return failed_attempt <= self.retries and not isinstance(error, PermanentItemError)

    def delay_after(self, failed_attempt: int) -> float:
        if not self.delays:
            return 0.0
        delay = self.delays[min(failed_attempt, len(self.delays)) - 1]
        if self.jitter and delay > 0:
            return float(clamped_poisson_interval(delay, clamping_factor=self.jitter))
        return delay


def failure_message(error: BaseException) -> str:
    return f"Task run encountered an exception {format_exception(error)}"


class ItemRuns:
    """Runs items of one flow run as its task runs; `run` is called from item threads.

    Used as a context manager around the item threads: while open, a thread of its own
    records the Running state of items that have run `running_after` seconds.
    """

    def __init__(self, flow_run, flow, tags: list[str], policy: RetryPolicy, log_successes: bool = False,
                 running_after: float = RUNNING_AFTER):
        self.flow_run, self.flow = flow_run, flow
        self.tags = list(tags)
        self.policy = policy
        self.log_successes = log_successes
        self.running_after = running_after
        self._starting: dict[_TaskRun, float] = {}  # runs whose Running state is unsent: their monotonic start
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> "ItemRuns":
        if self.running_after > 0:
            # In a copy of the flow run's context: its events go where the items' go.
            context = contextvars.copy_context()
            self._watcher = threading.Thread(target=context.run, args=(self._record_long_runs,),
                                             name="item-running", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join()

    def run(self, item: VideoItem, work: Callable[[VideoItem, int], dict[str, Any]]) -> ItemOutcome:
        """Run `work(item, attempt)` until it succeeds, fails permanently or has no retry
        left, recording each state on the server; the item's outcome."""
        run = _TaskRun(self._new_task_run(item.id))
        logger = task_run_logger(run.task_run, flow_run=self.flow_run, flow=self.flow, task_name=TASK_NAME)
        run.enter(Running(), send=self._watcher is None)  # else sent by the watcher, or before a later state
        if self._watcher is not None:
            self._starting[run] = time.monotonic()
        try:
            while True:
                attempt = run.task_run.run_count
                try:
                    value = work(item, attempt)
                except (KeyboardInterrupt, SystemExit) as interrupt:  # the process is going: say so, and go
                    run.enter(Crashed(message=f"Execution was interrupted: {interrupt!r}"))
                    raise
                except Exception as error:  # the item's own failure: recorded, never raised
                    if self.policy.retries_after(attempt, error):
                        delay = self.policy.delay_after(attempt)
                        logger.info("Task run failed with exception: %r - Retry %d/%d will start %s", error, attempt,
                                    self.policy.retries, f"{delay} second(s) from now" if delay else "immediately")
                        if delay > 0:
                            run.enter(AwaitingRetry(
                                scheduled_time=datetime.now(timezone.utc) + timedelta(seconds=delay)))
                            time.sleep(delay)
                        run.enter(Retrying())
                        continue
                    exhausted = (" - Retries are exhausted"
                                 if self.policy.retries and attempt > self.policy.retries else "")
                    logger.error("Task run failed with exception: %r%s", error, exhausted)
                    final = Failed(message=failure_message(error))
                    run.enter(final)
                    return ItemOutcome(item.id, ok=False, state=final.name, attempts=attempt,
                                       detail=final.message[:500])
                done = Completed()
                run.enter(done)
                if self.log_successes:
                    logger.info("Finished in state %s", done)
                return ItemOutcome(item.id, ok=True, state=done.name, attempts=attempt,
                                   detail=str(value.get("action", "")))
        finally:
            self._starting.pop(run, None)

    def _record_long_runs(self) -> None:
        """Record the Running state of every item that has run `running_after` seconds."""
        tick = min(self.running_after / 4, 0.25)
        while not self._closed.wait(tick):
            now = time.monotonic()
            for run, started in list(self._starting.items()):
                if now - started >= self.running_after:
                    run.send_unsent()
                    self._starting.pop(run, None)

    def _new_task_run(self, name: str) -> TaskRun:
        now = datetime.now(timezone.utc)
        task_run_id = uuid.uuid4()
        return TaskRun(
            id=task_run_id, name=name, flow_run_id=self.flow_run.id, task_key=TASK_KEY,
            dynamic_key=f"{TASK_KEY}-{task_run_id.hex}", tags=self.tags, expected_start_time=now,
            empirical_policy=TaskRunPolicy(
                retries=self.policy.retries, retry_delay=list(self.policy.delays) or None,
                retry_jitter_factor=self.policy.jitter,
            ),
            flow_run_run_count=self.flow_run.run_count, created=now, updated=now,
        )


class _TaskRun:
    """A task run (its `state` the last one entered, None before the first) and the last
    event recorded for it (each event follows the one before). A state entered with
    `send=False` is recorded later by `send_unsent`, or before the next state unless
    that is Completed (then never). Entered from its item's thread and, for an unsent
    Running state, from ItemRuns' watcher: one at a time."""

    def __init__(self, task_run: TaskRun):
        self.task_run = task_run
        self.last_event = None
        self.sent_state = None  # the last state recorded on the server
        self.running_since = None
        self._unsent = None
        self._lock = threading.Lock()

    def enter(self, state, send: bool = True) -> None:
        with self._lock:
            if self._unsent is not None and not state.is_completed():
                self._send(self._unsent)
            self._unsent = None
            self._apply(state)
            if send:
                self._send(state)
            else:
                self._unsent = state

    def send_unsent(self) -> None:
        with self._lock:
            if self._unsent is not None:
                self._send(self._unsent)
                self._unsent = None

    def _apply(self, state) -> None:
        task_run = self.task_run
        state.state_details.task_run_id = task_run.id
        state.state_details.flow_run_id = task_run.flow_run_id
        if self.running_since is not None:  # time in Running counts, time awaiting a retry does not
            task_run.total_run_time += state.timestamp - self.running_since
            self.running_since = None
        if state.is_running():
            task_run.run_count += 1
            task_run.start_time = task_run.start_time or state.timestamp
            self.running_since = state.timestamp
        if state.is_final():
            task_run.end_time = state.timestamp
        task_run.state, task_run.state_id = state, state.id
        task_run.state_type, task_run.state_name = state.type, state.name

    def _send(self, state) -> None:
        """Record `state`, the task run's latest: its event carries the task run as it is now."""
        self.last_event = emit_task_run_state_change_event(
            task_run=self.task_run, initial_state=self.sent_state, validated_state=state, follows=self.last_event,
        )
        self.sent_state = state
