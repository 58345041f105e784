"""The bytes benchmark's CPU accounting: which process plays which role, and how /proc's
counters read. The /proc texts are written out here as the kernel formats them."""

import os

from bench.cpu_usage import cpu_seconds, machine_busy_seconds, role_of, snapshot, spent

SERVER = ["/work/.venv/bin/python", "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
          "--host", "127.0.0.1", "--port", "4200"]


def test_each_service_process_is_named_by_its_role():
    assert role_of(SERVER, pid=10, own_pid=1) == "prefect server"
    assert role_of(["python", "-m", "prefect", "server", "services", "start"], 10, 1) == "prefect server"
    assert role_of(["/usr/lib/postgresql/15/bin/postgres", "-D", "/tmp/pgdata"], 10, 1) == "postgres"
    assert role_of(["postgres: prefect prefect 127.0.0.1(5012) idle"], 10, 1) == "postgres"
    assert role_of(["/var/cache/video-ingest/bin/weed-v0.0.0", "server", "-dir=/tmp/w", "-s3"], 10, 1) == "s3"
    assert role_of(["python", "-m", "bench.bytes_bench"], pid=7, own_pid=7) == "this process"


def test_processes_playing_no_role_are_left_out():
    # the docker CLI carries its container's command line; the container's process is the server
    assert role_of(["docker", "run", "--rm", "img", "python", *SERVER[1:]], 10, 1) is None
    assert role_of(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/postgres"], 10, 1) is None
    assert role_of(["/usr/bin/python3", "-m", "video_ingest.cli", "run"], 10, 1) is None
    assert role_of([], 10, 1) is None


def test_process_cpu_is_user_plus_system_even_with_spaces_and_parentheses_in_its_name():
    stat = "4242 (weird) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 7 9 20 0 12 0 99 1 2"
    assert cpu_seconds(stat, ticks_per_second=100) == 3.8


def test_machine_busy_is_everything_but_idle_and_iowait():
    proc_stat = "cpu  1000 50 300 9000 200 10 20 5 0 0\ncpu0 500 25 150 4500 100 5 10 2 0 0\n"
    assert machine_busy_seconds(proc_stat, ticks_per_second=100) == (1000 + 50 + 300 + 10 + 20 + 5) / 100


def test_cpu_spent_is_the_difference_and_a_role_new_since_the_first_snapshot_counts_whole():
    assert spent({"s3": 5.0, "machine": 100.0}, {"s3": 7.5, "postgres": 1.0, "machine": 130.0}) == {
        "s3": 2.5, "postgres": 1.0, "machine": 30.0}


def test_a_snapshot_counts_this_process_and_the_machine():
    before = snapshot()
    deadline = os.times().user + 0.2
    while os.times().user < deadline:  # burn a little CPU here
        pass
    used = spent(before, snapshot())
    assert used["this process"] >= 0.1
    assert used["machine"] >= used["this process"] - 0.02
