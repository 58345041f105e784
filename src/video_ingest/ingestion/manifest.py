"""Reading the list of videos a user submits.

Three formats, chosen by file extension (or, for plain files, by the first
character of the first non-blank line):

* plain text: one video ID per line;
* JSON lines (`.jsonl`, `.ndjson`): one object per line, `{"id": ..., "source": ...}`;
* CSV (`.csv`): a header row with an `id` column and an optional `source` column.

Rules, the same for all three:

* CRLF line endings and a UTF-8 byte-order mark are accepted; blank lines are skipped;
  in plain text, a line whose first character is `#` is a comment.
* An ID is `[A-Za-z0-9][A-Za-z0-9._@:=+-]*` (at most 255 characters), optionally
  followed by `#` and directives for the synthetic handler (`clip-7#flaky=2,ms=10`).
  No slashes, no whitespace: IDs become file names at the destination.
* A duplicated ID is kept once, at its first position; the duplicates are reported
  in `Manifest.duplicates` so the CLI can say so. Identity is the ID without its
  synthetic directives (`clip-1` and `clip-1#ms=5` are one video). Running a video
  twice in one submission would race two task runs on one destination.
* A file with no IDs at all is an error.

Errors name the file and line and stop before anything runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:=+-]{0,254}")
DIRECTIVES_PATTERN = re.compile(r"[A-Za-z0-9_.=,-]*")
MAX_ERRORS_SHOWN = 5


class ManifestError(ValueError):
    """The ID file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class VideoItem:
    """One video to ingest: its ID as written (directives included) and its source."""

    id: str
    source: str | None = None

    @property
    def base_id(self) -> str:
        """The ID without synthetic directives: the name used at the destination."""
        return self.id.split("#", 1)[0]

    @property
    def directives(self) -> str:
        return self.id.split("#", 1)[1] if "#" in self.id else ""


@dataclass
class Manifest:
    items: list[VideoItem]
    duplicates: list[str] = field(default_factory=list)


def check_id(raw: str) -> str | None:
    """Return why `raw` is not a valid ID, or None when it is."""
    base, _, directives = raw.partition("#")
    if not base:
        return "empty ID"
    if not ID_PATTERN.fullmatch(base):
        return f"invalid ID {raw!r} (allowed: letters, digits and ._@:=+- ; no spaces or slashes)"
    if not DIRECTIVES_PATTERN.fullmatch(directives):
        return f"invalid directives in {raw!r}"
    return None


def parse_manifest(text: str, fmt: str, name: str = "<ids>") -> Manifest:
    """Parse manifest text in format `fmt` ('plain', 'jsonl' or 'csv'). Pure."""
    text = text.removeprefix("\ufeff")
    if fmt == "plain":
        rows = _plain_rows(text)
    elif fmt == "jsonl":
        rows = _jsonl_rows(text, name)
    elif fmt == "csv":
        rows = _csv_rows(text, name)
    else:
        raise ManifestError(f"{name}: unknown manifest format {fmt!r}")

    errors: list[str] = []
    seen: set[str] = set()
    items: list[VideoItem] = []
    duplicates: list[str] = []
    for line_no, raw_id, source in rows:
        problem = check_id(raw_id)
        if problem:
            errors.append(f"line {line_no}: {problem}")
            continue
        if source is not None and not isinstance(source, str):
            errors.append(f"line {line_no}: source must be a string")
            continue
        identity = raw_id.partition("#")[0]
        if identity in seen:
            duplicates.append(raw_id)
            continue
        seen.add(identity)
        items.append(VideoItem(raw_id, source or None))
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise ManifestError(f"{name}: {len(errors)} bad line(s): {shown}")
    if not items:
        raise ManifestError(f"{name}: no video IDs found")
    return Manifest(items, duplicates)


def detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    for line in text.removeprefix("\ufeff").splitlines():
        if line.strip():
            return "jsonl" if line.lstrip().startswith("{") else "plain"
    return "plain"


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate an ID file; raises ManifestError with one clear message."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a directory, not an ID file") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_manifest(text, detect_format(path, text), str(path))


def _plain_rows(text: str):
    for line_no, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        yield line_no, value, None


def _jsonl_rows(text: str, name: str):
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{name}: line {line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ManifestError(f"{name}: line {line_no}: expected an object with a string 'id'")
        yield line_no, row["id"].strip(), row.get("source")


def _csv_rows(text: str, name: str):
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        line_no = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            if "id" not in header:
                raise ManifestError(f"{name}: line {line_no}: CSV header needs an 'id' column")
            id_col = header.index("id")
            source_col = header.index("source") if "source" in header else None
            continue
        if len(row) <= id_col:
            raise ManifestError(f"{name}: line {line_no}: missing 'id' value")
        source = row[source_col].strip() if source_col is not None and len(row) > source_col else None
        yield line_no, row[id_col].strip(), source
