"""train_predictor: see nodes.py."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
