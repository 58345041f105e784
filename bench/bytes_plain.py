"""The bytes benchmark's baseline in a process of its own: `FetchHandler.process` for
every item from a plain thread pool, no Prefect. Run by bench/bytes_bench.py on the
same Python as our variant (this interpreter, or an image's), so the two compare like
with like.

    python -m bench.bytes_plain BASE_URL DESTINATION THREADS NAMES_FILE

Prints one JSON line: {"seconds": S, "ingested": N} (S from the first item started to
the last done; the process's start and imports are not counted in S, bytes_bench
times the whole process beside it). Exits 1 when any item was not ingested.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run_plain(names: list[str], base: str, destination: str, threads: int) -> tuple[float, int]:
    from video_ingest.ingestion.handlers.fetch import FetchHandler
    from video_ingest.ingestion.manifest import VideoItem

    handler = FetchHandler(source_base=base, destination=destination)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda name: handler.process(VideoItem(name), 1), names))
    return time.monotonic() - started, sum(result.action == "ingested" for result in results)


def main(argv: list[str]) -> int:
    base, destination, threads, names_file = argv
    names = Path(names_file).read_text().split()
    seconds, ingested = run_plain(names, base, destination, int(threads))
    print(json.dumps({"seconds": seconds, "ingested": ingested}))
    return 0 if ingested == len(names) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
