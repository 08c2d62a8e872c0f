"""summarize: not built yet (see the project's issues)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
