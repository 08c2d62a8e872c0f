"""refine_reasoner: GRPO on the trained reasoner, rewarded by the frozen predictor (not part of ``kedro run``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
