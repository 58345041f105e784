"""CPU time spent by the processes a benchmark involves, by role, read from /proc (Linux).

On a small machine the variant and the services it talks to share the cores: while
they are busy, CPU that one process spends is time the others wait. So the bytes
benchmark reports, beside each variant's time, what each role spent meanwhile: the
Prefect server, PostgreSQL, the S3 store, the benchmark's own process (the HTTP
source), and the machine as a whole. The variant's own process is counted from its
exit (`resource.getrusage(RUSAGE_CHILDREN)`, in bytes_bench), as it ends before the
second snapshot.

A process that ends between two snapshots takes its time with it; the services here
live for the whole run (PostgreSQL's connections too, pooled by the server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

# Roles by command line: the first whose test passes names the process.
ROLES = (
    # its API (uvicorn) and, laid out apart, its services (`prefect server services start`)
    ("prefect server", lambda argv: ("uvicorn" in argv and any("prefect.server" in arg for arg in argv))
     or argv[-4:] == ["prefect", "server", "services", "start"]),
    ("postgres", lambda argv: bool(argv) and os.path.basename(argv[0].split()[0]).startswith("postgres")),
    ("s3", lambda argv: bool(argv) and os.path.basename(argv[0]).startswith("weed") and "server" in argv),
)


def role_of(argv: list[str], pid: int, own_pid: int) -> str | None:
    """The role of the process with this command line, or None when it plays none."""
    if pid == own_pid:
        return "this process"
    if argv and os.path.basename(argv[0]) == "docker":  # the CLI that started a container, not its process
        return None
    for role, matches in ROLES:
        if matches(argv):
            return role
    return None


def stat_fields(stat_text: str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), which may
    hold spaces and parentheses: the text after its last ")"."""
    return stat_text.rsplit(")", 1)[1].split()


def cpu_seconds(stat_text: str, ticks_per_second: int) -> float:
    """User + system CPU seconds from the text of /proc/PID/stat."""
    fields = stat_fields(stat_text)
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def machine_busy_seconds(proc_stat_text: str, ticks_per_second: int) -> float:
    """CPU seconds all cores have spent on anything but idling, from the text of /proc/stat."""
    # user nice system idle iowait irq softirq steal (guest time is counted inside user)
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(value) for value in proc_stat_text.splitlines()[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / ticks_per_second


def processes_by_role(proc: Path = Path("/proc")) -> Iterator[tuple[str, Path]]:
    """(role, /proc/PID) of every process that plays a role."""
    own = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it ended while being read
            continue
        role = role_of([arg for arg in argv if arg], int(entry.name), own)
        if role:
            yield role, entry


def snapshot(proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU seconds so far of every process with a role, summed by role, plus `machine`."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for role, entry in processes_by_role(proc):
        try:
            totals[role] = totals.get(role, 0.0) + cpu_seconds((entry / "stat").read_text(), ticks)
        except (OSError, IndexError, ValueError):  # it ended while being read
            continue
    totals["machine"] = machine_busy_seconds((proc / "stat").read_text(), ticks)
    return totals


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent by each role between two snapshots."""
    return {role: max(0.0, after[role] - before.get(role, 0.0)) for role in after}
