"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The method's stages, in the order ``__default__`` runs them.
PIPELINE_ORDER = (
    "ingest_5core",
    "summarize",
    "reward_model",
    "distill_reasons",
    "train_reasoner",
    "train_predictor",
    "evaluate",
)


def register_pipelines() -> dict[str, Pipeline]:
    # Kedro loads only the pipelines a command asks for, so some may be absent here.
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipelines[name] for name in PIPELINE_ORDER if name in pipelines), Pipeline([]))
    return pipelines
