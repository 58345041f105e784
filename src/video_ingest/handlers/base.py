"""The handler interface and the registry that picks one by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from video_ingest.manifest import VideoItem
    from video_ingest.settings import IngestSettings


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


_FACTORIES: dict[str, Callable[["IngestSettings"], VideoHandler]] = {}


def register(name: str):
    def decorate(factory):
        _FACTORIES[name] = factory
        return factory

    return decorate


def handler_names() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def build_handler(name: str, settings: "IngestSettings") -> VideoHandler:
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown handler {name!r} (known: {', '.join(handler_names())})") from None
    return factory(settings)


def _load_builtin() -> None:
    # imported for their @register side effect
    from video_ingest.handlers import fetch, synthetic  # noqa: F401
