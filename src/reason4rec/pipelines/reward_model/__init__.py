"""reward_model: see nodes.py."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
