"""video-ingest: bulk video ingestion on Prefect 3 and Kubernetes."""

__version__ = "0.1.0"
