"""reason_ablations: the paper's Table 4, other ways to supervise the reasoner, each run through steps 2 and 3."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
