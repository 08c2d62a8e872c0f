"""reward_model: disjoint pair samples, their summarized contexts, the reward adapter and its Table 5 check (section 3.4)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
