import hashlib
import json

import pytest

from video_ingest.handlers import PermanentItemError
from video_ingest.handlers.fetch import FetchHandler, summarize_probe
from video_ingest.manifest import VideoItem


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    video = folder / "v1.mp4"
    video.write_bytes(b"not really a video" * 1000)
    return video


def test_fetch_writes_the_file_and_a_sidecar_with_its_checksum(tmp_path, source):
    dest = tmp_path / "dest"
    handler = FetchHandler(source_base=f"file://{source.parent}/", destination=str(dest))
    item = VideoItem("v1", source=f"file://{source}")
    result = handler.process(item, 1)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert result.action == "ingested" and result.checksum == digest
    assert (dest / "v1.mp4").read_bytes() == source.read_bytes()
    sidecar = json.loads((dest / "v1.json").read_text())
    assert sidecar["sha256"] == digest and sidecar["bytes"] == source.stat().st_size


def test_second_fetch_of_the_same_content_is_skipped(tmp_path, source):
    handler = FetchHandler(source_base="", destination=str(tmp_path / "dest"))
    item = VideoItem("v1", source=str(source))
    assert handler.process(item, 1).action == "ingested"
    assert handler.process(item, 1).action == "skipped"


def test_changed_content_is_ingested_again(tmp_path, source):
    handler = FetchHandler(source_base="", destination=str(tmp_path / "dest"))
    item = VideoItem("v1", source=str(source))
    handler.process(item, 1)
    source.write_bytes(b"new content")
    assert handler.process(item, 2).action == "ingested"


def test_missing_source_is_a_permanent_failure(tmp_path):
    handler = FetchHandler(source_base="", destination=str(tmp_path / "dest"))
    with pytest.raises(PermanentItemError, match="not found"):
        handler.process(VideoItem("v9", source=str(tmp_path / "nope.mp4")), 1)


def test_item_without_source_or_destination_is_caught_before_running(tmp_path):
    assert "no source" in FetchHandler("", str(tmp_path)).check(VideoItem("v1"))
    assert "destination" in FetchHandler("file:///x/", "").check(VideoItem("v1"))


def test_source_base_names_the_source_from_the_id(tmp_path, source):
    handler = FetchHandler(source_base=f"{source.parent}/", destination=str(tmp_path / "d"))
    assert handler.source_of(VideoItem("v1.mp4#x")) == f"{source.parent}/v1.mp4"


def test_probe_summary_keeps_duration_and_codecs():
    report = {
        "format": {"duration": "12.5", "format_name": "mov,mp4", "size": "1234"},
        "streams": [{"codec_type": "video", "codec_name": "h264"}, {"codec_type": "audio", "codec_name": "aac"}],
    }
    assert summarize_probe(report) == {
        "duration_seconds": 12.5, "format": "mov,mp4", "size": 1234,
        "video_codecs": ["h264"], "audio_codecs": ["aac"],
    }


def test_fetch_over_http_from_a_local_server(tmp_path, source):
    """A real HTTP server on loopback (the `http` extra's aiohttp client through fsspec)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetch = FetchHandler(source_base=f"http://127.0.0.1:{server.server_port}/", destination=str(tmp_path / "d"))
        result = fetch.process(VideoItem("v1.mp4"), 1)
        assert result.action == "ingested"
        assert result.checksum == hashlib.sha256(source.read_bytes()).hexdigest()
        assert (tmp_path / "d" / "v1.mp4").read_bytes() == source.read_bytes()
        with pytest.raises(PermanentItemError, match="not found"):
            fetch.process(VideoItem("missing.mp4"), 1)
    finally:
        server.shutdown()
