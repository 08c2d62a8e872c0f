"""summarize: teacher summaries, the summarizer adapter, summaries of every interaction (section 3.1),
and the sampled pairs' contexts (each pair with its user's and item's summarized histories)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
