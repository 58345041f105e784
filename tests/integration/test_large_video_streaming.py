"""A video far larger than a flow-run pod's memory streams through the fetch handler
with bounded memory and no local copy: 2.2 GB over real HTTP (Range-capable, on
loopback) to a destination folder, in a child process whose peak RSS is measured.

The chart's flow-run pods have a 768 Mi..1 Gi memory limit and a 1 Gi /tmp; the
handler must need neither in proportion to the video.
"""

import hashlib
import subprocess
import sys

from tests.videos import make_large_video, serving

SIZE = 2_200_000_000
RSS_LIMIT_MB = 300

# The child's own peak resident memory is VmHWM: it starts anew at exec, unlike
# getrusage's ru_maxrss, which a child inherits from the (large) test process.
CHILD = r"""
import json, sys
from video_ingest.ingestion.handlers.fetch import FetchHandler
from video_ingest.ingestion.manifest import VideoItem
result = FetchHandler(source_base=sys.argv[1], destination=sys.argv[2]).process(VideoItem("huge.mkv"), 1)
peak_kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print(json.dumps({"action": result.action, "sha256": result.checksum, "bytes": result.size, "max_rss_kb": peak_kb}))
"""


def test_a_video_of_2_gb_streams_through_in_bounded_memory_with_no_local_copy(tmp_path):
    import json

    sources = tmp_path / "sources"
    sources.mkdir()
    video = make_large_video(sources / "huge.mkv", SIZE)
    digest = hashlib.sha256()
    with video.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with serving(sources) as base:
        done = subprocess.run([sys.executable, "-c", CHILD, base, str(tmp_path / "dest")],
                              capture_output=True, text=True, timeout=600, env={"TMPDIR": str(scratch),
                                                                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["action"], result["bytes"], result["sha256"]) == ("ingested", video.stat().st_size,
                                                                      digest.hexdigest())
    assert (tmp_path / "dest" / "huge.mkv" / "video.mkv").stat().st_size == video.stat().st_size
    assert result["max_rss_kb"] / 1024 < RSS_LIMIT_MB, f"peak RSS {result['max_rss_kb'] / 1024:.0f} MB"
    assert not any(scratch.iterdir()), "the handler staged the video on local disk"
