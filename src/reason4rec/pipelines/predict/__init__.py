"""predict: a rating and its reason for each (user, item) pair in ``prediction_requests``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
