"""Per-video handlers behind one small interface, chosen by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from video_ingest.ingestion.handlers import fetch, synthetic
from video_ingest.ingestion.handlers.base import HandlerResult, PermanentItemError, VideoHandler, item_problem

if TYPE_CHECKING:
    from video_ingest.settings import IngestSettings

# Each handler by the name the settings (`handler`, `--handler`) choose it with.
HANDLERS: dict[str, Callable[["IngestSettings"], VideoHandler]] = {
    "fetch": fetch.from_settings,
    "synthetic": synthetic.from_settings,
}


def handler_names() -> list[str]:
    return sorted(HANDLERS)


def build_handler(name: str, settings: "IngestSettings") -> VideoHandler:
    try:
        factory = HANDLERS[name]
    except KeyError:
        raise ValueError(f"unknown handler {name!r} (known: {', '.join(handler_names())})") from None
    return factory(settings)


__all__ = ["HandlerResult", "PermanentItemError", "VideoHandler", "build_handler", "handler_names", "item_problem"]
