"""train_reasoner: the reasoner adapter, trained on the accepted reasons (section 3.2)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
