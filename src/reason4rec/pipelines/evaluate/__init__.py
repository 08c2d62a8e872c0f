"""evaluate: Tables 2, 3, 5 and 6 on the test split, baselines, the ablation, whether the rating follows the reason, and the report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
