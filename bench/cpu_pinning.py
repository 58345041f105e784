"""The Prefect server on a core of its own, the rest of the benchmark on the others (Linux).

On a cluster the Prefect server and its PostgreSQL run in pods of their own (the
chart's `server.*`), on CPU the ingest Jobs do not share. On a 2-core machine the
bytes benchmark runs them beside the data plane (the variant's process, the S3
store, the HTTP source), so the server's CPU for ours' items slows ours' items too,
while the plain pool has no server to pay for. With `--server-core` the server and
PostgreSQL get the machine's last CPU and everything else the others, for both
variants alike: ours then pays, on the data plane's cores, only what orchestration
costs the process that runs the items; the server's own CPU per item is reported
beside it.

Affinity is per thread: a process is pinned by pinning each of its threads, and a
thread or process started later inherits its creator's (PostgreSQL forks each
connection from the pinned postmaster).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.cpu_usage import processes_by_role
from bench.local_services import child_pids

SERVER_ROLES = ("prefect server", "postgres")


class PinningError(RuntimeError):
    """The CPUs cannot be split, or a process could not be pinned; the message says why."""


def split_cpus(available: set[int]) -> tuple[set[int], set[int]]:
    """(the server's CPUs, everyone else's) out of `available`: the highest one for the server."""
    if len(available) < 2:
        raise PinningError(f"--server-core needs at least 2 CPUs, this process may use {sorted(available)}")
    server = {max(available)}
    return server, set(available) - server


def pin_process(proc_entry: Path, cpus: set[int]) -> None:
    """Every thread of the process at /proc/PID may run on `cpus` only."""
    for task in (proc_entry / "task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def descendants(pid: int) -> set[int]:
    """The processes `pid` started, and theirs, and so on."""
    found: set[int] = set()
    parents = [pid]
    while parents:
        children = [child for parent in parents for child in child_pids(parent) if child not in found]
        found.update(children)
        parents = children
    return found


def processes_to_pin(roles: tuple[str, ...], among: set[int], proc: Path = Path("/proc")) -> list[tuple[str, Path]]:
    """(role, /proc/PID) of each process among the PIDs `among` that plays one of `roles`:
    another benchmark's server or the machine's own PostgreSQL is not among them."""
    return [(role, entry) for role, entry in processes_by_role(proc) if role in roles and int(entry.name) in among]


def pin_roles(roles: tuple[str, ...], cpus: set[int], among: set[int], proc: Path = Path("/proc")) -> dict[str, int]:
    """Pin each process `processes_to_pin` names to `cpus`; how many were pinned, by role.
    A role with no process is an error: its server is not running here."""
    pinned = dict.fromkeys(roles, 0)
    for role, entry in processes_to_pin(roles, among, proc):
        try:
            pin_process(entry, cpus)
        except FileNotFoundError:  # the process ended meanwhile
            continue
        pinned[role] += 1
    missing = [role for role, count in pinned.items() if not count]
    if missing:
        raise PinningError(f"no process to pin for {', '.join(missing)}")
    return pinned
