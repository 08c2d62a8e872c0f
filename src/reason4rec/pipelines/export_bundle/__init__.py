"""export_bundle: the trained experts, the base, the prompt settings and the history tables in one folder."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
