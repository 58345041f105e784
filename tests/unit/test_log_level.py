"""`ingest.logLevel` (VIDEO_INGEST_LOG_LEVEL) sets the level of the package's loggers
wherever a flow reads its settings."""

import logging

from video_ingest.ingestion import flows


def test_the_settings_log_level_applies_to_the_packages_loggers(monkeypatch):
    package = logging.getLogger("video_ingest")
    before = package.level
    try:
        monkeypatch.setenv("VIDEO_INGEST_LOG_LEVEL", "DEBUG")
        flows._settings()
        assert logging.getLogger("video_ingest.ingestion.cluster_batches").isEnabledFor(logging.DEBUG)
        monkeypatch.setenv("VIDEO_INGEST_LOG_LEVEL", "ERROR")
        flows._settings()
        assert not logging.getLogger("video_ingest.ingestion.slots").isEnabledFor(logging.WARNING)
    finally:
        package.setLevel(before)
