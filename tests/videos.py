"""Real, small videos made at test time, broken ones beside them, and an HTTP server
with Range support to serve them (Python's own http.server ignores Range).

Stdlib plus PyAV only, so the same file runs in a pod from the project image:
`python videos.py make DIR` writes the test set, `python videos.py serve DIR PORT`
serves a folder.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import sys
import threading
from pathlib import Path

GOOD = {"clip-a.mp4": {"seconds": 2, "faststart": False}, "clip-b.mp4": {"seconds": 3, "faststart": True},
        "clip-c.mkv": {"seconds": 1, "faststart": False}}
BROKEN = {"cut.mp4": "truncated", "text.mp4": "not a video", "empty.mp4": "empty"}
WIDTH, HEIGHT, FPS = 64, 48, 10


def make_video(path: Path, seconds: float = 2, faststart: bool = False, width: int = WIDTH, height: int = HEIGHT,
               noise: bool = False) -> Path:
    """An MPEG-4 Part 2 video (FFmpeg's own encoder, in every PyAV wheel) of changing grey
    frames, or of random noise (`noise`: compresses badly, so the file is large)."""
    import av

    container_format = "matroska" if path.suffix == ".mkv" else "mp4"
    options = {"movflags": "faststart"} if faststart and container_format == "mp4" else {}
    with av.open(str(path), "w", format=container_format, options=options) as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(int(seconds * FPS)):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size) if noise else bytes([(index * 7) % 256]) * plane.buffer_size)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_large_video(path: Path, size_bytes: int) -> Path:
    """A decodable Matroska video of at least `size_bytes`, made in seconds: one noisy
    1080p keyframe, encoded once, muxed again and again (every packet a keyframe)."""
    import fractions

    import av

    frame_file = path.with_suffix(".frame.mp4")
    with av.open(str(frame_file), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.options = {"qscale": "1"}
        frame = av.VideoFrame(1920, 1080, "yuv420p")
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size))
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with av.open(str(frame_file)) as source:
        template = source.streams.video[0]
        data = bytes(next(packet for packet in source.demux(template) if packet.size))
        with av.open(str(path), "w", format="matroska") as out:
            stream = out.add_stream_from_template(template)
            for index in range(size_bytes // len(data) + 1):
                packet = av.Packet(data)
                packet.stream, packet.pts, packet.dts = stream, index, index
                packet.time_base, packet.is_keyframe = fractions.Fraction(1, FPS), True
                out.mux(packet)
    frame_file.unlink()
    return path


def make_test_set(folder: Path) -> dict[str, str]:
    """GOOD videos and BROKEN files in `folder`; returns name -> what it is."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in GOOD.items():
        make_video(folder / name, **spec)
    whole = make_video(folder / "whole-for-cut.mp4", seconds=3, faststart=True).read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "whole-for-cut.mp4").unlink()
    (folder / "text.mp4").write_bytes(b"this is not a video\n" * 200)
    (folder / "empty.mp4").write_bytes(b"")
    return {**{name: "good" for name in GOOD}, **BROKEN}


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Files from a folder, honouring `Range: bytes=a-b` (206) as real object stores do."""

    _RANGE = re.compile(r"bytes=(\d*)-(\d*)$")

    def send_head(self):
        match = self._RANGE.match(self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first = int(match.group(1)) if match.group(1) else max(size - int(match.group(2) or 0), 0)
        last = min(int(match.group(2)), size - 1) if match.group(1) and match.group(2) else size - 1
        if size == 0 or first >= size or first > last:
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        handle = path.open("rb")
        handle.seek(first)
        self._remaining = last - first + 1
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(self._remaining))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return handle

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(1 << 16, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None

    def end_headers(self):
        if getattr(self, "_remaining", None) is None:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@contextlib.contextmanager
def serving(folder: Path):
    """An HTTP server on 127.0.0.1 for `folder`; yields its base URL (ending in /)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "make":
        for name, kind in make_test_set(folder).items():
            print(f"{name}\t{kind}\t{os.path.getsize(folder / name)}")
    elif command == "serve":
        handler = functools.partial(RangeRequestHandler, directory=str(folder))
        http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[3])), handler).serve_forever()
