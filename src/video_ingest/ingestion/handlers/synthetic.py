"""The synthetic handler: behaviour written into the ID, for tests and demos.

Directives follow `#`, joined by `,`:

* `flaky=K`: fail the first K attempts, then succeed;
* `fail`: always fail (a retryable error, so every retry is spent);
* `ms=N`: work for N milliseconds;
* `mem=N`: hold N MiB of resident memory while it works: a pod with a
  smaller memory limit is killed for memory, as a video too large for its pod would be.

Attempts come from Prefect's run count, so an ID behaves the same in a pod as
in-process. With a destination directory set, the handler records each item it
processed in `<destination>/<id>.done` (created exclusively) and skips an item
already recorded, so a re-run batch shows its idempotence like the real handler.
Every attempt that did the work also appends one line (host, pid, attempt) to
`<destination>/<id>.attempts` before it claims the `.done` record: two attempts
that both worked on one item leave two lines, which an "exactly once" check can
see even though only one of them got the `.done` record.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from video_ingest.ingestion.handlers.base import HandlerResult, PermanentItemError
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.settings import IngestSettings


class SyntheticFailure(RuntimeError):
    """The failure a `fail` or `flaky` directive asks for."""


@dataclass(frozen=True)
class Directives:
    flaky: int = 0
    fail: bool = False
    ms: int = 0
    mem: int = 0


def parse_directives(text: str) -> Directives:
    """Parse `flaky=2,ms=10` style directives. Pure; raises ValueError."""
    fail, numbers = False, {"flaky": 0, "ms": 0, "mem": 0}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if key == "fail" and not sep:
            fail = True
        elif key in numbers and sep and value.isdigit():
            numbers[key] = int(value)
        else:
            raise ValueError(f"unknown synthetic directive {part!r} (use flaky=K, fail, ms=N, mem=MiB)")
    return Directives(fail=fail, **numbers)


class SyntheticHandler:
    name = "synthetic"

    def __init__(self, default_ms: int = 0, destination: str = ""):
        self.default_ms = default_ms
        self.record_dir = Path(destination.removeprefix("file://")) if destination else None

    def check(self, item: VideoItem) -> str | None:
        try:
            parse_directives(item.directives)
        except ValueError as exc:
            return f"{item.id}: {exc}"
        return None

    def process(self, item: VideoItem, attempt: int) -> HandlerResult:
        try:
            directives = parse_directives(item.directives)
        except ValueError as exc:
            raise PermanentItemError(str(exc)) from None
        if self.record_dir and (self.record_dir / f"{item.base_id}.done").exists():
            return HandlerResult(action="skipped")
        work_ms = directives.ms or self.default_ms
        held = _hold_memory(directives.mem)
        if work_ms:
            time.sleep(work_ms / 1000)
        del held
        if directives.fail:
            raise SyntheticFailure(f"{item.id}: synthetic failure (attempt {attempt})")
        if attempt <= directives.flaky:
            raise SyntheticFailure(f"{item.id}: synthetic flaky failure {attempt}/{directives.flaky}")
        if self.record_dir:
            return self._record(item, attempt)
        return HandlerResult(action="processed")

    def _record(self, item: VideoItem, attempt: int) -> HandlerResult:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": item.id, "attempt": attempt, "host": socket.gethostname(), "pid": os.getpid()})
        fd = os.open(self.record_dir / f"{item.base_id}.attempts", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode())  # one write: appends from many pods stay whole lines
        finally:
            os.close(fd)
        path = self.record_dir / f"{item.base_id}.done"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return HandlerResult(action="skipped")
        with os.fdopen(fd, "w") as record:
            json.dump({"id": item.id, "attempt": attempt, "pid": os.getpid()}, record)
        return HandlerResult(action="ingested")


def _hold_memory(mebibytes: int) -> bytearray:
    """N MiB that count against a memory limit (bytearray writes its zeros: resident)."""
    return bytearray(mebibytes << 20)


def from_settings(settings: IngestSettings) -> SyntheticHandler:
    return SyntheticHandler(default_ms=settings.synthetic_ms, destination=settings.destination)
