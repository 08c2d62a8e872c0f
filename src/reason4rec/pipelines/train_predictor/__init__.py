"""train_predictor: the reasoner's own reasons, the predictor adapter trained on them (section 3.3), and the "Without Reason" ablation's predictor."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
