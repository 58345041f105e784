"""Per-video handlers behind one small interface, chosen by name."""

from video_ingest.handlers.base import (
    HandlerResult,
    PermanentItemError,
    VideoHandler,
    build_handler,
    handler_names,
)

__all__ = ["HandlerResult", "PermanentItemError", "VideoHandler", "build_handler", "handler_names"]
