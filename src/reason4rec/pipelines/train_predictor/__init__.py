"""train_predictor: the reasoner's own reasons, then the predictor adapter trained on them (section 3.3)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
