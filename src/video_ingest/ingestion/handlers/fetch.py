"""The real default handler: probe, stream, checksum, write, skip what is truly there.

Sources and destinations are fsspec URIs: `http(s)://` (aiohttp), `s3://` (s3fs),
and `file://` or plain paths. For each item, with `<folder>` = destination/ID:

1. if `<folder>/sidecar.json` names an object that exists with the sidecar's size
   and sha256 (read back and hashed), stop: the item is `skipped`. A deleted or
   truncated object is ingested again; a sidecar alone proves nothing;
2. check the source: allowed scheme, not empty, and a decodable video, probed with
   PyAV through range reads (duration, codec, resolution), within
   `probe_timeout` seconds. A broken file fails permanently, with the reason;
3. stream the source to `<folder>/video<ext>` in 1 MiB chunks, computing its
   sha256 on the way: nothing is staged on local disk, and memory per item is
   bounded (a read chunk, plus the S3 upload part of `WRITE_BLOCK` bytes), so a
   pod ingests videos far larger than its memory and /tmp;
4. write the sidecar last: it exists only for a complete copy.

Each ID has its own folder, so two IDs never share an object (`clip` and
`clip.mp4` land in `clip/` and `clip.mp4/`). Credentials in source URIs are
redacted from sidecars and messages.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from datetime import datetime, timezone

import fsspec

from video_ingest.ingestion.handlers.base import HandlerResult, PermanentItemError
from video_ingest.ingestion.handlers.probe import NotAVideo, ProbeTimeout, probe_video
from video_ingest.ingestion.handlers.sources import (
    DEFAULT_SCHEMES,
    parse_schemes,
    redact_text,
    redact_uri,
    source_problem,
)
from video_ingest.ingestion.manifest import VideoItem
from video_ingest.settings import IngestSettings

CHUNK = 1 << 20  # bytes read and hashed at a time
WRITE_BLOCK = 8 << 20  # S3 multipart part size (S3's minimum is 5 MiB)
PROBE_BLOCK = 1 << 20  # range-read size while probing
SIDECAR = "sidecar.json"
_EXTENSION = re.compile(r"\.[a-z0-9]{1,8}")


class SourceChanged(RuntimeError):
    """The source's size changed between probing and copying: retried."""


class FetchHandler:
    name = "fetch"

    def __init__(
        self,
        source_base: str,
        destination: str,
        schemes: tuple[str, ...] = DEFAULT_SCHEMES,
        probe_timeout: float = 60.0,
    ):
        self.source_base = source_base
        self.destination = destination.rstrip("/")
        self.schemes = schemes
        self.probe_timeout = probe_timeout

    def source_of(self, item: VideoItem) -> str | None:
        if item.source:
            return item.source
        if self.source_base:
            return self.source_base + item.base_id
        return None

    def check(self, item: VideoItem) -> str | None:
        if not self.destination:
            return "the fetch handler needs a destination (VIDEO_INGEST_DESTINATION, the chart's ingest.destination)"
        source = self.source_of(item)
        if not source:
            return f"{item.id}: no source URI (give one in the manifest or set VIDEO_INGEST_SOURCE_BASE)"
        problem = source_problem(source, self.schemes)
        return f"{item.id}: {problem}" if problem else None

    def folder_of(self, item: VideoItem) -> str:
        return f"{self.destination}/{item.base_id}"

    def process(self, item: VideoItem, attempt: int) -> HandlerResult:
        problem = self.check(item)
        if problem:
            raise PermanentItemError(problem)
        source = self.source_of(item)
        shown = redact_uri(source)
        try:
            return self._ingest(item, source, shown, attempt)
        except PermanentItemError:
            raise
        except NotAVideo as exc:
            raise PermanentItemError(f"{item.id}: {exc} ({shown})") from None
        except FileNotFoundError:
            raise PermanentItemError(f"{item.id}: source not found: {shown}") from None
        except (ImportError, ValueError) as exc:  # fsspec: no filesystem for the protocol, or a bad URI
            raise PermanentItemError(redact_text(f"{item.id}: cannot open {shown}: {exc}")) from None
        except ProbeTimeout as exc:
            raise RuntimeError(f"{item.id}: {exc} ({shown})") from None
        except Exception as exc:  # network trouble and the like: retried, with no credential in the message
            raise RuntimeError(redact_text(f"{item.id}: {type(exc).__name__}: {exc}")) from None

    def _ingest(self, item: VideoItem, source: str, shown: str, attempt: int) -> HandlerResult:
        dst_fs, folder = fsspec.core.url_to_fs(self.folder_of(item))
        existing = _verified_copy(dst_fs, folder)
        if existing:
            return HandlerResult(action="skipped", checksum=existing["sha256"], size=existing["bytes"])

        src_fs, src_path = fsspec.core.url_to_fs(source)
        size = src_fs.size(src_path)  # None: the server did not say
        if size == 0:
            raise PermanentItemError(f"{item.id}: the source is empty ({shown})")
        with src_fs.open(src_path, "rb", block_size=PROBE_BLOCK) as handle:
            metadata = probe_video(handle, self.probe_timeout)

        name = "video" + _extension(source)
        target = posixpath.join(folder, name)
        if "file" in dst_fs.protocol:
            dst_fs.makedirs(folder, exist_ok=True)
        checksum, copied = _stream(src_fs, src_path, dst_fs, target)
        if copied == 0:
            raise PermanentItemError(f"{item.id}: the source is empty ({shown})")
        if size is not None and copied != size:
            raise SourceChanged(f"{item.id}: the source changed while it was copied ({size} then {copied} bytes)")
        sidecar = {
            "id": item.base_id,
            "source": shown,
            "object": name,
            "bytes": copied,
            "sha256": checksum,
            "probe": metadata,
            "ingested_at": datetime.now(timezone.utc).isoformat(),
            "attempt": attempt,
        }
        with dst_fs.open(posixpath.join(folder, SIDECAR), "w") as out:
            json.dump(sidecar, out, indent=2, sort_keys=True)
        return HandlerResult(action="ingested", checksum=checksum, size=copied, metadata=metadata)


def _stream(src_fs, src_path: str, dst_fs, dst_path: str) -> tuple[str, int]:
    """Copy in chunks, hashing on the way; (sha256, bytes)."""
    digest, size = hashlib.sha256(), 0
    write_options = {} if "file" in dst_fs.protocol else {"block_size": WRITE_BLOCK}
    # block_size=0: a plain streaming read, no read-ahead cache
    with src_fs.open(src_path, "rb", block_size=0) as src, dst_fs.open(dst_path, "wb", **write_options) as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    return digest.hexdigest(), size


def _verified_copy(fs, folder: str) -> dict | None:
    """The sidecar, if its object exists with the sidecar's size and sha256; else None."""
    try:
        with fs.open(posixpath.join(folder, SIDECAR), "r") as handle:
            sidecar = json.load(handle)
        target = posixpath.join(folder, sidecar["object"])
        if fs.size(target) != sidecar["bytes"]:
            return None
        digest = hashlib.sha256()
        with fs.open(target, "rb", block_size=0) as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return None  # no sidecar, no object, or a sidecar we did not write whole: ingest again
    return sidecar if digest.hexdigest() == sidecar.get("sha256") else None


def _extension(source: str) -> str:
    """`.mp4` from `https://host/a/clip.MP4?sig=...`; "" when the name has no plain extension."""
    path = source.split("?", 1)[0].split("#", 1)[0]
    extension = posixpath.splitext(path)[1].lower()
    return extension if _EXTENSION.fullmatch(extension) else ""


def from_settings(settings: IngestSettings) -> FetchHandler:
    return FetchHandler(
        source_base=settings.source_base,
        destination=settings.destination,
        schemes=parse_schemes(settings.source_schemes),
        probe_timeout=settings.probe_timeout,
    )
