from pathlib import Path

import pytest

from video_ingest.ingestion.manifest import ManifestError, VideoItem, parse_manifest, read_manifest


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_plain_file_gives_ids_in_order(tmp_path):
    path = write(tmp_path, "ids.txt", "clip-1\nclip-2\nclip-3#flaky=2\n")
    assert [item.id for item in read_manifest(path).items] == ["clip-1", "clip-2", "clip-3#flaky=2"]


def test_crlf_bom_blank_lines_and_comments_are_accepted(tmp_path):
    path = write(tmp_path, "ids.txt", b"\xef\xbb\xbfclip-1\r\n\r\n   \r\n# a comment\r\n  clip-2  \r\n")
    assert [item.id for item in read_manifest(path).items] == ["clip-1", "clip-2"]


def test_duplicate_ids_run_once_and_are_reported(tmp_path):
    path = write(tmp_path, "ids.txt", "a\nb\na\nc\nb\n")
    manifest = read_manifest(path)
    assert [item.id for item in manifest.items] == ["a", "b", "c"]
    assert manifest.duplicates == ["a", "b"]


def test_an_id_with_directives_is_the_same_video_as_the_bare_id(tmp_path):
    manifest = read_manifest(write(tmp_path, "ids.txt", "clip-1\nclip-1#ms=5\nclip-2#fail\nclip-2\n"))
    assert [item.id for item in manifest.items] == ["clip-1", "clip-2#fail"]
    assert manifest.duplicates == ["clip-1#ms=5", "clip-2"]


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="no such file"):
        read_manifest(tmp_path / "nope.txt")


def test_directory_is_not_an_id_file(tmp_path):
    with pytest.raises(ManifestError, match="is a directory"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "# only a comment\n"])
def test_file_without_ids_is_an_error(tmp_path, content):
    with pytest.raises(ManifestError, match="no video IDs"):
        read_manifest(write(tmp_path, "ids.txt", content))


@pytest.mark.parametrize("bad", ["../etc/passwd", "has space", "a/b", "-leading-dash", "x" * 300])
def test_unsafe_ids_are_refused_with_their_line(tmp_path, bad):
    with pytest.raises(ManifestError, match="line 2"):
        read_manifest(write(tmp_path, "ids.txt", f"ok-1\n{bad}\n"))


def test_binary_file_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(write(tmp_path, "ids.txt", b"\xff\xfe\x00\x01"))


def test_many_bad_lines_are_summarized_not_listed_forever(tmp_path):
    with pytest.raises(ManifestError) as caught:
        read_manifest(write(tmp_path, "ids.txt", "a b\n" * 50))
    assert "50 bad line(s)" in str(caught.value) and "and 45 more" in str(caught.value)


def test_jsonl_manifest_carries_sources(tmp_path):
    path = write(tmp_path, "ids.jsonl", '{"id": "v1", "source": "file:///data/v1.mp4"}\n{"id": "v2"}\n')
    assert read_manifest(path).items == [VideoItem("v1", "file:///data/v1.mp4"), VideoItem("v2", None)]


def test_jsonl_bad_line_names_the_line(tmp_path):
    with pytest.raises(ManifestError, match="line 2: not valid JSON"):
        read_manifest(write(tmp_path, "ids.jsonl", '{"id": "v1"}\n{oops\n'))


def test_csv_manifest_uses_header_columns(tmp_path):
    path = write(tmp_path, "ids.csv", "source,id\r\ns3://b/v1.mp4,v1\r\n,v2\r\n")
    assert read_manifest(path).items == [VideoItem("v1", "s3://b/v1.mp4"), VideoItem("v2", None)]


def test_csv_without_id_column_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="needs an 'id' column"):
        read_manifest(write(tmp_path, "ids.csv", "name,source\nv1,x\n"))


def test_hundred_thousand_ids_are_read_whole(tmp_path):
    path = write(tmp_path, "big.txt", "".join(f"video-{n:06d}\n" for n in range(100_000)))
    items = read_manifest(path).items
    assert len(items) == 100_000
    assert items[0].id == "video-000000" and items[-1].id == "video-099999"


def test_base_id_and_directives_split_at_hash():
    item = parse_manifest("clip-7#flaky=2,ms=5\n", "plain").items[0]
    assert (item.base_id, item.directives) == ("clip-7", "flaky=2,ms=5")
