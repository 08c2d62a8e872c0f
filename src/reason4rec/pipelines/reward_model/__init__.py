"""reward_model: the reward adapter, trained with the target review in the reason slot, and its Table 5 check (section 3.4)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
