"""Which source URIs an item may name, and how a URI is shown. Pure.

A run started from the UI or the API names its sources itself, so the handler
checks every one where it runs: only the schemes the operator allows (default
http, https and s3; `file` only when enabled, since it reads the pod's own files).
Credentials in a URI (`user:password@`, signed-URL query parameters) never reach a
sidecar, a log line or a task state: `redact_uri` and `redact_text` strip them.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_SCHEMES = ("http", "https", "s3")
# Query parameters that carry a credential in signed URLs (S3, GCS, Azure, CDNs).
SECRET_QUERY_KEYS = re.compile(
    r"(?i)^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)|signature|sig|se|sp|sv"
    r"|token|access_token|auth|key|api_key|apikey|password|secret|policy|key-pair-id)$"
)
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_SECRET_PARAM_IN_TEXT = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
    r"|signature|sig|token|access_token|api_key|apikey|password|secret|policy)=)[^&\s'\"]+"
)


def parse_schemes(text: str) -> tuple[str, ...]:
    """`"http, https,s3"` -> ("http", "https", "s3"); lower-cased, blanks dropped."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def scheme_of(uri: str) -> str:
    """The URI's scheme; a plain path is `file`."""
    parts = urlsplit(uri)
    return parts.scheme.lower() if len(parts.scheme) > 1 else "file"


def source_problem(uri: str, allowed: tuple[str, ...]) -> str | None:
    """Why this source may not be read, or None."""
    scheme = scheme_of(uri)
    if scheme not in allowed:
        return (f"source scheme {scheme!r} is not allowed (allowed: {', '.join(allowed) or 'none'};"
                f" VIDEO_INGEST_SOURCE_SCHEMES)")
    if scheme in ("http", "https", "s3") and not urlsplit(uri).netloc:
        return f"source {redact_uri(uri)!r} names no host or bucket"
    return None


def redact_uri(uri: str) -> str:
    """The URI with its user info and secret query parameters replaced by `***`."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, "***" if SECRET_QUERY_KEYS.match(key) else value) for key, value in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Free text (an error message) with any URI credentials in it replaced by `***`."""
    text = _USERINFO_IN_TEXT.sub(r"\1***@", text)
    return _SECRET_PARAM_IN_TEXT.sub(r"\1***", text)
