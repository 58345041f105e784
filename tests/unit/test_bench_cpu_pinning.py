"""The bytes benchmark's `--server-core`: the Prefect server's CPU apart from the rest,
every thread of a process pinned, and the cases it refuses. Pinning runs for real on a
child process of this test (Linux's sched_setaffinity, read back from /proc)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bytes_bench import parse_args
from bench.cpu_pinning import PinningError, descendants, pin_process, pin_roles, processes_to_pin, split_cpus


def test_the_server_gets_the_highest_cpu_and_everything_else_the_others():
    assert split_cpus({0, 1}) == ({1}, {0})
    assert split_cpus({2, 5, 7}) == ({7}, {2, 5})


def test_a_single_cpu_cannot_be_split():
    with pytest.raises(PinningError, match="at least 2 CPUs"):
        split_cpus({3})


def allowed_cpus(pid: int) -> dict[int, str]:
    """Each thread of the process and the CPUs it may run on, as /proc prints them."""
    allowed = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                allowed[int(task.name)] = line.split(":", 1)[1].strip()
    return allowed


def test_every_thread_of_a_running_process_is_pinned():
    started = ("import sys, threading, time; threading.Thread(target=time.sleep, args=(60,), daemon=True).start();"
               " print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", started], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        target = min(os.sched_getaffinity(0))
        pin_process(Path(f"/proc/{child.pid}"), {target})
        allowed = allowed_cpus(child.pid)
        assert len(allowed) == 2  # the main thread and the sleeping one
        assert set(allowed.values()) == {str(target)}
    finally:
        child.kill()
        child.wait()


def test_pinning_a_role_no_process_plays_is_refused(tmp_path):
    with pytest.raises(PinningError, match="no process to pin for prefect server, postgres"):
        pin_roles(("prefect server", "postgres"), {0}, among={1}, proc=tmp_path)


def test_only_the_benchmarks_own_server_processes_are_pinned(tmp_path):
    processes = {
        100: b"python\0-m\0uvicorn\0--factory\0prefect.server.api.server:create_app\0",  # the benchmark's
        101: b"postgres: prefect prefect 127.0.0.1(5012) idle\0",  # the benchmark's
        4242: b"/usr/lib/postgresql/15/bin/postgres\0-D\0/var/lib/pg\0",  # the machine's own
        4243: b"/var/cache/video-ingest/bin/weed-v0\0server\0-s3\0",  # the benchmark's S3 store
    }
    for pid, cmdline in processes.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)
    chosen = processes_to_pin(("prefect server", "postgres"), among={100, 101, 4243}, proc=tmp_path)
    assert sorted((role, int(entry.name)) for role, entry in chosen) == [("postgres", 101), ("prefect server", 100)]


def test_descendants_are_children_and_their_children():
    script = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],"
              " stdin=subprocess.PIPE); print(child.pid, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(child.stdout.readline())
        assert {child.pid, grandchild} <= descendants(os.getpid())
        assert os.getpid() not in descendants(os.getpid())
    finally:
        child.stdin.close()
        child.wait()


def test_server_core_with_an_image_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--server-core", "--python-image", "video-ingest:dev"])
    assert exited.value.code == 2
    assert "cannot pin an image's containers" in capsys.readouterr().err
