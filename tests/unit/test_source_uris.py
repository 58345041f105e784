"""Which sources an item may name, and how a source is shown. Pure."""

import pytest

from video_ingest.ingestion.handlers.sources import parse_schemes, redact_text, redact_uri, scheme_of, source_problem


@pytest.mark.parametrize("uri, scheme", [("https://h/a.mp4", "https"), ("S3://b/k", "s3"), ("/data/a.mp4", "file"),
                                         ("file:///etc/passwd", "file"), ("relative/a.mp4", "file")])
def test_scheme_of_a_plain_path_is_file(uri, scheme):
    assert scheme_of(uri) == scheme


def test_only_allowed_schemes_pass_and_hosts_are_required():
    allowed = parse_schemes(" http, HTTPS ,s3,")
    assert allowed == ("http", "https", "s3")
    assert source_problem("https://videos.example/a.mp4", allowed) is None
    assert "not allowed" in source_problem("file:///proc/self/environ", allowed)
    assert "not allowed" in source_problem("../escape", allowed)
    assert "no host" in source_problem("https:///a.mp4", allowed)


def test_credentials_in_a_uri_are_redacted_and_the_rest_kept():
    shown = redact_uri("https://alice:pw@cdn.example/v/a.mp4?X-Amz-Signature=abc&X-Amz-Credential=k%2F1&v=2")
    assert shown.startswith("https://***@cdn.example/v/a.mp4?")
    assert "pw" not in shown and "abc" not in shown and "k%2F1" not in shown and "v=2" in shown


def test_credentials_in_free_text_are_redacted():
    text = "ClientError: GET https://bob:secret@h/x.mp4?sig=zzz&a=1 failed"
    assert redact_text(text) == "ClientError: GET https://***@h/x.mp4?sig=***&a=1 failed"
