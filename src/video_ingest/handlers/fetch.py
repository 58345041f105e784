"""The real default handler: fetch, checksum, probe, write, skip what is already there.

Sources and destinations are fsspec URIs: `file://` and plain paths always,
`http(s)://` with the `http` extra (aiohttp), `s3://` with the `s3` extra (s3fs).

For each item:

1. stream the source into a local temporary file, computing its sha256 on the way;
2. if the destination already holds a sidecar `<id>.json` with that sha256, stop:
   the item is `skipped` (so a re-run batch does no work twice);
3. probe it with `ffprobe` when it is installed (duration, codecs, size);
4. write the file as `<id><ext>` and then the JSON sidecar, last, so a sidecar
   exists only for a complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone

import fsspec

from video_ingest.handlers.base import HandlerResult, PermanentItemError, register
from video_ingest.manifest import VideoItem

CHUNK = 1 << 20
PROBE_TIMEOUT_SECONDS = 120


class FetchHandler:
    name = "fetch"

    def __init__(self, source_base: str, destination: str, tmp_dir: str | None = None):
        self.source_base = source_base
        self.destination = destination.rstrip("/")
        self.tmp_dir = tmp_dir

    def source_of(self, item: VideoItem) -> str | None:
        if item.source:
            return item.source
        if self.source_base:
            return self.source_base + item.base_id
        return None

    def check(self, item: VideoItem) -> str | None:
        if not self.destination:
            return "the fetch handler needs a destination (VIDEO_INGEST_DESTINATION)"
        if not self.source_of(item):
            return f"{item.id}: no source URI (give one in the manifest or set VIDEO_INGEST_SOURCE_BASE)"
        return None

    def process(self, item: VideoItem, attempt: int) -> HandlerResult:
        problem = self.check(item)
        if problem:
            raise PermanentItemError(problem)
        source = self.source_of(item)
        fd, tmp_path = tempfile.mkstemp(prefix="ingest-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as tmp:
                checksum, size = _copy_and_hash(source, tmp)
            sidecar_path = f"{self.destination}/{item.base_id}.json"
            existing = _read_sidecar(sidecar_path)
            if existing and existing.get("sha256") == checksum:
                return HandlerResult(action="skipped", checksum=checksum, size=size)
            metadata = probe(tmp_path)
            extension = posixpath.splitext(source.split("?", 1)[0])[1][:10]
            name = item.base_id if item.base_id.endswith(extension) else item.base_id + extension
            target = f"{self.destination}/{name}"
            with fsspec.open(tmp_path, "rb") as src, fsspec.open(target, "wb", auto_mkdir=True) as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            sidecar = {
                "id": item.base_id,
                "source": source,
                "sha256": checksum,
                "bytes": size,
                "file": target,
                "probe": metadata,
                "ingested_at": datetime.now(timezone.utc).isoformat(),
                "attempt": attempt,
            }
            with fsspec.open(sidecar_path, "w", auto_mkdir=True) as out:
                json.dump(sidecar, out, indent=2, sort_keys=True)
            return HandlerResult(action="ingested", checksum=checksum, size=size, metadata=metadata)
        finally:
            os.unlink(tmp_path)


def _copy_and_hash(source: str, out) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with fsspec.open(source, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except FileNotFoundError:
        raise PermanentItemError(f"source not found: {source}") from None
    except ImportError as exc:
        raise PermanentItemError(f"no filesystem for {source}: {exc}") from None
    except ValueError as exc:  # fsspec: unknown protocol
        raise PermanentItemError(f"cannot open {source}: {exc}") from None
    return digest.hexdigest(), size


def _read_sidecar(path: str) -> dict | None:
    try:
        with fsspec.open(path, "r") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return None  # unreadable or partial sidecar: ingest again


def probe(path: str) -> dict:
    """Duration, codecs and size from ffprobe; {} when ffprobe is not installed."""
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        return {}
    try:
        done = subprocess.run(
            [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "ffprobe timed out"}
    if done.returncode != 0:
        return {"error": done.stderr.strip()[:500] or f"ffprobe exit {done.returncode}"}
    return summarize_probe(json.loads(done.stdout or "{}"))


def summarize_probe(report: dict) -> dict:
    """Keep what an ingest catalogue wants from ffprobe's JSON. Pure."""
    fmt = report.get("format", {})
    streams = report.get("streams", [])
    duration = fmt.get("duration")
    return {
        "duration_seconds": float(duration) if duration not in (None, "N/A") else None,
        "format": fmt.get("format_name"),
        "size": int(fmt["size"]) if str(fmt.get("size", "")).isdigit() else None,
        "video_codecs": sorted({s["codec_name"] for s in streams if s.get("codec_type") == "video" and "codec_name" in s}),
        "audio_codecs": sorted({s["codec_name"] for s in streams if s.get("codec_type") == "audio" and "codec_name" in s}),
    }


@register("fetch")
def _build(settings) -> FetchHandler:
    return FetchHandler(source_base=settings.source_base, destination=settings.destination)
