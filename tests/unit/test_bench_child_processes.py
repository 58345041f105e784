"""The stand-in worker is stopped only once its batch runs' processes have ended:
`wait_for_children` sees a child process whatever its session, and waits for it."""

import subprocess
import sys
import time

from bench.local_services import child_pids, wait_for_children

# A parent that starts one child in a session of its own, prints its PID and waits for it.
PARENT = """
import subprocess, sys
child = subprocess.Popen(["sleep", sys.argv[1]], start_new_session=True)
print(child.pid, flush=True)
child.wait()
"""


def test_a_child_in_its_own_session_is_seen_and_waited_for():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert child_pids(parent.pid) == [child]
        assert wait_for_children(parent.pid, timeout=0.2) is False
        started = time.monotonic()
        assert wait_for_children(parent.pid, timeout=10) is True
        assert time.monotonic() - started < 5
        assert child_pids(parent.pid) == []
    finally:
        parent.kill()
        parent.wait()
