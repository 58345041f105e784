"""The handler interface: what a handler returns, and the error that spends no retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from video_ingest.ingestion.manifest import VideoItem


class PermanentItemError(Exception):
    """The item cannot succeed however often it is retried (bad source, bad directive)."""


@dataclass(frozen=True)
class HandlerResult:
    action: str  # "ingested", "skipped" (already at the destination) or "processed"
    checksum: str = ""
    size: int = 0
    metadata: dict = field(default_factory=dict)


class VideoHandler(Protocol):
    name: str

    def check(self, item: "VideoItem") -> str | None:
        """Why this item can never be processed (checked before anything runs), or None."""

    def process(self, item: "VideoItem", attempt: int) -> HandlerResult:
        """Ingest one video. `attempt` is Prefect's run count, 1 on the first try.

        Raise PermanentItemError for failures retrying cannot fix; any other
        exception is retried with backoff.
        """


def item_problem(item: "VideoItem", handler: VideoHandler) -> str | None:
    """Why `item` can never be processed by `handler` (its ID, then its source), or None.
    Checked before a local run starts and again where each item runs (a run from the
    UI or the API was checked by nobody else)."""
    from video_ingest.ingestion.manifest import check_id

    return check_id(item.id) or handler.check(item)
