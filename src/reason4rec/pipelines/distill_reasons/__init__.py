"""distill_reasons: Algorithm 1, teacher reasons kept by the reward model, every attempt recorded (section 3.2)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
