"""ingest_5core: raw reviews to clean, 5-core, chronologically split interactions."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
