"""Ingestion: loaders per format, chunking, and the incremental ingest job."""
