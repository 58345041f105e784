"""The fetch handler on real videos (made with PyAV at test time), from local files
and from a real HTTP server with Range support on loopback, to a local destination.
(The S3 destination is proven against a real S3-compatible server in the e2e tier.)"""

import hashlib
import json

import pytest

from tests.videos import make_test_set, make_video, serving
from video_ingest.ingestion.handlers import PermanentItemError
from video_ingest.ingestion.handlers.fetch import CHUNK, FetchHandler
from video_ingest.ingestion.manifest import VideoItem

ALL_SCHEMES = ("http", "https", "s3", "file")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    make_test_set(folder)
    return folder


def fetch(dest, **options) -> FetchHandler:
    return FetchHandler(source_base="", destination=str(dest), schemes=options.pop("schemes", ALL_SCHEMES), **options)


def test_a_video_lands_in_its_own_folder_with_a_sidecar_of_checksum_and_probed_metadata(tmp_path, videos):
    source = videos / "clip-b.mp4"
    result = fetch(tmp_path / "dest").process(VideoItem("clip", str(source)), 1)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert (result.action, result.checksum, result.size) == ("ingested", digest, source.stat().st_size)
    assert (tmp_path / "dest" / "clip" / "video.mp4").read_bytes() == source.read_bytes()
    sidecar = json.loads((tmp_path / "dest" / "clip" / "sidecar.json").read_text())
    assert (sidecar["sha256"], sidecar["bytes"], sidecar["object"]) == (digest, source.stat().st_size, "video.mp4")
    probe = sidecar["probe"]
    assert (probe["duration_seconds"], probe["video_codec"], probe["width"], probe["height"]) == (3.0, "mpeg4", 64, 48)


@pytest.mark.parametrize("name, reason", [("cut.mp4", "truncated"), ("text.mp4", "not a decodable video"),
                                          ("empty.mp4", "empty")])
def test_a_broken_file_fails_permanently_with_its_reason_and_leaves_nothing(tmp_path, videos, name, reason):
    with pytest.raises(PermanentItemError, match=reason):
        fetch(tmp_path / "dest").process(VideoItem("broken", str(videos / name)), 1)
    assert not (tmp_path / "dest" / "broken").exists()


def test_a_rerun_skips_only_a_copy_whose_size_and_checksum_match_its_sidecar(tmp_path, videos):
    handler, item = fetch(tmp_path / "dest"), VideoItem("clip", str(videos / "clip-a.mp4"))
    video = tmp_path / "dest" / "clip" / "video.mp4"
    assert handler.process(item, 1).action == "ingested"
    assert handler.process(item, 1).action == "skipped"
    video.unlink()  # deleted
    assert handler.process(item, 1).action == "ingested"
    video.write_bytes(video.read_bytes()[:100])  # truncated
    assert handler.process(item, 1).action == "ingested"
    video.write_bytes(bytes(len(video.read_bytes())))  # same size, other bytes
    assert handler.process(item, 1).action == "ingested"
    assert video.read_bytes() == (videos / "clip-a.mp4").read_bytes()


def test_two_ids_that_differ_only_by_an_extension_never_share_an_object(tmp_path, videos):
    handler = fetch(tmp_path / "dest")
    handler.process(VideoItem("clip", str(videos / "clip-a.mp4")), 1)
    handler.process(VideoItem("clip.mp4", str(videos / "clip-b.mp4")), 1)
    assert (tmp_path / "dest" / "clip" / "video.mp4").read_bytes() == (videos / "clip-a.mp4").read_bytes()
    assert (tmp_path / "dest" / "clip.mp4" / "video.mp4").read_bytes() == (videos / "clip-b.mp4").read_bytes()


def test_only_allowed_schemes_are_read_and_file_is_off_by_default(tmp_path, videos):
    default = FetchHandler(source_base="", destination=str(tmp_path / "dest"))
    for source in ("file:///proc/self/environ", str(videos / "clip-a.mp4"), "ftp://host/x.mp4"):
        problem = default.check(VideoItem("x", source))
        assert problem and "not allowed" in problem
        with pytest.raises(PermanentItemError, match="not allowed"):
            default.process(VideoItem("x", source), 1)
    assert default.check(VideoItem("x", "https://host/x.mp4")) is None


def test_item_without_source_or_destination_is_caught_before_running(tmp_path):
    assert "no source" in fetch(tmp_path).check(VideoItem("v1"))
    assert "destination" in FetchHandler("https://h/", "").check(VideoItem("v1"))


def test_source_base_names_the_source_from_the_id_without_directives(tmp_path):
    handler = FetchHandler(source_base="https://videos.example/", destination=str(tmp_path / "d"))
    assert handler.source_of(VideoItem("v1.mp4#x")) == "https://videos.example/v1.mp4"


def test_over_http_with_range_reads_and_credentials_kept_out_of_sidecar_and_errors(tmp_path, videos):
    with serving(videos) as base:
        handler = fetch(tmp_path / "dest")
        signed = base.replace("http://", "http://user:hunter2@") + "clip-c.mkv?X-Amz-Signature=s3cr3t&v=1"
        result = handler.process(VideoItem("signed", signed), 1)
        assert result.action == "ingested"
        assert (tmp_path / "dest" / "signed" / "video.mkv").read_bytes() == (videos / "clip-c.mkv").read_bytes()
        sidecar_text = (tmp_path / "dest" / "signed" / "sidecar.json").read_text()
        assert "hunter2" not in sidecar_text and "s3cr3t" not in sidecar_text
        assert json.loads(sidecar_text)["probe"]["duration_seconds"] == pytest.approx(1.0, abs=0.2)
        with pytest.raises(PermanentItemError, match="not found") as missing:
            handler.process(VideoItem("gone", base.replace("http://", "http://user:hunter2@") + "gone.mp4"), 1)
        assert "hunter2" not in str(missing.value)
        with pytest.raises(PermanentItemError, match="truncated"):
            handler.process(VideoItem("cut", base + "cut.mp4"), 1)


def test_a_video_much_larger_than_the_read_chunk_streams_through_unchanged(tmp_path):
    big = make_video(tmp_path / "big.mp4", seconds=12, width=320, height=240, noise=True)
    assert big.stat().st_size > 4 * CHUNK, "not several read chunks long"
    with serving(tmp_path) as base:
        result = fetch(tmp_path / "dest").process(VideoItem("big", base + "big.mp4"), 1)
    assert result.checksum == hashlib.sha256(big.read_bytes()).hexdigest()
