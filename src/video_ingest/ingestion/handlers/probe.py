"""A video's metadata, read with PyAV (FFmpeg's libraries, bundled in its wheels).

`probe_video` reads from any seekable binary file object (a local file, or an
fsspec file over HTTP range requests or S3), so only the parts FFmpeg asks for are
read, never the whole video. It decodes the first frame and a frame near the end:
a file that is not a video, has no video stream, or was cut short fails with
`NotAVideo` and the reason. Every read checks a deadline, so a probe takes at most
`timeout` seconds of I/O.
"""

from __future__ import annotations

import io
import time


class NotAVideo(Exception):
    """The bytes are not a decodable video; the message says why."""


class ProbeTimeout(Exception):
    """Probing read past its deadline."""


class _DeadlineReader(io.RawIOBase):
    """A read-only view of `raw` that refuses to read after `deadline` (monotonic)."""

    def __init__(self, raw, deadline: float):
        self._raw, self._deadline = raw, deadline

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self._deadline:
            raise ProbeTimeout("probing the video took too long")
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def probe_video(fileobj, timeout: float) -> dict:
    """Duration, codecs, resolution and container of the video in `fileobj`.

    Raises NotAVideo (permanent: the bytes will not change on a retry) or ProbeTimeout.
    """
    import av

    reader = _DeadlineReader(fileobj, time.monotonic() + timeout)
    try:
        with av.open(reader, mode="r") as container:
            video = next(iter(container.streams.video), None)
            if video is None:
                raise NotAVideo("no video stream")
            first = next(container.decode(video), None)
            if first is None:
                raise NotAVideo("no decodable video frame")
            duration = _duration_seconds(container, video)
            if duration and duration > 0.2:
                # A frame near the end: a file cut short fails here (its index points past its end).
                container.seek(int(max(duration - 0.1, 0) / video.time_base), stream=video, backward=True)
                if next(container.decode(video), None) is None:
                    raise NotAVideo("truncated: no frame near the end")
            return {
                "duration_seconds": duration,
                "format": container.format.name,
                "video_codec": video.codec_context.name,
                "width": video.codec_context.width,
                "height": video.codec_context.height,
                "frames": video.frames or None,
                "audio_codecs": sorted({stream.codec_context.name for stream in container.streams.audio}),
            }
    except ProbeTimeout:
        raise
    except (av.error.FFmpegError, EOFError, ValueError) as exc:  # FFmpeg's own verdicts on the bytes
        raise NotAVideo(_reason(exc)) from None


def _duration_seconds(container, video) -> float | None:
    if container.duration:
        return round(container.duration / 1_000_000, 3)
    if video.duration and video.time_base:
        return round(float(video.duration * video.time_base), 3)
    return None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"not a decodable video: {text}"[:300]
