"""ingest_5core: raw reviews to clean, 5-core, chronologically split interactions;
the two fixed-seed samples of training pairs; the shared base model as a versioned artifact."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
