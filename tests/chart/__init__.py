"""Chart tests: helm/video-ingest rendered by the real helm binary."""
