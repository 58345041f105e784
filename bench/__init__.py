"""The throughput benchmark (python -m bench.ingest_bench; make bench)."""
