"""recommend: each requested user's candidates ranked by predicted rating, top k with reasons."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
