"""Independent checks of concurrency, from what Prefect recorded rather than our counters.

Tests, the benchmark and the e2e suite use these to prove a limit held: each task
run's (or flow run's) recorded start and end time is an interval, and the most
intervals open at one instant is the most that ran at once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Iterable


def max_concurrent(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """The most intervals open at the same instant; an end at t closes before a start at t. Pure."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def read_task_runs_named(client, name_contains: str, expected: int, timeout: float = 90.0) -> list:
    """Task runs whose name contains `name_contains`, once `expected` of them have ended."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    return read_task_runs_until(
        client,
        lambda runs: sum(1 for run in runs if run.end_time is not None and run.start_time is not None) >= expected,
        timeout,
        task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name_contains)),
    )


def read_task_runs_until(client, done: Callable[[list], bool], timeout: float, **filters) -> list:
    """Task runs matching `filters`, read again every half second until `done(runs)` or `timeout`.

    The server records task runs from their events, a little after they happen: a reader
    that expects them all waits here, and gets what was recorded if the time runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        runs = read_all_task_runs(client, **filters)
        if done(runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def every_final(names: Iterable[str]) -> Callable[[list], bool]:
    """A condition for read_task_runs_until: a task run of each of `names` is in a final state. Pure."""
    wanted = set(names)
    return lambda runs: {run.name for run in runs if run.state and run.state.is_final()} >= wanted


def task_run_intervals(task_runs) -> list[tuple[datetime, datetime]]:
    return [(run.start_time, run.end_time) for run in task_runs if run.start_time and run.end_time]


def intervals_in_states(states, types: frozenset[str], now: datetime) -> list[tuple[datetime, datetime]]:
    """Each stretch a run spent in any of `types` (state type values), from its state history. Pure.

    A stretch lasts until the next state of another type, or until `now` while the run is still in it.
    """
    ordered = sorted(states, key=lambda state: state.timestamp)
    intervals = []
    began = None
    for state in ordered:
        inside = state.type.value in types
        if inside and began is None:
            began = state.timestamp
        elif not inside and began is not None:
            intervals.append((began, state.timestamp))
            began = None
    if began is not None:
        intervals.append((began, now))
    return intervals


# The states in which a flow run holds one of its work pool's slots: the server's scheduler counts these.
POOL_SLOT_STATES = frozenset({"PENDING", "RUNNING"})


def batch_runs_of(client, bulk_run_id) -> list:
    """The flow runs a bulk run started (its child runs: the batches), up to 200."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[bulk_run_id])),
        limit=200,
    )


def read_task_runs_of_flow_run(client, flow_run_id) -> list:
    """Every task run the server recorded for one flow run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return read_all_task_runs(client, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def read_all_task_runs(client, **filters) -> list:
    """Every task run matching `filters` (read_task_runs' keywords), paged in a stable order by ID."""
    from prefect.client.schemas.sorting import TaskRunSort

    runs: dict = {}
    offset = 0
    while True:
        page = client.read_task_runs(**filters, sort=TaskRunSort.ID_DESC, limit=200, offset=offset)
        for run in page:
            runs[run.id] = run
        if len(page) < 200:
            return list(runs.values())
        offset += 200
