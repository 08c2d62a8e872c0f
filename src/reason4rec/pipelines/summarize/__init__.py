"""summarize: the shared base model, teacher summaries, the summarizer adapter and summaries of every interaction (section 3.1)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
